"""The `edgeopt` command line: train, summary (sweep, report and bench come with their issues)."""
from __future__ import annotations

import argparse
import sys
import time


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
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"edgeopt: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
