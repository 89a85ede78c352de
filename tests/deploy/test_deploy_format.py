"""The .edgeopt file: hand-built graphs for each op against the fp32 kernels, every loader check
naming its problem, untrusted names and numbers (metadata depth and size, UTF-8 names, finite
scales), and seeded mutation fuzzing (every mutant loads, prints and runs, or raises ValueError:
never a crash)."""
import gc
import json
import re
import struct

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import deploy
from edgeopt.deploy import format as fmt
from edgeopt.deploy.format import ACTIVATION, BlobType, ModelBuilder, OpType, TensorInfo
from edgeopt.nn import functional as F
from deploy_helpers import realistic, rel_err
from tolerances import TOL
from isa_paths import ISAS


class fmt_blob:
    """A blob given as its type tag, dims and raw bytes (the bit-packed encodings)."""

    def __init__(self, tag, dims, data):
        self.tag, self.dims, self.data = tag, dims, data


def build(ops, x_info=TensorInfo(4, 9, 9), meta=None):
    """ModelBuilder from [(type, inputs, TensorInfo, attrs)] where blob attrs are numpy arrays
    (or fmt_blob)."""
    b = ModelBuilder(x_info)
    t = 0
    for typ, inputs, out, attrs in ops:
        attrs = {k: (b.add_blob(v) if isinstance(v, np.ndarray)
                     else b.add_blob(type=v.tag, dims=v.dims, data=v.data) if isinstance(v, fmt_blob) else v)
                 for k, v in attrs.items()}
        t = b.add_op(typ, f"op{len(b.ops)}", inputs, out, attrs)
    return b.to_bytes(t, meta or {"scheme": "test"})


def engine(data):
    return deploy.Engine(data)


