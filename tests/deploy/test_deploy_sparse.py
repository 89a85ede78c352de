"""Sparse and binary weights in the deployed Engine: pruned models compiled with sparse ops
(deploy/lower/sparse.py -> runtime ops 200 sparse_conv1x1, 201 sparse_linear) agree with the dense fp32
engine on every ISA path at batch 1 and 3; files shrink and round-trip; corrupted sparse and
bit-packed blobs raise ValueError; b1_conv2d (op 300) against a numpy XNOR / sign convolution."""
import struct

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import deploy
from edgeopt.deploy.lower import sparse as sp
from edgeopt.deploy.format import ACTIVATION, BlobType, ModelBuilder, OpType, TensorInfo
from deploy_helpers import realistic, rel_err
from tolerances import TOL
from isa_paths import ISAS



@pytest.fixture(scope="module")
def pruned():
    """{(name, scope): 90 %-pruned model} for resnet20, mobilenet_v2 (global and per layer)."""
    eo.manual_seed(0)
    out = {}
    for i, name in enumerate(("resnet20", "mobilenet_v2")):
        m = realistic(eo.models.create(name), seed=i)
        for scope in ("global", "layer"):
            # BN statistics re-estimated after pruning (as after fine-tuning), so activations stay O(1)
            out[name, scope] = realistic(eo.prune.magnitude(m, 0.9, scope=scope), seed=i)
    return out


@pytest.fixture(scope="module")
def x3():
    return np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)


def _ops(engine):
    return [r["op"] for r in engine.summary()]


# ------------------------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2"])
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("mode", ["auto", True])
def test_sparse_engine_matches_dense_every_isa(pruned, x3, name, scope, mode):
    m = pruned[name, scope]
    dense = deploy.compile(m, sparse=False)
    assert "sparse_conv1x1" not in _ops(dense) and "sparse_linear" not in _ops(dense)
    eng = deploy.compile(m, sparse=mode)
    ops = _ops(eng)
    assert "sparse_linear" in ops  # the classifier (89-100 % zeros)
    if mode is True or name == "mobilenet_v2":
        assert "sparse_conv1x1" in ops
    ref3, ref1 = dense.run(x3), dense.run(x3[:1])
    if scope == "layer":  # every layer keeps 10 %: outputs depend on the input
        assert np.abs(ref3 - ref3.mean(axis=0)).max() > 1e-3 * np.abs(ref3).max()
    saved = eo._core.runtime.active_isa()
    try:
        for isa in ISAS:
            eo._core.runtime.set_isa(isa)
            assert rel_err(eng.run(x3), ref3) < TOL["f32"].rtol, (isa, name, scope, mode)
            assert rel_err(eng.run(x3[:1]), ref1) < TOL["f32"].rtol, (isa, name, scope, mode)
    finally:
        eo._core.runtime.set_isa(saved)


def test_resnet20_shortcuts_sparse_with_stride_residual_relu(pruned, x3):
    eng = deploy.compile(pruned["resnet20", "layer"], sparse=True)
    rows = [r for r in eng.summary() if r["op"] == "sparse_conv1x1"]
    assert len(rows) == 2 and all("stride 2x2" in r["info"] and "+residual" in r["info"]
                                  and "relu" in r["info"] for r in rows)
    ref = pruned["resnet20", "layer"].forward(x3)
    assert rel_err(eng.run(x3), ref) < TOL["f32"].rtol


def test_hardswish_epilogue_mobilenet_v3(x3):
    m = realistic(eo.prune.magnitude(eo.models.create("mobilenet_v3_small"), 0.9, scope="layer"), seed=3)
    eng = deploy.compile(m, sparse=True)
    infos = [r["info"] for r in eng.summary() if r["op"].startswith("sparse")]
    assert any("hardswish" in i for i in infos)
    assert rel_err(eng.run(x3), deploy.compile(m, sparse=False).run(x3)) < TOL["f32"].rtol


def test_threads_one_and_many(pruned, x3):
    eng = deploy.compile(pruned["mobilenet_v2", "layer"], sparse=True)
    n = eo.get_num_threads()
    try:
        eo.set_num_threads(1)
        y1 = eng.run(x3)
        eo.set_num_threads(max(2, n))
        y2 = eng.run(x3)
    finally:
        eo.set_num_threads(n)
    np.testing.assert_array_equal(y1, y2)


