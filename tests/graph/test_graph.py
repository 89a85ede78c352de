"""edgeopt.graph: the tracer, the reference executor and its observation hooks, BN folding and
fusion. The executor runs the same kernels as model.forward, so the unfused graph must match the
model bit for bit; rewrites change the arithmetic order, so they are held to fp32 tolerance."""
import ast
import pathlib

import numpy as np
import pytest

import edgeopt as eo
from edgeopt import graph as G
from edgeopt.nn import functional as F
from deploy_helpers import realistic
from tolerances import TOL

nn = eo.nn
RTOL = TOL["f32-op"].rtol  # fp32: a folded weight rounds once more than the conv -> BN pair it replaces
ZOO = ["resnet20", "mobilenet_v2", "mobilenet_v3_small", "vgg11", "wrn16_4"]


def zoo(name):
    return realistic(eo.models.create(name, num_classes=10, width_mult=0.25 if name != "wrn16_4" else 1.0))


def forward(model, x):
    with nn.no_grad():
        return model.forward(x)


def close(a, b, rtol=RTOL):
    err = np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30)
    assert err <= rtol, f"relative error {err:.3g} > {rtol}"


def small_net(bias=True):
    """A BN with no conv before it (kept by folding), a conv with a bias folded into a BN, a
    residual add, a linear layer with a ReLU."""
    return realistic(nn.Sequential(
        nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.BatchNorm2d(4), nn.ReLU(),
        nn.ResidualBlock(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)),
                         activation=nn.ReLU()),
        nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 5), nn.ReLU()), size=8)


# --------------------------------------------------------------------------- trace
def test_trace_is_public_and_records_shapes_and_names(rng):
    model = zoo("resnet20")
    model.train()
    g = eo.graph.trace(model, (2, 3, 32, 32))
    assert model.training  # trace runs in eval mode and restores the mode
    assert g.input == 0 and g.input_shape == (2, 3, 32, 32) and g.shapes[0] == (2, 3, 32, 32)
    assert g.shapes[g.output] == (2, 10)
    assert [n.output for n in g.nodes] == list(range(1, len(g.nodes) + 1))  # SSA, in order
    ops = [n.op for n in g.nodes]
    assert ops.count("conv2d") == 21 and ops.count("batchnorm2d") == 21 and ops.count("add") == 9
    assert ops[-3:] == ["global_avgpool2d", "flatten", "linear"]
    first = g.nodes[0]
    assert (first.op, first.name, first.inputs, first.module) == ("conv2d", "conv1", [0], model.conv1)
    np.testing.assert_array_equal(first.params["weight"], model.conv1.weight.data)
    assert first.params["weight"] is not model.conv1.weight.data  # a copy: rewrites cannot touch the model
    assert g.describe(0) == "the graph input" and g.describe(1) == "the output of layer 'conv1'"
    assert g.describe((1, "conv")) == "the conv result inside the output of layer 'conv1'"


def test_trace_refuses_a_layer_without_an_operator():
    class Odd(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match=r"trace: layer '1' \(Odd\) has no inference operator"):
        G.trace(nn.Sequential(nn.Conv2d(3, 4, 1), Odd()), (1, 3, 4, 4))


# --------------------------------------------------------------------------- executor
@pytest.mark.parametrize("name", ZOO)
def test_executor_matches_forward_bit_for_bit(name, rng):
    model = zoo(name)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    g = G.trace(model, (1, 3, 32, 32))
    np.testing.assert_array_equal(g.execute(x), forward(model, x))  # any batch size
    assert np.array_equal(G.execute(g, x), g.execute(x))


