"""The C++ kernels as functions, with PyTorch-like arguments.

Thin wrappers over ``edgeopt._core``: they check the scalar arguments (``edgeopt._check``),
normalise ``kernel_size``/``stride``/``padding`` (an int or an ``(h, w)`` pair), make inputs
C-contiguous and call the kernel; the core checks dtypes and shapes and raises errors naming the
argument. Arrays are float32 NCHW, conv weights OIHW.

Backward functions take ``dy`` first, then what the forward saw. Parameter-gradient arguments
(``dweight``, ``dbias``) are **accumulated into** (``+=``); input gradients are returned.
Losses return ``(loss, dlogits)``.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import random as _random
from .._check import INT32_MAX, check_bool, check_float, check_int, check_pair, check_shape

__all__ = [
    "conv2d", "conv2d_backward", "linear", "linear_backward",
    "batch_norm_train", "batch_norm_eval", "batch_norm_backward", "batch_norm_backward_eval",
    "relu", "relu_backward", "relu6", "relu6_backward", "hardswish", "hardswish_backward",
    "hardsigmoid", "hardsigmoid_backward", "sigmoid", "sigmoid_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward", "dropout", "dropout_backward",
    "add", "channel_scale", "channel_scale_backward", "squeeze_excite", "squeeze_excite_backward",
    "cross_entropy",
]


def _window(kernel_size, stride, padding, prefix: str = ""):
    """Pooling geometry: kernel and stride >= 1 (stride defaults to the kernel), padding >= 0;
    errors name ``prefix + argument`` (a layer passes its class name)."""
    k = check_pair(prefix + "kernel_size", kernel_size, 1)
    s = k if stride is None else check_pair(prefix + "stride", stride, 1)
    return k, s, check_pair(prefix + "padding", padding, 0)


_F32 = np.dtype(np.float32)


def _acc(a):
    """An accumulator or in-place argument, passed as is (no copy), except that a float32 array
    whose dtype object is not numpy's canonical one (arrays restored by pickle) is viewed with the
    canonical dtype: the core's dtype check compares dtype identity."""
    if isinstance(a, np.ndarray) and a.dtype == _F32 and a.dtype is not _F32:
        return a.view(_F32)
    return a


def _c(a):
    """C-contiguous view/copy of an input ndarray; other objects pass through for the core to reject.
    (Not np.ascontiguousarray: it turns a 0-d array into shape (1,), and outputs take their input's shape.)"""
    return _acc(np.asarray(a, order="C")) if isinstance(a, np.ndarray) else a


# ---------------------------------------------------------------- conv / linear
def conv2d(x, weight, bias=None, stride=1, padding=0, groups: int = 1):
    """x (N, Cin, H, W), weight (Cout, Cin/groups, KH, KW), bias (Cout,) or None -> (N, Cout, OH, OW)."""
    return _core.conv.conv2d_forward(_c(x), _c(weight), _c(bias), check_pair("stride", stride, 1),
                                check_pair("padding", padding, 0), check_int("groups", groups, 1, INT32_MAX))


def conv2d_backward(dy, x, weight, dweight, dbias=None, stride=1, padding=0, groups: int = 1,
                    need_dx: bool = True):
    """Accumulates into ``dweight`` (and ``dbias``); returns dx (or None if not ``need_dx``)."""
    return _core.conv.conv2d_backward(_c(dy), _c(x), _c(weight), _acc(dweight), _acc(dbias),
                                 check_pair("stride", stride, 1), check_pair("padding", padding, 0),
                                 check_int("groups", groups, 1, INT32_MAX), check_bool("need_dx", need_dx))


def linear(x, weight, bias=None):
    """x (N, in), weight (out, in), bias (out,) or None -> (N, out)."""
    return _core.linear.linear_forward(_c(x), _c(weight), _c(bias))


def linear_backward(dy, x, weight, dweight, dbias=None, need_dx: bool = True):
    """Accumulates into ``dweight`` (and ``dbias``); returns dx (or None if not ``need_dx``)."""
    return _core.linear.linear_backward(_c(dy), _c(x), _c(weight), _acc(dweight), _acc(dbias),
                                 check_bool("need_dx", need_dx))


