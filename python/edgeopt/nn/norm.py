"""BatchNorm2d: per-channel normalisation with running statistics, as PyTorch."""
from __future__ import annotations

import numpy as np

from .._check import INT32_MAX, check_bool, check_float, check_int
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over (N, H, W) per channel.

    Training uses the batch statistics and updates ``running_mean``/``running_var`` (unbiased
    variance) with ``momentum``; ``momentum=None`` is the cumulative average
    (1 / num_batches_tracked). Eval uses the running statistics. State names as PyTorch:
    ``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``.
    """

    _parametrizable = ("weight",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        c = self.num_features = check_int("BatchNorm2d.num_features", num_features, 1, INT32_MAX)
        self.eps = check_float("BatchNorm2d.eps", eps, 0.0, min_open=True)
        self.momentum = None if momentum is None else check_float("BatchNorm2d.momentum", momentum, 0.0, 1.0)
        self.affine = check_bool("BatchNorm2d.affine", affine)
        self.track_running_stats = check_bool("BatchNorm2d.track_running_stats", track_running_stats)
        # Quantization-aware training freezes the statistics: training then normalizes with the
        # running ones and stops updating them, as a folded conv will (quant/qat.py).
        self.stats_frozen = False
        if affine:
            self.weight = Parameter(np.ones(c, np.float32))
            self.bias = Parameter(np.zeros(c, np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
            # The kernels always take an affine transform: use a fixed identity one.
            self._unit = np.ones(c, np.float32)
            self._zero = np.zeros(c, np.float32)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, np.float32))
            self.register_buffer("running_var", np.ones(c, np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill(0.0)
            self.running_var.fill(1.0)
            self.num_batches_tracked.fill(0)

    def _uses_batch_stats(self) -> bool:
        return (self.training and not self.stats_frozen) or not self.track_running_stats

    def forward(self, x):
        return self._forward(x)

    def _forward(self, x, act: str = "none", residual=None):
        """forward, with the activation that follows (``act``: "relu", "relu6", "hardswish") and a
        residual add before it fused into the same passes over memory. Containers call this when
        the graph allows (nn/container.py); only with batch statistics."""
        x = self._check_input(x, 4, self.num_features)
        gamma, beta = (self._tensor("weight"), self.bias.data) if self.affine else (self._unit, self._zero)
        if self._uses_batch_stats():
            n, _, h, w = x.shape
            if n * h * w <= 1:
                raise ValueError(f"{self._short_name()}: expected more than 1 value per channel when "
                                 f"using batch statistics, got input shape {x.shape}")
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                rmean, rvar = self.running_mean, self.running_var
            else:  # batch statistics without tracking: the kernel's running update goes to scratch
                momentum = 0.0
                rmean, rvar = np.zeros(self.num_features, np.float32), np.ones(self.num_features, np.float32)
            y, save_mean, save_invstd = F.batch_norm_train(x, gamma, beta, rmean, rvar, momentum, self.eps,
                                                           act, residual)
            # After a residual the activation's derivative is read from the output.
            y_kept = y if residual is not None and act != "none" else None
            self._save_for_backward(y, True, x, gamma, beta, save_mean, save_invstd, act, y_kept)
        else:
            if act != "none" or residual is not None:
                raise RuntimeError(f"{self._short_name()}: fusion needs batch statistics")
            y = F.batch_norm_eval(x, gamma, beta, self.running_mean, self.running_var, self.eps)
            self._save_for_backward(y, False, x, gamma, beta, self.running_mean.copy(),
                                    self.running_var.copy(), act, None)
        return y

    def backward(self, dy):
        return self._backward(dy)

    def _backward(self, dy, need_dresidual: bool = False):
        """backward; with ``need_dresidual`` (after a fused residual) returns ``(dx, dresidual)``."""
        dy, (batch_stats, x, gamma, beta, a, b, act, y) = self._saved_for_backward(dy)
        if self.affine:
            dgamma, dbeta = self._grad_sink("weight", gamma), self.bias.grad
        else:  # gradients of the fixed identity transform are discarded into scratch arrays
            dgamma, dbeta = np.zeros_like(gamma), np.zeros_like(gamma)
        if batch_stats:
            out = F.batch_norm_backward(dy, x, gamma, a, b, dgamma, dbeta, beta, act, y,
                                        need_dresidual and act != "none")
            if need_dresidual and act == "none":
                out = (out, dy)  # the residual's gradient is dy itself
        else:
            out = F.batch_norm_backward_eval(dy, x, gamma, a, b, self.eps, dgamma, dbeta)
        if self.affine:
            self._grad_done("weight", dgamma)
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
