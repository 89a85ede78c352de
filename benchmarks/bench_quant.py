"""Quantization schemes on a trained checkpoint, measured the honest way: accuracy of the deployed
Engine on the full test set, how many test images it classifies differently from the fp32 Engine
("flips"), size of the saved file, batch-1 latency and the time to classify the
whole test set ("Lat" in the study), for

    fp32, fp16, int8-weight, int4-weight, int2-weight, int8-full with each observer (minmax,
    percentile, mse, kl, auto), int4-full (4-bit weights on the integer kernels), the quantized
    schemes again with GPTQ weight rounding (rounding="gptq"; observer="auto" uses it by default,
    and is also measured with rounding="nearest"), onnxruntime's own static int8 quantization (QDQ, MinMax, the same
    calibration images), edgeopt's QDQ export (the minmax int8-full Engine's scales) run by
    onnxruntime, with how many of its logits are within one step of that Engine's (one step = the
    Engine's output scale), and quantization-aware training fine-tuned from the checkpoint (int8;
    weight-only 4 and 2 bits; int4-full; binary: weights only, binary activations where a conv
    reads its own activation, and binary activations into every binarized conv with learned
    thresholds, scheme 'binary' with XNOR convs).

    edgeopt train --model resnet20 --dataset fashion-mnist --epochs 10 --save r20.npz
    PYTHONPATH=python:benchmarks python benchmarks/bench_quant.py r20.npz [--model resnet20]
        [--calib 256] [--qat-epochs 1] [--qat int8 int4 int2 int4-full binary binary-own binary-all]
        [--qat-only] [--threads 2]

Prints a markdown table (the one in benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import edgeopt as eo
from edgeopt.data.preprocess import input_norm, make_loader


BINARY = {"weight_bits": 1, "activations": False}
QAT_ROWS = {  # --qat key: (row label, deploy scheme, prepare_qat arguments)
    "int8": ("QAT int8", "int8-full", {}),
    "int4": ("QAT int4-weight", "int4-weight", {"weight_bits": 4, "activations": False}),
    "int4-full": ("QAT int4-full (W4A8)", "int4-full", {"weight_bits": 4}),
    "int2": ("QAT int2-weight", "int2-weight", {"weight_bits": 2, "activations": False}),
    "binary": ("QAT binary weights", "binary", BINARY),
    "binary-own": ("QAT binary, binary activations (own)", "binary", {**BINARY, "binary_activations": True}),
    "binary-all": ("QAT binary, binary activations (all)", "binary", {**BINARY, "binary_activations": "all"}),
}


def test_set_seconds(engine, data) -> float:
    """Wall time to classify every test image with the Engine (batches of 256, preprocessing included)."""
    t0 = time.perf_counter()
    eo.train.evaluate(engine, data)
    return time.perf_counter() - t0


ROWS = []   # (label, engine or None, predicted classes, size, note): printed once every latency is measured


def logits(run, data, model) -> np.ndarray:
    """run(batch) (logits of a batch preprocessed as `model` wants) for every image of `data`."""
    mean, std = input_norm(model, data)
    return np.concatenate([run(x) for x, _ in make_loader(data, 256, False, 0, mean, std)])


def row(name, engine, pred, size, note=""):
    ROWS.append((name, engine, pred, size, note))
    print(f"  measured {name}: {size} B", flush=True)


def print_table(test, rounds: int = 3, runs: int = 200):
    """Latencies last, round-robin over the Engines (each row's median is the lowest of its
    rounds): a row measured right after training shares the cores with threads still winding down.
    "flips": test images whose predicted class differs from the fp32 Engine's (the first row), the
    quantization error that the accuracy difference, a net count of fixed and broken images, hides."""
    ref = ROWS[0][2]
    fp32_acc = float((ref == test.y).mean())
    lat = {i: [] for i, r in enumerate(ROWS) if r[1] is not None}
    for _ in range(rounds):
        for i in lat:
            lat[i].append(eo.deploy.latency(ROWS[i][1], batch=1, runs=runs)["median_ms"])
    total = {i: test_set_seconds(ROWS[i][1], test) for i in lat}
    print("| scheme | acc % | drop (pt) | flips | size KB | batch-1 ms (median) | 10k test set s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for i, (name, _, pred, size, note) in enumerate(ROWS):
        acc = float((pred == test.y).mean())
        lat_s = f"{min(lat[i]):.3f}" if i in lat else "—"
        tot_s = f"{total[i]:.2f}" if i in total else "—"
        print(f"| {name} | {100 * acc:.2f} | {100 * (fp32_acc - acc):+.2f} | {int((pred != ref).sum())} | "
              f"{size / 1024:.1f} | {lat_s} | {tot_s} | {note} |")


def ort_logits(path, data, model, threads: int) -> np.ndarray:
    """onnxruntime's logits (default graph optimizations) for every image of `data`."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return logits(lambda x: sess.run(None, {"input": x})[0], data, model)


