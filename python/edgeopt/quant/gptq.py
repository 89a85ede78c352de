"""Error-compensating weight rounding (GPTQ: Frantar et al. 2023, the Cholesky form of Optimal Brain
Quantization, Frantar & Alistarh 2022). Rounding each weight to its nearest code ignores what the
layer's inputs do with the errors; GPTQ rounds a layer's input columns one at a time and moves
each column's rounding error onto the columns not yet rounded, as the inverse of the inputs'
second moments says is best, so the layer's output on the calibration data stays closest to the
float layer's:

    minimize ||W X - S Q X||^2 over integer codes Q,   H = X X^T (+ 1 % of its mean diagonal)

with the per-row scales S fixed beforehand (weight_scales: the codes change, the grid does not).
Columns go in order of decreasing H_ii (the inputs that carry most energy first).

    H = input_hessians(graph, batches)         {conv / linear output tensor id: (groups, K, K)}
    rounding = GPTQRounding(H)                 codes = rounding(tensor id, w, scale, bits)
    rounding.layer(tensor id)                  fn(w, scale, bits), what quant.quantize_* take

Every code comes from ``quantize`` (the one rounding of edgeopt.quant); the error propagation is
float64 matrix algebra (numpy), per group of a grouped conv (a depthwise conv: one 9 x 9 problem
per channel, solved for all channels at once).
"""
from __future__ import annotations

import numpy as np

from .quantize import quantize

__all__ = ["input_hessians", "gptq_codes", "GPTQRounding", "DAMP", "ROUNDINGS"]

ROUNDINGS = ("nearest", "gptq")   # how a calibrated lowering rounds weights to codes

DAMP = 0.01     # H's diagonal grows by this fraction of its mean: a stable inverse, as GPTQ does
_BLOCK = 128    # columns rounded between two rank-B updates of the rest
_CHUNK_BYTES = 64 << 20   # bound on one chunk's patches in input_hessians


