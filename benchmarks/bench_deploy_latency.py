"""Batch-1 inference latency of deployed models: edgeopt's Engine against onnxruntime, same CPU,
same thread count, same process, one run.

Models: resnet20 and mobilenet_v2 at CIFAR shape (1, 3, 32, 32), 10 classes, weights as created
with BatchNorm statistics from one pass over the inputs (latency does not depend on the values;
int8 calibration uses 300 synthetic CIFAR-shaped images). The "rel err" column is a sanity check,
max |y - model.forward| / max |model.forward| over 32 inputs, not an accuracy.
Runtimes:
  ORT fp32           edgeopt.deploy.export_onnx(scheme="fp32") run by onnxruntime
  ORT int8 QDQ       onnxruntime's own quantize_static, QDQ format       (benchmarks/ort_quantize.py)
  ORT int8 QOperator onnxruntime's own quantize_static, QOperator format
  ORT int8           the faster of the two above: the peer for edgeopt int8
  ORT int8 (eo QDQ)  edgeopt.deploy.export_onnx(scheme="int8") run by onnxruntime (for reference)
  edgeopt fp32 / fp16 / int8-weight / int4-weight / int8-full / int4-full   edgeopt.deploy.compile(...) timed with edgeopt.deploy.latency(engine,
                             batch=1); "n/a" when this build has no compile/latency yet
  edgeopt binary (all)     scheme "binary" after prepare_qat(weight_bits=1, binary_activations="all"):
                             every conv but the first and last an XNOR conv, its sign thresholds set
                             by one training-mode pass over 64 calibration images (no training:
                             latency does not depend on the values); "rel err" against that
                             binarized model (a pre-sign value within float rounding of its
                             threshold can land on the other side in the Engine, and the binary
                             layers carry that on: a large value there means such near-ties, which
                             random weights make common, not a wrong kernel)
Layers (--layers): one conv as a one-op Engine, the same way, fp32 `conv2d` against the binary
`b1_conv2d` (binarize, XNOR-popcount, scale, bias, ReLU), at resnet20's middle-stage 3x3 shape
(32 -> 32 channels at 16x16, stride 1, padding 1). The weights are alpha * sign and the inputs
+-1, so both compute the same function and "rel err" compares them. Two times per layer: the
whole call (Engine.run, with its ~3 us of fixed cost: the Python call and the input and output
copies), and the op alone from the Engine's per-op profile (Engine.profile: the mean over each
round's calls, median over rounds), which is the layer's own time and the figure for "layer X
times faster".
onnxruntime sessions: CPUExecutionProvider, intra_op_num_threads = --threads, inter_op 1,
ORT_ENABLE_ALL, sequential execution; edgeopt: eo.set_num_threads(--threads).

Timing: every runtime is timed in --rounds rounds taken in turn (round-robin, in reverse order every
second round), so a burst of load from other processes hits all of them alike; each round is a warm-up then --runs/--rounds timed
calls (perf_counter around session.run with a preallocated input: Python call overhead is
included, as it is for Engine.run). Median and p90 are over all timed calls. On a shared machine
the numbers are noisy: read the medians and the ratios, rerun for confirmation. Many short
rounds (the default: 30 of 20 calls) sample a host whose speed changes every few seconds more
evenly than few long ones: on the Xeon KVM guests, 6 rounds of 100 gave resnet20's int4-full
1.27x and 1.14x int8-full in two runs where the two Engines, timed op by op alternately in one
process, were level (1.003); 30 rounds gave 1.01 and 1.02 (benchmarks/README.md, fourteenth
session).

    PYTHONPATH=python python benchmarks/bench_deploy_latency.py [--threads 2] [--runs 600] [--quick]
"""
from __future__ import annotations

import argparse
import copy
import datetime
import inspect
import os
import platform
import sys
import tempfile
import time

import numpy as np

import edgeopt as eo
from edgeopt.deploy import export_onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ort_quantize  # noqa: E402

SHAPE = (1, 3, 32, 32)
MODELS = ("resnet20", "mobilenet_v2")
LAYERS = {"3x3 32->32 @16": (32, 32, 16)}  # name: (Cin, Cout, H = W)


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class OrtTimer:
    def __init__(self, path, threads, x):
        self.sess, self.x = ort_session(path, threads), {"input": x}
        self.out = ["logits"]

    def run(self, x=None):
        return self.sess.run(self.out, self.x if x is None else {"input": x})[0]

    def time(self, runs, warmup):
        for _ in range(warmup):
            self.sess.run(self.out, self.x)
        t = np.empty(runs)
        for i in range(runs):
            t0 = time.perf_counter()
            self.sess.run(self.out, self.x)
            t[i] = time.perf_counter() - t0
        return list(t * 1e3)