# ---------------------------------------------------------------------------- ops
@pytest.mark.parametrize("cin,cout,k,stride,pad,groups", [
    (4, 6, 3, 1, 1, 1), (4, 6, 3, 2, 0, 2), (4, 8, 3, 1, 1, 4), (4, 4, 5, 2, 2, 4), (4, 5, 1, 1, 0, 1),
    (4, 3, 1, 2, 0, 1), (4, 7, (3, 1), (1, 2), (1, 0), 1), (4, 33, 3, 1, 1, 1),
    # stride 1, output rows as wide as the input (the direct conv path on AVX-512), with kernels
    # that are not 3 wide, padded rows that shrink or grow the output, and 8 x 48 tiles
    (4, 6, 5, 1, 2, 1), (4, 7, (1, 3), 1, (0, 1), 1), (4, 7, (3, 1), 1, (1, 0), 1),
    (4, 6, 3, 1, (0, 1), 1), (4, 6, 3, 1, (2, 1), 1), (4, 9, 7, 1, 3, 1),
])
@pytest.mark.parametrize("act", ["none", "relu", "relu6", "hardswish"])
def test_conv2d_op(rng, cin, cout, k, stride, pad, groups, act):
    """conv2d (grouped, depthwise with multiplier, strided, non-square) + bias + residual + act;
    the residual is another conv's output."""
    kh, kw = (k, k) if np.isscalar(k) else k
    st = (stride, stride) if np.isscalar(stride) else stride
    pd = (pad, pad) if np.isscalar(pad) else pad
    w = rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32)
    wr = rng.standard_normal((cout, cin, kh, kw)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal((5, cin, 9, 9)).astype(np.float32)
    y = F.conv2d(x, w, bias, st, pd, groups)
    r = F.conv2d(x, wr, None, st, pd, 1)
    ref = F.add(y, r)
    if act != "none":
        ref = getattr(F, act)(ref)
    out = TensorInfo(cout, y.shape[2], y.shape[3])
    e = engine(build([
        (OpType.CONV2D, [0], out, {"weight": wr, "stride": st, "padding": pd, "groups": 1}),
        (OpType.CONV2D, [0, 1], out, {"weight": w, "bias": bias, "stride": st, "padding": pd,
                                      "groups": groups, "activation": ACTIVATION[act]}),
    ]))
    for n in (1, 2, 5):
        assert rel_err(e.run(x[:n]), ref[:n]) < TOL["f32-op"].rtol


def test_conv_residual_and_linear_ops(rng):
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    w1 = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    wl = rng.standard_normal((7, 4 * 36)).astype(np.float32)
    bl = rng.standard_normal(7).astype(np.float32)
    data = build([
        (OpType.CONV2D, [0], TensorInfo(4, 6, 6), {"weight": w1, "stride": (1, 1), "padding": (1, 1), "groups": 1}),
        (OpType.CONV2D, [1, 0], TensorInfo(4, 6, 6), {"weight": w2, "stride": (1, 1), "padding": (1, 1), "groups": 4,
                                                      "activation": ACTIVATION["relu"]}),
        (OpType.FLATTEN, [2], TensorInfo(144, rank=2), {}),
        (OpType.LINEAR, [3], TensorInfo(7, rank=2), {"weight": wl, "bias": bl, "activation": ACTIVATION["relu6"]}),
    ], TensorInfo(4, 6, 6))
    a = F.conv2d(x, w1, None, 1, 1, 1)
    b = F.relu(F.add(F.conv2d(a, w2, None, 1, 1, 4), x))
    ref = F.relu6(F.linear(b.reshape(3, -1), wl, bl))
    e = engine(data)
    assert e.output_shape == (7,)
    assert rel_err(e.run(x), ref) < TOL["f32-op"].rtol
    assert rel_err(e.run(x[2:]), ref[2:]) < TOL["f32-op"].rtol


def test_basic_ops(rng):
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32) * 4
    s = rng.uniform(0.5, 2, 4).astype(np.float32)
    h = rng.standard_normal(4).astype(np.float32)
    data = build([
        (OpType.MAXPOOL2D, [0], TensorInfo(4, 5, 5), {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)}),  # 1
        (OpType.AVGPOOL2D, [0], TensorInfo(4, 4, 4), {"kernel": (3, 3), "stride": (2, 2), "padding": (0, 0)}),  # 2
        (OpType.AVGPOOL2D, [0], TensorInfo(4, 5, 5), {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1),
                                                      "count_include_pad": 0}),  # 3
        (OpType.ADD, [1, 3], TensorInfo(4, 5, 5), {"activation": ACTIVATION["hardswish"]}),  # 4
        (OpType.CHANNEL_AFFINE, [4], TensorInfo(4, 5, 5), {"scale": s, "shift": h}),  # 5
        (OpType.GLOBAL_AVGPOOL2D, [5], TensorInfo(4, 1, 1), {}),  # 6
        (OpType.ACTIVATION, [6], TensorInfo(4, 1, 1), {"kind": ACTIVATION["sigmoid"]}),  # 7
        (OpType.ACTIVATION, [5], TensorInfo(4, 5, 5), {"kind": ACTIVATION["hardsigmoid"]}),  # 8
        (OpType.CHANNEL_SCALE, [8, 7], TensorInfo(4, 5, 5), {}),  # 9
        (OpType.ACTIVATION, [9], TensorInfo(4, 5, 5), {"kind": ACTIVATION["relu"]}),  # 10
    ])
    m = F.max_pool2d(x, 3, 2, 1)
    a3 = F.avg_pool2d(x, 3, 2, 1, False)
    t4 = F.hardswish(F.add(m, a3))
    t5 = (t4 * s[None, :, None, None] + h[None, :, None, None]).astype(np.float32)
    t7 = F.sigmoid(F.global_avg_pool2d(t5))
    t8 = F.hardsigmoid(t5)
    ref = F.relu(F.channel_scale(t8, np.ascontiguousarray(t7.reshape(2, 4))))
    e = engine(data)
    assert rel_err(e.run(x), ref) < TOL["f32-op"].rtol


