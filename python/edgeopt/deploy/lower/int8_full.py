"""int8-full (FIQ): calibrate a model's activation ranges and lower its graph to integer ops.

    qgraph = quantize_graph(model, calib, input_shape)     # plain data (QGraph), see below
    builder, out = emit(qgraph)                             # runtime ops (ids 100..109)
    lower_int8_full(graph, model=..., calib=..., input_shape=...)   # both: compile()'s hook

Calibration. The BN-folded graph (before residual/activation fusion, so the range of every
intermediate is visible: conv output, residual sum, activation output) runs in fp32 over the first
`num_samples` (default 256) calibration images, preprocessed exactly as ``evaluate`` does
(``model.input_norm``). A min/max observer per tensor gives its asymmetric uint8 (scale S, zero
point Z), the range widened to include 0 (edgeopt.quant.qparams).

Integer graph. Activations are u8 NHWC. Per op:
  quantize       graph input f32 NCHW -> u8: q = clamp(rint(x / S) + Z) in float32
  conv2d         (also linear, as a 1x1 conv over (N, 1, 1, F)) weights symmetric int8 per output
                 channel, s_w = max|w| / 127; bias int32 at scale S_in * s_w; accumulator
                 requantized in float32, q = clamp(rint(float(acc) * m) + Z_out), m = (S_in * s_w) /
                 S_out (quant.requant_scale), with a fused ReLU/ReLU6 as the output clamp.
                 Epilogue: a residual add and/or a 256-entry table for hardswish / hardsigmoid /
                 sigmoid (table[q] = quantize(f(dequantize(q))), exact by construction). SE's fc2
                 conv is fused with its hardsigmoid the same way.
  add / lut      unfused residual adds and activations; an add is y = rint(a r_a + (b r_b + offset))
                 in float32 with fused multiply-adds (quant.add_scales)
  channel_scale  SE: y = requantize((x - Zx) * (s - Zs)) with m = (Sx * Ss) / Sy
  maxpool2d      u8 max, input qparams kept; avgpool2d / global_avgpool2d: integer sum, one
                 requantization by m = S_in / (S_out * count) (quant.average_scale)
  flatten        no data movement (NHWC order); a following linear layer's weight columns are
                 permuted from the NCHW flatten order instead
  dequantize     logits u8 -> f32: (q - Z) * float32(S): the logits come out on the u8 grid of
                 the last layer's output scale (its requantization), not from its int32 accumulator
  float          an op with no integer operator (e.g. a BatchNorm that follows no conv): its
                 inputs dequantized, the f32 runtime op, its output quantized with its own range;
                 the Engine's metadata and report() list every such fallback
These are the formulas of onnxruntime's integer operators on x86-64, factors and constants
evaluated in the same float32 order, so the ONNX QDQ export of the same QGraph runs to the same bytes
there (not quite for avgpool2d: onnxruntime's QLinearAveragePool averages dequantized floats). All
parameters are computed here once; tests/int8_sim.py replays the
QGraph in numpy and must match the Engine bit for bit.

``QGraph.points`` keeps the (scale, zero point) each quantized value of the fused graph ended up
with, keyed like ``Graph.points()``: the graph input, every node's output (the
logits included) and, inside a fused conv, (id, 'conv') for the requantized accumulator in front
of a residual add or activation table and (id, 'sum') for the sum in front of a table. The ONNX
QDQ export writes exactly these, so onnxruntime and the Engine quantize on the same grids.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ... import _core, quant
from ..._check import check_choice
from ...graph import Graph, fold_batchnorm, fuse_activation, fuse_residual, trace
from ..format import BlobType, DType, Layout, ModelBuilder, OpType, TensorInfo
from .dense import lower_node

__all__ = ["QS8_OPS", "QTensor", "QOp", "QGraph", "calibrate", "quantize_graph", "emit",
           "lower_int8_full", "activation_table"]

# The int8-full ops of the runtime (cpp/src/runtime/ops_qs8_*.cc) by QGraph op name.
QS8_OPS = {op: getattr(OpType, "QS8_" + op.upper())
           for op in ("quantize", "dequantize", "conv2d", "add", "lut", "channel_scale", "maxpool2d",
                      "avgpool2d", "global_avgpool2d", "flatten")}

_LUT_ACTS = ("hardswish", "hardsigmoid", "sigmoid")


@dataclasses.dataclass
class QTensor:
    shape: tuple           # traced shape, NCHW (N, C, H, W) or (N, F)
    dtype: str             # 'u8' or 'f32'
    scale: float = 1.0
    zero_point: int = 0


@dataclasses.dataclass
class QOp:
    op: str
    name: str
    inputs: list
    output: int
    attrs: dict

    def __repr__(self) -> str:
        small = {k: v for k, v in self.attrs.items() if not isinstance(v, np.ndarray)}
        return f"%{self.output} = {self.op}({', '.join('%' + str(i) for i in self.inputs)})  {small}  # {self.name}"


@dataclasses.dataclass
class QGraph:
    tensors: dict          # id -> QTensor
    ops: list              # QOp in execution order
    input: int
    output: int
    fallbacks: list = dataclasses.field(default_factory=list)   # names of the ops run in float
    points: dict = dataclasses.field(default_factory=dict)      # fused-graph point -> (scale, zero point)
    # conv / linear output id -> (q int8 in the model's layout, weight scales, int32 bias, bias scales)
    weights: dict = dataclasses.field(default_factory=dict)
    rounding: str = "nearest"   # how those codes were rounded (quantize_graph sets it)

    def __str__(self) -> str:
        return "\n".join(repr(o) for o in self.ops)


# ---------------------------------------------------------------------------- calibration
def calibrate(graph: Graph, batches, observer: str = "minmax") -> dict:
    """Run `graph` in fp32 over `batches`; {tensor id: (lo, hi)} of every tensor, the clipping range
    of the ``observer`` rule (quant.observe)."""
    return {p: o.clip_range() for p, o in quant.observe(graph, batches, observer=observer).items()}


class _Logged(dict):
    """A dict that remembers which keys were read (the tensors a lowering quantizes)."""

    def __init__(self, *a):
        super().__init__(*a)
        self.read = []

    def __getitem__(self, k):
        if k not in self.read:
            self.read.append(k)
        return super().__getitem__(k)


def quantize_points(g0: Graph) -> list:
    """The tensors of the BN-folded graph ``g0`` that the int8-full lowering quantizes, in the
    order it reads them (found by lowering once over placeholder ranges)."""
    gf = fuse_activation(fuse_residual(g0))
    ranges = _Logged({t: (-1.0, 1.0) for t in g0.shapes})
    _Lowering(g0, gf, ranges).run()
    return list(ranges.read)


quant.hooks.register(quantize_points=quantize_points)


def auto_ranges(g0: Graph, gf: Graph, batches: list, progress: bool = False, weight_bits: int = 8,
                rounding=None):
    """The survey's Algorithm 1 with its retry, per tensor: calibrate once with histogram
    observers, start from every tensor's min / max range, then visit the quantized tensors in graph
    order and try each other rule's range (percentile, MSE, KL); keep one where the integer
    Engine's predictions on the calibration batches come closer to the fp32 graph's (the mean
    KL divergence of its softmax from the fp32 softmax: agreement on what the model predicts,
    not on logits nobody reads), the Engine built with the weights it will hold (``weight_bits``,
    ``rounding``). Returns ({tensor id: (lo, hi)}, report rows
    (tensor, chosen rule, {rule: divergence})) with the rules tried for that tensor."""
    from ..engine import Engine
    obs = quant.observe(g0, batches, observer="auto")
    x = np.concatenate(batches)
    ref = np.concatenate([g0.execute(b) for b in batches]).astype(np.float64)

    p_ref = _softmax(ref)

    def error(ranges):
        builder, out = emit(_Lowering(g0, gf, ranges, weight_bits, rounding).run())
        got = Engine(builder.to_bytes(out, {"scheme": "int8-full"})).run(x).astype(np.float64)
        return float(np.mean(np.sum(p_ref * (np.log(p_ref + 1e-12) - _log_softmax(got)), axis=1)))

    ranges = _Logged({p: o.clip_range("minmax") for p, o in obs.items()})
    best = error(ranges)
    used, rows = list(ranges.read), []
    cands = {p: obs[p].candidate_ranges() for p in used}
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(used), desc="int8-full observer=auto", leave=False, unit="tensor")
        except ImportError:  # tqdm is a dependency, but a progress bar is not worth failing for
            pass
    for p in used:
        tried, pick = {"minmax": best}, "minmax"   # ranges[p] holds the best range found so far
        for m, r in cands[p].items():
            if any(_same(r, cands[p][k]) for k in tried):
                continue
            prev, ranges[p] = ranges[p], r
            tried[m] = e = error(ranges)
            if e < best:
                best, pick = e, m
            else:
                ranges[p] = prev
        rows.append((g0.describe(p), pick, tried))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return dict(ranges), rows


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _softmax(z):
    return np.exp(_log_softmax(z))


def _same(a, b) -> bool:
    return bool(np.allclose(np.asarray(a[0]), np.asarray(b[0]), rtol=1e-3, atol=1e-9)
                and np.allclose(np.asarray(a[1]), np.asarray(b[1]), rtol=1e-3, atol=1e-9))


# ---------------------------------------------------------------------------- arithmetic
def _asym(lo: float, hi: float):
    """u8 (scale, zp) of [lo, hi] (widened to include 0)."""
    return quant.qparams(min(lo, 0.0), max(hi, 0.0), 8, symmetric=False)


def _hardsigmoid(x):
    # ONNX HardSigmoid with alpha 1/6, beta 1/2 (HardSwish's own definition), in float32
    return np.minimum(np.maximum(x * np.float32(1 / 6) + np.float32(0.5), np.float32(0)), np.float32(1))


_ACT_FN = {   # float32 in, float32 out
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "relu6": lambda x: np.clip(x, np.float32(0), np.float32(6)),
    "hardswish": lambda x: x * _hardsigmoid(x),
    "hardsigmoid": _hardsigmoid,
    "sigmoid": lambda x: np.float32(1) / (np.float32(1) + np.exp(-x)),
}


def activation_table(act: str, s_in: float, z_in: int, s_out: float, z_out: int) -> np.ndarray:
    """table[q] = clamp(rint(f((q - z_in) s_in) / s_out) + z_out, 0, 255) as uint8 (256,), all in
    float32 in the order onnxruntime runs DequantizeLinear -> f -> QuantizeLinear (HardSwish as
    x * HardSigmoid(x)), so its tables equal what an exported model computes (sigmoid up to
    onnxruntime's own approximation of exp)."""
    x = (np.arange(256, dtype=np.int32) - z_in).astype(np.float32) * np.float32(s_in)
    y = _ACT_FN[act](x).astype(np.float32)
    return np.clip(np.rint(y / np.float32(s_out)) + z_out, 0, 255).astype(np.uint8)


def _clamp(act: str, s: float, z: int):
    """Output clamp [qmin, qmax] of a fused ReLU / ReLU6 on a u8 tensor (scale s, zero point z)."""
    if act == "relu":
        return z, 255
    if act == "relu6":
        return z, int(min(255, z + round(6.0 / s)))
    return 0, 255


# ---------------------------------------------------------------------------- lowering
class _Lowering:
    def __init__(self, g0: Graph, gf: Graph, ranges: dict, weight_bits: int = 8, rounding=None):
        self.g0, self.gf, self.ranges = g0, gf, ranges
        self.rounding = rounding     # None (nearest) or quant.GPTQRounding
        # weight_bits 4 (int4-full): 4-bit weights in quant.low_bit_layers, 8-bit elsewhere
        self.four_bit = quant.low_bit_layers(gf) if weight_bits == 4 else set()
        self.fixed = g0.qparams   # learned by quantization-aware training: used as they are
        self.tensors: dict = {}
        self.ops: list = []
        self.ids: dict = {}          # graph tensor id -> QGraph tensor id
        self.flat_src: dict = {}     # flatten output (QGraph id) -> NCHW source shape (C, H, W)
        self.next_id = max(list(gf.shapes) + list(g0.shapes)) + 1
        self.by_out0 = {n.output: n for n in g0.nodes}
        self.fallbacks: list = []    # ops run in float (_fallback)
        self.points: dict = {}       # fused-graph point -> (scale, zp) where ids does not tell (_conv2d)
        self.weights: dict = {}      # conv / linear output id -> quantize_weight_bias's (q, s_w, bias, bias scale)

    # --- ranges of the pre-fusion tensors behind a fused node
    def _consumer0(self, t: int, ops) -> int:
        for n in self.g0.nodes:
            if n.op in ops and t in n.inputs:
                return n.output
        raise RuntimeError(f"int8-full: no {ops} consumer of %{t} in the unfused graph")

    def _qp(self, t: int):
        """(scale, zero point) of tensor t: learned, or from its calibrated range."""
        if t in self.fixed:
            s, z = self.fixed[t]
            return float(s), int(z)
        if t not in self.ranges:
            if not self.ranges:
                raise ValueError(f"int8-full: {self.g0.describe(t)} has no learned scale and no calibration "
                                 "data was given (calib=...)")
            raise RuntimeError(f"int8-full: no calibration range for tensor %{t}")
        return _asym(*self.ranges[t])

    def _new_tensor(self, shape, dtype="u8", scale=1.0, zp=0, tid=None) -> int:
        if tid is None:
            tid = self.next_id
            self.next_id += 1
        self.tensors[tid] = QTensor(tuple(int(s) for s in shape), dtype, float(scale), int(zp))
        return tid

    def _emit(self, op, name, inputs, output, **attrs):
        self.ops.append(QOp(op, name, list(inputs), output, attrs))

    def run(self):
        gf = self.gf
        # graph input: f32 -> u8
        s, z = self._qp(gf.input)
        self._new_tensor(gf.shapes[gf.input], "f32", tid=gf.input)
        q_in = self._new_tensor(gf.shapes[gf.input], "u8", s, z)
        self._emit("quantize", "input", [gf.input], q_in, scale=np.float32(s))
        self.ids[gf.input] = q_in
        # SE: conv (no activation) -> hardsigmoid/sigmoid becomes conv + table
        uses = {}
        for n in gf.nodes:
            for i in n.inputs + ([n.attrs["residual"]] if n.attrs.get("residual") is not None else []):
                uses[i] = uses.get(i, 0) + 1
        by_out = {n.output: n for n in gf.nodes}
        lut_fused = {}
        for n in gf.nodes:
            if n.op in ("hardsigmoid", "sigmoid", "hardswish"):
                src = by_out.get(n.inputs[0])
                if (src is not None and src.op in ("conv2d", "linear") and src.attrs.get("activation", "none") == "none"
                        and src.attrs.get("residual") is None and uses.get(src.output) == 1 and src.output != gf.output):
                    lut_fused[src.output] = n
        skip = {n.output for n in lut_fused.values()}
        for n in gf.nodes:
            if n.output in skip:
                self.ids[n.output] = self.ids[by_out[n.inputs[0]].output]
                continue
            getattr(self, "_" + n.op, self._fallback)(n, lut_fused.get(n.output))
        # logits: u8 -> f32
        q_out = self.ids[gf.output]
        out = self._new_tensor(gf.shapes[gf.output], "f32")
        self._emit("dequantize", "output", [q_out], out)
        for t, q in self.ids.items():
            if t not in self.points and self.tensors[q].dtype == "u8":
                self.points[t] = (self.tensors[q].scale, self.tensors[q].zero_point)
        return QGraph(self.tensors, self.ops, gf.input, out, self.fallbacks, self.points, self.weights)

    def _fallback(self, n, _=None):
        """An op with no integer operator runs in float: its inputs dequantized, the f32 runtime
        op, its output quantized with its calibrated (or learned) range. Listed in the Engine's
        metadata (``int8_full.fallbacks``) and ``report()``."""
        ins = []
        for i in n.inputs:
            q = self.ids[i]
            if q in self.flat_src:
                raise ValueError(f"int8-full: layer '{n.name}': op {n.op!r} has no integer operator and "
                                 "cannot run in float after a flatten")
            f = self._new_tensor(self.gf.shapes[i], "f32")
            self._emit("dequantize", f"{n.name}/dequantize", [q], f)
            ins.append(f)
        y = self._new_tensor(self.gf.shapes[n.output], "f32")
        self._emit("float", n.name, ins, y, node=n)
        s, z = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s, z)
        self._emit("quantize", f"{n.name}/quantize", [y], out, scale=np.float32(s))
        self.ids[n.output] = out
        self.fallbacks.append(f"{n.name} ({n.op})")

    # --- conv2d / linear
    def _conv2d(self, n, lut_node=None):
        a, p = n.attrs, n.params
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        s_in, z_in = tx.scale, tx.zero_point
        w = np.asarray(p["weight"], dtype=np.float64)
        cout = w.shape[0]
        b = p.get("bias")
        b = np.zeros(cout) if b is None else np.asarray(b, dtype=np.float64)
        # weights: symmetric int8 (or int4) per output channel in the model's layout (the form the
        # ONNX export stores); the scale grows (rarely) so the int32 bias stays below 2^30 and the
        # accumulator provably fits int32
        bits = 4 if n.name.split("+")[0] in self.four_bit else 8
        rounding = None if self.rounding is None else self.rounding.layer(n.output)
        wq, s_w, bq, b_s = quant.quantize_weight_bias(w, b, s_in, bits, name=n.name, rounding=rounding)
        self.weights[n.output] = (wq, s_w, bq, b_s)
        if n.op == "linear":
            if x in self.flat_src:  # weight columns from NCHW flatten order to our NHWC order
                c, h, ww = self.flat_src[x]
                wq = wq.reshape(cout, c, h * ww).transpose(0, 2, 1).reshape(cout, -1)
            wq = wq.reshape(cout, 1, 1, wq.shape[1])               # OHWI of a 1x1 conv
            stride, padding, groups = (1, 1), (0, 0), 1
        else:
            wq = np.ascontiguousarray(wq.transpose(0, 2, 3, 1))   # OIHW -> OHWI
            stride, padding, groups = tuple(a["stride"]), tuple(a["padding"]), int(a["groups"])
        assert np.all(np.abs(bq) <= quant.BIAS_LIMIT)
        act = a.get("activation", "none")
        if lut_node is not None:
            act = lut_node.op
        res = a.get("residual")
        # the unfused tensors behind this node: conv output, residual sum, activation output
        t_c = n.output
        t_a = self._consumer0(t_c, ("add",)) if res is not None else None
        t_o = (self._consumer0(t_a if res is not None else t_c, (act,)) if act != "none" else None)
        if lut_node is not None:
            t_o = lut_node.output
        final = t_o if t_o is not None else (t_a if t_a is not None else t_c)
        s_o, z_o = self._qp(final)
        epilogue = res is not None or act in _LUT_ACTS
        # stage 1: requantize the accumulator to `pre` (the final tensor if there is no epilogue)
        s_p, z_p = self._qp(t_c) if epilogue else (s_o, z_o)
        qmin, qmax = (0, 255) if epilogue else _clamp(act, s_o, z_o)
        attrs = dict(weight=wq, bias=bq, scale=quant.requant_scale(s_in, s_w, s_p), stride=stride,
                     padding=padding, groups=groups, requant=(z_p, qmin, qmax))
        if bits == 4:
            attrs["weight_bits"] = 4   # emit() stores the weight as packed 4-bit codes
        inputs = [x]
        src_s, src_z = s_p, z_p
        if res is not None:
            r = self.ids[res]
            tr = self.tensors[r]
            s_a, z_a = self._qp(t_a) if act in _LUT_ACTS else (s_o, z_o)
            attrs.update(self._add_params(s_p, z_p, tr.scale, tr.zero_point, s_a, z_a,
                                          act if act in ("relu", "relu6") else "none"))
            inputs.append(r)
            src_s, src_z = s_a, z_a
        if act in _LUT_ACTS:
            attrs["lut"] = activation_table(act, src_s, src_z, s_o, z_o)
        shape = self.gf.shapes[n.output]
        out = self._new_tensor(shape, "u8", s_o, z_o)
        self._emit("conv2d", n.name + (f"+{lut_node.name}" if lut_node is not None else ""), inputs, out, **attrs)
        self.ids[n.output] = out
        # the grids of the values inside this op, by their fused-graph points (QGraph.points)
        if lut_node is not None:   # a separate node in the fused graph: the conv's output is `pre`
            self.points[n.output], self.points[lut_node.output] = (s_p, z_p), (s_o, z_o)
        elif epilogue:
            self.points[(n.output, "conv")] = (s_p, z_p)
            if res is not None and act in _LUT_ACTS:
                self.points[(n.output, "sum")] = (src_s, src_z)

    _linear = _conv2d

    @staticmethod
    def _add_params(s_a, z_a, s_b, z_b, s_y, z_y, act):
        """The add of u8 a (s_a, z_a) and b (s_b, z_b) into y (s_y, z_y): its attributes, add =
        (r_a, r_b, offset) (quant.add_scales) and add_clamp = (qmin, qmax)."""
        return dict(add=quant.add_scales(s_a, z_a, s_b, z_b, s_y, z_y), add_clamp=_clamp(act, s_y, z_y))

    def _add(self, n, _=None):
        a, b = self.ids[n.inputs[0]], self.ids[n.inputs[1]]
        ta, tb = self.tensors[a], self.tensors[b]
        s_y, z_y = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s_y, z_y)
        self._emit("add", n.name, [a, b], out,
                   **self._add_params(ta.scale, ta.zero_point, tb.scale, tb.zero_point, s_y, z_y, "none"))
        self.ids[n.output] = out

    def _activation(self, n, _=None):
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        s, z = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s, z)
        self._emit("lut", n.name, [x], out, table=activation_table(n.op, tx.scale, tx.zero_point, s, z))
        self.ids[n.output] = out

    _relu = _relu6 = _hardswish = _hardsigmoid = _sigmoid = _activation

    def _maxpool2d(self, n, _=None):
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        out = self._new_tensor(self.gf.shapes[n.output], "u8", tx.scale, tx.zero_point)
        a = n.attrs
        self._emit("maxpool2d", n.name, [x], out, kernel=tuple(a["kernel"]), stride=tuple(a["stride"]),
                   padding=tuple(a["padding"]))
        self.ids[n.output] = out

    def _avgpool2d(self, n, _=None):
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        a = n.attrs
        kh, kw = a["kernel"]
        s_y, z_y = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s_y, z_y)
        self._emit("avgpool2d", n.name, [x], out, kernel=(kh, kw), stride=tuple(a["stride"]),
                   padding=tuple(a["padding"]), count_include_pad=int(bool(a.get("count_include_pad", True))),
                   scale=tuple(quant.average_scale(tx.scale, s_y, np.arange(1, kh * kw + 1))), clamp=(0, 255))
        self.ids[n.output] = out

    def _global_avgpool2d(self, n, _=None):
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        _, _, h, w = self.gf.shapes[n.inputs[0]]
        s_y, z_y = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s_y, z_y)
        self._emit("global_avgpool2d", n.name, [x], out, scale=np.float32(quant.average_scale(tx.scale, s_y, h * w)),
                   clamp=(0, 255))
        self.ids[n.output] = out

    def _flatten(self, n, _=None):
        x = self.ids[n.inputs[0]]
        tx = self.tensors[x]
        src = self.gf.shapes[n.inputs[0]]
        out = self._new_tensor(self.gf.shapes[n.output], "u8", tx.scale, tx.zero_point)
        if len(src) == 4 and src[2] * src[3] > 1:
            consumers = [c for c in self.gf.nodes if n.output in c.inputs]
            if n.output == self.gf.output or any(c.op != "linear" for c in consumers):
                raise ValueError(f"int8-full: layer '{n.name}': flatten of a {src[2]}x{src[3]} map is only "
                                 "supported in front of linear layers")
            self.flat_src[out] = tuple(src[1:])
        self._emit("flatten", n.name, [x], out)
        self.ids[n.output] = out

    def _channel_scale(self, n, _=None):
        x, s = self.ids[n.inputs[0]], self.ids[n.inputs[1]]
        tx, ts = self.tensors[x], self.tensors[s]
        s_y, z_y = self._qp(n.output)
        out = self._new_tensor(self.gf.shapes[n.output], "u8", s_y, z_y)
        self._emit("channel_scale", n.name, [x, s], out, scale=np.float32(quant.requant_scale(tx.scale, ts.scale, s_y)),
                   clamp=(0, 255))
        self.ids[n.output] = out


