"""Throughput of the whole training loop, ``edgeopt.train.fit``: data loading, forward, loss,
backward, optimizer step and fit's own work per step (the divergence guard's snapshots and
finiteness scans, train/guard.py). bench_train_step.py times the bare step against PyTorch; this
one shows what fit adds on top. To compare two builds, run it with each on PYTHONPATH, in turn:

    PYTHONPATH=python python benchmarks/bench_fit.py [--model resnet20] [--threads 2] [--repeat 3]

Synthetic CIFAR-shaped data (uint8 3x32x32, 10 classes), one epoch per repeat, progress bar off;
prints the images/s of every repeat and their median.

--load-cost instead measures what loading costs a step (issue 12: under 5 %), with crop_flip on,
for the DataLoader's prefetch on and off (defaults in this mode: mobilenet_v2, batch 64):

    PYTHONPATH=python python benchmarks/bench_fit.py --load-cost [--images 2560] [--repeat 3]

The loader fit builds is wrapped (the benchmark swaps the make_loader fit calls) so that every
`next()` of fit's loop is timed: wait = time from asking for a batch to getting it, step = time
from one request to the next (the wait plus everything fit does with the batch). Loading share =
sum of waits / sum of steps, over the steady state (batch 0 excluded: prefetch has nothing to
overlap it with) and over the whole epoch.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import edgeopt as eo
from edgeopt.data import preprocess

FIT_MODULE = sys.modules["edgeopt.train.fit"]  # `edgeopt.train.fit` the attribute is the function


def throughput(args, train) -> None:
    rates = []
    for r in range(args.repeat):
        model = eo.models.create(args.model, num_classes=10, in_channels=3, width_mult=args.width)
        t0 = time.perf_counter()
        eo.train.fit(model, train, None, epochs=1, batch_size=args.batch, lr=0.05, progress=False, seed=r)
        rates.append(args.images / (time.perf_counter() - t0))
        print(f"repeat {r}: {rates[-1]:.1f} img/s", flush=True)
    print(f"{args.model} width {args.width} batch {args.batch}, {args.threads} threads, isa {eo._core.runtime.active_isa()}: "
          f"fit median {statistics.median(rates):.1f} img/s over {args.repeat} epochs of {args.images} images")


class TimedLoader:
    """Wraps a DataLoader; per batch, `waits` gets the time spent in its next() and `steps` the
    time from that request to the next one (the last step ends at the request that finds the
    epoch over)."""

    def __init__(self, loader, waits: list, steps: list):
        self.loader, self.waits, self.steps = loader, waits, steps

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        it, asked_before = iter(self.loader), None
        while True:
            asked = time.perf_counter()
            if asked_before is not None:
                self.steps.append(asked - asked_before)
            try:
                batch = next(it)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - asked)
            asked_before = asked
            yield batch


def fit_timing_loads(args, train, prefetch: bool, seed: int) -> tuple[list, list]:
    """One epoch of fit with crop_flip; (waits, steps) in seconds, one per batch."""
    waits, steps = [], []

    def make_loader(*a, **kw):
        loader = preprocess.make_loader(*a, **kw)
        loader.prefetch = prefetch
        return TimedLoader(loader, waits, steps)

    model = eo.models.create(args.model, num_classes=10, in_channels=3, width_mult=args.width)
    saved = FIT_MODULE.make_loader
    FIT_MODULE.make_loader = make_loader
    try:
        eo.train.fit(model, train, None, epochs=1, batch_size=args.batch, lr=0.05, augment="crop_flip",
                     progress=False, seed=seed)
    finally:
        FIT_MODULE.make_loader = saved
    return waits, steps


def load_cost(args, train) -> None:
    print(f"{args.model} width {args.width} batch {args.batch}, {args.threads} threads, isa "
          f"{eo._core.runtime.active_isa()}, augment crop_flip, {args.images} uint8 3x32x32 images per epoch "
          f"(ms per step; share = waits / steps)", flush=True)
    shares = {True: [], False: []}
    for r in range(args.repeat):
        for prefetch in (True, False):
            waits, steps = fit_timing_loads(args, train, prefetch, seed=r)
            steady = sum(waits[1:]) / max(sum(steps[1:]), 1e-12)
            whole = sum(waits) / sum(steps)
            shares[prefetch].append(steady)
            print(f"repeat {r} prefetch {'on ' if prefetch else 'off'}: {len(steps)} steps, step median "
                  f"{1e3 * statistics.median(steps):.1f} ms; wait median {1e3 * statistics.median(waits[1:] or waits):.3f} "
                  f"mean {1e3 * statistics.fmean(waits[1:] or waits):.3f} first {1e3 * waits[0]:.3f}; loading "
                  f"{100 * steady:.3f} % of a step ({100 * whole:.3f} % with batch 0)", flush=True)
    for prefetch in (True, False):
        print(f"prefetch {'on ' if prefetch else 'off'}: loading {100 * statistics.median(shares[prefetch]):.3f} % "
              f"of a step (median of {args.repeat} epochs, batch 0 excluded)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: resnet20 (mobilenet_v2 with --load-cost)")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--images", type=int, default=2560)
    ap.add_argument("--batch", type=int, default=None, help="default: 128 (64 with --load-cost)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--load-cost", action="store_true",
                    help="time fit's waits for data against its steps, crop_flip, prefetch on and off")
    args = ap.parse_args()
    args.model = args.model or ("mobilenet_v2" if args.load_cost else "resnet20")
    args.batch = args.batch or (64 if args.load_cost else 128)
    eo.set_num_threads(args.threads)
    train, _ = eo.data.synthetic(10, (3, 32, 32), n_train=args.images, n_test=0, seed=0)
    (load_cost if args.load_cost else throughput)(args, train)


if __name__ == "__main__":
    main()
