"""A numpy replay of an int8-full QGraph (edgeopt.deploy.lower.int8_full), written from the formulas and
independent of the C++ kernels: the oracle the Engine's int8 output must equal bit for bit.

Tensors are u8 NHWC (N, H, W, C) as numpy arrays; integer math in int64 (no overflow possible at
these sizes), then the float32 requantization of cpp/src/qs8-gemm/requantize.h:
    y = clamp(rint(float32(acc) * m) + zp, qmin, qmax)        (rint: half to even)
and the add y = clamp(rint(fma(a, r_a, fma(b, r_b, offset)))) in float32; channel_scale adds its
zero point in float32 before rounding, as onnxruntime's QLinearMul does.
"""
from __future__ import annotations

import numpy as np

from edgeopt.quant import fma32   # float32 fma, one rounding (numpy has none)


def requantize(acc, scale, zp, qmin=0, qmax=255):
    """clamp(rint(float32(acc) * float32(scale)) + zp, qmin, qmax) as int64 (a product past
    float32's range is inf and clamps)."""
    with np.errstate(over="ignore"):
        v = np.asarray(acc, dtype=np.int64).astype(np.float32) * np.asarray(scale, dtype=np.float32)
    return np.clip(np.rint(v).astype(np.float64) + zp, qmin, qmax).astype(np.int64)


def requantize_zp_in_float(acc, scale, zp, qmin=0, qmax=255):
    """onnxruntime's QLinearMul (squeeze-excitation's x * s): clamp(rint(float32(float32(acc) *
    scale) + zp)), the zero point added in float32 before the rounding."""
    v = np.asarray(acc, dtype=np.int64).astype(np.float32) * np.asarray(scale, dtype=np.float32)
    return np.clip(np.rint(v + np.float32(zp)), qmin, qmax).astype(np.int64)


def avgpool2d(x, kernel, stride, padding, count_include_pad, in_zp, scale, out_zp, qmin=0, qmax=255):
    """x u8 (N, H, W, C): the integer sum of (x - in_zp) over the window's in-bounds taps,
    requantized with scale[d - 1], d the divisor (kh * kw, or the in-bounds taps)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    N, H, W, C = x.shape
    vp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), np.int64)
    vp[:, ph:ph + H, pw:pw + W] = x.astype(np.int64) - in_zp
    ones = np.zeros((H + 2 * ph, W + 2 * pw), np.int64)
    ones[ph:ph + H, pw:pw + W] = 1
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    acc = np.zeros((N, OH, OW, C), np.int64)
    cnt = np.zeros((OH, OW), np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += vp[:, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
            cnt += ones[i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
    d = np.full_like(cnt, kh * kw) if count_include_pad else cnt
    m = np.asarray(scale, np.float32)[d - 1][None, :, :, None]
    return requantize(acc, m, out_zp, qmin, qmax).astype(np.uint8)


def add(a, b, attrs):
    r_a, r_b, off = (np.float32(v) for v in attrs["add"])
    qmin, qmax = attrs["add_clamp"]
    v = fma32(a, r_a, fma32(b, r_b, off))
    return np.clip(np.rint(v).astype(np.int64), qmin, qmax).astype(np.uint8)


def conv2d(x, inp_zp, a, res=None):
    """x u8 (N, H, W, C); a: the QOp attrs."""
    w = a["weight"].astype(np.int64)                 # (cout, kh, kw, cin/g)
    cout, kh, kw, cig = w.shape
    (sh, sw), (ph, pw), g = a["stride"], a["padding"], a["groups"]
    N, H, W, C = x.shape
    xp = np.full((N, H + 2 * ph, W + 2 * pw, C), inp_zp, np.int64)
    xp[:, ph:ph + H, pw:pw + W] = x
    xp -= inp_zp
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    acc = np.zeros((N, OH, OW, cout), np.int64)
    cog = cout // g
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]   # (N, OH, OW, C)
            if g == 1:
                acc += patch @ w[:, i, j, :].T
            elif cig == 1 and cog == 1:                                            # depthwise
                acc += patch * w[:, i, j, 0]
            else:
                for gi in range(g):
                    acc[..., gi * cog:(gi + 1) * cog] += (patch[..., gi * cig:(gi + 1) * cig]
                                                          @ w[gi * cog:(gi + 1) * cog, i, j, :].T)
    acc += a["bias"].astype(np.int64)
    zp, qmin, qmax = a["requant"]
    y = requantize(acc, a["scale"], zp, qmin, qmax).astype(np.uint8)
    if "add" in a:
        y = add(y, res, a)
    if "lut" in a:
        y = a["lut"][y]
    return y


def run(qg, x: np.ndarray) -> np.ndarray:
    """Logits of the QGraph for x float32 (N, C, H, W)."""
    t = {qg.input: np.ascontiguousarray(x, dtype=np.float32)}
    T = qg.tensors
    for op in qg.ops:
        a = op.attrs
        ins = [t[i] for i in op.inputs]
        zin = [T[i].zero_point for i in op.inputs]
        out = T[op.output]
        if op.op == "quantize":
            v = ins[0] if ins[0].ndim == 4 else ins[0][:, :, None, None]
            q = np.rint(v / np.float32(a["scale"]))                     # float32 quotient, half even
            q = np.clip(q, -out.zero_point, 255 - out.zero_point) + out.zero_point
            y = q.astype(np.uint8).transpose(0, 2, 3, 1)
        elif op.op == "dequantize":
            q = ins[0]
            f = (q.astype(np.int32) - zin[0]).astype(np.float32) * np.float32(T[op.inputs[0]].scale)
            y = f.transpose(0, 3, 1, 2)
            if len(out.shape) == 2:
                y = y.reshape(y.shape[0], -1)
            y = np.ascontiguousarray(y)
        elif op.op == "conv2d":
            v = ins[0] if ins[0].ndim == 4 else ins[0][:, None, None, :]
            r = ins[1] if len(ins) > 1 else None
            if r is not None and r.ndim == 2:
                r = r[:, None, None, :]
            y = conv2d(v, zin[0], a, r)
        elif op.op == "add":
            y = add(ins[0], ins[1], a)
        elif op.op == "lut":
            y = a["table"][ins[0]]
        elif op.op == "channel_scale":
            xv, s = ins[0], ins[1].reshape(ins[1].shape[0], 1, 1, -1)
            prod = (xv.astype(np.int64) - zin[0]) * (s.astype(np.int64) - zin[1])
            y = requantize_zp_in_float(prod, a["scale"], out.zero_point, *a["clamp"]).astype(np.uint8)
        elif op.op == "maxpool2d":
            (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
            v = ins[0]
            N, H, W, C = v.shape
            vp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), np.uint8)   # 0 never beats a real tap
            vp[:, ph:ph + H, pw:pw + W] = v
            OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
            y = np.zeros((N, OH, OW, C), np.uint8)
            for i in range(kh):
                for j in range(kw):
                    y = np.maximum(y, vp[:, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw])
        elif op.op == "avgpool2d":
            y = avgpool2d(ins[0], a["kernel"], a["stride"], a["padding"], a["count_include_pad"], zin[0],
                          a["scale"], out.zero_point, *a["clamp"])
        elif op.op == "global_avgpool2d":
            v = ins[0]
            acc = v.astype(np.int64).sum(axis=(1, 2), keepdims=True) - v.shape[1] * v.shape[2] * zin[0]
            y = requantize(acc, a["scale"], out.zero_point, *a["clamp"]).astype(np.uint8)
        elif op.op == "flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)                  # NHWC order
        else:
            raise NotImplementedError(op.op)
        t[op.output] = y
    return t[qg.output]