def test_weight_dtypes_in_ops(rng):
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    h = w.astype(np.float16)
    q = rng.integers(-127, 128, w.shape).astype(np.int8)
    sc = rng.uniform(0.01, 0.1, 6).astype(np.float32)
    conv = lambda wt, **kw: build([(OpType.CONV2D, [0], TensorInfo(6, 9, 9),
                                    {"weight": wt, "stride": (1, 1), "padding": (1, 1), "groups": 1, **kw})])
    assert rel_err(engine(conv(h)).run(x), F.conv2d(x, h.astype(np.float32), None, 1, 1, 1)) < TOL["f32-op"].rtol
    wq = q.astype(np.float32) * sc[:, None, None, None]
    assert rel_err(engine(conv(q, weight_scale=sc)).run(x), F.conv2d(x, wq, None, 1, 1, 1)) < TOL["f32-op"].rtol
    with pytest.raises(ValueError, match="weight_scale"):
        engine(conv(q))
    with pytest.raises(ValueError, match="weight_scale"):
        engine(conv(w, weight_scale=sc))
    # 4- and 2-bit codes, bit-packed rows
    for bits, tag in ((4, BlobType.I4), (2, BlobType.I2)):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        c = rng.integers(lo, hi + 1, w.shape).astype(np.int8)
        packed = eo._core.quant.quant_pack_codes(c.reshape(6, -1), bits).tobytes()
        wc = c.astype(np.float32) * sc[:, None, None, None]
        blob = fmt_blob(tag, w.shape, packed)
        assert rel_err(engine(conv(blob, weight_scale=sc)).run(x), F.conv2d(x, wc, None, 1, 1, 1)) < TOL["f32-op"].rtol
        with pytest.raises(ValueError, match="bytes for 6 rows"):
            engine(conv(fmt_blob(tag, w.shape, packed[:-1]), weight_scale=sc))
        with pytest.raises(ValueError, match="weight_scale"):
            engine(conv(blob))
    with pytest.raises(ValueError, match="outside the 4-bit codes"):
        eo._core.quant.quant_pack_codes(np.full((2, 3), 8, np.int8), 4)


# ---------------------------------------------------------------------------- loader checks
def small_file(scheme="fp32"):
    eo.manual_seed(1)
    m = eo.nn.Sequential(
        eo.nn.Conv2d(3, 8, 3, padding=1, bias=False), eo.nn.BatchNorm2d(8), eo.nn.ReLU(),
        eo.nn.ResidualBlock(eo.nn.Sequential(eo.nn.Conv2d(8, 8, 3, padding=1, groups=8), eo.nn.BatchNorm2d(8)),
                            activation=eo.nn.ReLU6()),
        eo.nn.SqueezeExcitation(8, 4), eo.nn.BatchNorm2d(8), eo.nn.HardSwish(),
        eo.nn.MaxPool2d(2), eo.nn.AvgPool2d(2), eo.nn.GlobalAvgPool2d(), eo.nn.Flatten(), eo.nn.Linear(8, 5))
    realistic(m, size=12)
    return m, deploy.compile(m, scheme, input_shape=(1, 3, 12, 12)).to_bytes()


def test_small_model_kinds():
    m, data = small_file()
    e = engine(data)
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    assert rel_err(e.run(x), m.forward(x)) < TOL["f32"].rtol
    ops = [r["op"] for r in e.summary()]
    assert {"channel_affine", "channel_scale", "maxpool2d", "avgpool2d", "linear", "flatten"} <= set(ops)


def _with_graph(data, mutate):
    """Rebuild a file with its graph section passed through mutate(bytearray)."""
    secs = fmt.read_sections(data)
    g = bytearray(secs[fmt.SECTION_GRAPH])
    mutate(g)
    return fmt.assemble([(fmt.SECTION_META, secs[fmt.SECTION_META]), (fmt.SECTION_GRAPH, bytes(g)),
                         (fmt.SECTION_BLOBS, secs[fmt.SECTION_BLOBS])])


