"""One training step (forward + backward + SGD) per zoo model, 3x32x32 inputs: edgeopt against
PyTorch CPU, same thread count, same machine, one run, at each of --threads (default 1 and 2).
Prints images/s and the ratio edgeopt / PyTorch per model and thread count, and ends with a
markdown table of them with edgeopt's fraction of the fp32 FMA peak. Batch: 128 for resnet /
vgg, 64 for the MobileNets (--batch overrides). The PyTorch twin of resnet20 is written by hand
(torch_twins.resnet_cifar); every other model's twin is built from its traced graph
(torch_twins.GraphTwin: same ops, weights and shapes).

    PYTHONPATH=python:benchmarks python benchmarks/bench_train_step.py [--threads 1 2] [--steps 10]
        [--models resnet20 mobilenet_v2 ...] [--profile] [--ghz 3.9]

At 1 thread the clock is the process's CPU time (neither library runs worker threads then, and
CPU time leaves out the time spent waiting for a core taken by other work); otherwise wall time.
Each timed phase starts after a 0.3 s pause, so the other library's idle workers have stopped
spinning; --rounds R alternates the two libraries' phases R times (steps split among the rounds,
warmup in each), which evens out slow spells of a shared or virtual machine. Min and median over
the measured steps are printed (noise only adds time); with several
threads the ratio is sensitive to load (PyTorch's OpenMP threads spin and degrade badly when a
core is taken), so compare at 1 thread first.

fp32 FMA peak = FMA lanes of the active ISA path (avx512 16, avx2 8, scalar 1; at most 8 on AMD
Zen 2-4, whose FMA units are 256 bits wide) x 2 FMA ports x clock x threads; the work of a step is counted as 3 x the forward MACs of edgeopt.models.summary
(forward, input gradient, weight gradient: each as many MACs as the forward; BN, activations and
pooling count 0). The clock is --ghz, else cpufreq's cpuinfo_max_freq, else /proc/cpuinfo's
"cpu MHz" (on VMs often the nominal clock, below the real one: bench_qs8_gemm.py measures it with
a dependent-imul loop; pass that with --ghz); the source is printed.

--profile adds, per model and thread count, a breakdown of one edgeopt step by leaf module and
direction (leaf modules timed around forward/backward), the same aggregated by layer type (Conv
1x1, depthwise, kxk, BatchNorm2d, activations, SqueezeExcitation blocks as a whole, Linear, pool),
and PyTorch's per-operator profile of the same step with its operators grouped by family
(convolution, batch_norm, activation, other; forward and backward, backward = run by the autograd
engine; and the optimizer).
"""
import argparse
import os
import platform
import time
from collections import defaultdict, namedtuple

import numpy as np
import torch

import edgeopt as eo
from torch_twins import GraphTwin, resnet_cifar
from train_steps import edgeopt_sgd_step, torch_sgd_step

MODELS = ["resnet20", "vgg11", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]


def default_batch(name):
    return 64 if name.startswith("mobilenet") else 128


# ----------------------------------------------------------------------------- timing

def clock_for(threads):
    """Process CPU time at 1 thread, wall time otherwise (module docstring)."""
    return time.process_time if threads == 1 else time.perf_counter


def time_steps(step, warmup, steps, clock):
    """The seconds of `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = clock()
        step()
        times.append(clock() - t)
    return times


def min_median(times):
    return float(np.min(times)), float(np.median(times))


# ----------------------------------------------------------------------------- fp32 FMA peak

FMA_LANES = {"avx512": 16, "avx2": 8, "scalar": 1}  # fp32 lanes of one FMA instruction per ISA path
FMA_PORTS = 2


def clock_ghz(given):
    """(GHz, where it came from): --ghz, else cpufreq's maximum, else /proc/cpuinfo's cpu MHz."""
    if given is not None:
        return given, "--ghz"
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6, "cpu0/cpufreq/cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    with open("/proc/cpuinfo") as f:
        mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
    return max(mhz) / 1e3, "/proc/cpuinfo cpu MHz (may be the nominal clock)"


def fma_lanes_per_port():
    """fp32 lanes one FMA port retires per cycle on the active path: the ISA's vector width, but at
    most 8 on AMD Zen 2-4 (family 23, 25), whose FMA units are 256 bits wide (an AVX-512 FMA
    takes two of them)."""
    lanes = FMA_LANES[eo._core.runtime.active_isa()]
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f if ":" in line)
        amd = info.get("vendor_id\t", "").strip() == "AuthenticAMD"
        family = int(info.get("cpu family\t", "0").strip())
    except (OSError, ValueError):
        return lanes
    return min(lanes, 8) if amd and family in (23, 25) else lanes


def fma_peak_per_s(ghz, threads):
    """fp32 FMAs per second of `threads` cores on the active ISA path."""
    return fma_lanes_per_port() * FMA_PORTS * ghz * 1e9 * threads


def train_macs(model, batch):
    """MACs of one training step: 3 x the forward's (forward, input gradient, weight gradient)."""
    return 3 * eo.models.summary(model, (1, 3, 32, 32)).macs * batch


