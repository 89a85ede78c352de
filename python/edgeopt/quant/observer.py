"""Observers: they watch the values a tensor takes (during calibration or quantization-aware
training) and turn them into quantization parameters with ``calculate_qparams()``, as in
torch.ao.quantization. Each chooses a clipping range [lo, hi] (``clip_range()``) by its own rule;
``qparams`` turns it into (scale, zero_point). Their element loops (ranges, histograms) run in C++
(quant/quantize.py); what is left in Python works on at most ``bins`` numbers per channel.

    MinMaxObserver               the running min and max
    MovingAverageMinMaxObserver  min and max averaged over batches (weight ``averaging_constant``)
    PercentileObserver           the ``percentile`` and 100 - ``percentile`` points of a histogram
    MSEObserver                  the clipping range with the least expected squared error
    KLObserver                   the clipping threshold whose quantized histogram keeps the most
                                 information (least KL divergence; TensorRT's entropy calibration)

``observer(name)`` makes one by name (``OBSERVERS``). Every histogram observer also gives every other
rule's range (``candidate_ranges()``): one calibration pass serves the survey's verify-and-retry
(``observer="auto"`` in deploy), which picks among them per tensor.

Per channel (``axis``), every rule is applied to each channel on its own.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._check import check_bool, check_choice, check_dim, check_float, check_int
from .qparams import _check_bits, qparams, qrange
from .quantize import _nonfinite, _rows

__all__ = ["MinMaxObserver", "MovingAverageMinMaxObserver", "HistogramObserver", "PercentileObserver",
           "MSEObserver", "KLObserver", "OBSERVERS", "observer"]



def _clip_error(v: np.ndarray, c: np.ndarray, levels: int):
    """err(a, b) over arrays of ranges [a, b]: the histogram's (centres v ascending, counts c)
    expected squared quantize-dequantize error, (v - a)^2 below a, (v - b)^2 above b and S^2 / 12
    inside (S = (b - a) / levels), from prefix sums of c, c v and c v^2: O(log bins) per range
    instead of a pass over the bins."""
    v, c = v.astype(np.float64), c.astype(np.float64)
    c0, c1, c2 = (np.concatenate([[0.0], np.cumsum(c * v ** k)]) for k in range(3))

    def err(a, b):
        i, j = np.searchsorted(v, a, "left"), np.searchsorted(v, b, "right")   # v < a | v > b
        below = c2[i] - 2 * a * c1[i] + a * a * c0[i]
        above = (c2[-1] - c2[j]) - 2 * b * (c1[-1] - c1[j]) + b * b * (c0[-1] - c0[j])
        s = np.maximum(b - a, 1e-300) / levels
        return below + above + s * s / 12.0 * (c0[j] - c0[i])
    return err

class MinMaxObserver:
    """Running min / max of the values it sees (per tensor, or per channel along `axis`);
    ``calculate_qparams()`` gives (scale, zero_point) by ``qparams``.

    >>> obs = MinMaxObserver(symmetric=False)
    >>> obs(x1); obs(x2)
    >>> scale, zp = obs.calculate_qparams()
    """

    method = "minmax"

    def __init__(self, bits: int = 8, symmetric: bool = False, axis=None, name: str = "x"):
        self.bits = _check_bits(bits)
        self.symmetric = check_bool("symmetric", symmetric)
        self.axis = None if axis is None else check_int("axis", axis)
        self.name = str(name)
        self.min_val = None
        self.max_val = None

    def _rows(self, x):
        """x as (rows, cols) float32 with its per-row min and max (float64), or None when empty."""
        x = np.asarray(x)
        # an out-of-range axis is an IndexError, as in PyTorch's per-channel observers (never wrapped)
        axis = None if self.axis is None else check_dim("axis", self.axis, x.ndim)
        rows, axis, shape = _rows(self.name, x, axis)
        if rows.size == 0:
            return None
        lo, hi, bad = _core.quant.quant_row_range(rows)
        if bad >= 0:
            raise _nonfinite(self.name, rows, bad, axis, shape)
        return rows, lo.astype(np.float64), hi.astype(np.float64)

    def _scalar(self, v):
        return float(v[0]) if self.axis is None else v

    def _update(self, lo, hi) -> None:
        """Widen the running min / max by a batch's (per-row arrays)."""
        lo, hi = self._scalar(lo), self._scalar(hi)
        self.min_val = lo if self.min_val is None else np.minimum(self.min_val, lo)
        self.max_val = hi if self.max_val is None else np.maximum(self.max_val, hi)

    def __call__(self, x) -> None:
        seen = self._rows(x)
        if seen is not None:
            self._update(seen[1], seen[2])

    observe = __call__

    def _check_seen(self):
        if self.min_val is None:
            raise RuntimeError(f"{type(self).__name__}({self.name}): no values observed yet (empty calibration set?)")

    def clip_range(self):
        """(lo, hi): the range this observer's rule keeps (floats, or arrays per channel)."""
        self._check_seen()
        return self.min_val, self.max_val

    def calculate_qparams(self):
        lo, hi = self.clip_range()
        return qparams(lo, hi, self.bits, self.symmetric)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(bits={self.bits}, symmetric={self.symmetric}, min={self.min_val}, "
                f"max={self.max_val})")