def test_loader_names_the_problem():
    _, data = small_file()
    engine(data)
    cases = {
        "bad magic": b"XDGEOPT\0" + data[8:],
        "header checksum": data[:8] + struct.pack("<I", 2) + data[12:],
        "truncated": data[:-64],
        "extended": data + bytes(64),
        "checksum mismatch": data[:-1] + bytes([data[-1] ^ 1]),
    }
    for what, bad in cases.items():
        with pytest.raises(ValueError, match=what):
            engine(bad)
    with pytest.raises(ValueError, match="version"):
        engine(fmt.rewrite_checksums(data[:8] + struct.pack("<I", 9) + data[12:]))
    with pytest.raises(ValueError, match="not an .edgeopt"):
        engine(b"")
    with pytest.raises(TypeError):
        deploy.Engine("not bytes")

    def set_op_field(field_offset, value, fmt_char="<I"):
        def f(g):
            nt = struct.unpack_from("<I", g, 0)[0]
            struct.pack_into(fmt_char, g, 16 + 32 * nt + field_offset, value)
        return f

    with pytest.raises(ValueError, match="unknown op type id 999"):
        engine(_with_graph(data, set_op_field(0, 999)))
    with pytest.raises(ValueError, match="defined twice|used before|not declared"):
        engine(_with_graph(data, set_op_field(8, 0, "<i")))  # output = the input tensor
    with pytest.raises(ValueError, match="trailing bytes"):
        engine(_with_graph(data, lambda g: g.extend(b"\0\0\0\0")))
    with pytest.raises(ValueError, match="truncated"):
        engine(_with_graph(data, lambda g: g.__delitem__(slice(len(g) - 3, None))))
    secs = fmt.read_sections(data)
    bad_meta = fmt.assemble([(fmt.SECTION_META, b"{not json"), (fmt.SECTION_GRAPH, secs[fmt.SECTION_GRAPH]),
                             (fmt.SECTION_BLOBS, secs[fmt.SECTION_BLOBS])])
    with pytest.raises(ValueError, match="metadata"):
        engine(bad_meta)
    with pytest.raises(ValueError, match="missing section"):
        engine(fmt.assemble([(fmt.SECTION_META, b"{}"), (fmt.SECTION_GRAPH, secs[fmt.SECTION_GRAPH])]))


def test_graph_checks_via_builder(rng):
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    good = {"weight": w, "stride": (1, 1), "padding": (1, 1), "groups": 1}
    conv = lambda out=TensorInfo(6, 9, 9), **kw: build([(OpType.CONV2D, [0], out, {**good, **kw})])
    engine(conv())
    for kw, msg in [({"stride": (0, 1)}, "stride"), ({"padding": (1,)}, "padding"), ({"groups": 3}, "groups"),
                    ({"activation": 9}, "activation"), ({"weight": w[:, :2]}, "blob 'weight'"),
                    ({"weight": w.astype(np.int32)}, "expected type"), ({"stride": "2"}, "stride"),
                    ({"bias": np.zeros(5, np.float32)}, "blob 'bias'")]:
        with pytest.raises(ValueError, match=msg):
            engine(conv(**kw))
    with pytest.raises(ValueError, match="does not match"):
        engine(conv(TensorInfo(6, 8, 9)))
    with pytest.raises(ValueError, match="not declared"):
        engine(build([(OpType.ADD, [0, 3], TensorInfo(4, 9, 9), {})]))
    with pytest.raises(ValueError, match="used before it is defined"):
        engine(build([(OpType.ADD, [0, 2], TensorInfo(4, 9, 9), {}),
                       (OpType.ACTIVATION, [0], TensorInfo(4, 9, 9), {"kind": 1})]))
    with pytest.raises(ValueError, match="expected 2 input"):
        engine(build([(OpType.ADD, [0], TensorInfo(4, 9, 9), {})]))
    with pytest.raises(ValueError, match="padding must be at most half"):
        engine(build([(OpType.MAXPOOL2D, [0], TensorInfo(4, 5, 5), {"kernel": (2, 2), "stride": (2, 2),
                                                                     "padding": (2, 2)})]))
    with pytest.raises(ValueError, match="output must be an f32"):
        engine(build([(OpType.ACTIVATION, [0], TensorInfo(4, 9, 9, dtype=fmt.DType.U8), {"kind": 1})]))


# ---------------------------------------------------------------------------- untrusted names and numbers
def _with_meta(data, meta: bytes):
    secs = fmt.read_sections(data)
    return fmt.assemble([(fmt.SECTION_META, meta), (fmt.SECTION_GRAPH, secs[fmt.SECTION_GRAPH]),
                         (fmt.SECTION_BLOBS, secs[fmt.SECTION_BLOBS])])


def _set_op0_name(raw: bytes):
    """A _with_graph mutation: op 0's name bytes become `raw` (any bytes, any length)."""
    def f(g):
        nt = struct.unpack_from("<I", g, 0)[0]
        at = 16 + 32 * nt
        old = struct.unpack_from("<H", g, at + 12)[0]
        struct.pack_into("<H", g, at + 12, len(raw))
        g[at + 16:at + 16 + old] = raw
    return f