# ------------------------------------------------------------------------------------ choices, size
def test_auto_threshold_block_choice_and_metadata(pruned):
    dense_model = realistic(eo.models.create("resnet20"), seed=0)
    a = deploy.compile(dense_model)  # nothing is 70 % zero: identical to sparse=False
    assert a.to_bytes() == deploy.compile(dense_model, sparse=False).to_bytes()
    assert "sparse" not in a.metadata
    eng = deploy.compile(pruned["mobilenet_v2", "global"])
    report = eng.metadata["sparse"]
    assert any(v.startswith("dense: 3x3") for v in report.values())
    assert any(v.startswith("dense:") and "< 70%" in v for v in report.values())
    assert any(v.startswith("sparse 1x1") for v in report.values())
    # block rule: whole 8x1 blocks pruned -> 8x1; unstructured -> 1x1
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    keep = np.repeat(rng.random((8, 32)) >= 0.9, 8, axis=0)
    assert sp.choose_block(np.where(keep, w, 0).astype(np.float32))[0] == (8, 1)
    keep4 = np.repeat(rng.random((16, 32)) >= 0.9, 4, axis=0)  # 4x1 blocks: 8x1 would store ~2x
    assert sp.choose_block(np.where(keep4, w, 0).astype(np.float32))[0] == (4, 1)
    assert sp.choose_block(np.where(rng.random(w.shape) < 0.9, 0, w).astype(np.float32))[0] == (1, 1)
    bp = eo.prune.magnitude(realistic(eo.models.create("mobilenet_v2"), seed=1), 0.9, scope="layer", block=(8, 1))
    blocks = [r["info"] for r in deploy.compile(bp).summary() if r["op"] == "sparse_conv1x1"]
    assert blocks and all(i.startswith("sparse 8x1") for i in blocks)


def test_fp16_and_int8_weight_stay_dense(pruned):
    m = pruned["resnet20", "layer"]
    for scheme in ("fp16", "int8-weight"):
        assert not any(o.startswith("sparse") for o in _ops(deploy.compile(m, scheme)))
        with pytest.raises(ValueError, match="sparse"):
            deploy.compile(m, scheme, sparse=True)
    with pytest.raises(ValueError, match="sparse"):
        deploy.compile(m, sparse="yes")


def test_size_shrinks_and_round_trip(pruned, x3, tmp_path):
    m = pruned["mobilenet_v2", "layer"]
    dense, eng = deploy.compile(m, sparse=False), deploy.compile(m)
    assert eng.size_bytes < 0.4 * dense.size_bytes, (eng.size_bytes, dense.size_bytes)
    path = tmp_path / "m.edgeopt"
    eng.save(path)
    assert path.stat().st_size == eng.size_bytes
    back = deploy.load(path)
    assert back.to_bytes() == eng.to_bytes()
    np.testing.assert_array_equal(back.run(x3), eng.run(x3))
    assert back.metadata["sparse"] == eng.metadata["sparse"]


# ------------------------------------------------------------------------------------ corrupted blobs
def _sparse_file(blob: bytes, cout=16, cin=8, hw=(5, 4), bias=True, op="conv1x1", dims=None):
    if op == "conv1x1":
        b = ModelBuilder(TensorInfo(cin, *hw))
        x, out = b.input, TensorInfo(cout, *hw)
    else:  # the graph input is rank 4: (cin, 1, 1) -> flatten -> linear
        b = ModelBuilder(TensorInfo(cin, 1, 1))
        x = b.add_op(OpType.FLATTEN, "flatten", [b.input], TensorInfo(cin, rank=2))
        out = TensorInfo(cout, rank=2)
    attrs = {"weight": b.add_blob(type=BlobType.SPARSE_F32, dims=dims or (cout, cin), data=blob),
             "activation": ACTIVATION["relu"]}
    if bias:
        attrs["bias"] = b.add_blob(np.linspace(-1, 1, cout, dtype=np.float32))
    y = b.add_op(sp.SPARSE_OPS[op], "sp", [x], out, attrs)
    return b.to_bytes(y, {})


def _weights(cout=16, cin=8, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((cout, cin)) < 0.7, 0, rng.standard_normal((cout, cin))).astype(np.float32)