class MovingAverageMinMaxObserver(MinMaxObserver):
    """min and max as exponential moving averages over the batches seen (the first batch sets
    them): m <- m + c (batch_m - m) with c = ``averaging_constant``. Outliers of single batches
    widen the range less than with MinMaxObserver; used by quantization-aware training."""

    method = "moving_average"

    def __init__(self, bits: int = 8, symmetric: bool = False, axis=None, name: str = "x",
                 averaging_constant: float = 0.01):
        super().__init__(bits, symmetric, axis, name)
        self.averaging_constant = check_float("averaging_constant", averaging_constant, 0.0, 1.0, min_open=True)

    def __call__(self, x) -> None:
        seen = self._rows(x)
        if seen is None:
            return
        _, lo, hi = seen
        lo, hi = self._scalar(lo), self._scalar(hi)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
            return
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)

    observe = __call__


class HistogramObserver(MinMaxObserver):
    """A histogram of ``bins`` equal bins per channel over the range seen so far, plus the exact
    min / max. When a batch falls outside the range, the range grows to cover it and the old
    counts move to the new bins that hold their bins' centres (an error of at most one new bin).

    ``clip_range()`` applies ``method`` (default: the class's): 'minmax', 'percentile', 'mse' or
    'kl'; ``candidate_ranges()`` gives them all."""

    method = "mse"
    METHODS = ("minmax", "percentile", "mse", "kl")

    def __init__(self, bits: int = 8, symmetric: bool = False, axis=None, name: str = "x", bins: int = 2048,
                 percentile: float = 99.99):
        super().__init__(bits, symmetric, axis, name)
        self.bins = check_int("bins", bins, 16, 1 << 20)
        self.percentile = check_float("percentile", percentile, 50.0, 100.0, min_open=True)
        self.counts = None   # (rows, bins) float64
        self.edges = None    # (rows, 2): lo, hi of each row's histogram

    def __call__(self, x) -> None:
        seen = self._rows(x)
        if seen is None:
            return
        rows, lo, hi = seen
        if self.counts is not None and len(lo) != len(self.counts):
            raise ValueError(f"{self.name}: expected {len(self.counts)} channels along axis {self.axis}, "
                             f"got {len(lo)}")
        if self.counts is None:
            self.counts = np.zeros((len(lo), self.bins))
            self.edges = np.stack([lo, hi], axis=1)
        else:
            self._grow(np.minimum(self.edges[:, 0], lo), np.maximum(self.edges[:, 1], hi))
        for r in range(len(rows)):
            a, b = self._span(r)
            c = np.zeros(self.bins, np.int64)
            _core.quant.quant_histogram(rows[r], a, b, c)
            self.counts[r] += c
        self._update(lo, hi)

    observe = __call__

    def _span(self, r):
        """Row r's histogram range as C++'s histogram takes it: a constant row gets width 1."""
        a, b = float(self.edges[r, 0]), float(self.edges[r, 1])
        return (a - 0.5, b + 0.5) if not a < b else (a, b)

    def _grow(self, lo, hi):
        for r in range(len(self.counts)):
            if lo[r] >= self.edges[r, 0] and hi[r] <= self.edges[r, 1]:
                continue
            a, b = self._span(r)
            centres = a + (np.arange(self.bins) + 0.5) * (b - a) / self.bins
            self.edges[r] = lo[r], hi[r]
            na, nb = self._span(r)
            idx = np.clip(((centres - na) / (nb - na) * self.bins).astype(np.int64), 0, self.bins - 1)
            self.counts[r] = np.bincount(idx, weights=self.counts[r], minlength=self.bins)

    # --- clipping rules, one row (channel) at a time; v: bin centres, c: counts
    def _row(self, r):
        a, b = self._span(r)
        v = a + (np.arange(self.bins) + 0.5) * (b - a) / self.bins
        return v, self.counts[r], float(self.edges[r, 0]), float(self.edges[r, 1]), (b - a) / self.bins

    def _percentile(self, r):
        v, c, lo, hi, w = self._row(r)
        cdf = np.cumsum(c) / max(c.sum(), 1.0)
        q = self.percentile / 100.0
        a = v[min(int(np.searchsorted(cdf, 1.0 - q, "left")), self.bins - 1)] - w / 2
        b = v[min(int(np.searchsorted(cdf, q, "left")), self.bins - 1)] + w / 2
        return max(a, lo), min(b, hi)

    def _mse(self, r):
        """Least expected error of quantize-dequantize: S^2 / 12 per value inside the range
        (uniform rounding), the squared distance to the nearer end outside it. The ends are
        searched as fractions of the observed ones, on a 24-step grid and then a finer one around
        its best point."""
        v, c, lo, hi, _ = self._row(r)
        qmin, qmax = qrange(self.bits, self.symmetric)
        if self.symmetric:
            lo0 = -max(abs(lo), abs(hi))
            hi0 = -lo0
        else:
            lo0, hi0 = min(lo, 0.0), max(hi, 0.0)

        err = _clip_error(v, c, qmax - qmin)

        def best(fa, fb):
            fa, fb = (fb, fb) if self.symmetric else np.meshgrid(fa, fb, indexing="ij")
            k = int(np.argmin(err(lo0 * fa.reshape(-1), hi0 * fb.reshape(-1))))
            return float(fa.reshape(-1)[k]), float(fb.reshape(-1)[k])

        step = 1.0 / 24
        grid = np.linspace(step, 1.0, 24)
        fa, fb = best(grid, grid)
        fine = np.linspace(-step, step, 17)
        fa, fb = best(np.clip(fa + fine, step / 8, 1.0), np.clip(fb + fine, step / 8, 1.0))
        if self.symmetric:
            return lo0 * fb, hi0 * fb
        return max(lo0 * fa, lo), min(hi0 * fb, hi)

    def _kl(self, r):
        """The threshold t whose histogram, merged into the quantized levels and spread back,
        diverges least from the original with the tail beyond t folded into its last bin:
        symmetric: over |x|, range [-t, t]; otherwise over x - min (one-sided: the upper tail is
        clipped, the minimum kept; a mostly-negative tensor such as a normalized image background
        must not be clipped from below), range [min, min + t]."""
        v, c, lo, hi, _ = self._row(r)
        base = 0.0 if self.symmetric else min(lo, 0.0)
        vals = np.abs(v) if self.symmetric else v - base
        amax = float(vals.max()) if len(vals) else 0.0
        if amax <= 0.0 or c.sum() == 0:
            return lo, hi
        nb = self.bins
        h, _ = np.histogram(vals, bins=nb, range=(0.0, amax), weights=c)
        # The first bin holds the exact zeros (half of a ReLU's output): any range represents
        # them, but merged into a level and spread back they would dominate the divergence and
        # push t far below where the values are (measured: to a quarter of a ReLU output's max).
        h[0] = 0.0
        levels = qrange(self.bits, self.symmetric)[1] + 1
        best, best_i = np.inf, nb
        for i in np.unique(np.linspace(min(levels, nb), nb, 160).astype(np.int64)):
            p = h[:i].copy()
            p[-1] += h[i:].sum()
            nz = p > 0
            group = np.minimum((np.arange(i) * levels) // i, levels - 1)
            sums = np.bincount(group, weights=h[:i], minlength=levels)
            live = np.bincount(group, weights=nz.astype(np.float64), minlength=levels)
            q = np.where(nz, sums[group] / np.maximum(live[group], 1.0), 0.0)
            ps, qs = p.sum(), q.sum()
            if qs <= 0:
                continue
            pn, qn = p[nz] / ps, q[nz] / qs
            kl = float(np.sum(pn * np.log(pn / np.maximum(qn, 1e-12))))
            if kl < best:
                best, best_i = kl, int(i)
        t = best_i * amax / nb
        if self.symmetric:
            return -t, t
        return base, min(base + t, hi)

    def _rule(self, method):
        self._check_seen()
        if method == "minmax":
            return self.min_val, self.max_val
        fn = {"percentile": self._percentile, "mse": self._mse, "kl": self._kl}[method]
        lo, hi = zip(*(fn(r) for r in range(len(self.counts))))
        return self._scalar(np.array(lo)), self._scalar(np.array(hi))

    def clip_range(self, method: str | None = None):
        return self._rule(check_choice("method", method or self.method, self.METHODS))

    def candidate_ranges(self) -> dict:
        """{method: (lo, hi)} for every rule of METHODS."""
        return {m: self._rule(m) for m in self.METHODS}


class PercentileObserver(HistogramObserver):
    """Clips at the ``percentile`` (default 99.99) and 100 - ``percentile`` points of the values."""
    method = "percentile"


class MSEObserver(HistogramObserver):
    """Clips where the expected squared quantization error over the histogram is least."""
    method = "mse"


class KLObserver(HistogramObserver):
    """Clips at the threshold of least KL divergence between the histogram and its quantized form."""
    method = "kl"


OBSERVERS = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver,
             "percentile": PercentileObserver, "mse": MSEObserver, "kl": KLObserver}


def observer(method: str = "minmax", **kwargs):
    """An observer by name (``OBSERVERS``): observer('kl', symmetric=True)."""
    return OBSERVERS[check_choice("observer", method, tuple(OBSERVERS))](**kwargs)