def rounding_for(observer: str, rounding: str | None = None) -> str:
    """The weight rounding a calibrated lowering uses: ``rounding`` when given; else 'gptq' with
    observer='auto' (the search for the most faithful Engine: GPTQ came closer to the fp32 model
    on held-out images for every model and observer measured, benchmarks/README.md issue 13),
    'nearest' with a fixed rule (fast: a compile in well under a second)."""
    if rounding is not None:
        return check_choice("rounding", rounding, quant.ROUNDINGS)
    return "gptq" if observer == "auto" else "nearest"


def quantize_graph(model, calib, input_shape, num_samples: int = 256, observer: str = "minmax",
                   report: list | None = None, progress: bool = False, weight_bits: int = 8,
                   rounding: str | None = None) -> QGraph:
    """Calibrate `model` on `calib` with the ``observer`` rule (or 'auto': auto_ranges, whose
    per-tensor rows are appended to ``report`` when given) and return its int8-full QGraph
    (weight_bits 4: int4-full, 4-bit weights in the layers _Lowering names). ``rounding``: the
    weights' codes, 'nearest' or 'gptq' (quant.gptq: errors compensated over the calibration
    inputs); None: rounding_for(observer)."""
    check_choice("observer", observer, quant.OBSERVER_CHOICES)
    asked, rounding = rounding, rounding_for(observer, rounding)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples: expected a positive int, got {num_samples!r}")
    try:
        g0 = fold_batchnorm(trace(model, input_shape))
    except NotImplementedError as e:
        raise ValueError(str(e)) from None
    gf = fuse_activation(fuse_residual(g0))
    if g0.qparams:   # a converted QAT model: its weights were trained for nearest rounding
        if asked == "gptq":
            raise ValueError("rounding: 'gptq' does not apply to a model trained with quantization (quant.convert): "
                             "its weights were trained for nearest rounding")
        rounding = "nearest"
    if calib is None and g0.qparams:   # its learned scales only
        return _Lowering(g0, gf, {}, weight_bits).run()
    batches = list(quant.calibration_batches(model, calib, num_samples, what="int8-full"))
    rounder = quant.GPTQRounding(quant.input_hessians(g0, batches)) if rounding == "gptq" else None
    if observer == "auto":
        ranges, rows = auto_ranges(g0, gf, batches, progress, weight_bits, rounder)
        if report is not None:
            report.extend(rows)
    else:
        ranges = calibrate(g0, batches, observer)
    return dataclasses.replace(_Lowering(g0, gf, ranges, weight_bits, rounder).run(), rounding=rounding)