def _patches(x: np.ndarray, node) -> np.ndarray:
    """The input rows a conv / linear node multiplies its weight rows by: (groups, rows, K), each
    row in the order of the node's weight flattened per output channel ((c, kh, kw) of OIHW)."""
    if node.op == "linear":
        return x.reshape(1, len(x), -1)
    kh, kw = node.params["weight"].shape[2:]
    (sh, sw), (ph, pw), g = node.attrs["stride"], node.attrs["padding"], int(node.attrs["groups"])
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = xp.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    taps = np.stack([xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                     for i in range(kh) for j in range(kw)], axis=2)          # (n, c, taps, ho, wo)
    taps = taps.reshape(n, g, c // g, kh * kw, ho * wo)
    return taps.transpose(1, 0, 4, 2, 3).reshape(g, n * ho * wo, (c // g) * kh * kw)


def _gram(p: np.ndarray) -> np.ndarray:
    """P^T P per group of (groups, rows, K) patches."""
    return (p[0].T @ p[0])[None] if len(p) == 1 else np.matmul(p.transpose(0, 2, 1), p)


def input_hessians(graph, batches) -> dict:
    """{output tensor id: H (groups, K, K) float64} of every conv / linear node of ``graph``
    (BatchNorm folded: the weights a lowering quantizes; fusing keeps a conv's output id), H = X^T X
    summed over the node's input rows on ``batches`` (float32 model inputs), run through the
    graph's fp32 executor."""
    nodes = [n for n in graph.nodes if n.op in ("conv2d", "linear")]
    sums = {n.output: None for n in nodes}
    by_input: dict = {}
    for n in nodes:
        by_input.setdefault(n.inputs[0], []).append(n)

    def watch(consumers):
        def add(v):
            for n in consumers:
                # images in chunks whose patches stay under _CHUNK_BYTES (an im2col is taps x larger
                # than its input); float32 products per chunk (one sgemm when there is one group),
                # float64 sums; float64 products where float32 overflows (non-finite inputs raise below)
                taps = int(np.prod(n.params["weight"].shape[2:])) if n.op == "conv2d" else 1
                step = max(1, _CHUNK_BYTES // max(1, 4 * taps * v[0].size))
                for i in range(0, len(v), step):
                    p = _patches(v[i:i + step], n)
                    with np.errstate(over="ignore", invalid="ignore"):
                        h = _gram(p)
                        if not np.isfinite(h).all():
                            h = _gram(p.astype(np.float64))
                    h = h.astype(np.float64)
                    sums[n.output] = h if sums[n.output] is None else sums[n.output] + h
        return add

    hooks = {t: watch(ns) for t, ns in by_input.items()}
    for x in batches:
        graph.execute(x, observe=hooks)
    for n in nodes:
        if sums[n.output] is None:
            raise ValueError("calib: the calibration data is empty")
        if not np.isfinite(sums[n.output]).all():   # an overflow inside the model
            raise ValueError(f"calib: the input of layer {n.name!r} is non-finite on the calibration data; check "
                             "the calibration data and the model's weights")
    return sums


def gptq_codes(w, hessian, scale, bits: int = 8, damp: float = DAMP, name: str = "w") -> np.ndarray:
    """Symmetric codes (int8, w's shape) of ``w`` (output channels on axis 0) on the per-channel
    ``scale`` grid, rounded column by column with each error moved onto the columns after it
    (module docstring). ``hessian``: (groups, K, K) with K = w[0].size, the inputs of one output
    row; output channel o belongs to group o // (channels / groups)."""
    w = np.asarray(w)
    h = np.array(hessian, dtype=np.float64)
    rows = w.reshape(len(w), -1).astype(np.float64)
    k = rows.shape[1]
    if h.ndim != 3 or h.shape[1:] != (k, k) or len(h) == 0 or len(rows) % len(h):
        raise ValueError(f"hessian: expected (groups, {k}, {k}) with groups dividing {len(rows)} output "
                         f"channels, got shape {h.shape}")
    if not np.isfinite(h).all():
        raise ValueError("hessian: contains non-finite values")
    if not (isinstance(damp, (int, float, np.floating)) and 0 <= damp < np.inf):
        raise ValueError(f"damp: expected a finite value >= 0, got {damp!r}")
    g = len(h)
    r = len(rows) // g
    W = rows.reshape(g, r, k)
    s = np.asarray(scale, dtype=np.float64)
    if s.shape != (len(rows),):
        raise ValueError(f"scale: expected one value per output channel ({len(rows)}), got shape {s.shape}")
    s = s.reshape(g, r)
    diag = np.einsum("gii->gi", h)
    # an input that never varies from zero: any code serves; a unit diagonal keeps H invertible
    h[:, np.arange(k), np.arange(k)] = np.where(diag > 0, diag, 1.0) + damp * diag.mean(axis=1, keepdims=True)
    order = np.argsort(-np.einsum("gii->gi", h), axis=1, kind="stable")
    W = np.take_along_axis(W, order[:, None, :], axis=2)
    h = h[np.arange(g)[:, None, None], order[:, :, None], order[:, None, :]]
    # U upper triangular with H^-1 = U^T U: row i of U is the update GPTQ spreads column i's error by
    u = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)
    Q = np.empty((g, r, k), np.int8)
    flat_s = s.reshape(-1)
    for b0 in range(0, k, _BLOCK):
        b1 = min(b0 + _BLOCK, k)
        err = np.empty((g, r, b1 - b0))
        for i in range(b0, b1):
            q = quantize(W[:, :, i].reshape(-1, 1), flat_s, 0, bits, True, 0, name).reshape(g, r)
            Q[:, :, i] = q
            e = (W[:, :, i] - q * s) / u[:, i, i][:, None]
            W[:, :, i:b1] -= e[:, :, None] * u[:, None, i, i:b1]
            err[:, :, i - b0] = e
        if b1 < k:
            W[:, :, b1:] -= np.matmul(err, u[:, b0:b1, b1:])
    out = np.empty_like(Q)
    np.put_along_axis(out, order[:, None, :], Q, axis=2)
    return out.reshape(w.shape)


class GPTQRounding:
    """The weight rounding of a lowering: ``rounding(key, w, scale, bits)`` -> codes, by GPTQ with
    the Hessian of node ``key`` (its output tensor id). Remembers each result (by key, bits, scale
    and weights), so lowering the same model again (the auto observer builds one Engine per
    candidate range) solves each layer once."""

    def __init__(self, hessians: dict, damp: float = DAMP):
        self.hessians, self.damp, self._memo = hessians, damp, {}

    def layer(self, key):
        """The rounding of layer ``key`` as fn(w, scale, bits) -> codes (quantize_weight_bias's and
        quantize_per_channel's ``rounding``)."""
        return lambda w, scale, bits: self(key, w, scale, bits)

    def __call__(self, key, w, scale, bits: int) -> np.ndarray:
        memo = (key, bits, np.asarray(scale).tobytes(), np.asarray(w).tobytes())
        if memo not in self._memo:
            h = self.hessians.get(key)
            if h is None:
                raise RuntimeError(f"gptq: no input statistics for the layer writing tensor %{key}")
            self._memo[memo] = gptq_codes(w, h, scale, bits, self.damp, name=f"%{key}.weight")
        return self._memo[memo].copy()