# ----------------------------------------------------------------------------- edgeopt profile

ACTIVATIONS = {"ReLU", "ReLU6", "HardSwish", "HardSigmoid", "Sigmoid"}
POOLS = {"MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "AdaptiveAvgPool2d"}
LAYER_TYPES = ["Conv 1x1", "Conv depthwise", "Conv kxk (other)", "BatchNorm2d", "activations",
               "SqueezeExcitation", "Linear", "pool", "other layers"]
OUTSIDE = "outside layers (residual adds, loss, SGD, glue)"


def leaf_kind(m):
    """The per-leaf breakdown's row: the class, and for a conv its kernel, stride and channels."""
    kind = type(m).__name__
    if kind == "Conv2d":
        kind += f" {m.kernel_size[0]}x{m.kernel_size[1]}/{m.stride[0]} {m.in_channels}->{m.out_channels}"
    return kind


def layer_type(m):
    """The aggregated breakdown's row (LAYER_TYPES)."""
    kind = type(m).__name__
    if kind == "Conv2d":
        if m.groups > 1 and m.groups == m.in_channels:
            return "Conv depthwise"
        return "Conv 1x1" if tuple(m.kernel_size) == (1, 1) else "Conv kxk (other)"
    if kind in ("BatchNorm2d", "SqueezeExcitation", "Linear"):
        return kind
    if kind in ACTIVATIONS:
        return "activations"
    return "pool" if kind in POOLS else "other layers"


def instrument(model, by_leaf, by_type, clock):
    """Times forward/backward of every leaf module into by_leaf[(leaf_kind, direction)], and into
    by_type[(layer_type, direction)] of the outermost timed unit: a SqueezeExcitation block counts
    as a whole (its pooling, 1x1 convs, activations and channel scaling), its leaves only in
    by_leaf. Returns a function that removes the timers."""
    def wrap(m, name, targets):
        fn = getattr(m, name)

        def timed(*args, **kwargs):
            t = clock()
            out = fn(*args, **kwargs)
            dt = clock() - t
            for totals, key in targets:
                totals[key] += dt
            return out
        m.__dict__[name] = timed
        wrapped.append((m, name))

    wrapped = []
    in_se = {id(sub) for m in model.modules() if type(m).__name__ == "SqueezeExcitation"
             for sub in m.modules() if sub is not m}
    for m in model.modules():
        leaf = not any(True for _ in m.children())
        whole = type(m).__name__ == "SqueezeExcitation" or (leaf and id(m) not in in_se)
        for name, d in (("forward", "fwd"), ("backward", "bwd")):
            targets = ([(by_leaf, (leaf_kind(m), d))] if leaf else []) + \
                      ([(by_type, (layer_type(m), d))] if whole else [])
            # A BatchNorm run fused by its container is entered through _forward / _backward
            # (forward / backward call them too): time those.
            if targets:
                wrap(m, "_" + name if hasattr(m, "_" + name) else name, targets)

    def remove():
        for m, name in wrapped:
            del m.__dict__[name]
    return remove


def profile_edgeopt(model, step, reps, clock):
    """Prints the best of `reps` instrumented steps by leaf module and by layer type."""
    by_leaf, by_type = defaultdict(float), defaultdict(float)
    remove = instrument(model, by_leaf, by_type, clock)
    best, best_t = None, float("inf")
    try:
        for _ in range(reps):
            by_leaf.clear()
            by_type.clear()
            t = clock()
            step()
            total = clock() - t
            if total < best_t:
                best, best_t = (dict(by_leaf), dict(by_type)), total
    finally:
        remove()
    leaves, types = best
    print(f"\nedgeopt step breakdown by leaf module (best of {reps}, {1e3 * best_t:.1f} ms):")
    for (kind, d), v in sorted(leaves.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:28s} {d}  {1e3 * v:8.2f} ms  {100 * v / best_t:5.1f} %")
    rest = best_t - sum(leaves.values())
    print(f"  {'other (add, SE scaling, loss, SGD, glue)':28s}      {1e3 * rest:8.2f} ms  {100 * rest / best_t:5.1f} %")

    print(f"\nedgeopt step by layer type (same step, {1e3 * best_t:.1f} ms):")
    print(f"  {'layer type':48s} {'fwd ms':>8s} {'bwd ms':>8s} {'% of step':>9s}")
    for kind in LAYER_TYPES:
        f, b = types.get((kind, "fwd"), 0.0), types.get((kind, "bwd"), 0.0)
        if f or b:
            print(f"  {kind:48s} {1e3 * f:8.2f} {1e3 * b:8.2f} {100 * (f + b) / best_t:8.1f} %")
    rest = best_t - sum(types.values())
    print(f"  {OUTSIDE:48s} {1e3 * rest:17.2f} {100 * rest / best_t:8.1f} %")


# ----------------------------------------------------------------------------- PyTorch profile

TORCH_FAMILIES = ["convolution", "batch_norm", "activation", "other", "optimizer (SGD step, zero_grad)"]
TORCH_ACTIVATIONS = ("relu", "hardtanh", "clamp", "threshold", "hardswish", "hardsigmoid", "sigmoid")


def torch_family(event):
    """(family, direction) of a profiler event: the family from the operator's name (ReLU's
    backward is aten::threshold_backward, ReLU6's forward hardtanh / clamp), the direction from
    where it ran: inside an autograd engine node = backward, inside Optimizer.* = the optimizer."""
    d = "fwd"
    parent = event
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function"):
            d = "bwd"
        elif parent.name.startswith("Optimizer."):
            return "optimizer (SGD step, zero_grad)", "fwd"
        parent = parent.cpu_parent
    name = event.name.lower()
    if "conv" in name:
        return "convolution", d
    if "batch_norm" in name:
        return "batch_norm", d
    if any(a in name for a in TORCH_ACTIVATIONS):
        return "activation", d
    return "other", d


def profile_torch(step, reps, clock):
    """Prints PyTorch's top operators and its operator families over `reps` profiled steps."""
    from torch.profiler import ProfilerActivity, profile
    total = 0.0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            t = clock()
            step()
            total += clock() - t
    print(f"\nPyTorch, {reps} steps, top operators by self time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    fam = defaultdict(float)
    for e in prof.events():
        fam[torch_family(e)] += e.self_cpu_time_total * 1e-6 / reps  # µs over reps -> s per step
    step_s = total / reps
    print(f"PyTorch step by operator family (self time, mean of {reps} profiled steps, {1e3 * step_s:.1f} ms; "
          f"the optimizer's time is under fwd):")
    print(f"  {'family':48s} {'fwd ms':>8s} {'bwd ms':>8s} {'% of step':>9s}")
    for kind in TORCH_FAMILIES:
        f, b = fam.get((kind, "fwd"), 0.0), fam.get((kind, "bwd"), 0.0)
        print(f"  {kind:48s} {1e3 * f:8.2f} {1e3 * b:8.2f} {100 * (f + b) / step_s:8.1f} %")
    rest = step_s - sum(fam.values())
    print(f"  {'outside operators (Python, profiler)':48s} {1e3 * rest:17.2f} {100 * rest / step_s:8.1f} %")


# ----------------------------------------------------------------------------- one model

Case = namedtuple("Case", "name batch model eo_step torch_step macs")


def build(name, batch, rng):
    """A Case: the edgeopt model, its step and PyTorch's on the same random batch and weights, and
    the MACs of a step."""
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    model = eo.models.create(name, num_classes=10, in_channels=3)
    eo_step = edgeopt_sgd_step(model, x, y)
    tm = resnet_cifar(20) if name == "resnet20" else GraphTwin(model, (1, 3, 32, 32))
    torch_step = torch_sgd_step(tm, x, y)
    return Case(name, batch, model, eo_step, torch_step, train_macs(model, batch))


def bench(case, threads, a):
    """Times both libraries at `threads`; returns the row of the final table."""
    eo.set_num_threads(threads)
    torch.set_num_threads(threads)
    clock = clock_for(threads)
    name, batch = case.name, case.batch
    row = dict(model=name, batch=batch, threads=threads, eo=None, pt=None, peak=None)
    # Each library in its own phase (idle TBB workers and OpenMP workers would spin against each
    # other); --rounds alternates the phases, so a slow spell of the machine hits both alike.
    libs = [("edgeopt", "eo", case.eo_step), ("PyTorch", "pt", case.torch_step)]
    libs = [lib for lib in libs if a.only != {"eo": "torch", "pt": "edgeopt"}[lib[1]]]
    times = {key: [] for _, key, _ in libs}
    for r in range(a.rounds):   # --steps spread over the rounds exactly
        for _, key, step in libs:
            time.sleep(0.3)
            times[key] += time_steps(step, a.warmup, a.steps // a.rounds + (r < a.steps % a.rounds), clock)
    for label, key, _ in libs:
        row[key] = t = min_median(times[key])
        peak = ""
        if key == "eo":
            row["peak"] = case.macs / t[0] / fma_peak_per_s(a.ghz, threads)
            peak = f"  {100 * row['peak']:.1f} % of fp32 FMA peak"
        print(f"{name:20s} {threads} thr  {label:7s}  {batch / t[0]:8.1f} img/s  step min {1e3 * t[0]:.1f} ms  "
              f"median {1e3 * t[1]:.1f} ms{peak}", flush=True)
    if row["eo"] and row["pt"]:
        print(f"{name} train step, batch {batch}, {threads} threads: ratio edgeopt/PyTorch (speed) "
              f"min {row['pt'][0] / row['eo'][0]:.2f}  median {row['pt'][1] / row['eo'][1]:.2f}", flush=True)
    if a.profile:
        reps = max(3, a.steps // 2)
        if a.only != "torch":
            profile_edgeopt(case.model, case.eo_step, reps, clock)
        if a.only != "edgeopt":
            profile_torch(case.torch_step, reps, clock)
    return row


# ----------------------------------------------------------------------------- summary table

def print_table(rows, a):
    def rate(r, lib):
        return f"{r['batch'] / r[lib][0]:.1f}" if r[lib] else "-"

    print(f"\n| model | batch | threads | edgeopt img/s | PyTorch img/s | edgeopt / PyTorch (min, median) | "
          f"edgeopt % of fp32 FMA peak |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['pt'][0] / r['eo'][0]:.2f}, {r['pt'][1] / r['eo'][1]:.2f}" if r["eo"] and r["pt"] else "-"
        peak = f"{100 * r['peak']:.1f} %" if r["peak"] is not None else "-"
        print(f"| {r['model']} | {r['batch']} | {r['threads']} | {rate(r, 'eo')} | {rate(r, 'pt')} | {ratio} | {peak} |")
    isa = eo._core.runtime.active_isa()
    print(f"\nimg/s: batch / fastest step; ratio: PyTorch step time / edgeopt step time (> 1: edgeopt "
          f"faster); % of peak: 3 x forward MACs per step (forward, input gradient, weight gradient) / "
          f"fastest step / ({fma_lanes_per_port()} fp32 lanes per port ({isa}) x {FMA_PORTS} FMA ports x {a.ghz:.2f} GHz "
          f"x threads); {a.steps} timed steps per library in {a.rounds} round(s), "
          f"{a.warmup} warmup steps per round.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=None, help="default: 128 (resnet, vgg), 64 (MobileNets)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each round")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two libraries' phases this many times (--steps split among them)")
    ap.add_argument("--models", nargs="+", default=["resnet20"], choices=MODELS)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", choices=["edgeopt", "torch"], default=None)
    ap.add_argument("--ghz", type=float, default=None, help="clock for the FMA peak (default: read from the OS)")
    a = ap.parse_args()
    if a.rounds < 1 or a.steps < a.rounds:
        ap.error("--rounds must be at least 1 and --steps at least --rounds")
    a.ghz, how = clock_ghz(a.ghz)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs  ISA path: "
          f"{eo._core.runtime.active_isa()}  threads: {' '.join(map(str, a.threads))}  torch {torch.__version__}  "
          f"clock: process CPU time at 1 thread, else wall  FMA peak clock: {a.ghz:.2f} GHz ({how})")
    rng = np.random.default_rng(0)
    rows = []
    for name in a.models:
        case = build(name, a.batch or default_batch(name), rng)
        for threads in a.threads:
            rows.append(bench(case, threads, a))
    print_table(rows, a)


if __name__ == "__main__":
    main()