# ---------------------------------------------------------------------------- runtime ops
def emit(qg: QGraph):
    """The QGraph as runtime ops in a ModelBuilder; returns (builder, output tensor id)."""

    def info(t: QTensor):
        if t.dtype == "f32":
            return TensorInfo.of_shape(t.shape)
        return TensorInfo.of_shape(t.shape, dtype=DType.U8, layout=Layout.NHWC,
                                   scale=float(np.float32(t.scale)), zero_point=int(t.zero_point))

    builder = ModelBuilder(info(qg.tensors[qg.input]))
    ids = {qg.input: builder.input}
    for op in qg.ops:
        if op.op == "float":   # a fallback: the dense f32 op, on and to QGraph tensors
            n = dataclasses.replace(op.attrs["node"], inputs=list(op.inputs), output=op.output)
            shapes = Graph([], (), {op.output: qg.tensors[op.output].shape}, op.output)
            lower_node(builder, n, shapes, ids, "fp32")
            continue
        attrs = {}
        four = op.attrs.get("weight_bits") == 4
        for k, v in op.attrs.items():
            if k == "weight_bits":
                continue
            if k == "weight" and four:   # OHWI codes in [-7, 7], 4 bits each, packed per row
                attrs[k] = builder.add_blob(type=BlobType.I4, dims=v.shape,
                                            data=_core.quant.quant_pack_codes(v.reshape(len(v), -1), 4).tobytes())
            elif isinstance(v, np.ndarray) and v.ndim >= 1:
                attrs[k] = builder.add_blob(np.ascontiguousarray(v))
            elif isinstance(v, (np.floating, float)):
                attrs[k] = float(v)
            else:
                attrs[k] = v
        ids[op.output] = builder.add_op(QS8_OPS[op.op], op.name, [ids[i] for i in op.inputs],
                                        info(qg.tensors[op.output]), attrs)
    builder.metadata = {"int8_full": {"ops": len(qg.ops), "fallbacks": list(qg.fallbacks)}}
    return builder, ids[qg.output]