@pytest.mark.parametrize("op", ["conv1x1", "linear"])
@pytest.mark.parametrize("block", [(1, 1), (4, 1), (8, 1)])
def test_hand_built_sparse_op_matches_numpy(op, block, rng):
    w = _weights()
    bias = np.linspace(-1, 1, 16, dtype=np.float32)
    e = deploy.Engine(_sparse_file(sp.pack_sparse_weight(w, block), op=op))
    if op == "conv1x1":
        x = rng.standard_normal((3, 8, 5, 4)).astype(np.float32)
        want = np.maximum(np.einsum("ok,nkhw->nohw", w, x) + bias[None, :, None, None], 0)
    else:
        x = rng.standard_normal((3, 8, 1, 1)).astype(np.float32)
        want = np.maximum(x[:, :, 0, 0] @ w.T + bias, 0)
    for n in (1, 3):
        np.testing.assert_allclose(e.run(x[:n]), want[:n], rtol=TOL["f32-op"].rtol, atol=TOL["f32-op"].atol)


def _mutants(blob: bytes, cout=16):
    """(description, corrupted blob) pairs for a 1x1-block blob of a (16, 8) weight."""
    br, bc, nb, _ = struct.unpack_from("<4i", blob)
    nbr = -(-cout // br)
    rp_at, col_at = 16, 16 + 4 * (nbr + 1)
    out = []

    def put(desc, fmt, at, *vals):
        b = bytearray(blob)
        struct.pack_into(fmt, b, at, *vals)
        out.append((desc, bytes(b)))

    put("col index out of range", "<i", col_at, 8)
    put("negative col index", "<i", col_at + 4, -1)
    put("huge col index", "<i", col_at, 2**31 - 1)
    rp = struct.unpack_from(f"<{nbr + 1}i", blob, rp_at)
    mid = next(i for i in range(1, nbr) if rp[i] > 0)
    put("non-monotone row_ptr", "<i", rp_at + 4 * mid, rp[nbr] + 1 if rp[mid + 1] <= rp[nbr] else 0)
    put("row_ptr[0] != 0", "<i", rp_at, 1)
    put("row_ptr end != nblocks", "<i", rp_at + 4 * nbr, nb - 1)
    put("wrong nnz (block count)", "<i", 8, nb + 1)
    put("block count smaller", "<i", 8, nb - 1)
    put("negative block count", "<i", 8, -5)
    put("unsupported block shape", "<2i", 0, 3, 1)
    put("zero block shape", "<2i", 0, 0, 0)
    put("header word 3", "<i", 12, 7)
    out.append(("truncated", blob[:-4]))
    out.append(("extra bytes", blob + bytes(4)))
    out.append(("header only", blob[:16]))
    out.append(("shorter than header", blob[:10]))
    out.append(("empty", b""))
    return out


@pytest.mark.parametrize("op", ["conv1x1", "linear"])
def test_corrupted_sparse_blobs_raise_value_error(op):
    blob = sp.pack_sparse_weight(_weights(), (1, 1))
    deploy.Engine(_sparse_file(blob, op=op))  # the original loads
    for desc, bad in _mutants(blob):
        with pytest.raises(ValueError):
            deploy.Engine(_sparse_file(bad, op=op))
            pytest.fail(desc)
    # a block shape with no kernel (1x4: the header's bc patched), wrong dims
    b14 = bytearray(blob)
    b14[4:8] = struct.pack("<i", 4)
    with pytest.raises(ValueError):
        deploy.Engine(_sparse_file(bytes(b14), op=op))
    with pytest.raises(ValueError):
        deploy.Engine(_sparse_file(blob, dims=(16, 9), op=op))


def test_random_byte_mutants_of_sparse_blob_never_crash():
    """Random corruptions of the blob bytes: each loads (and runs) or raises ValueError."""
    blob = sp.pack_sparse_weight(_weights(), (1, 1))
    rng = np.random.default_rng(5)
    x = np.ones((2, 8, 5, 4), np.float32)
    for _ in range(400):
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(b)))
            b[at] = int(rng.integers(0, 256))
        try:
            e = deploy.Engine(_sparse_file(bytes(b)))
        except ValueError:
            continue
        assert e.run(x).shape == (2, 16, 5, 4)


