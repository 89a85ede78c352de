"""Quantization, the one home of its arithmetic: scales and zero points (``qparams``), the float32
requantization factors of the integer kernels (``requant_scale``, ``average_scale``, ``add_scales``), quantize / dequantize per tensor or
per channel, weight and bias quantization, histograms, observers with ``calculate_qparams()``, and
calibration over edgeopt.graph (``calibrate(model, calib) -> {tensor name: observer}``).
The int8 lowerings of ``deploy`` and the ONNX QDQ export call these and nothing else, so they agree
by construction; the element loops run in C++ (cpp/src/f32-quantize).
"""
from .qparams import add_scales, average_scale, fma32, qparams, qrange, requant_scale, zero_point
from .quantize import (BIAS_LIMIT, dequantize, histogram, quantize, quantize_bias, quantize_per_channel,
                       quantize_weight_bias, weight_scales)
from .observer import (OBSERVERS, HistogramObserver, KLObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                       MSEObserver, PercentileObserver, observer)
from . import hooks, qat
from .mixed import MixedPrecisionPlan, mixed_precision
from .qat import (BinaryWeight, FakeQuantize, FakeQuantWeight, FreezeBatchNorm, FreezeObservers, binary_activation_points,
                  binary_conv_layers, convert, fake_quantize, low_bit_layers, prepare_qat)
from .gptq import DAMP, GPTQRounding, ROUNDINGS, gptq_codes, input_hessians
from .calibrate import OBSERVER_CHOICES, calibrate, calibration_batches, check_calib, observe

__all__ = ["qparams", "qrange", "zero_point", "requant_scale", "average_scale", "add_scales", "fma32", "quantize", "dequantize", "weight_scales",
           "quantize_per_channel", "quantize_bias", "quantize_weight_bias", "histogram", "BIAS_LIMIT", "MinMaxObserver",
           "MovingAverageMinMaxObserver", "HistogramObserver", "PercentileObserver", "MSEObserver", "KLObserver",
           "OBSERVERS", "observer", "fake_quantize", "FakeQuantize", "FakeQuantWeight", "BinaryWeight", "prepare_qat", "convert",
           "FreezeObservers", "FreezeBatchNorm", "low_bit_layers", "binary_conv_layers", "binary_activation_points", "MixedPrecisionPlan", "mixed_precision", "calibrate", "OBSERVER_CHOICES", "calibration_batches", "check_calib", "observe",
           "input_hessians", "gptq_codes", "GPTQRounding", "ROUNDINGS", "DAMP"]