# --------------------------------------------------------------------------- hooks
@pytest.mark.parametrize("fused", [False, True])
def test_every_point_is_observed_once_with_its_value(fused, rng):
    model = small_net()
    g = G.trace(model, (1, 3, 8, 8))
    if fused:
        g = G.fuse(g)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    seen = []
    y = g.execute(x, observe=lambda p, v: seen.append((p, v.copy())))
    points = [p for p, _ in seen]
    assert points == g.points() and len(set(points)) == len(points)
    obs = dict(seen)
    np.testing.assert_array_equal(obs[g.input], x)
    np.testing.assert_array_equal(obs[g.output], y)
    np.testing.assert_array_equal(y, g.execute(x))  # observing changes nothing
    for n in g.nodes:
        assert obs[n.output].shape == (3,) + g.shapes[n.output][1:], n.name
        a = n.attrs
        if n.op == "add":
            want = obs[n.inputs[0]] + obs[n.inputs[1]]
        elif n.op == "conv2d" and fused:
            want = F.conv2d(obs[n.inputs[0]], n.params["weight"], n.params.get("bias"), a["stride"],
                            a["padding"], a["groups"])
        elif n.op == "linear" and fused:
            want = F.linear(obs[n.inputs[0]], n.params["weight"], n.params.get("bias"))
        else:  # an unfused leaf: exactly what its module computes on the observed input
            with nn.no_grad():
                want = n.module.forward(obs[n.inputs[0]])
        for inner in n.inner_points():  # inside a fused node: conv result, residual sum
            np.testing.assert_array_equal(obs[(n.output, inner)], want, err_msg=f"{n.name} {inner}")
            if inner == "conv" and a.get("residual") is not None:
                want = want + obs[a["residual"]]
        if n.inner_points():
            want = getattr(F, a["activation"])(want) if a["activation"] != "none" else want
        np.testing.assert_array_equal(obs[n.output], want, err_msg=n.name)
    if fused:  # the residual block's conv carries both inner points, the linear layer one
        assert {p[1] for p in points if isinstance(p, tuple)} == {"conv", "sum"}


def test_observe_by_point_calls_only_those_once_per_execute(rng):
    g = G.fuse(G.trace(small_net(), (1, 3, 8, 8)))
    res = next(n for n in g.nodes if n.attrs.get("residual") is not None)
    chosen = [g.input, (res.output, "sum"), g.output]
    calls = {p: [] for p in chosen}
    observe = {p: calls[p].append for p in chosen}
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = g.execute(x, observe=observe)
    g.execute(x[:1], observe=observe)
    assert [len(v) for v in calls.values()] == [2, 2, 2]
    np.testing.assert_array_equal(calls[g.output][0], y)
    assert calls[(res.output, "sum")][1].shape == (1,) + g.shapes[res.output][1:]


def test_observe_refuses_unknown_points_and_non_callables():
    g = G.trace(small_net(), (1, 3, 8, 8))  # unfused: no inner points
    x = np.zeros((1, 3, 8, 8), np.float32)
    conv = next(n for n in g.nodes if n.op == "conv2d").output
    with pytest.raises(ValueError, match=r"observe: \(%d, 'conv'\) is not a point" % conv):
        g.execute(x, observe={(conv, "conv"): print})
    with pytest.raises(ValueError, match="observe: 999 is not a point"):
        g.execute(x, observe={999: print})
    with pytest.raises(TypeError, match=r"observe\[1\]"):
        g.execute(x, observe={1: "print"})
    with pytest.raises(TypeError, match="observe"):
        g.execute(x, observe=5)


# --------------------------------------------------------------------------- rewrites
@pytest.mark.parametrize("bias", [False, True])
def test_fold_batchnorm_matches_the_unfolded_graph(bias, rng):
    model = small_net(bias)
    if bias:
        model[1].bias.data[...] = rng.uniform(-1, 1, 4).astype(np.float32)
    g = G.trace(model, (1, 3, 8, 8))
    before = [(n.op, {k: None if v is None else v.copy() for k, v in n.params.items()}) for n in g.nodes]
    f = G.fold_batchnorm(g)
    # the BN after each conv is gone; the leading BN has no conv to fold into and stays
    assert [n.op for n in f.nodes].count("batchnorm2d") == 1 and f.nodes[0].op == "batchnorm2d"
    assert len(f.nodes) == len(g.nodes) - 2 and f.nodes[1].name == "1+2"
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    close(f.execute(x), g.execute(x))
    for (op, params), n in zip(before, g.nodes):  # the input graph is untouched
        assert n.op == op and all(np.array_equal(v, n.params[k]) for k, v in params.items() if v is not None)