def test_corrupted_compiled_file_raises(pruned):
    """Mutate the sparse blob inside a compiled model file (checksums rewritten): ValueError."""
    from edgeopt.deploy.format import HEADER_BYTES, SECTION_BLOBS, SECTION_BYTES, rewrite_checksums

    data = deploy.compile(pruned["resnet20", "layer"], sparse=True).to_bytes()
    n = struct.unpack_from("<I", data, 12)[0]
    blobs_off = next(off for i in range(n)
                     for typ, _, off, _, _, _ in [struct.unpack_from("<IIQQII", data, HEADER_BYTES + SECTION_BYTES * i)]
                     if typ == SECTION_BLOBS)
    count = struct.unpack_from("<I", data, blobs_off)[0]
    hits = 0
    for i in range(count):
        tag, rank, _, _, d0, d1, _, _, off, size, _ = struct.unpack_from("<BBHI4qQQQ", data, blobs_off + 8 + 64 * i)
        if tag != BlobType.SPARSE_F32:
            continue
        at = blobs_off + off
        br, bc, nb, _ = struct.unpack_from("<4i", data, at)
        nbr = -(-d0 // br)
        bad = bytearray(data)
        struct.pack_into("<i", bad, at + 16 + 4 * (nbr + 1), d1)  # first col index = Cin
        with pytest.raises(ValueError, match="column index"):
            deploy.Engine(rewrite_checksums(bytes(bad)))
        hits += 1
    assert hits >= 3  # two shortcut convs and the fc


# ------------------------------------------------------------------------------------ binary
def _b1_blob(w: np.ndarray, alpha: np.ndarray) -> bytes:
    cout = w.shape[0]
    bits = (w.reshape(cout, -1) >= 0).astype(np.uint8)
    return alpha.astype("<f4").tobytes() + np.packbits(bits, axis=1, bitorder="little").tobytes()


def _b1_file(w, alpha, bias, x_shape, stride, padding, pad_value, act, blob=None, residual=False, threshold=None):
    """One b1_conv2d; residual=True adds the input itself as its skip connection (identity shortcut);
    threshold: the per-input-channel blob (float32 bytes as given)."""
    cout, cin, kh, kw = w.shape
    _, h, wd = x_shape
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (wd + 2 * padding[1] - kw) // stride[1] + 1
    b = ModelBuilder(TensorInfo(cin, h, wd))
    attrs = {"weight": b.add_blob(type=BlobType.BITPACKED_B1, dims=w.shape, data=blob if blob is not None else _b1_blob(w, alpha)),
             "stride": stride, "padding": padding, "pad_value": pad_value, "activation": ACTIVATION[act]}
    if bias is not None:
        attrs["bias"] = b.add_blob(bias)
    if threshold is not None:
        attrs["threshold"] = b.add_blob(threshold)
    y = b.add_op(OpType.B1_CONV2D, "b1", [b.input] * (2 if residual else 1), TensorInfo(cout, oh, ow), attrs)
    return b.to_bytes(y, {})


def _b1_reference(x, w, alpha, bias, stride, padding, pad_value, act, residual=False, threshold=None):
    """numpy: sign(x) (0 -> +1; or x >= threshold[c]) padded with pad_value, conv with sign(w),
    alpha * dot + bias (+ x, the identity shortcut), then the activation; float32 steps as the
    runtime's."""
    n, c, h, wd = x.shape
    cout, _, kh, kw = w.shape
    t = 0 if threshold is None else threshold[None, :, None, None]
    sx = np.where(x >= t, 1, -1).astype(np.int64)
    sx = np.pad(sx, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=pad_value)
    sw = np.where(w >= 0, 1, -1).astype(np.int64)
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (wd + 2 * padding[1] - kw) // stride[1] + 1
    dot = np.zeros((n, cout, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = sx[:, :, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1]]
            dot += np.einsum("nchw,oc->nohw", patch, sw[:, :, i, j])
    y = alpha[None, :, None, None] * dot.astype(np.float32)
    if bias is not None:
        y = y + bias[None, :, None, None]
    if residual:
        y = y + x
    if act == "relu":
        y = np.maximum(y, 0)
    elif act == "relu6":
        y = np.clip(y, 0, 6)
    return y.astype(np.float32)


@pytest.mark.parametrize("cout,cin,hw,k,stride,padding,pad_value,act,residual,thr", [
    (6, 5, (7, 6), 3, (1, 1), (1, 1), 0, "none", False, False),
    (6, 70, (7, 6), 3, (2, 2), (1, 1), -1, "relu", False, True),
    (6, 3, (7, 6), 1, (1, 1), (0, 0), 0, "relu6", False, False),
    (6, 16, (7, 6), 3, (2, 1), (1, 0), 1, "none", False, True),
    (40, 64, (16, 16), 3, (1, 1), (1, 1), 0, "relu", False, False),  # large enough for the threaded paths
    (9, 9, (7, 6), 3, (1, 1), (1, 1), 0, "relu", True, True),        # a fused identity shortcut
    (64, 64, (16, 16), 3, (1, 1), (1, 1), 1, "relu6", True, True),
])
def test_b1_conv2d_matches_numpy_xnor(rng, cout, cin, hw, k, stride, padding, pad_value, act, residual, thr):
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    alpha = np.abs(w).reshape(cout, -1).mean(axis=1).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal((3, cin) + hw).astype(np.float32)
    x[0, 0, 0, :3] = 0.0  # sign(0) = +1
    threshold = rng.uniform(-1, 1, cin).astype(np.float32) if thr else None
    if thr:
        x[1, :, 0, 0] = threshold   # x == threshold: +1
    e = deploy.Engine(_b1_file(w, alpha, bias, x.shape[1:], stride, padding, pad_value, act, residual=residual,
                               threshold=threshold))
    want = _b1_reference(x, w, alpha, bias, stride, padding, pad_value, act, residual, threshold)
    saved = eo._core.runtime.active_isa()
    try:
        for isa in ISAS:
            eo._core.runtime.set_isa(isa)
            np.testing.assert_array_equal(e.run(x), want, err_msg=isa)  # bit for bit (b1-gemm.h)
            np.testing.assert_array_equal(e.run(x[1:2]), want[1:2], err_msg=isa)
    finally:
        eo._core.runtime.set_isa(saved)
    assert e.summary()[0]["op"] == "b1_conv2d" and ("+res" in e.summary()[0]["info"]) == residual
    assert e.weight_bytes == len(_b1_blob(w, alpha))  # 1 bit per weight + alpha (bias not counted)


def test_b1_conv2d_bad_blobs_raise(rng):
    w = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    alpha = np.ones(4, np.float32)
    good = _b1_blob(w, alpha)
    args = (w, alpha, None, (5, 7, 6), (1, 1), (1, 1), 0, "none")
    deploy.Engine(_b1_file(*args))
    nan_alpha = bytearray(good)
    struct.pack_into("<f", nan_alpha, 0, float("nan"))
    for bad in (good[:-1], good + b"\0", bytes(nan_alpha), b""):
        with pytest.raises(ValueError):
            deploy.Engine(_b1_file(*args, blob=bad))
    with pytest.raises(ValueError):  # kernel larger than the padded input
        deploy.Engine(_b1_file(w, alpha, None, (5, 1, 1), (1, 1), (0, 0), 0, "none"))
    with pytest.raises(ValueError):  # pad_value out of range
        deploy.Engine(_b1_file(w, alpha, None, (5, 7, 6), (1, 1), (1, 1), 2, "none"))
    with pytest.raises(ValueError, match="residual"):  # a skip connection shaped unlike the output
        deploy.Engine(_b1_file(*args, residual=True))
    with pytest.raises(ValueError, match="threshold"):  # one per input channel
        deploy.Engine(_b1_file(*args, threshold=np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="threshold: not finite at channel 2"):
        deploy.Engine(_b1_file(*args, threshold=np.float32([0, 1, np.nan, 0, 0])))


def _b1_graph(convs, x_shape, two_readers=False, output=-1):
    """b1_conv2d ops, each reading the previous one's output (the first the input): convs =
    [(w, alpha, bias, stride, padding, pad_value, act, threshold, residual)], residual True adding
    the conv's own input, "input" the model's input. two_readers: the model's output is the first
    conv's output plus the last's (same shapes), so the first output has two readers. output: the
    conv whose output is the model's (the later ones still run)."""
    b = ModelBuilder(TensorInfo(*x_shape))
    t, shape = b.input, x_shape
    outs = []
    for i, (w, alpha, bias, stride, padding, pad_value, act, thr, res) in enumerate(convs):
        cout, _, kh, kw = w.shape
        oh = (shape[1] + 2 * padding[0] - kh) // stride[0] + 1
        ow = (shape[2] + 2 * padding[1] - kw) // stride[1] + 1
        attrs = {"weight": b.add_blob(type=BlobType.BITPACKED_B1, dims=w.shape, data=_b1_blob(w, alpha)),
                 "stride": stride, "padding": padding, "pad_value": pad_value, "activation": ACTIVATION[act]}
        if bias is not None:
            attrs["bias"] = b.add_blob(bias)
        if thr is not None:
            attrs["threshold"] = b.add_blob(thr)
        shape = (cout, oh, ow)
        ins = [t, b.input] if res == "input" else [t] * (2 if res else 1)
        t = b.add_op(OpType.B1_CONV2D, f"b1_{i}", ins, TensorInfo(*shape), attrs)
        outs.append(t)
    if two_readers:
        t = b.add_op(OpType.ADD, "add", [outs[0], t], TensorInfo(*shape), {})
    return b.to_bytes(t if two_readers else outs[output], {})


def _conv(rng, cin, cout, k, stride=1, padding=1, pad_value=0, act="relu", bias=True, thr=False, alpha_sign=1.0,
          res=False):
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    alpha = (alpha_sign * np.abs(w).reshape(cout, -1).mean(axis=1)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    t = rng.uniform(-1, 1, cin).astype(np.float32) if thr else None
    return (w, alpha, b, (stride, stride), (padding, padding), pad_value, act, t, res)


LINK_CHAINS = {  # name: (input shape, convs (cin, cout, k, stride, padding, pad_value, act, thr), links)
    # resnet20's first stage on 16-bit planes, and a writer that is also a reader (3 convs)
    "16-bit planes": ((16, 32, 32), [(16, 16, 3, 1, 1, 0, "relu", False), (16, 16, 3, 1, 1, 0, "none", True)], 1),
    "chain of three": ((8, 16, 16), [(8, 32, 3, 1, 1, 0, "relu6", False), (32, 32, 3, 1, 1, 1, "none", True),
                                     (32, 10, 3, 2, 1, -1, "relu", True)], 2),
    # two rows per vector, 7 pixels wide, two words per pixel in the writer
    "7x7 rows": ((40, 7, 7), [(40, 9, 3, 1, 1, 0, "none", False), (9, 5, 3, 1, 1, 1, "relu", True)], 1),
    # resnet's stride-2 shortcut (1x1) as the reader
    "1x1 s2 reader": ((16, 16, 16), [(16, 16, 3, 1, 1, 0, "relu", False), (16, 32, 1, 2, 0, 0, "none", True)], 1),
}


@pytest.mark.parametrize("name", list(LINK_CHAINS))
def test_b1_convs_hand_off_bit_planes_exactly(rng, name):
    """A b1_conv2d whose output only another b1_conv2d reads writes that conv's bit planes (where
    the CPU has the direct path): the summary says so, and the output equals numpy's convs over
    the f32 values bit for bit, on every ISA path (the link is made at load; the other paths pass
    f32), at batch 1 and 3 and 1 or 2 threads, and equals an Engine loaded without links."""
    shape, spec, links = LINK_CHAINS[name]
    convs = [_conv(rng, cin, cout, k, s, p, pv, act, thr=thr) for cin, cout, k, s, p, pv, act, thr in spec]
    data = _b1_graph(convs, shape)
    x = rng.standard_normal((3,) + shape).astype(np.float32)
    want = x
    for w, alpha, bias, stride, padding, pv, act, thr, _ in convs:
        want = _b1_reference(want, w, alpha, bias, stride, padding, pv, act, threshold=thr)
    isa, threads = eo._core.runtime.active_isa(), eo.get_num_threads()
    try:
        for load in ISAS:  # an Engine loaded on each path (links on AVX-512's direct one), run on each
            eo._core.runtime.set_isa(load)
            e = deploy.Engine(data)
            saved = eo._core.testing.set_plane_links(False)
            try:
                plain = deploy.Engine(data)
            finally:
                eo._core.testing.set_plane_links(saved)
            info = [r["info"] for r in e.summary()]
            direct = load == "avx512" and eo._core.runtime.cpu_has_avx512icl()
            assert sum("out:bits" in i for i in info) == (links if direct else 0), info
            assert sum("in:bits" in i for i in info) == (links if direct else 0), info
            assert not any("bits" in r["info"] for r in plain.summary())
            for path in ISAS:
                eo._core.runtime.set_isa(path)
                for n in (1, 2):
                    eo.set_num_threads(n)
                    msg = f"loaded on {load}, run on {path}, {n} threads"
                    np.testing.assert_array_equal(e.run(x), want, err_msg=msg)
                    np.testing.assert_array_equal(e.run(x[2:]), want[2:], err_msg=msg)
                    np.testing.assert_array_equal(plain.run(x), want, err_msg=msg + ", no links")
    finally:
        eo._core.runtime.set_isa(isa)
        eo.set_num_threads(threads)


def test_b1_conv_reading_bit_planes_adds_another_tensor_as_its_residual(rng):
    """The reader of a link may still add a skip connection from elsewhere (here the model's
    input): linked on the direct path, and numpy's result bit for bit."""
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    convs = [_conv(rng, 8, 8, 3, act="none"), _conv(rng, 8, 8, 3, thr=True, res="input")]
    e = deploy.Engine(_b1_graph(convs, x.shape[1:]))
    direct = eo._core.runtime.active_isa() == "avx512" and eo._core.runtime.cpu_has_avx512icl()
    info = [r["info"] for r in e.summary()]
    assert ("in:bits" in info[1] and "+res" in info[1]) == direct, info
    (w1, a1, b1, s1, p1, v1, act1, t1, _), (w2, a2, b2, s2, p2, v2, act2, t2, _) = convs
    mid = _b1_reference(x, w1, a1, b1, s1, p1, v1, act1, threshold=t1)
    # the skip connection is x itself: _b1_reference's residual adds the conv's input, so add x
    # by hand instead (same float32 order: the dot's product, the bias, then the residual)
    want = _b1_reference(mid, w2, a2, b2, s2, p2, v2, "none", threshold=t2) + x
    want = np.maximum(want, 0).astype(np.float32)
    np.testing.assert_array_equal(e.run(x), want)


def test_b1_convs_keep_f32_where_planes_cannot_stand_in(rng):
    """No link where the output has a second reader, is the model's output, where the writer adds
    a residual (its bits would depend on it), where a negative scale makes the bit fall as the dot
    grows, or where the planes would not fit the f32 tensor's buffer (one channel of 40-pixel
    rows); the outputs still equal numpy's."""
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    x40 = rng.standard_normal((2, 8, 3, 40)).astype(np.float32)
    cases = {  # label: (input, convs, two readers, the model's output)
        "two readers": (x, [_conv(rng, 8, 8, 3), _conv(rng, 8, 8, 3, act="none")], True, -1),
        "model output": (x, [_conv(rng, 8, 8, 3), _conv(rng, 8, 4, 3)], False, 0),
        "residual writer": (x, [_conv(rng, 8, 8, 3, res=True), _conv(rng, 8, 4, 3)], False, -1),
        "negative scale": (x, [_conv(rng, 8, 8, 3, act="none", alpha_sign=-1.0), _conv(rng, 8, 4, 3, thr=True)],
                           False, -1),
        "planes too big": (x40, [_conv(rng, 8, 1, 3), _conv(rng, 1, 4, 3)], False, -1),
    }
    for label, (xin, convs, two, output) in cases.items():
        e = deploy.Engine(_b1_graph(convs, xin.shape[1:], two_readers=two, output=output))
        assert not any("bits" in r["info"] for r in e.summary()), label
        outs, want = [], xin
        for w, alpha, bias, stride, padding, pv, act, thr, res in convs:
            want = _b1_reference(want, w, alpha, bias, stride, padding, pv, act, residual=res, threshold=thr)
            outs.append(want)
        want = outs[0] + outs[-1] if two else outs[output]
        np.testing.assert_array_equal(e.run(xin), want, err_msg=label)


def test_bad_sparse_op_attrs_and_inputs_raise():
    blob = sp.pack_sparse_weight(_weights(), (1, 1))

    def conv_file(residual_info=None, **attrs):
        b = ModelBuilder(TensorInfo(8, 5, 4))
        ins = [b.input]
        if residual_info is not None:
            ins.append(b.add_op(OpType.ACTIVATION, "r", [b.input], residual_info, {"kind": 1}))
        a = {"weight": b.add_blob(type=BlobType.SPARSE_F32, dims=(16, 8), data=blob)}
        a.update(attrs)
        y = b.add_op(sp.SPARSE_OPS["conv1x1"], "sp", ins, TensorInfo(16, 5, 4), a)
        return b.to_bytes(y, {})

    deploy.Engine(conv_file(activation=3))
    for bad in (conv_file(activation=4), conv_file(activation=-1), conv_file(stride=(0, 1)),
                conv_file(stride=(1,)), conv_file(residual_info=TensorInfo(8, 5, 4)),
                conv_file(stride=(2, 2))):  # declared output (16, 5, 4) != computed (16, 3, 2)
        with pytest.raises(ValueError):
            deploy.Engine(bad)