# ---------------------------------------------------------------- batch norm
def batch_norm_train(x, weight, bias, running_mean, running_var, momentum: float = 0.1, eps: float = 1e-5,
                     act: str = "none", residual=None):
    """Batch statistics; updates ``running_mean``/``running_var`` in place (unbiased variance).
    Fused in the same passes: ``y = act(bn(x) + residual)``, ``act`` one of "none", "relu",
    "relu6", "hardswish" (not after a residual). Returns ``(y, save_mean, save_invstd)`` for
    :func:`batch_norm_backward`."""
    return _core.layers.batchnorm2d_forward_train(_c(x), _c(weight), _c(bias), _acc(running_mean), _acc(running_var),
                                           check_float("momentum", momentum, 0.0, 1.0),
                                           check_float("eps", eps, 0.0), act=act, residual=_c(residual))


def batch_norm_eval(x, weight, bias, running_mean, running_var, eps: float = 1e-5):
    """Normalise with the running statistics."""
    return _core.layers.batchnorm2d_forward_eval(_c(x), _c(weight), _c(bias), _c(running_mean), _c(running_var),
                                          check_float("eps", eps, 0.0))


def batch_norm_backward(dy, x, weight, save_mean, save_invstd, dweight, dbias, bias=None,
                        act: str = "none", y=None, need_dresidual: bool = False):
    """Backward of :func:`batch_norm_train` (pass its ``act``, and ``bias``, which the activation's
    derivative depends on; with a residual also its output ``y``). Accumulates
    ``dweight``/``dbias``; returns dx, or ``(dx, dresidual)`` with ``need_dresidual``."""
    return _core.layers.batchnorm2d_backward(_c(dy), _c(x), _c(weight), _c(save_mean), _c(save_invstd),
                                      _acc(dweight), _acc(dbias), beta=_c(bias), act=act, y=_c(y),
                                      need_dres=check_bool("need_dresidual", need_dresidual))


def batch_norm_backward_eval(dy, x, weight, running_mean, running_var, eps, dweight, dbias):
    """Backward of :func:`batch_norm_eval`; accumulates ``dweight``/``dbias``, returns dx."""
    return _core.layers.batchnorm2d_backward_eval(_c(dy), _c(x), _c(weight), _c(running_var),
                                           check_float("eps", eps, 0.0),
                                           _acc(dweight), _acc(dbias), _c(running_mean))


# ---------------------------------------------------------------- activations
def relu(x):
    return _core.layers.relu_forward(_c(x))


def relu_backward(dy, y):
    """Takes the forward *output*."""
    return _core.layers.relu_backward(_c(dy), _c(y))


def relu6(x):
    return _core.layers.relu6_forward(_c(x))


def relu6_backward(dy, x):
    return _core.layers.relu6_backward(_c(dy), _c(x))


def _per_channel(threshold, x):
    """A per-channel threshold (C,) shaped to broadcast over x (N, C, ...), or 0."""
    if threshold is None:
        return np.float32(0)
    return np.asarray(threshold, np.float32).reshape((1, -1) + (1,) * (np.ndim(x) - 2))


def binary_sign(x, threshold=None):
    """+1 where x >= threshold[c] (0 without one; so sign(0) = +1), else -1: the activation
    binarization of the runtime's XNOR conv (b1-gemm)."""
    return np.where(_c(x) >= _per_channel(threshold, x), np.float32(1), np.float32(-1))


def binary_sign_backward(dy, x, threshold=None):
    """The clipped straight-through estimator: dy where |x - threshold| <= 1, else 0 (hard-tanh's
    derivative). The threshold's own gradient is minus this summed over all but the channel axis."""
    return np.where(np.abs(_c(x) - _per_channel(threshold, x)) <= 1, _c(dy), np.float32(0))


def hardswish(x):
    return _core.layers.hardswish_forward(_c(x))


def hardswish_backward(dy, x):
    return _core.layers.hardswish_backward(_c(dy), _c(x))


def hardsigmoid(x):
    return _core.layers.hardsigmoid_forward(_c(x))


def hardsigmoid_backward(dy, x):
    return _core.layers.hardsigmoid_backward(_c(dy), _c(x))


def sigmoid(x):
    return _core.layers.sigmoid_forward(_c(x))