def logit_steps(path, engine, data, model, threads: int):
    """(onnxruntime logits - Engine logits) in steps of the Engine's output scale (the scale of the
    DequantizeLinear that writes "logits" in edgeopt's QDQ export), and onnxruntime's logits."""
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(path)
    init = {i.name: i for i in proto.graph.initializer}
    dq = next(n for n in proto.graph.node if n.output[0] == "logits")
    scale = float(numpy_helper.to_array(init[dq.input[1]]))
    y = ort_logits(path, data, model, threads)
    ye = logits(engine.run, data, model)
    return np.rint((y.astype(np.float64) - ye) / scale), y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--calib", type=int, default=256, help="calibration images (from the training set)")
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--qat-lr", type=float, default=0.005)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--qat-only", action="store_true", help="fp32 and the QAT rows only")
    ap.add_argument("--qat", nargs="*", default=list(QAT_ROWS), choices=list(QAT_ROWS),
                    help="which QAT rows to train (each is --qat-epochs epochs)")
    args = ap.parse_args(argv)
    eo.set_num_threads(args.threads)
    train, test = eo.data.fashion_mnist()
    shape = (1, 1, 28, 28)
    model = eo.models.create(args.model, num_classes=10, in_channels=1, width_mult=args.width)
    meta = eo.train.load_checkpoint(args.checkpoint, model)
    model.input_norm = meta["input_norm"]
    calib = train.subset(np.arange(args.calib))
    lat = eo.deploy.latency(eo.deploy.compile(model, "fp32", input_shape=shape), batch=1, runs=5)
    print(f"{args.model} from {args.checkpoint}; calibration: first {args.calib} training images; "
          f"test: {len(test)} images; {lat['threads']} threads, ISA path {lat['isa']}")
    tmp = tempfile.mkdtemp()

    def measure(name, engine, note=""):
        path = os.path.join(tmp, name.replace(" ", "_") + ".edgeopt")
        engine.save(path)
        row(name, engine, logits(engine.run, test, model).argmax(1), os.path.getsize(path), note)

    measure("fp32 (NQ)", eo.deploy.compile(model, "fp32", input_shape=shape))
    if not args.qat_only:   # the post-training rows and onnxruntime's
        for scheme, label in (("fp16", "fp16 (F16)"), ("int8-weight", "int8-weight (BLQ)"),
                              ("int4-weight", "int4-weight (PTQ)"), ("int2-weight", "int2-weight (PTQ)")):
            measure(label, eo.deploy.compile(model, scheme, input_shape=shape))
        int8_full = {}
        for obs in ("minmax", "percentile", "mse", "kl", "auto"):
            t0 = time.perf_counter()
            e = int8_full[obs] = eo.deploy.compile(model, "int8-full", input_shape=shape, calib=calib, observer=obs)
            took = time.perf_counter() - t0
            note = f"compile {took:.1f} s"
            if obs == "auto":
                rows = e.metadata["int8_full"]["observers"]
                picks = {}
                for r in rows:
                    picks[r["chosen"]] = picks.get(r["chosen"], 0) + 1
                note += "; chose " + ", ".join(f"{k} x{v}" for k, v in sorted(picks.items()))
            measure(f"int8-full (FIQ), observer={obs}" + (" (GPTQ rounding)" if obs == "auto" else ""), e, note)
        measure("int4-full (W4A8 PTQ), observer=minmax",
                eo.deploy.compile(model, "int4-full", input_shape=shape, calib=calib),
                "4-bit weights but the first, last and depthwise layers")
        # GPTQ rounding (quant.gptq): the same grids, codes that compensate each layer's rounding errors
        # (observer='auto' above already rounds so: here it is turned off, for comparison)
        for scheme, obs, rounding in (("int8-weight", None, "gptq"), ("int4-weight", None, "gptq"),
                                      ("int2-weight", None, "gptq"), ("int8-full", "minmax", "gptq"),
                                      ("int8-full", "auto", "nearest"), ("int4-full", "minmax", "gptq")):
            t0 = time.perf_counter()
            e = eo.deploy.compile(model, scheme, input_shape=shape, calib=calib, observer=obs, rounding=rounding)
            label = f"{scheme}, rounding={rounding}" + (f", observer={obs}" if obs else "")
            measure(label, e, f"compile {time.perf_counter() - t0:.1f} s")
        if not args.skip_ort:
            from ort_quantize import quantize as ort_quantize
            f32 = eo.deploy.export_onnx(model, os.path.join(tmp, "m.onnx"), input_shape=shape)
            mean, std = input_norm(model, calib)
            cx = np.concatenate([x for x, _ in make_loader(calib, 256, False, 0, mean, std)])
            q = ort_quantize(f32, os.path.join(tmp, "m_int8.onnx"), cx)
            row("onnxruntime static int8 (QDQ, MinMax)", None, ort_logits(q, test, model, args.threads).argmax(1),
                os.path.getsize(q), note="same calibration images")
            qdq = eo.deploy.export_onnx(model, os.path.join(tmp, "m_qdq.onnx"), "int8", shape, calib=calib)
            steps, y = logit_steps(qdq, int8_full["minmax"], test, model, args.threads)
            row("edgeopt QDQ export on onnxruntime", None, y.argmax(1), os.path.getsize(qdq),
                note=f"logits within 1 step of int8-full minmax: {100 * (np.abs(steps) <= 1).mean():.2f} % "
                     f"(max {int(np.abs(steps).max())} steps, {steps.size} logits)")
    # quantization-aware training from the checkpoint: the rows of QAT_ROWS that --qat names
    for key, (label, scheme, kwargs) in QAT_ROWS.items():
        if key not in args.qat:
            continue
        qat = eo.models.create(args.model, num_classes=10, in_channels=1, width_mult=args.width)
        eo.train.load_checkpoint(args.checkpoint, qat)
        qat.input_norm = meta["input_norm"]
        eo.quant.prepare_qat(qat, shape, **kwargs)
        epochs = args.qat_epochs
        steps = int(np.ceil(len(train) / 128)) * epochs
        t0 = time.perf_counter()
        eo.train.fit(qat, train, epochs=epochs, batch_size=128, lr=args.qat_lr, progress=False,
                     callbacks=[eo.quant.FreezeBatchNorm(int(0.8 * steps)), eo.quant.FreezeObservers(int(0.9 * steps))])
        took = time.perf_counter() - t0
        eo.quant.convert(qat)
        fake = eo.train.evaluate(qat, test)["acc"]
        e = eo.deploy.compile(qat, scheme, input_shape=shape)
        measure(label, e, f"{epochs} epoch(s) lr {args.qat_lr}, {took:.0f} s; the QAT model itself {100 * fake:.2f} %")
    print_table(test)


if __name__ == "__main__":
    main()
