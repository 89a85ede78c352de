"""Throughput of the whole training loop, ``edgeopt.train.fit``: data loading, forward, loss,
backward, optimizer step and fit's own work per step (the divergence guard's snapshots and
finiteness scans, train/guard.py). bench_train_step.py times the bare step against PyTorch; this
one shows what fit adds on top. To compare two builds, run it with each on PYTHONPATH, in turn:

    PYTHONPATH=python python benchmarks/bench_fit.py [--model resnet20] [--threads 2] [--repeat 3]

Synthetic CIFAR-shaped data (3x32x32, 10 classes), one epoch per repeat, progress bar off; prints
the images/s of every repeat and their median.
"""
from __future__ import annotations

import argparse
import statistics
import time

import edgeopt as eo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--images", type=int, default=2560)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    eo.set_num_threads(args.threads)
    train, _ = eo.data.synthetic(10, (3, 32, 32), n_train=args.images, n_test=0, seed=0)
    rates = []
    for r in range(args.repeat):
        model = eo.models.create(args.model, num_classes=10, in_channels=3, width_mult=args.width)
        t0 = time.perf_counter()
        eo.train.fit(model, train, None, epochs=1, batch_size=args.batch, lr=0.05, progress=False, seed=r)
        rates.append(args.images / (time.perf_counter() - t0))
        print(f"repeat {r}: {rates[-1]:.1f} img/s", flush=True)
    print(f"{args.model} width {args.width} batch {args.batch}, {args.threads} threads, isa {eo._core.runtime.active_isa()}: "
          f"fit median {statistics.median(rates):.1f} img/s over {args.repeat} epochs of {args.images} images")


if __name__ == "__main__":
    main()