class EngineTimer:
    """edgeopt.deploy.latency on a compiled Engine; latency's own sample list when it returns one,
    else its median / p90 per round (pooled as a median of medians)."""

    def __init__(self, engine):
        self.engine = engine
        params = inspect.signature(eo.deploy.latency).parameters
        self.kw = {k: None for k in ("runs", "warmup") if k in params}

    def run(self, x):
        return self.engine.run(x)

    def time(self, runs, warmup):
        kw = {}
        if "runs" in self.kw:
            kw["runs"] = runs
        if "warmup" in self.kw:
            kw["warmup"] = warmup
        r = eo.deploy.latency(self.engine, batch=1, **kw)
        if "samples_ms" in r:
            return list(r["samples_ms"])
        return [("median", r["median_ms"], r["p90_ms"])]


def summarize(samples):
    if samples and isinstance(samples[0], tuple):  # per-round (median, p90) only
        return float(np.median([s[1] for s in samples])), float(np.median([s[2] for s in samples]))
    return float(np.median(samples)), float(np.percentile(samples, 90))


def recalibrate_batchnorm(model, x):
    """BatchNorm running statistics from one forward pass over `x` (momentum 1): a freshly created
    network's defaults (mean 0, var 1) let activations shrink layer by layer (mobilenet_v2 ends
    near 1e-8), which no trained model does; normalized activations make the error column
    meaningful. Weights stay as created; latency does not depend on their values."""
    for m in model.modules():
        if isinstance(m, eo.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with eo.nn.no_grad():
        model.forward(x)
    model.eval()


EO_SCHEMES = ("fp32", "fp16", "int8-weight", "int4-weight", "int8-full", "int4-full")


def build(name, threads, calib_raw, calib_x, tmp, log):
    """({label: timer}, {label: "n/a (why)"}, {label: relative error vs the model}) for one model."""
    model = eo.models.create(name, num_classes=10, in_channels=3)
    recalibrate_batchnorm(model, calib_x[:64])
    x = calib_x[:1].copy()
    timers, notes = {}, {}
    fp32 = export_onnx(model, os.path.join(tmp, f"{name}_fp32.onnx"), input_shape=SHAPE)
    timers["ORT fp32"] = OrtTimer(fp32, threads, x)
    for fmt in ort_quantize.FORMATS:
        t0 = time.perf_counter()
        path = ort_quantize.quantize(fp32, os.path.join(tmp, f"{name}_{fmt}.onnx"), calib_x, fmt)
        log(f"  {name}: onnxruntime quantize_static {fmt} in {time.perf_counter() - t0:.1f} s")
        timers[f"ORT int8 {fmt}"] = OrtTimer(path, threads, x)
    eo_q = export_onnx(model, os.path.join(tmp, f"{name}_eo_int8.onnx"), scheme="int8", input_shape=SHAPE,
                       calib=calib_raw)
    timers["ORT int8 (eo QDQ)"] = OrtTimer(eo_q, threads, x)
    compile_ = getattr(eo.deploy, "compile", None)
    if compile_ is None or getattr(eo.deploy, "latency", None) is None:
        for s in EO_SCHEMES:
            notes[f"edgeopt {s}"] = "n/a (no edgeopt.deploy.compile/latency in this build)"
    else:
        for s in EO_SCHEMES:
            try:
                eng = compile_(model, s, input_shape=SHAPE,
                               calib=calib_raw if s in eo.deploy.CALIBRATED_SCHEMES else None)
                timers[f"edgeopt {s}"] = EngineTimer(eng)
            except Exception as e:  # report, keep benchmarking the rest
                notes[f"edgeopt {s}"] = f"n/a ({type(e).__name__}: {str(e)[:120]})"
    refs = {}
    if compile_ is not None and hasattr(eo.quant, "binary_conv_layers"):
        binary = copy.deepcopy(model)
        eo.quant.prepare_qat(binary, SHAPE, weight_bits=1, activations=False, binary_activations="all")
        with eo.nn.no_grad():
            binary.train()
            binary(calib_x[:64])   # sets the sign thresholds (and moves BatchNorm statistics a little)
        binary.eval()
        eo.quant.convert(binary)
        timers["edgeopt binary (all)"] = EngineTimer(compile_(binary, "binary", input_shape=SHAPE))
        refs["edgeopt binary (all)"] = binary
    # sanity: every runtime computes the model (max |y - forward| / max |forward| over 32 inputs;
    # fp32 ~1e-6, int8 a few %); randomly initialised models make top-1 agreement meaningless
    n = min(32, len(calib_x))
    err, outputs = {}, {}
    for label, t in timers.items():
        try:
            m = refs.get(label, model)
            if id(m) not in outputs:
                outputs[id(m)] = m.forward(calib_x[:n])
            ref = outputs[id(m)]
            y = np.concatenate([np.asarray(t.run(calib_x[i:i + 1])).reshape(1, -1) for i in range(n)])
            err[label] = float(np.abs(y - ref).max() / np.abs(ref).max())
        except Exception as e:
            notes[label] = f"n/a (run failed: {type(e).__name__}: {str(e)[:80]})"
    for label in notes:
        timers.pop(label, None)
    return timers, notes, err


def build_layer(name):
    """fp32 and binary one-conv Engines computing the same function, and their relative error."""
    from edgeopt.deploy.format import ACTIVATION, BlobType, ModelBuilder, OpType, TensorInfo
    from edgeopt.deploy.lower.dense import binary_form
    cin, cout, hw = LAYERS[name]
    rng = np.random.default_rng(0)
    w = np.sign(rng.standard_normal((cout, cin, 3, 3))).astype(np.float32)
    w *= rng.uniform(0.5, 1.5, (cout, 1, 1, 1)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    engines = {}
    for label in ("fp32", "binary"):
        b = ModelBuilder(TensorInfo(cin, hw, hw))
        attrs = {"stride": (1, 1), "padding": (1, 1), "activation": ACTIVATION["relu"], "bias": b.add_blob(bias)}
        if label == "fp32":
            attrs.update(weight=b.add_blob(w), groups=1)
            y = b.add_op(OpType.CONV2D, "conv", [b.input], TensorInfo(cout, hw, hw), attrs)
        else:
            alpha, bits = binary_form(w)
            attrs.update(weight=b.add_blob(type=BlobType.BITPACKED_B1, dims=w.shape,
                                           data=alpha.astype("<f4").tobytes() + bits), pad_value=0)
            y = b.add_op(OpType.B1_CONV2D, "conv", [b.input], TensorInfo(cout, hw, hw), attrs)
        engines[f"edgeopt {label} layer"] = eo.deploy.Engine(b.to_bytes(y, {}))
    x = np.sign(rng.standard_normal((32, cin, hw, hw))).astype(np.float32)
    ref = engines["edgeopt fp32 layer"].run(x)
    err = {k: float(np.abs(e.run(x) - ref).max() / np.abs(ref).max()) for k, e in engines.items()}
    return {k: EngineTimer(e) for k, e in engines.items()}, {}, err


def round_order(timers, r):
    """The runtimes in turn, the other way round every second round: two identical Engines timed
    one after the other differed by 1.5-2.6 % (the second slower), so a fixed order would favour
    whichever comes first."""
    items = list(timers.items())
    return items if r % 2 == 0 else items[::-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=600, help="timed calls per runtime (>= 200)")
    ap.add_argument("--rounds", type=int, default=30, help="round-robin rounds the runs are split into")
    ap.add_argument("--warmup", type=int, default=5, help="untimed calls before each round")
    ap.add_argument("--calib", type=int, default=300, help="calibration samples")
    ap.add_argument("--models", nargs="*", default=list(MODELS), help="none: --models with no names")
    ap.add_argument("--layers", nargs="*", default=list(LAYERS), choices=list(LAYERS),
                    help="one-conv Engines, fp32 against binary (none: --layers with no names)")
    ap.add_argument("--quick", action="store_true", help="few runs, for a smoke test (not a measurement)")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.rounds, args.warmup, args.calib = 20, 2, 3, 64
    import onnxruntime as ort

    eo.set_num_threads(args.threads)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    print(f"# bench_deploy_latency  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# cpu: {eo.sweep.cell.cpu_model()} ({os.cpu_count()} logical cpus)  edgeopt ISA path: {eo._core.runtime.active_isa()}")
    print(f"# threads: {args.threads} (edgeopt set_num_threads; ORT intra_op {args.threads}, inter_op 1, "
          f"ORT_ENABLE_ALL)")
    print(f"# edgeopt {eo.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}")
    print(f"# load average (1, 5, 15 min) at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# batch 1, input {SHAPE}, {args.runs} timed runs per runtime in {args.rounds} round-robin rounds "
          f"(+{args.warmup} warm-up each), calibration {args.calib} synthetic samples")
    train, _ = eo.data.synthetic(num_classes=10, shape=SHAPE[1:], n_train=args.calib, n_test=0, seed=0)
    calib_x = (train.x.astype(np.float32) / 255.0)  # models without input_norm take [0, 1] pixels
    rows, layer_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            timers, notes, err = build(name, args.threads, train, calib_x, tmp, log)
            samples = {k: [] for k in timers}
            per_round = max(1, args.runs // args.rounds)
            for r in range(args.rounds):
                for label, t in round_order(timers, r):
                    samples[label] += t.time(per_round, args.warmup)
                log(f"  {name}: round {r + 1}/{args.rounds} done")
            res = {k: summarize(v) for k, v in samples.items()}
            rows.append((name, res, notes, err))
        for name in args.layers:
            timers, notes, err = build_layer(name)
            samples = {k: [] for k in timers}
            op_ms = {k: [] for k in timers}
            x = np.sign(np.random.default_rng(1).standard_normal((1,) + timers["edgeopt fp32 layer"].engine.input_shape))
            for r in range(args.rounds):
                for label, t in round_order(timers, r):
                    samples[label] += t.time(max(1, args.runs // args.rounds), args.warmup)
                    prof = t.engine.profile(x.astype(np.float32), runs=max(1, args.runs // args.rounds),
                                            warmup=args.warmup)
                    op_ms[label].append(prof[0]["ms"])
            res = {k: summarize(v) for k, v in samples.items()}
            res.update({f"{k} (op)": (float(np.median(v)), float(np.max(v))) for k, v in op_ms.items()})
            layer_rows.append((name, res, notes, err))

    print(f"# load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    print(f"{'model':<13} {'runtime':<19} {'median ms':>10} {'p90 ms':>9} {'rel err':>9}")
    for name, res, notes, err in rows + layer_rows:
        for label, (med, p90) in res.items():
            print(f"{name:<13} {label:<19} {med:>10.4f} {p90:>9.4f} {err.get(label, float('nan')):>9.1e}")
        for label, note in notes.items():
            print(f"{name:<13} {label:<19} {note}")
    print()
    if rows:
        print("ratios (edgeopt median / onnxruntime median; < 1 means edgeopt is faster)")
        print(f"{'model':<13} {'ORT int8 best':<20} {'eo fp32/ORT fp32':>17} {'eo int8/ORT int8':>17} "
              f"{'ORT int8/ORT fp32':>18} {'eo int8/eo fp32':>16} {'eo fp16/eo fp32':>16} {'eo int4f/int8f':>15} "
              f"{'eo bin/int8f':>13}")
    for name, res, notes, err in rows:
        q = {f: res[f"ORT int8 {f}"][0] for f in ort_quantize.FORMATS if f"ORT int8 {f}" in res}
        best = min(q, key=q.get) if q else None
        ort8 = q.get(best)
        ort32 = res.get("ORT fp32", (None,))[0]
        e32 = res.get("edgeopt fp32", (None,))[0]
        e8 = res.get("edgeopt int8-full", (None,))[0]
        e16 = res.get("edgeopt fp16", (None,))[0]
        e4 = res.get("edgeopt int4-full", (None,))[0]
        eb = res.get("edgeopt binary (all)", (None,))[0]

        def ratio(a, b):
            return f"{a / b:.2f}" if a is not None and b else "n/a"
        print(f"{name:<13} {str(best):<20} {ratio(e32, ort32):>17} {ratio(e8, ort8):>17} "
              f"{ratio(ort8, ort32):>18} {ratio(e8, e32):>16} {ratio(e16, e32):>16} {ratio(e4, e8):>15} "
              f"{ratio(eb, e8):>13}")

    if layer_rows:
        print()
        print("layers: edgeopt fp32 / edgeopt binary (> 1 means binary is faster); '(op)' rows: median "
              "and max over rounds of the per-op profile's mean")
        print(f"{'layer':<20} {'op alone':>9} {'whole call':>11}")
        for name, res, notes, err in layer_rows:
            op = res["edgeopt fp32 layer (op)"][0] / res["edgeopt binary layer (op)"][0]
            call = res["edgeopt fp32 layer"][0] / res["edgeopt binary layer"][0]
            print(f"{name:<20} {op:>8.2f}x {call:>10.2f}x")


if __name__ == "__main__":
    main()