@pytest.mark.parametrize("name", ZOO)
def test_fold_batchnorm_on_the_zoo(name, rng):
    g = G.trace(zoo(name), (1, 3, 32, 32))
    f = G.fold_batchnorm(g)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    close(f.execute(x), g.execute(x))
    folded = {n.name.split("+")[1] for n in f.nodes if n.op == "conv2d" and "+" in n.name}
    kept = {n.name for n in f.nodes if n.op == "batchnorm2d"}
    assert folded | kept == {n.name for n in g.nodes if n.op == "batchnorm2d"} and folded


def test_batchnorm_affine_is_the_eval_batchnorm(rng):
    c = 5
    p = {"weight": rng.uniform(0.5, 1.5, c).astype(np.float32), "bias": rng.uniform(-1, 1, c).astype(np.float32),
         "running_mean": rng.standard_normal(c).astype(np.float32),
         "running_var": rng.uniform(0.1, 2, c).astype(np.float32)}
    x = rng.standard_normal((2, c, 3, 3)).astype(np.float32)
    want = F.batch_norm_eval(x, p["weight"], p["bias"], p["running_mean"], p["running_var"], 1e-5)
    scale, shift = G.batchnorm_affine(p, 1e-5)
    close(x * scale[:, None, None] + shift[:, None, None], want)
    b = rng.standard_normal(c).astype(np.float32)  # a preceding layer's bias goes through the BN too
    scale_b, shift_b = G.batchnorm_affine(p, 1e-5, bias=b)
    np.testing.assert_array_equal(scale_b, scale)
    close(shift_b, shift + b * scale)


@pytest.mark.parametrize("name", ZOO)
def test_fuse_matches_forward(name, rng):
    model = zoo(name)
    g = G.fuse(G.trace(model, (1, 3, 32, 32)))
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    close(g.execute(x), forward(model, x))


def test_fuse_puts_conv_bn_add_relu_in_one_node():
    g = G.trace(zoo("resnet20"), (1, 3, 32, 32))
    f = G.fuse(g)
    assert {n.op for n in f.nodes} == {"conv2d", "global_avgpool2d", "flatten", "linear"}
    res = [n for n in f.nodes if n.attrs.get("residual") is not None]
    assert len(res) == 9 and all(n.attrs["activation"] == "relu" for n in res)
    skips = {n.attrs["residual"] for n in res}
    # every conv ends in its ReLU, except a downsampling block's body, which the shortcut conv adds
    assert all(n.attrs["activation"] == "relu" or n.output in skips for n in f.nodes if n.op == "conv2d")
    for n in res:  # the skip is computed before the conv that adds it
        assert n.attrs["residual"] in [g.input] + [m.output for m in f.nodes[:f.nodes.index(n)]]
    assert len(f.nodes) == len(g.nodes) - 21 - 9 - 19  # BNs, adds, ReLUs absorbed


def test_fuse_leaves_what_it_must_not_fuse(rng):
    """An activation outside relu / relu6 / hardswish stays; so does a conv whose output has a
    second reader (fusing would change what that reader sees)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.HardSigmoid(), nn.Conv2d(4, 4, 1),
                          nn.ResidualBlock(nn.ReLU()))  # relu(c) + c: c has two readers
    g = G.fuse(G.trace(model, (1, 3, 4, 4)))
    assert [n.op for n in g.nodes] == ["conv2d", "hardsigmoid", "conv2d", "relu", "add"]
    assert all(n.inner_points() == () for n in g.nodes)
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    close(g.execute(x), forward(model, x))


def test_graph_does_not_import_deploy():
    """deploy builds on graph, never the other way round."""
    root = pathlib.Path(G.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "deploy" not in (node.module or "") and all("deploy" not in a.name for a in node.names), path
            elif isinstance(node, ast.Import):
                assert all("deploy" not in a.name for a in node.names), path