def _no_surprise(e):
    """Every way of looking at a loaded engine works (the contract for any file that loads)."""
    text = [repr(e), str(e), str(e.summary()), repr(e.summary()), e.scheme, str(e.num_classes),
            str(e.input_norm), str(e.metadata), str(e.activation_bytes(3)), str(e.weight_bytes)]
    rows = e.summary()
    assert len(rows) == len(text[2].splitlines()) - 2
    assert all(isinstance(r["name"], str) and r["name"] for r in rows)
    return text


def _load_error(tmp_path, data) -> str:
    """deploy.load(file) must raise a plain ValueError (not a UnicodeDecodeError, RecursionError,
    OverflowError...) naming the file; returns its message."""
    path = tmp_path / "strange.edgeopt"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        deploy.load(path)
    assert type(info.value) is ValueError, repr(info.value)
    assert str(path) in str(info.value)
    return str(info.value)


def test_deeply_nested_metadata_is_a_clear_error(tmp_path):
    _, data = small_file()
    for deep in (b"[" * 100_000 + b"]" * 100_000,
                 b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                 b'{"x": ' + b"[" * 100_000):  # unterminated too
        msg = _load_error(tmp_path, _with_meta(data, deep))
        assert re.search(r"metadata nests 10000[01] levels deep \(limit 64\)", msg), msg
    # brackets inside strings are text, not nesting
    quoted = json.dumps({"scheme": "fp32", "note": "[[[{{{" * 1000 + '\\"[['}).encode()
    assert deploy.Engine(_with_meta(data, quoted)).metadata["note"].startswith("[[[{{{")
    at_limit = b'{"scheme":"fp32","n":' + b"[" * 63 + b"]" * 63 + b"}"
    assert deploy.Engine(_with_meta(data, at_limit)).scheme == "fp32"
    assert "nests 65 levels" in _load_error(tmp_path, _with_meta(data, at_limit.replace(b"[", b"[[", 1)
                                                                   .replace(b"]", b"]]", 1)))


def test_metadata_size_limit_and_bad_text(tmp_path):
    _, data = small_file()
    big = b'{"pad":"' + b"x" * (16 << 20) + b'"}'
    assert "metadata section" in _load_error(tmp_path, _with_meta(data, big))
    assert "not valid JSON" in _load_error(tmp_path, _with_meta(data, b"{not json"))
    assert "not valid JSON" in _load_error(tmp_path, _with_meta(data, b'{"scheme": "\xff\xfe"}'))
    assert "not valid JSON" in _load_error(tmp_path, _with_meta(data, b'{"n": ' + b"9" * 5000 + b"}"))
    assert "JSON object" in _load_error(tmp_path, _with_meta(data, b"[1, 2]"))


@pytest.mark.parametrize("meta,field", [
    ({"num_classes": 1e400}, "num_classes"), ({"num_classes": 10 ** 30}, "num_classes"),
    ({"num_classes": float("nan")}, "num_classes"), ({"num_classes": "10"}, "num_classes"),
    ({"num_classes": True}, "num_classes"), ({"num_classes": 0}, "num_classes"),
    ({"num_classes": [5]}, "num_classes"), ({"scheme": {"a": 1}}, "scheme"), ({"scheme": "x" * 65}, "scheme"),
    ({"input_norm": {"mean": [0, 0, float("nan")], "std": [1, 1, 1]}}, "input_norm"),
    ({"input_norm": {"mean": [0, 0, 0], "std": [1, 0, 1]}}, "input_norm"),
    ({"input_norm": {"mean": [0, 0, 10 ** 400], "std": [1, 1, 1]}}, "input_norm"),
    ({"input_norm": {"mean": [0, 0], "std": [1, 1]}}, "input_norm"),
])
def test_metadata_fields_are_checked_at_load(tmp_path, meta, field):
    """What repr/summary/evaluate read from the metadata is checked once, at load, so a strange
    value is a clear error then instead of an OverflowError from repr() later."""
    _, data = small_file()
    assert field in _load_error(tmp_path, _with_meta(data, json.dumps(meta).encode()))


