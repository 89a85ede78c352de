"""Peak memory of training (forward + backward + SGD with momentum, 3x32x32 inputs, a few steps)
per zoo model: edgeopt against PyTorch CPU, same batch, same thread count. Linux only (/proc).

    PYTHONPATH=python python benchmarks/bench_train_memory.py [--models mobilenet_v2 ...]
        [--batch 128] [--steps 3] [--threads 2]

Every measurement runs in its own child process (this script re-run with --child), so that one
library's peak, or one tool's bookkeeping, never shows in another's figure. A child imports its
library, builds the model (PyTorch: the same twin as bench_train_step.py), the optimizer and one
random batch, collects garbage and reads its resident set: the baseline. It then resets the
kernel's peak-RSS mark (/proc/self/clear_refs; if that is refused, the lifetime peak is used and
the table says so), runs --steps training steps and reports how far above the baseline it went:

- edgeopt, RSS: peak VmHWM - baseline VmRSS. Everything: arrays, Python objects, C++ scratch.
- edgeopt, tracemalloc: peak traced bytes, tracing started at the baseline. numpy registers its
  array buffers with tracemalloc, so this is what steps allocate through Python and numpy
  (activations kept for backward, gradients, momentum buffers, temporaries); the C++ per-thread
  scratch (cpp/src/common/scratch.h) is not seen. Its own run, as tracing costs memory too.
- PyTorch, RSS: as for edgeopt.
- PyTorch, allocator (profiler): tracemalloc does not see torch's allocations and torch keeps no
  CPU allocator statistics; instead torch.profiler(profile_memory=True) records every allocation
  and free of its CPU allocator, and their running sum in time order peaks at this figure. Reads
  the profiler's raw event list (prof.profiler.kineto_results), an internal of torch: "-" if
  that fails. Its own run.

RSS also counts pages the allocator keeps after a free (glibc) and first-touch effects, so it is
the figure a user sees, not the live data. Both libraries start from the same batch in memory.
MB = 10^6 bytes.
"""
import argparse
import gc
import json
import os
import subprocess
import sys

import numpy as np

MODELS = ["resnet20", "vgg11", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]
MEASURES = [("edgeopt", "tracemalloc"), ("edgeopt", "rss"), ("torch", "rss"), ("torch", "profiler")]


# ----------------------------------------------------------------------------- resident set

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss():
    """Sets VmHWM back to the current VmRSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- one child

def edgeopt_step(name, x, y):
    import edgeopt as eo
    from train_steps import edgeopt_sgd_step
    return edgeopt_sgd_step(eo.models.create(name, num_classes=10, in_channels=3), x, y)


def torch_step(name, x, y):
    import edgeopt as eo
    from torch_twins import GraphTwin, resnet_cifar
    from train_steps import torch_sgd_step
    tm = resnet_cifar(20) if name == "resnet20" else GraphTwin(eo.models.create(name, num_classes=10), (1, 3, 32, 32))
    return torch_sgd_step(tm, x, y)


def torch_allocator_peak(step, steps):
    """Peak of the running sum of the CPU allocator's allocations and frees over `steps` steps."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(steps):
            step()
    try:
        mem = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                     if e.name() == "[memory]")
    except AttributeError:
        return None
    total = peak = 0
    for _, nbytes in mem:
        total += nbytes
        peak = max(peak, total)
    return peak


def child(a):
    """Builds, measures the baseline, runs the steps; prints one JSON line."""
    lib, how = a.child.split(":")
    if lib == "edgeopt":
        import edgeopt as eo
        eo.set_num_threads(a.threads)
    else:
        import torch
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, a.batch).astype(np.int64)
    step = (edgeopt_step if lib == "edgeopt" else torch_step)(a.models[0], x, y)
    gc.collect()
    baseline = status_kb("VmRSS") * 1024
    out = dict(baseline=baseline, peak_reset=reset_peak_rss())
    if how == "tracemalloc":
        import tracemalloc
        tracemalloc.start()
        for _ in range(a.steps):
            step()
        out["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elif how == "profiler":
        out["peak"] = torch_allocator_peak(step, a.steps)
    else:
        for _ in range(a.steps):
            step()
        out["peak"] = status_kb("VmHWM") * 1024 - baseline
    print(json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- parent

def measure(name, lib, how, a):
    """Runs one child; its result dict, or None (with its stderr shown) if it failed."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{lib}:{how}", "--models", name,
           "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{name} {lib} {how}: child failed (exit {r.returncode}):\n{r.stderr}", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def mb(v):
    return "-" if v is None else f"{v / 1e6:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2"], choices=MODELS)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: "<lib>:<how>"
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    print(f"peak memory above the baseline over {a.steps} training steps (forward, backward, SGD with "
          f"momentum), batch {a.batch}, 3x32x32, {a.threads} threads; one child process per figure", flush=True)
    rows, lifetime = [], False
    for name in a.models:
        res = {}
        for lib, how in MEASURES:
            res[lib, how] = r = measure(name, lib, how, a)
            if r is not None:
                lifetime |= how == "rss" and not r["peak_reset"]
                print(f"{name:20s} {lib:8s} {how:12s} peak {mb(r['peak'])} MB above a baseline RSS of "
                      f"{mb(r['baseline'])} MB", flush=True)
        rows.append((name, res))

    def peak(res, key):
        return None if res[key] is None else res[key]["peak"]

    def base(res, key):
        return None if res[key] is None else res[key]["baseline"]

    print("\n| model | batch | edgeopt tracemalloc peak MB | edgeopt RSS peak MB | PyTorch RSS peak MB | "
          "PyTorch allocator peak MB (profiler) | baseline RSS MB (edgeopt, PyTorch) |")
    print("|---|---|---|---|---|---|---|")
    for name, res in rows:
        print(f"| {name} | {a.batch} | {mb(peak(res, ('edgeopt', 'tracemalloc')))} | "
              f"{mb(peak(res, ('edgeopt', 'rss')))} | {mb(peak(res, ('torch', 'rss')))} | "
              f"{mb(peak(res, ('torch', 'profiler')))} | {mb(base(res, ('edgeopt', 'rss')))}, "
              f"{mb(base(res, ('torch', 'rss')))} |")
    print("\nPeaks are above the baseline (after imports, model, optimizer and batch were built); the "
          "baseline column is the RSS of the RSS runs." +
          (" The kernel refused to reset the peak RSS: RSS peaks are lifetime peaks (imports included)."
           if lifetime else ""))


if __name__ == "__main__":
    main()