def lower_int8_full(graph: Graph = None, model=None, calib=None, input_shape=None, num_samples: int = 256,
                    observer: str = "minmax", progress: bool = False, weight_bits: int = 8,
                    rounding: str | None = None):
    """compile()'s hook for schemes 'int8-full' and 'int4-full' (weight_bits=4): (ModelBuilder,
    output id). The model is re-traced (the fused `graph` hides the intermediate ranges
    calibration needs)."""
    if model is None:
        raise ValueError("int8-full: needs the model (for calibration)")
    if input_shape is None:
        input_shape = graph.input_shape
    rows = []
    qg = quantize_graph(model, calib, input_shape, num_samples, observer, rows, progress, weight_bits, rounding)
    builder, out = emit(qg)
    if weight_bits == 4:
        builder.metadata["int8_full"]["weight_bits"] = 4
    # without calibration data the ranges are the ones a converted QAT model learned
    builder.metadata["int8_full"]["observer"] = "learned (QAT)" if calib is None else observer
    builder.metadata["int8_full"]["rounding"] = qg.rounding
    if rows:  # 4 significant digits: the report's precision, and the file stays small
        builder.metadata["int8_full"]["observers"] = [
            {"tensor": t, "chosen": m, "divergence": {k: float(f"{v:.4g}") for k, v in e.items()}}
            for t, m, e in rows]
    return builder, out