@pytest.mark.parametrize("raw,why", [
    (b"conv\xff", "UTF-8"), (b"\xc0\xaf", "UTF-8"), (b"\xed\xa0\x80", "UTF-8"), (b"\xf4\x90\x80\x80", "UTF-8"),
    (b"abc\xe2\x82", "UTF-8"), (b"line\nbreak", "control"), (b"nul\x00", "control"), (b"c1\xc2\x85", "control"),
])
def test_op_names_must_be_clean_utf8(tmp_path, raw, why):
    _, data = small_file()
    msg = _load_error(tmp_path, _with_graph(data, _set_op0_name(raw)))
    assert "op 0: name is not UTF-8 text without control characters" in msg


def test_attribute_keys_and_strings_must_be_clean_utf8(tmp_path, rng):
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    good = {"weight": w, "stride": (1, 1), "padding": (1, 1), "groups": 1, "QQQQ": 1, "note": "ZZZZZZ"}
    data = build([(OpType.CONV2D, [0], TensorInfo(6, 9, 9), good)])
    deploy.Engine(data)  # unknown attributes are ignored (forward compatibility)
    for old, new, what in [(b"QQQQ", b"Q\xffQQ", "key is not UTF-8"),
                           (b"ZZZZZZ", b"ZZ\xe2\x82ZZ", "string is not UTF-8"),
                           (b"ZZZZZZ", b"ZZ\x1bZZZ", "string is not UTF-8")]:
        bad = _with_graph(data, lambda g: g.__setitem__(slice(None), bytes(g).replace(old, new)))
        assert what in _load_error(tmp_path, bad)


def test_weight_scales_must_be_finite_and_positive(tmp_path, rng):
    q = rng.integers(-127, 128, (6, 4, 3, 3)).astype(np.int8)
    for s in (np.nan, np.inf, -np.inf, 0.0, -0.5):
        sc = np.full(6, 0.05, np.float32)
        sc[4] = s
        data = build([(OpType.CONV2D, [0], TensorInfo(6, 9, 9), {"weight": q, "weight_scale": sc, "stride": (1, 1),
                                                                 "padding": (1, 1), "groups": 1})])
        assert "weight_scale': row 4" in _load_error(tmp_path, data)
    wl = rng.integers(-127, 128, (3, 4 * 81)).astype(np.int8)
    data = build([(OpType.FLATTEN, [0], TensorInfo(4 * 81, rank=2), {}),
                  (OpType.LINEAR, [1], TensorInfo(3, rank=2), {"weight": wl, "weight_scale": np.float32([1, np.nan, 1])})])
    assert "weight_scale': row 1" in _load_error(tmp_path, data)


def test_strange_but_loadable_engines_print(rng):
    """repr / str / summary of engines with odd but valid names and metadata never raise."""
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    conv = {"weight": w, "stride": (1, 1), "padding": (1, 1), "groups": 1}
    names = ["层.卷积🙂", "x" * 512, "{}%s{0}'\"\\", "é" * 300, "", "tab\tname", "zero\u200dwidth"]
    for name in names:
        b = ModelBuilder(TensorInfo(4, 9, 9))
        t = b.add_op(OpType.CONV2D, name, [0], TensorInfo(6, 9, 9), {k: (b.add_blob(v) if isinstance(v, np.ndarray) else v)
                                                                     for k, v in conv.items()})
        for meta in ({}, {"scheme": "ünïcode ✓", "num_classes": 2 ** 31 - 1},
                     {"deep": json.loads("[" * 60 + "]" * 60), "big": list(range(10000)), "f": float("inf")}):
            e = deploy.Engine(b.to_bytes(t, meta))
            text = _no_surprise(e)
            row = e.summary()[0]["name"]
            expect = fmt._clean_name(name).decode()
            assert row == (expect or "#0") and row in text[2]
    _, data = small_file()
    for meta in (b"", b"{}", b"null"[:0]):
        assert deploy.Engine(_with_meta(data, meta)).num_classes == 5  # output size when absent
        _no_surprise(deploy.Engine(_with_meta(data, meta)))


