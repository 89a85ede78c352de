"""onnxruntime's own static int8 quantization of an fp32 ONNX file: the peer that edgeopt's int8
runtime is compared with in bench_deploy_latency.py.

The recipe is the one onnxruntime documents for x86 CPUs: pre-process (symbolic shape inference
and graph optimization), then quantize_static with MinMax calibration over a few hundred inputs,
u8 activations and s8 per-channel weights (U8S8; reduce_range off, since the CPUs this runs on have
VNNI or AMX), in either format:

  QDQ        QuantizeLinear/DequantizeLinear pairs around float ops; the session fuses them into
             integer kernels when it loads the model
  QOperator  QLinearConv / QLinearMatMul / QLinearAdd ... written into the file directly

    PYTHONPATH=python python benchmarks/ort_quantize.py model.onnx model_int8.onnx [--format QDQ]

(without a calibration file the command line calibrates on synthetic CIFAR-shaped images)
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

FORMATS = ("QDQ", "QOperator")


class ArrayReader:
    """A CalibrationDataReader over an array of (already preprocessed) inputs, `batch` at a time."""

    def __init__(self, x: np.ndarray, input_name: str = "input", batch: int = 32):
        self.x, self.name, self.batch, self.i = np.ascontiguousarray(x, np.float32), input_name, batch, 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        xb = self.x[self.i:self.i + self.batch]
        self.i += self.batch
        return {self.name: xb}

    def rewind(self):
        self.i = 0


def quantize(fp32_path: str, out_path: str, calib_x: np.ndarray, quant_format: str = "QDQ",
             per_channel: bool = True, preprocess: bool = True) -> str:
    """Quantize `fp32_path` to `out_path` with onnxruntime.quantization.quantize_static, calibrated
    on `calib_x` (N, C, H, W) float32 inputs as the model takes them. Returns out_path."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                              QuantType, quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise ImportError("ort_quantize needs onnxruntime: pip install onnxruntime") from e
    if quant_format not in FORMATS:
        raise ValueError(f"quant_format: expected one of {FORMATS}, got {quant_format!r}")

    class Reader(ArrayReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as tmp:
        src = fp32_path
        if preprocess:
            src = os.path.join(tmp, "pre.onnx")
            quant_pre_process(fp32_path, src)
        quantize_static(src, out_path, Reader(calib_x), quant_format=getattr(QuantFormat, quant_format),
                        per_channel=per_channel, reduce_range=False, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return out_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32")
    ap.add_argument("out")
    ap.add_argument("--format", choices=FORMATS, default="QDQ")
    ap.add_argument("--calib", help=".npy of float32 inputs (N, C, H, W), preprocessed as the model takes them")
    ap.add_argument("--samples", type=int, default=300, help="synthetic calibration samples without --calib")
    args = ap.parse_args(argv)
    if args.calib:
        x = np.load(args.calib).astype(np.float32)
    else:
        x = np.random.default_rng(0).standard_normal((args.samples, 3, 32, 32)).astype(np.float32)
    print(quantize(args.fp32, args.out, x, args.format))


if __name__ == "__main__":
    main()
