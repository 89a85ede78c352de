"""Sparse weights in the deployed Engine: pruned 1x1 convs and linear layers as sparse ops.

``compile(model, "fp32", sparse="auto"|True|False)`` lowers through ``lower_sparse`` unless
sparse is False. For each conv / linear node of the fused graph (BatchNorm already folded, so the
zeros counted are the deployed weights' zeros):

  eligible   linear layers, and convs with a 1x1 kernel, padding 0, groups 1 (any stride: a strided
             1x1 conv runs over the subsampled input); fused activation none / relu / relu6 /
             hardswish and a fused residual add are done by the sparse op
  "auto"     an eligible layer goes sparse when at least ``AUTO_MIN_ZEROS`` (70 %) of its
             weights are zero: below that the sparse kernel is not faster than the dense GEMM and
             its index data makes the file no smaller
  True       every eligible layer goes sparse; False: none (plain fp32 lowering)

Block shape (the f32-spmm author's rule): 8x1, else 4x1 blocks (8 or 4 output channels share one
input load) when the packing stores at most ``BLOCK_OVERHEAD`` (1.3x) the nonzero count, else 1x1
(CSR). Block-pruned models (edgeopt.prune.magnitude(..., block=(8, 1))) get 8x1; unstructured
pruning gets 1x1.

Blob (tag SPARSE_F32, dims (Cout, Cin)): int32 header br, bc, nblocks, 0; int32 row_ptr
(ceil(Cout/br) + 1); int32 col (nblocks); float32 values (nblocks * br * bc), block b's value
(input c, output i) at [b*br*bc + c*br + i] (cpp/src/runtime/ops_sparse_f32.cc validates it).
At 90 % zeros a 1x1-block layer takes 0.1 * 8 / 4 = 20 % of its dense bytes.

When any layer went sparse, what each layer became is recorded in the file's metadata (``engine.metadata["sparse"]``: layer
name -> "sparse 1x1 ..." or "dense: <reason>"), and the sparse ops show it in ``engine.summary()``.
fp16 / int8-weight / int8-full stay dense (no sparse op for their weight forms yet).
"""
from __future__ import annotations

import struct

import numpy as np

from ... import _core
from ..format import ACTIVATION, BlobType, ModelBuilder, OpType, TensorInfo
from .dense import lower_node

__all__ = ["SPARSE_OPS", "AUTO_MIN_ZEROS", "BLOCK_OVERHEAD", "lower_sparse", "choose_block",
           "pack_sparse_weight", "sparse_decision"]

SPARSE_OPS = {"conv1x1": OpType.SPARSE_CONV1X1, "linear": OpType.SPARSE_LINEAR}
AUTO_MIN_ZEROS = 0.7
BLOCK_OVERHEAD = 1.3
_ACTS = ("none", "relu", "relu6", "hardswish")


def _weight_2d(node) -> np.ndarray:
    w = node.params["weight"]
    return np.ascontiguousarray(w.reshape(w.shape[0], -1), dtype=np.float32)


def _shape_reason(node):
    """None if the node's shape and fusions allow the sparse op, else why not."""
    a = node.attrs
    if a.get("activation", "none") not in _ACTS:
        return f"activation {a.get('activation')!r}"
    if node.op == "linear":
        return None if a.get("residual") is None else "residual on a linear layer"
    if node.op != "conv2d":
        return "not a conv / linear"
    kh, kw = node.params["weight"].shape[2:]
    if (kh, kw) != (1, 1):
        return f"{kh}x{kw} kernel"
    if int(a["groups"]) != 1:
        return f"groups={a['groups']}"
    if tuple(a["padding"]) != (0, 0):
        return f"padding {a['padding']}"
    return None


def sparse_decision(node, mode):
    """(use the sparse op?, reason) for a conv / linear graph node under mode 'auto' / True."""
    reason = _shape_reason(node)
    if reason is not None:
        return False, reason
    w = node.params["weight"]
    zeros = 1.0 - np.count_nonzero(w) / max(w.size, 1)
    if mode == "auto" and zeros < AUTO_MIN_ZEROS:
        return False, f"{zeros:.0%} zeros < {AUTO_MIN_ZEROS:.0%}"
    return True, f"{zeros:.0%} zeros"


def choose_block(w2d: np.ndarray):
    """(br, bc) for dense weights (Cout, Cin): 8x1, else 4x1 if it stores <= BLOCK_OVERHEAD x nnz
    values, else 1x1. Returns (block, packed)."""
    nnz = int(np.count_nonzero(w2d))
    for blk in ((8, 1), (4, 1)):
        p = _core.sparse.spmm_pack(w2d, blk)
        if p.nblocks * blk[0] * blk[1] <= BLOCK_OVERHEAD * nnz:
            return blk, p
    return (1, 1), _core.sparse.spmm_pack(w2d, (1, 1))


def pack_sparse_weight(w2d: np.ndarray, block=None) -> bytes:
    """The SPARSE_F32 blob bytes of dense weights (Cout, Cin); block None = choose_block."""
    w2d = np.ascontiguousarray(w2d, dtype=np.float32)
    if block is None:
        block, p = choose_block(w2d)
    else:
        p = _core.sparse.spmm_pack(w2d, tuple(block))
    br, bc = p.block
    return (struct.pack("<4i", br, bc, p.nblocks, 0) + p.row_ptr.astype("<i4").tobytes()
            + p.col.astype("<i4").tobytes() + p.values.astype("<f4").tobytes())


def _emit_sparse(builder: ModelBuilder, n, graph, ids: dict) -> tuple:
    w2d = _weight_2d(n)
    block, _ = choose_block(w2d)
    blob = builder.add_blob(type=BlobType.SPARSE_F32, dims=w2d.shape, data=pack_sparse_weight(w2d, block))
    attrs = {"weight": blob, "activation": ACTIVATION[n.attrs.get("activation", "none")]}
    if n.params.get("bias") is not None:
        attrs["bias"] = builder.add_blob(np.ascontiguousarray(n.params["bias"], dtype=np.float32))
    ins = [ids[i] for i in n.inputs]
    if n.op == "conv2d":
        attrs["stride"] = n.attrs["stride"]
        if n.attrs.get("residual") is not None:
            ins.append(ids[n.attrs["residual"]])
        typ = SPARSE_OPS["conv1x1"]
    else:
        typ = SPARSE_OPS["linear"]
    ids[n.output] = builder.add_op(typ, n.name, ins, TensorInfo.of_shape(graph.shapes[n.output]), attrs)
    return block


def lower_sparse(graph, mode="auto", scheme: str = "fp32"):
    """fp32 lowering with eligible layers as sparse ops (module docstring). Returns (builder,
    output tensor id); ``builder.metadata['sparse']`` records each conv / linear layer's choice."""
    if scheme != "fp32":
        raise ValueError(f"sparse: scheme {scheme!r} has no sparse op (fp32 only)")
    builder = ModelBuilder(TensorInfo.of_shape(graph.input_shape))
    ids = {graph.input: builder.input}
    report = {}
    for n in graph.nodes:
        if n.op in ("conv2d", "linear"):
            use, why = sparse_decision(n, mode)
            if use:
                br, bc = _emit_sparse(builder, n, graph, ids)
                report[n.name] = f"sparse {br}x{bc}, {why}"
                continue
            report[n.name] = f"dense: {why}"
        lower_node(builder, n, graph, ids, scheme)
    if any(v.startswith("sparse") for v in report.values()):  # else the file equals sparse=False's
        builder.metadata["sparse"] = report
    return builder, ids[graph.output]