# ---------------------------------------------------------------------------- fuzzing
def _mutants(data, rng, count):
    secs_at = {}
    n = struct.unpack_from("<I", data, 12)[0]
    for i in range(n):
        typ, _, off, size, _, _ = struct.unpack_from("<IIQQII", data, 64 + 32 * i)
        secs_at[typ] = (off, size)
    g_off, g_size = secs_at[fmt.SECTION_GRAPH]
    b_off, _ = secs_at[fmt.SECTION_BLOBS]
    for _ in range(count):
        b = bytearray(data)
        kind = rng.integers(0, 5)
        region = rng.integers(0, 10)
        def pos():
            if region < 5:
                return int(g_off + rng.integers(0, g_size))
            if region < 7:
                return int(b_off + rng.integers(0, 8 + 64 * 4))
            return int(rng.integers(0, len(b)))
        if kind == 0:
            for _ in range(rng.integers(1, 9)):
                p = pos()
                b[p] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            del b[int(rng.integers(0, len(b))):]
        elif kind == 2:
            p = pos()
            k = int(rng.integers(1, 17))
            b[p:p + k] = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        elif kind == 3:
            p = pos()
            b[p:p + 4] = struct.pack("<i", int(rng.choice([0, -1, 1, 2, 3, 255, 65535, 2**31 - 1, -2**31, 1 << 24])))
        else:
            p = pos()
            b[p:p] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        yield fmt.rewrite_checksums(bytes(b)) if rng.random() < 0.7 else bytes(b)


MUTANTS_PER_SCHEME = 300  # x 3 schemes: the mutant count in benchmarks/README.md


@pytest.mark.parametrize("scheme", ["fp32", "fp16", "int8-weight"])
def test_fuzzed_files_load_or_raise(scheme):
    _, data = small_file(scheme)
    rng = np.random.default_rng({"fp32": 11, "fp16": 12, "int8-weight": 13}[scheme])
    loaded = rejected = 0
    for mutant in _mutants(data, rng, MUTANTS_PER_SCHEME):
        try:
            e = deploy.Engine(mutant)
        except ValueError as ex:
            # a plain, readable ValueError: not a UnicodeDecodeError from a mangled name
            assert type(ex) is ValueError, repr(ex)
            rejected += 1
            continue
        loaded += 1
        _no_surprise(e)
        shape = e.input_shape
        if np.prod(shape) <= 1 << 20:
            for n in (1, 2):
                y = e.run(np.ones((n,) + shape, np.float32))
                assert y.shape[0] == n
    assert rejected > 50 and loaded > 10, (loaded, rejected)


def test_linear_only_model_any_batch_every_isa(rng):
    """A model whose only workspace is linear's packed input: batch sizes around every MR."""
    w1 = rng.standard_normal((40, 16)).astype(np.float32)
    w2 = rng.standard_normal((3, 40)).astype(np.float32)
    data = build([(OpType.FLATTEN, [0], TensorInfo(16, rank=2), {}),
                  (OpType.LINEAR, [1], TensorInfo(40, rank=2), {"weight": w1, "activation": ACTIVATION["relu"]}),
                  (OpType.LINEAR, [2], TensorInfo(3, rank=2), {"weight": w2})], TensorInfo(1, 4, 4))
    e = engine(data)
    saved = eo._core.runtime.active_isa()
    try:
        for isa in ISAS:
            eo._core.runtime.set_isa(isa)
            for n in (1, 4, 5, 7, 12, 13, 17, 25, 37):
                x = rng.standard_normal((n, 1, 4, 4)).astype(np.float32)
                ref = F.linear(F.relu(F.linear(x.reshape(n, 16), w1, None)), w2, None)
                assert rel_err(e.run(x), ref) < TOL["f32-op"].rtol, (isa, n)
    finally:
        eo._core.runtime.set_isa(saved)


