"""The `edgeopt` command line: train, summary, sweep, report, bench (also `python -m edgeopt`)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _dataset(name: str, root: str | None, seed: int):
    from . import data

    if name == "fashion-mnist":
        return data.fashion_mnist(root)
    if name == "cifar10":
        return data.cifar10(root or "data/cifar10")
    if name == "cifar100":
        return data.cifar100(root or "data/cifar100")
    if name == "synthetic":
        return data.synthetic(num_classes=10, shape=(3, 32, 32), n_train=5000, n_test=1000, seed=seed)
    raise SystemExit(f"edgeopt: unknown dataset {name!r}")


def cmd_train(args) -> int:
    import edgeopt as eo

    eo.set_num_threads(args.threads) if args.threads else None
    train, test = _dataset(args.dataset, args.data_root, args.seed)
    if args.subset:
        train = train.subset(range(min(args.subset, len(train))))
    eo.manual_seed(args.seed)
    in_ch = train.x.shape[1]
    ncls = int(train.y.max()) + 1
    model = eo.models.create(args.model, num_classes=ncls, in_channels=in_ch, width_mult=args.width)
    print(f"{args.model}: {sum(p.data.size for p in model.parameters()):,} parameters; "
          f"{args.dataset}: {len(train)} train / {len(test)} test images; {eo.get_num_threads()} threads")
    t0 = time.perf_counter()
    eo.train.fit(model, train, test, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 schedule=args.schedule, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                 augment="crop_flip" if args.augment else None, seed=args.seed,
                 checkpoint=args.checkpoint, resume=args.resume, progress=not args.quiet)
    r = eo.train.evaluate(model, test)
    print(f"test accuracy {100 * r['acc']:.2f} %  top-5 {100 * r['top5']:.2f} %  loss {r['loss']:.4f}  "
          f"({time.perf_counter() - t0:.0f} s)")
    if args.save:
        from .train import save_checkpoint

        save_checkpoint(args.save, model, meta={"model": args.model, "input_norm": model.input_norm})
        print(f"saved {args.save}")
    return 0


def cmd_summary(args) -> int:
    import edgeopt as eo

    model = eo.models.create(args.model, num_classes=args.num_classes, in_channels=args.in_channels,
                             width_mult=args.width)
    print(eo.models.summary(model, (1, args.in_channels, args.size, args.size)))
    return 0


def cmd_sweep(args) -> int:
    from . import sweep

    if args.spec is None and args.preset is None:
        raise ValueError("sweep: give a SPEC file or --preset quick|study")
    s = sweep.run(args.spec, db=args.db, executor=args.executor, preset=args.preset, progress=not args.quiet,
                  threads=args.threads or None)
    print(f"{s['cells']} cells: {s['skipped']} already in {args.db}, {s['ran']} run ({s['failed']} failed) "
          f"in {s['seconds']:.0f} s")
    if not args.no_report:
        paths = sweep.report(args.db, format="all", out=args.out or args.db + ".report", sweep=s["sweep"])
        print(sweep.tables_markdown(args.db, sweep=s["sweep"]))
        print("written: " + ", ".join(sorted(str(p) for p in _flat(paths))))
    return 1 if s["failed"] else 0


def _flat(paths):
    if isinstance(paths, dict):
        for v in paths.values():
            yield from _flat(v)
    elif isinstance(paths, (list, tuple)):
        for v in paths:
            yield from _flat(v)
    else:
        yield paths


def cmd_report(args) -> int:
    from . import sweep

    paths = sweep.report(args.db, format=args.format, out=args.out or args.db + ".report")
    if args.format in ("md", "all"):
        print(sweep.tables_markdown(args.db))
    print("written: " + ", ".join(sorted(str(p) for p in _flat(paths))))
    return 0


def cmd_bench(args) -> int:
    """Batch-1 latency of zoo models on this CPU per deploy scheme (untrained weights: speed only)."""
    import edgeopt as eo

    if args.threads:
        eo.set_num_threads(args.threads)
    from . import _core

    print(f"CPU: {eo.sweep.cell.cpu_model()}; ISA {_core.runtime.active_isa()}; "
          f"{eo.get_num_threads()} threads; batch 1, {args.runs} runs, median ms")
    shape = (1, args.in_channels, args.size, args.size)
    calib = np.random.default_rng(0).standard_normal((32,) + shape[1:]).astype(np.float32)
    print(f"{'model':<22}" + "".join(f"{s:>13}" for s in args.schemes))
    for name in args.models:
        model = eo.models.create(name, num_classes=10, in_channels=args.in_channels)
        row = []
        for scheme in args.schemes:
            e = eo.deploy.compile(model, scheme=scheme, input_shape=shape,
                                  calib=calib if scheme in eo.deploy.CALIBRATED_SCHEMES else None)
            row.append(eo.deploy.latency(e, batch=1, runs=args.runs)["median_ms"])
        print(f"{name:<22}" + "".join(f"{v:>13.3f}" for v in row))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgeopt", description="Make CNNs small and fast on edge CPUs.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model-zoo network and print its test accuracy")
    t.add_argument("--model", default="resnet20")
    t.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "cifar10", "cifar100", "synthetic"])
    t.add_argument("--data-root", default=None, help="dataset folder (default: the dataset's standard place)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--schedule", default="cosine", choices=["cosine", "step", "constant"])
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--width", type=float, default=1.0, help="width multiplier")
    t.add_argument("--augment", action="store_true", help="random crop + flip (CIFAR-style data)")
    t.add_argument("--subset", type=int, default=0, help="train on the first N images only")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    t.add_argument("--checkpoint", default=None, help="checkpoint written after every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    t.add_argument("--save", default=None, help="save the trained weights here")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("summary", help="per-layer shapes, parameters and MACs of a model")
    s.add_argument("--model", default="resnet20")
    s.add_argument("--num-classes", type=int, default=10)
    s.add_argument("--in-channels", type=int, default=3)
    s.add_argument("--size", type=int, default=32)
    s.add_argument("--width", type=float, default=1.0)
    s.set_defaults(func=cmd_summary)

    w = sub.add_parser("sweep", help="run a sweep of models x datasets x techniques into a results database")
    w.add_argument("spec", nargs="?", default=None, help="sweep spec (TOML); optional with --preset")
    w.add_argument("--db", default="results.db", help="results database (SQLite; finished cells are skipped)")
    w.add_argument("--executor", default="local", help="local | processes[:N] | dask | dask://host:port")
    w.add_argument("--preset", default=None, choices=["quick", "study"])
    w.add_argument("--threads", type=int, default=0, help="threads per cell, overriding the spec's (default: the spec's, else the cores per worker)")
    w.add_argument("--out", default=None, help="report folder (default: DB.report)")
    w.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=cmd_sweep)

    r = sub.add_parser("report", help="tables, plots, advisor and HTML page from a results database")
    r.add_argument("db")
    r.add_argument("--format", default="all", choices=["md", "csv", "html", "all"])
    r.add_argument("--out", default=None, help="report folder (default: DB.report)")
    r.set_defaults(func=cmd_report)

    b = sub.add_parser("bench", help="batch-1 latency of zoo models per deploy scheme on this CPU")
    b.add_argument("--models", nargs="+", default=["resnet20", "mobilenet_v2", "vgg11"])
    b.add_argument("--schemes", nargs="+", default=["fp32", "fp16", "int8-weight", "int8-full"])
    b.add_argument("--in-channels", type=int, default=3)
    b.add_argument("--size", type=int, default=32)
    b.add_argument("--runs", type=int, default=100)
    b.add_argument("--threads", type=int, default=0)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, ConnectionError, TimeoutError, RuntimeError, ImportError) as e:
        print(f"edgeopt: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeopt: interrupted; finished cells are saved, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