def sigmoid_backward(dy, y):
    """Takes the forward *output*."""
    return _core.layers.sigmoid_backward(_c(dy), _c(y))


# ---------------------------------------------------------------- pooling
def max_pool2d(x, kernel_size, stride=None, padding=0, return_indices: bool = False):
    """``stride`` defaults to ``kernel_size``. With ``return_indices`` also returns the int32
    argmax that :func:`max_pool2d_backward` needs."""
    y, argmax = _core.layers.maxpool2d_forward(_c(x), *_window(kernel_size, stride, padding))
    return (y, argmax) if check_bool("return_indices", return_indices) else y


def max_pool2d_backward(dy, indices, x_shape):
    return _core.layers.maxpool2d_backward(_c(dy), indices, check_shape("x_shape", x_shape, 4))


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    return _core.layers.avgpool2d_forward(_c(x), *_window(kernel_size, stride, padding),
                                   check_bool("count_include_pad", count_include_pad))


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    return _core.layers.avgpool2d_backward(_c(dy), check_shape("x_shape", x_shape, 4),
                                    *_window(kernel_size, stride, padding),
                                    check_bool("count_include_pad", count_include_pad))


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C, 1, 1)."""
    return _core.layers.global_avgpool2d_forward(_c(x))


def global_avg_pool2d_backward(dy, x_shape):
    return _core.layers.global_avgpool2d_backward(_c(dy), check_shape("x_shape", x_shape, 4))


# ---------------------------------------------------------------- dropout
def dropout(x, p: float = 0.5, training: bool = True, seed: int | None = None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).
    Returns ``(y, mask)``; ``mask`` (uint8) is None when nothing was dropped (eval or p == 0).
    ``seed`` defaults to a fresh draw from edgeopt's generator (see ``edgeopt.manual_seed``)."""
    p = check_float("p", p, 0.0, 1.0, max_open=True)
    if not check_bool("training", training) or p == 0.0:
        return x, None
    # any int: the kernel takes it modulo 2^64
    seed = _random.next_seed() if seed is None else check_int("seed", seed)
    return _core.layers.dropout_forward(_c(x), p, seed)


def dropout_backward(dy, mask, p: float):
    if mask is None:
        return dy
    return _core.layers.dropout_backward(_c(dy), mask, check_float("p", p, 0.0, 1.0, max_open=True))


# ---------------------------------------------------------------- elementwise
def add(a, b):
    """a + b (same shapes); used for residual sums and for summing branch gradients."""
    return _core.layers.add_forward(_c(a), _c(b))


def channel_scale(x, s):
    """x (N, C, H, W) * s (N, C) per channel (squeeze-and-excitation)."""
    return _core.layers.channel_scale_forward(_c(x), _c(s))


def channel_scale_backward(dy, x, s):
    """Returns ``(dx, ds)``."""
    return _core.layers.channel_scale_backward(_c(dy), _c(x), _c(s))


def squeeze_excite(x, w1, b1, w2, b2):
    """Squeeze-and-excitation in one call: ``x * hardsigmoid(w2 relu(w1 mean_hw(x) + b1) + b2)``
    per image and channel; w1 (squeeze, C), w2 (C, squeeze), biases or None. Returns ``(y, saved)``
    for :func:`squeeze_excite_backward` (small: pooled input, both pre-activations, the scale)."""
    return _core.layers.squeeze_excite_forward(_c(x), _c(w1), _c(b1), _c(w2), _c(b2))


def squeeze_excite_backward(dy, x, w1, w2, saved, dw1, db1, dw2, db2):
    """Accumulates into ``dw1``, ``db1``, ``dw2``, ``db2`` (biases may be None); returns dx."""
    return _core.layers.squeeze_excite_backward(_c(dy), _c(x), _c(w1), _c(w2), saved, _acc(dw1), _acc(db1),
                                                _acc(dw2), _acc(db2))


# ---------------------------------------------------------------- losses
def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy over the batch: logits (N, classes), labels (N,) of any integer
    dtype. Returns ``(loss, dlogits)``."""
    return _core.layers.cross_entropy(_c(logits), labels, check_float("label_smoothing", label_smoothing, 0.0, 1.0))