def test_python_op_ids_are_the_runtime_table():
    """Every op id the Python writers use is one the runtime's table runs, under the same name
    (cpp/src/runtime/op.h OpType is the one list; format.OpType is read from it)."""
    from edgeopt.deploy.lower.int8_full import QS8_OPS
    from edgeopt.deploy.lower.sparse import SPARSE_OPS

    table = dict(eo._core.runtime_engine.runtime_op_types())  # id -> name
    assert len(table) == len(eo._core.runtime_engine.runtime_op_types()), "duplicate op ids in the runtime table"
    py = {k: v for k, v in vars(OpType).items() if k.isupper()}
    assert py == {name.upper(): i for i, name in table.items()}
    ranges = {"": (1, 100), "QS8_": (100, 200), "SPARSE_": (200, 300), "B1_": (300, 400)}
    for name, i in py.items():
        prefix = next(p for p in ("QS8_", "SPARSE_", "B1_", "") if name.startswith(p))
        lo, hi = ranges[prefix]
        assert lo <= i < hi, f"{name} = {i} is outside its family's range [{lo}, {hi})"
    for lowering, ids in (("int8-full", QS8_OPS), ("sparse", SPARSE_OPS)):
        for op, i in ids.items():
            assert table.get(i) is not None, f"{lowering} op {op!r} writes id {i}, which the runtime cannot run"
    assert {table[i] for i in QS8_OPS.values()} == {"qs8_" + op for op in QS8_OPS}
    assert {table[i] for i in SPARSE_OPS.values()} == {"sparse_" + op for op in SPARSE_OPS}


def test_binary_weight_blobs(rng):
    """1-bit codes (bit 1 = +1) with per-channel alpha in a conv, and their packing's checks."""
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    c = np.where(w >= 0, 1, -1).astype(np.int8)
    alpha = np.abs(w).reshape(6, -1).mean(1).astype(np.float32)
    packed = eo._core.quant.quant_pack_codes(c.reshape(6, -1), 1).tobytes()
    assert len(packed) == 6 * 5   # 36 codes -> 5 bytes per row
    conv = build([(OpType.CONV2D, [0], TensorInfo(6, 9, 9),
                   {"weight": fmt_blob(BlobType.I1, w.shape, packed), "weight_scale": alpha, "stride": (1, 1),
                    "padding": (1, 1), "groups": 1})])
    ref = F.conv2d(x, c.astype(np.float32) * alpha[:, None, None, None], None, 1, 1, 1)
    assert rel_err(engine(conv).run(x), ref) < TOL["f32-op"].rtol
    with pytest.raises(ValueError, match="without 0"):
        eo._core.quant.quant_pack_codes(np.zeros((2, 3), np.int8), 1)


# ---------------------------------------------------------------------------- the output, written in place
def _relu(x):
    return np.maximum(x, 0).astype(np.float32)


@pytest.mark.parametrize("case", ["op output", "flatten of an op output read again", "flatten of the input"])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_written_in_place(rng, case, batch):
    """The last op writes the caller's array (or, when the output is the input's buffer, it is
    copied): every form gives the model's values, in a fresh 64-byte aligned array per call that
    later calls and the Engine's end leave alone."""
    info = TensorInfo(4, 9, 9)
    if case == "op output":
        ops = [(OpType.ACTIVATION, [0], info, {"kind": ACTIVATION["relu"]})]
        ref = lambda x: _relu(x)
    elif case == "flatten of an op output read again":
        # tensor 1 is the output's buffer, and op 3 reads it after it was written there
        ops = [(OpType.ACTIVATION, [0], info, {"kind": ACTIVATION["relu"]}),
               (OpType.FLATTEN, [1], TensorInfo(4 * 81, rank=2), {}),
               (OpType.ACTIVATION, [1], info, {"kind": ACTIVATION["sigmoid"]}),
               (OpType.FLATTEN, [1], TensorInfo(4 * 81, rank=2), {})]
        ref = lambda x: _relu(x).reshape(len(x), -1)
    else:
        ops = [(OpType.FLATTEN, [0], TensorInfo(4 * 81, rank=2), {})]
        ref = lambda x: x.reshape(len(x), -1)
    e = engine(build(ops, info))
    xs = [rng.standard_normal((batch, 4, 9, 9)).astype(np.float32) for _ in range(3)]
    ys = [e.run(x) for x in xs]
    for x, y in zip(xs, ys):
        assert y.ctypes.data % 64 == 0 and y.flags.writeable
        np.testing.assert_array_equal(y, ref(x))
    assert len({y.ctypes.data for y in ys}) == 3  # each call its own array
    x_before = xs[0].copy()
    ys[0][...] = -7.0  # the caller may write its result; the next call does not see it
    np.testing.assert_array_equal(e.run(xs[0]), ref(x_before))
    np.testing.assert_array_equal(xs[0], x_before)  # and the input is never written
    del e
    gc.collect()
    np.testing.assert_array_equal(ys[1], ref(xs[1]))  # results outlive the Engine
