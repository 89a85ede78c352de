"""Model zoo: parameter counts against the published architectures, forward/backward against the
same architectures written in PyTorch (shared state dict), shapes for 32x32 and 28x28 inputs,
width scaling, summary totals and bad input."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn
from torch_oracle import assert_close, compare_layer, torch_state_to_numpy

import edgeopt as eo
from edgeopt import models, nn

# Parameter counts for 10 classes. Cross-checked with the PyTorch definitions below and with the
# published figures: He et al. CIFAR ResNets 0.27/0.46/0.66/0.85/1.7 M; WRN-28-10 36.5 M;
# torchvision mobilenet_v2 / v3 with a 10-class head; VGG-bn CIFAR with one 512->10 Linear.
PARAMS = {
    "vgg11": 9_231_114, "vgg13": 9_416_010, "vgg16": 14_728_266, "vgg19": 20_040_522,
    # option B (1x1 projection) shortcuts, the default
    "resnet20": 272_474, "resnet32": 466_906, "resnet44": 661_338, "resnet56": 855_770,
    "resnet110": 1_730_714,
    "resnet18": 11_173_962, "resnet34": 21_282_122, "resnet50": 23_520_842, "resnet101": 42_512_970,
    "mobilenet_v1": 3_217_226, "mobilenet_v2": 2_236_682,
    "mobilenet_v3_small": 1_528_106, "mobilenet_v3_large": 4_214_842,
    "wrn16_4": 2_748_890, "wrn16_8": 10_961_370, "wrn28_10": 36_479_194, "wrn40_2": 2_243_546,
}
# option A (zero-pad identity) shortcuts: exactly the paper's CIFAR networks
PARAMS_OPTION_A = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586,
                   "resnet56": 853_018, "resnet110": 1_727_962}

RUNNABLE = [n for n in PARAMS if n != "wrn28_10"]  # wrn28_10 is only counted


def n_params(model) -> int:
    return sum(p.size for p in model.parameters())


def randn(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- PyTorch twins
# The same architectures written directly in PyTorch, with the key names the zoo promises.

class TResidual(tnn.Module):
    """activation(body(x) + shortcut(x)); the body attribute may be named as torchvision does."""

    def __init__(self, body, shortcut=None, activation=None, body_name="body"):
        super().__init__()
        self.body_name = body_name
        self.add_module(body_name, body)
        self.shortcut, self.activation = shortcut, activation

    def forward(self, x):
        y = getattr(self, self.body_name)(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.activation is None else self.activation(y)


class TZeroPad(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.lo, self.hi, self.stride = (cout - cin) // 2, cout - cin - (cout - cin) // 2, stride

    def forward(self, x):
        return tnn.functional.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.lo, self.hi))


def t_head(stages, features_out, num_classes):
    return stages + [("avgpool", tnn.AdaptiveAvgPool2d(1)), ("flatten", tnn.Flatten()),
                     ("fc", tnn.Linear(features_out, num_classes))]


def t_resnet20(option="B", num_classes=10, in_channels=3):
    stages = [("conv1", tnn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)), ("bn1", tnn.BatchNorm2d(16)),
              ("relu", tnn.ReLU())]
    cin = 16
    for s, c in enumerate((16, 32, 64)):
        blocks = []
        for j in range(3):
            stride = 2 if s > 0 and j == 0 else 1
            body = tnn.Sequential(OrderedDict([
                ("conv1", tnn.Conv2d(cin, c, 3, stride, 1, bias=False)), ("bn1", tnn.BatchNorm2d(c)),
                ("relu1", tnn.ReLU()), ("conv2", tnn.Conv2d(c, c, 3, 1, 1, bias=False)),
                ("bn2", tnn.BatchNorm2d(c))]))
            sc = None
            if stride != 1 or cin != c:
                sc = (tnn.Sequential(tnn.Conv2d(cin, c, 1, stride, bias=False), tnn.BatchNorm2d(c))
                      if option == "B" else TZeroPad(cin, c, stride))
            blocks.append(TResidual(body, sc, tnn.ReLU()))
            cin = c
        stages.append((f"layer{s + 1}", tnn.Sequential(*blocks)))
    return tnn.Sequential(OrderedDict(t_head(stages, 64, num_classes)))


def t_vgg11(num_classes=10, in_channels=3):
    layers, cin = [], in_channels
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512]:
        if v == "M":
            layers.append(tnn.MaxPool2d(2))
        else:
            layers += [tnn.Conv2d(cin, v, 3, 1, 1), tnn.BatchNorm2d(v), tnn.ReLU()]
            cin = v
    return tnn.Sequential(OrderedDict([("features", tnn.Sequential(*layers)),
                                       ("avgpool", tnn.AdaptiveAvgPool2d(1)), ("flatten", tnn.Flatten()),
                                       ("classifier", tnn.Linear(512, num_classes))]))


def t_cba(cin, cout, k, stride=1, groups=1, act=None):
    layers = [tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), tnn.BatchNorm2d(cout)]
    return tnn.Sequential(*(layers + ([act()] if act else [])))


def t_mobilenet_v2(num_classes=10, in_channels=3):
    feats, cin = [t_cba(in_channels, 32, 3, 1, act=tnn.ReLU6)], 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride, h = (s if i == 0 else 1), cin * t
            layers = ([t_cba(cin, h, 1, act=tnn.ReLU6)] if t != 1 else []) + [
                t_cba(h, h, 3, stride, h, tnn.ReLU6), tnn.Conv2d(h, c, 1, bias=False), tnn.BatchNorm2d(c)]
            body = tnn.Sequential(*layers)
            feats.append(TResidual(body, body_name="conv") if stride == 1 and cin == c
                         else tnn.Sequential(OrderedDict([("conv", body)])))
            cin = c
    feats.append(t_cba(cin, 1280, 1, act=tnn.ReLU6))
    return tnn.Sequential(OrderedDict([
        ("features", tnn.Sequential(*feats)), ("avgpool", tnn.AdaptiveAvgPool2d(1)),
        ("flatten", tnn.Flatten()), ("classifier", tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes)))]))


class TSqueezeExcite(tnn.Module):
    def __init__(self, c, sq):
        super().__init__()
        self.fc1, self.fc2 = tnn.Conv2d(c, sq, 1), tnn.Conv2d(sq, c, 1)

    def forward(self, x):
        s = self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * tnn.functional.hardsigmoid(s)


def t_mobilenet_v3_small(num_classes=10, in_channels=3):
    cfg = [(3, 16, 16, 1, 0, 1), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
           (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
           (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1)]
    squeeze = {16: 8, 96: 24, 240: 64, 120: 32, 144: 40, 288: 72, 576: 144}  # make_divisible(e // 4, 8)
    feats, cin = [t_cba(in_channels, 16, 3, 1, act=tnn.Hardswish)], 16
    for k, e, c, se, hs, s in cfg:
        act = tnn.Hardswish if hs else tnn.ReLU
        layers = ([t_cba(cin, e, 1, act=act)] if e != cin else []) + [t_cba(e, e, k, s, e, act)]
        layers += ([TSqueezeExcite(e, squeeze[e])] if se else []) + [t_cba(e, c, 1)]
        body = tnn.Sequential(*layers)
        feats.append(TResidual(body, body_name="block") if s == 1 and cin == c
                     else tnn.Sequential(OrderedDict([("block", body)])))
        cin = c
    feats.append(t_cba(96, 576, 1, act=tnn.Hardswish))
    return tnn.Sequential(OrderedDict([
        ("features", tnn.Sequential(*feats)), ("avgpool", tnn.AdaptiveAvgPool2d(1)), ("flatten", tnn.Flatten()),
        ("classifier", tnn.Sequential(tnn.Linear(576, 1024), tnn.Hardswish(), tnn.Dropout(0.2),
                                      tnn.Linear(1024, num_classes)))]))


def t_wrn16_4(num_classes=10, in_channels=3):
    stages, cin = [("conv1", tnn.Conv2d(in_channels, 16, 3, 1, 1, bias=False))], 16
    for g, c in enumerate((64, 128, 256)):
        blocks = []
        for j in range(2):
            stride = 2 if g > 0 and j == 0 else 1
            convs = [("conv1", tnn.Conv2d(cin, c, 3, stride, 1, bias=False)), ("bn2", tnn.BatchNorm2d(c)),
                     ("relu2", tnn.ReLU()), ("conv2", tnn.Conv2d(c, c, 3, 1, 1, bias=False))]
            pre = [("bn1", tnn.BatchNorm2d(cin)), ("relu1", tnn.ReLU())]
            if stride == 1 and cin == c:
                blocks.append(TResidual(tnn.Sequential(OrderedDict(pre + convs))))
            else:
                res = TResidual(tnn.Sequential(OrderedDict(convs)), tnn.Conv2d(cin, c, 1, stride, bias=False))
                blocks.append(tnn.Sequential(OrderedDict(pre + [("residual", res)])))
            cin = c
        stages.append((f"block{g + 1}", tnn.Sequential(*blocks)))
    stages += [("bn1", tnn.BatchNorm2d(256)), ("relu", tnn.ReLU())]
    return tnn.Sequential(OrderedDict(t_head(stages, 256, num_classes)))


TWINS = {
    "resnet20": (lambda: models.create("resnet20"), t_resnet20),
    "resnet20_option_a": (lambda: models.create("resnet20", shortcut="A"), lambda: t_resnet20("A")),
    "vgg11": (lambda: models.create("vgg11"), t_vgg11),
    "mobilenet_v2": (lambda: models.create("mobilenet_v2"), t_mobilenet_v2),
    "mobilenet_v3_small": (lambda: models.create("mobilenet_v3_small"), t_mobilenet_v3_small),
    "wrn16_4": (lambda: models.create("wrn16_4"), t_wrn16_4),
}


def _randomize_bn_stats(tmodel, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize("key", sorted(TWINS))
def test_matches_pytorch_twin(key):
    make_eo, make_torch = TWINS[key]
    torch.manual_seed(0)
    tmodel, model = make_torch(), make_eo()
    assert n_params(model) == sum(p.numel() for p in tmodel.parameters())
    assert sorted(model.state_dict()) == sorted(tmodel.state_dict())
    _randomize_bn_stats(tmodel)
    x = randn((2, 3, 32, 32))
    # Dropout draws different masks in the two frameworks: p = 0 for the comparison.
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    for m in tmodel.modules():
        if isinstance(m, tnn.Dropout):
            m.p = 0.0
    # train mode: batch statistics, running-statistic updates
    model.load_state_dict(torch_state_to_numpy(tmodel))
    model.train()
    tmodel.train()
    y = model(x)
    yt = tmodel(torch.from_numpy(x))
    assert_close(y, yt, f"{key} train output")
    tbuf = dict(tmodel.named_buffers())
    for name, b in model.named_buffers():
        if b.dtype.kind == "f":
            assert_close(b, tbuf[name], f"{key} buffer {name}")
    # Gradients are compared in eval mode: with batch statistics, the gradient of a BN bias that
    # feeds (through a linear conv) another train-mode BN is exactly 0 in theory, so both sides
    # hold only rounding noise there. Eval mode compares output, dx and every parameter gradient.
    compare_layer(model, tmodel, x, train=False, tol=1e-3)


# --------------------------------------------------------------------------- counts and names

def test_available_lists_every_family():
    names = models.available()
    assert set(names) == set(PARAMS)
    assert names == sorted(set(names), key=names.index)  # no duplicates
    assert names.index("resnet20") < names.index("resnet110")  # natural order


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_param_count_matches_published(name):
    model = models.create(name, num_classes=10)
    assert n_params(model) == PARAMS[name]
    assert model.arch == name and model.num_classes == 10 and model.in_channels == 3


@pytest.mark.parametrize("name", sorted(PARAMS_OPTION_A))
def test_cifar_resnet_option_a_is_the_papers_count(name):
    assert n_params(models.create(name, shortcut="A")) == PARAMS_OPTION_A[name]


def test_published_magnitudes():
    # the figures papers print, to make the pinned numbers above easy to audit
    assert round(PARAMS_OPTION_A["resnet20"] / 1e6, 2) == 0.27
    assert round(PARAMS_OPTION_A["resnet56"] / 1e6, 2) == 0.85
    assert round(PARAMS["resnet56"] / 1e6, 2) == 0.86
    assert round(PARAMS["wrn28_10"] / 1e6, 1) == 36.5
    assert 2.2e6 <= PARAMS["mobilenet_v2"] <= 2.3e6
    assert round(PARAMS["vgg16"] / 1e6, 1) == 14.7


def test_num_classes_and_in_channels_change_only_head_and_stem():
    base = n_params(models.create("resnet20"))
    assert n_params(models.create("resnet20", num_classes=100)) == base + 90 * 65
    assert n_params(models.create("resnet20", in_channels=1)) == base - 2 * 16 * 9


def test_torchvision_key_names():
    v2 = models.create("mobilenet_v2").state_dict()
    for k in ("features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
              "features.2.conv.0.0.weight", "features.3.conv.3.bias", "features.18.0.weight",
              "classifier.1.weight"):
        assert k in v2, k
    v3 = models.create("mobilenet_v3_small").state_dict()
    for k in ("features.1.block.1.fc1.weight", "features.1.block.1.fc2.bias", "features.4.block.2.fc1.weight",
              "features.12.0.weight", "classifier.0.weight", "classifier.3.weight"):
        assert k in v3, k
    r50 = models.create("resnet50").state_dict()
    for k in ("conv1.weight", "bn1.running_mean", "layer1.0.body.conv3.weight", "layer1.0.shortcut.0.weight",
              "layer4.2.body.bn3.weight", "fc.weight"):
        assert k in r50, k


def test_residual_blocks_are_edgeopt_residual_blocks():
    # tools that fold/fuse/deploy walk ResidualBlock.body/.shortcut; the renamed bodies must still work
    model = models.create("mobilenet_v2")
    blocks = [m for m in model.modules() if isinstance(m, nn.ResidualBlock)]
    assert len(blocks) == 10  # 1 + 2 + 3 + 2 + 2 residual inverted-residual blocks
    assert all(isinstance(b.body, nn.Sequential) and b.shortcut is None for b in blocks)
    assert not any(k.endswith(".body.0.0.weight") for k in model.state_dict())


def test_same_seed_same_weights():
    eo.manual_seed(7)
    a = models.create("resnet20").state_dict()
    eo.manual_seed(7)
    b = models.create("resnet20").state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_wrn_dropout_option():
    model = models.create("wrn16_4", dropout=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 6 and all(d.p == 0.3 for d in drops)
    assert n_params(model) == PARAMS["wrn16_4"]
    model.train()
    y = model(randn((2, 3, 32, 32)))
    assert model.backward(np.ones_like(y)).shape == (2, 3, 32, 32)


def test_wrn_any_depth_and_width():
    m = models.create("wrn22_2")
    assert m.arch == "wrn22_2"
    assert m(randn((1, 3, 32, 32))).shape == (1, 10)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        models.create("wrn20_2")


# --------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", RUNNABLE)
def test_forward_shapes_cifar_and_fashion_mnist(name):
    model = models.create(name, num_classes=10, in_channels=3)
    y = model(randn((2, 3, 32, 32)))
    assert y.shape == (2, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    model = models.create(name, num_classes=7, in_channels=1)
    model.eval()
    y = model(randn((2, 1, 28, 28)))
    assert y.shape == (2, 7) and np.isfinite(y).all()


# --------------------------------------------------------------------------- backward

@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v3_small", "vgg11", "wrn16_4", "mobilenet_v1"])
def test_backward_gives_gradients_of_every_parameter(name):
    model = models.create(name, in_channels=1)
    model.train()
    x = randn((2, 1, 28, 28))
    logits = model(x)
    loss, dlogits = nn.functional.cross_entropy(logits, np.array([3, 5]))
    assert np.isfinite(loss)
    dx = model.backward(dlogits)
    assert dx.shape == x.shape and np.isfinite(dx).all() and np.abs(dx).sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad.shape == p.shape, pname
        assert np.isfinite(p.grad).all(), pname
    nonzero = [np.abs(p.grad).sum() > 0 for p in model.parameters()]
    assert sum(nonzero) >= 0.95 * len(nonzero)


def test_option_a_backward_matches_pytorch():
    # the zero-pad shortcut is the one model-specific module: check its gradient alone too
    from edgeopt.models.resnet import ZeroPadShortcut
    compare_layer(ZeroPadShortcut(16, 32, 2), TZeroPad(16, 32, 2), randn((2, 16, 7, 7)), copy_weights=False)


# --------------------------------------------------------------------------- width

def test_width_mult_scales_channels():
    full, half = models.create("resnet20"), models.create("resnet20", width_mult=0.5)
    assert half.conv1.out_channels == 8 and half.fc.in_features == 32
    assert 0.2 < n_params(half) / n_params(full) < 0.3  # ~quadratic in width
    wide = models.create("vgg11", width_mult=2.0)
    assert wide.classifier.in_features == 1024
    for name in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"):
        small = models.create(name, width_mult=0.5)
        convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
        assert all(m.out_channels % 8 == 0 for m in convs), name  # make_divisible(c * width, 8)
        assert n_params(small) < n_params(models.create(name)), name
        assert small(randn((1, 3, 32, 32))).shape == (1, 10)
    assert n_params(models.create("wrn16_4", width_mult=0.5)) < PARAMS["wrn16_4"] / 3


# --------------------------------------------------------------------------- summary

def _torch_macs(tmodel, x):
    macs = []

    def hook(m, inp, out):
        if isinstance(m, tnn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, tnn.Linear):
            macs.append(out.numel() * m.in_features)
    hs = [m.register_forward_hook(hook) for m in tmodel.modules()]
    with torch.no_grad():
        tmodel.eval()(torch.from_numpy(x))
    for h in hs:
        h.remove()
    return sum(macs)


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v3_small", "wrn16_4"])
def test_summary_totals(name):
    model = models.create(name)
    s = models.summary(model, (1, 3, 32, 32))
    assert s.params == n_params(model) == PARAMS[name]
    assert s.params == sum(r.params for r in s.rows)
    assert s.macs == sum(r.macs for r in s.rows)
    assert s.activation_bytes == sum(r.activation_bytes for r in s.rows)
    assert s.output_shape == (1, 10) and s.rows[-1].output_shape == (1, 10)
    assert s.macs == _torch_macs(TWINS[name][1](), randn((1, 3, 32, 32)))
    text = str(s)
    assert f"{s.params:,}" in text and f"{s.macs:,}" in text and s.rows[0].name in text
    assert repr(s) == text


def test_summary_known_values_resnet20():
    s = models.summary(models.create("resnet20", shortcut="A"), (3, 32, 32))  # (C, H, W): batch 1
    assert s.input_shape == (1, 3, 32, 32)
    assert 40e6 < s.macs < 42e6  # He et al.: ~41 M multiply-adds
    first = s.rows[0]
    assert (first.name, first.type, first.output_shape) == ("conv1", "Conv2d", (1, 16, 32, 32))
    assert first.params == 432 and first.macs == 16 * 32 * 32 * 27 and first.activation_bytes == 16 * 32 * 32 * 4
    assert s.rows[-1].name == "fc" and s.rows[-1].macs == 640


def test_summary_restores_training_mode_and_records_nothing():
    model = models.create("mobilenet_v2")
    model.train()
    before = model.state_dict()
    models.summary(model, (1, 3, 32, 32))
    assert all(m.training for m in model.modules())
    after = model.state_dict()  # eval mode: BN running statistics untouched
    assert all(np.array_equal(before[k], after[k]) for k in before)
    with pytest.raises(RuntimeError):  # no_grad: nothing kept for backward
        model.backward(np.ones((1, 10), np.float32))


def test_summary_fashion_mnist_shape():
    s = models.summary(models.create("vgg11", in_channels=1), (1, 1, 28, 28))
    assert s.output_shape == (1, 10) and s.params == n_params(models.create("vgg11", in_channels=1))


# --------------------------------------------------------------------------- bad input

def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(ValueError, match="did you mean 'resnet20'") as e:
        models.create("resnet21")
    assert "mobilenet_v3_small" in str(e.value) and "wrn28_10" in str(e.value)
    with pytest.raises(ValueError, match="did you mean 'mobilenet_v2'"):
        models.create("mobilnet_v2")
    with pytest.raises(ValueError, match="available"):
        models.create("transformer")
    with pytest.raises(TypeError, match="name"):
        models.create(None)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"in_channels": 0}, ValueError, "in_channels"), ({"in_channels": 3.0}, TypeError, "in_channels"),
    ({"in_channels": True}, TypeError, "in_channels"), ({"num_classes": 0}, ValueError, "num_classes"),
    ({"width_mult": 0}, ValueError, "width_mult"), ({"width_mult": -1.0}, ValueError, "width_mult"),
    ({"width_mult": float("nan")}, ValueError, "width_mult"), ({"shortcut": "C"}, ValueError, "shortcut"),
])
def test_bad_arguments(kwargs, exc, match):  # a value of the wrong type is a TypeError (edgeopt._check)
    with pytest.raises(exc, match=match):
        models.create("resnet20", **kwargs)


def test_unknown_option():
    with pytest.raises(TypeError, match="unsupported option"):
        models.create("vgg11", shortcut="A")


def test_wrong_input_channels_at_forward_and_summary():
    model = models.create("resnet20", in_channels=3)
    with pytest.raises(ValueError, match=r"resnet20: expected an input of shape \(N, 3, H, W\), got shape \(2, 1, 28, 28\)"):
        model(randn((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="input_shape: resnet20 takes 3 input channel"):
        models.summary(model, (1, 1, 28, 28))
    with pytest.raises(ValueError, match="input_shape"):
        models.summary(model, (1, 3, 32))
    with pytest.raises(TypeError, match="model"):
        models.summary("resnet20", (1, 3, 32, 32))


def test_too_small_input():
    with pytest.raises(ValueError, match="at least 16"):
        models.create("vgg11")(randn((1, 3, 8, 8)))
