"""Quantization, the one home of its arithmetic: scales and zero points (``qparams``), the Q31
multipliers of the integer kernels (``quantize_multiplier``), quantize / dequantize per tensor or
per channel, weight and bias quantization, histograms, and observers with ``calculate_qparams()``.
The int8 lowerings of ``deploy`` and the ONNX QDQ export call these and nothing else, so they agree
by construction; the element loops run in C++ (cpp/src/f32-quantize).
"""
from .qparams import qparams, qrange, quantize_multiplier
from .quantize import (BIAS_LIMIT, dequantize, histogram, quantize, quantize_bias, quantize_per_channel,
                       weight_scales)
from .observer import MinMaxObserver

__all__ = ["qparams", "qrange", "quantize_multiplier", "quantize", "dequantize", "weight_scales",
           "quantize_per_channel", "quantize_bias", "histogram", "BIAS_LIMIT", "MinMaxObserver"]
