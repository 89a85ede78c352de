"""Bad arguments across the public API: each raises the right exception naming the argument.

One table: each row is a call (Python source, evaluated in a namespace of small shared objects),
the exception it must raise and words its message must hold (at least the argument's name); a
few rows are good calls with the value they must return, so the checks do not reject valid input
(numpy scalars, negative dims that PyTorch accepts).

Every call runs in a worker subprocess (``python -W error this_file --worker``), never in the
test process: a call that crashes (segfault, abort) or hangs fails its own row, and the worker is
started again for the rows after it. The worker reports one JSON line per row on a pipe.
"""
from __future__ import annotations

import functools
import json
import math
import os
import select
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROW_TIMEOUT_S = 60  # one row; the slowest (an int8 compile, an ONNX export) take well under 1 s


class Row:
    def __init__(self, src: str, exc, words=(), want=None):
        self.src, self.exc, self.words, self.want = src, exc, tuple(words), want

    def __repr__(self) -> str:
        return self.src


def bad(src: str, exc, *words) -> Row:
    """`src` must raise `exc` (or a subclass) with every one of `words` in its message."""
    return Row(src, exc, words)


def good(src: str, want) -> Row:
    """`src` must return a value whose repr is repr(want)."""
    return Row(src, None, want=want)


X4 = "np.zeros((2, 3, 4, 4), np.float32)"

TOP = [
    bad("eo.set_num_threads(0)", ValueError, "n:", "got 0"),
    bad("eo.set_num_threads(-1)", ValueError, "n:"),
    bad("eo.set_num_threads(2**40)", ValueError, "n:", "1099511627776"),
    bad("eo.set_num_threads(2**70)", ValueError, "n:"),
    bad("eo.set_num_threads(eo.MAX_THREADS + 1)", ValueError, "n:", "1025"),
    bad("eo.set_num_threads(1.5)", TypeError, "n:", "1.5"),
    bad("eo.set_num_threads('2')", TypeError, "n:", "'2'"),
    bad("eo.set_num_threads(True)", TypeError, "n:", "bool"),
    bad("eo.set_num_threads(None)", TypeError, "n:", "None"),
    bad("eo.manual_seed(-1)", ValueError, "seed:", "-1"),
    bad("eo.manual_seed(1.5)", TypeError, "seed:"),
    bad("eo.manual_seed('1')", TypeError, "seed:"),
    bad("eo.manual_seed(None)", TypeError, "seed:"),
    bad("eo.manual_seed(True)", TypeError, "seed:"),
    good("eo.set_num_threads(np.int64(2))", None),
    good("eo.manual_seed(np.uint64(3)) or eo.random.initial_seed()", 3),
    good("eo.manual_seed(2**70)", None),
]

LAYERS = [
    bad("nn.Conv2d(0, 4, 3)", ValueError, "in_channels", "got 0"),
    bad("nn.Conv2d(3, 0, 3)", ValueError, "out_channels"),
    bad("nn.Conv2d(-3, 4, 3)", ValueError, "in_channels", "-3"),
    bad("nn.Conv2d(3.0, 4, 3)", TypeError, "in_channels", "3.0"),
    bad("nn.Conv2d('3', 4, 3)", TypeError, "in_channels"),
    bad("nn.Conv2d(None, 4, 3)", TypeError, "in_channels"),
    bad("nn.Conv2d(True, 4, 3)", TypeError, "in_channels"),
    bad("nn.Conv2d(3, 2**40, 3)", ValueError, "out_channels"),
    bad("nn.Conv2d(3, 4, 0)", ValueError, "kernel_size"),
    bad("nn.Conv2d(3, 4, 2.5)", TypeError, "kernel_size", "2.5"),
    bad("nn.Conv2d(3, 4, (3,))", TypeError, "kernel_size"),
    bad("nn.Conv2d(3, 4, (3, 3, 3))", TypeError, "kernel_size"),
    bad("nn.Conv2d(3, 4, (3, 0))", ValueError, "kernel_size"),
    bad("nn.Conv2d(3, 4, 2**40)", ValueError, "kernel_size"),
    bad("nn.Conv2d(3, 4, 3, stride=0)", ValueError, "stride"),
    bad("nn.Conv2d(3, 4, 3, stride=-1)", ValueError, "stride"),
    bad("nn.Conv2d(3, 4, 3, stride=None)", TypeError, "stride"),
    bad("nn.Conv2d(3, 4, 3, padding=-1)", ValueError, "padding"),
    bad("nn.Conv2d(3, 4, 3, padding='same')", TypeError, "padding"),
    bad("nn.Conv2d(3, 4, 3, groups=2)", ValueError, "groups"),
    bad("nn.Conv2d(3, 4, 3, groups=0)", ValueError, "groups"),
    bad("nn.Conv2d(3, 4, 3, groups=1.0)", TypeError, "groups"),
    bad("nn.Conv2d(3, 4, 3, bias='yes')", TypeError, "bias"),
    bad("nn.Conv2d(3, 4, 3, bias=None)", TypeError, "bias"),
    bad(f"nn.Conv2d(3, 4, 3)({X4}.astype(np.float64))", TypeError, "float32", "float64"),
    bad("nn.Conv2d(3, 4, 3)(np.zeros((3, 8, 8), np.float32))", ValueError, "4-d"),
    bad("nn.Conv2d(3, 4, 3)(None)", TypeError, "numpy.ndarray"),
    bad("nn.Conv2d(3, 4, 3)(np.zeros((1, 5, 8, 8), np.float32))", ValueError, "3 channels", "got 5"),
    bad("nn.Conv2d(3, 4, 3)(np.zeros((1, 3, 1, 1), np.float32))", ValueError, "smaller than"),
    good("nn.Conv2d(np.int64(3), np.int32(4), np.int64(3), stride=(np.int8(1), 2)).weight.shape", (4, 3, 3, 3)),
    bad("nn.Linear(0, 2)", ValueError, "in_features"),
    bad("nn.Linear(2, -1)", ValueError, "out_features"),
    bad("nn.Linear(2.5, 2)", TypeError, "in_features"),
    bad("nn.Linear(2, 2, bias=1)", TypeError, "bias"),
    bad("nn.Linear(4, 2)(np.zeros(4, np.float32))", ValueError, "Linear", "(4,)"),
    bad("nn.Linear(4, 2)(np.zeros((2, 3), np.float32))", ValueError, "4 features", "got 3"),
    good("nn.Linear(4, 2)(np.zeros((5, 3, 4), np.float32)).shape", (5, 3, 2)),
    bad("nn.BatchNorm2d(0)", ValueError, "num_features"),
    bad("nn.BatchNorm2d(2.0)", TypeError, "num_features"),
    bad("nn.BatchNorm2d(4, eps=0)", ValueError, "eps", "> 0"),
    bad("nn.BatchNorm2d(4, eps=-1e-5)", ValueError, "eps"),
    bad("nn.BatchNorm2d(4, eps=float('nan'))", ValueError, "eps", "nan"),
    bad("nn.BatchNorm2d(4, eps='1e-5')", TypeError, "eps"),
    bad("nn.BatchNorm2d(4, momentum=1.5)", ValueError, "momentum", "1.5"),
    bad("nn.BatchNorm2d(4, momentum=float('nan'))", ValueError, "momentum"),
    bad("nn.BatchNorm2d(4, momentum='0.1')", TypeError, "momentum"),
    bad("nn.BatchNorm2d(4, affine='no')", TypeError, "affine"),
    bad("nn.BatchNorm2d(4, track_running_stats=None)", TypeError, "track_running_stats"),
    bad("nn.BatchNorm2d(2)(np.zeros((1, 2, 1, 1), np.float32))", ValueError, "more than 1 value"),
    good("nn.BatchNorm2d(np.int64(4), eps=np.float32(1e-3), momentum=None).momentum", None),
    bad("nn.MaxPool2d(0)", ValueError, "kernel_size"),
    bad("nn.MaxPool2d(2, stride=0)", ValueError, "stride"),
    bad("nn.MaxPool2d(2, padding=2)", ValueError, "padding", "half"),
    bad("nn.MaxPool2d(2, padding=-1)", ValueError, "padding"),
    bad("nn.MaxPool2d(2.0)", TypeError, "kernel_size"),
    bad("nn.MaxPool2d('2')", TypeError, "kernel_size"),
    bad("nn.MaxPool2d(2**40)", ValueError, "kernel_size"),
    bad("nn.AvgPool2d(3, count_include_pad='yes')", TypeError, "count_include_pad"),
    bad("nn.AvgPool2d(0)", ValueError, "kernel_size"),
    bad("nn.AvgPool2d(2, stride=(1, 0))", ValueError, "stride"),
    bad("nn.AdaptiveAvgPool2d(2)", ValueError, "output_size"),
    bad("nn.AdaptiveAvgPool2d(None)", TypeError, "output_size"),
    bad("nn.MaxPool2d(2)(np.zeros((1, 1, 1, 1), np.float32))", ValueError, "smaller than"),
    bad("nn.GlobalAvgPool2d()(np.zeros((2, 3), np.float32))", ValueError, "4-d"),
    good(f"nn.MaxPool2d(np.int64(2))({X4}).shape", (2, 3, 2, 2)),
    # Flatten's dims as PyTorch: IndexError outside [-ndim, ndim - 1], negative dims wrap inside it
    bad(f"nn.Flatten(start_dim=5)({X4})", IndexError, "start_dim", "[-4, 3]", "5"),
    bad(f"nn.Flatten(start_dim=-5)({X4})", IndexError, "start_dim", "-5"),
    bad(f"nn.Flatten(1, end_dim=4)({X4})", IndexError, "end_dim", "4"),
    bad(f"nn.Flatten(1, -5)({X4})", IndexError, "end_dim"),
    bad(f"nn.Flatten(3, 1)({X4})", ValueError, "start_dim", "end_dim"),
    bad("nn.Flatten(start_dim=1.5)", TypeError, "start_dim"),
    bad("nn.Flatten(end_dim='x')", TypeError, "end_dim"),
    bad("nn.Flatten()(np.zeros(3, np.float32))", IndexError, "start_dim", "[-1, 0]"),
    bad("nn.Flatten(1)(np.zeros((), np.float32))", IndexError, "start_dim"),
    good(f"nn.Flatten(start_dim=-3)({X4}).shape", (2, 48)),
    good(f"nn.Flatten(-4, -2)({X4}).shape", (24, 4)),
    good(f"nn.Flatten(np.int64(0))({X4}).shape", (96,)),
    good("nn.Flatten(0)(np.ones((), np.float32)).shape", (1,)),
    bad("nn.Dropout(1.0)", ValueError, "p", "[0.0, 1.0)"),
    bad("nn.Dropout(-0.1)", ValueError, "p"),
    bad("nn.Dropout(float('nan'))", ValueError, "p", "nan"),
    bad("nn.Dropout('0.5')", TypeError, "p"),
    bad("nn.Dropout(0.5, inplace=1)", TypeError, "inplace"),
    bad("nn.ReLU(inplace='yes')", TypeError, "inplace"),
    bad("nn.Hardswish(inplace=None)", TypeError, "inplace"),
    bad("nn.ReLU()(np.zeros(3))", TypeError, "float32", "float64"),
    bad("nn.Sigmoid()([1.0])", TypeError, "numpy.ndarray", "list"),
    good("nn.ReLU()(np.ones((), np.float32)).shape", ()),
    good("nn.Dropout(np.float32(0.25)).p", 0.25),
    bad("nn.Sequential(nn.ReLU(), 5)", TypeError, "Module", "int"),
    bad("nn.Sequential(nn.ReLU())[5]", IndexError, "5"),
    bad("nn.Sequential(nn.ReLU())['0']", TypeError, "index"),
    bad("nn.ResidualBlock(None)", TypeError, "body"),
    bad("nn.SqueezeExcitation(0, 4)", ValueError, "input_channels"),
    bad("nn.SqueezeExcitation(8, 2.5)", TypeError, "squeeze_channels"),
    bad("nn.SqueezeExcitation(8, 2, activation=5)", TypeError, "activation"),
    bad("nn.Conv2d(3, 4, 3).train(mode='yes')", TypeError, "mode"),
    bad("nn.Conv2d(3, 4, 3).load_state_dict(None)", TypeError, "state_dict"),
    bad("nn.Conv2d(3, 4, 3).load_state_dict({'bad': 1})", KeyError, "unexpected", "'bad'"),
    bad("nn.Conv2d(3, 4, 3).register_forward_hook(5)", TypeError, "hook"),
    bad("nn.Parameter('abc')", TypeError, "data"),
    bad("nn.init.uniform_(np.zeros(3), 0, 1)", TypeError, "p:", "Parameter"),
    bad("nn.init.uniform_(param(), 1, 0)", ValueError, "a, b", "a <= b"),
    bad("nn.init.normal_(param(), std=-1.0)", ValueError, "std"),
    bad("nn.init.normal_(param(), mean=float('inf'))", ValueError, "mean"),
    bad("nn.init.kaiming_uniform_(param(), mode='fan')", ValueError, "mode", "'fan'"),
    bad("nn.init.kaiming_normal_(param(), nonlinearity='tanh')", ValueError, "nonlinearity", "'tanh'"),
    bad("nn.init.constant_(param(), '1')", TypeError, "value"),
]

FUNCTIONAL = [
    bad("F.relu(np.zeros(3))", TypeError, "x:", "float64"),
    bad("F.relu([1.0])", TypeError, "x:", "list"),
    bad("F.conv2d(x4(), w3(), groups=0)", ValueError, "groups"),
    bad("F.conv2d(x4(), w3(), groups=2**40)", ValueError, "groups"),
    bad("F.conv2d(x4(), w3(), groups=2**70)", ValueError, "groups"),
    bad("F.conv2d(x4(), w3(), stride=0)", ValueError, "stride"),
    bad("F.conv2d(x4(), w3(), stride=2**40)", ValueError, "stride"),
    bad("F.conv2d(x4(), w3(), stride=(1, 2**63))", ValueError, "stride"),
    bad("F.conv2d(x4(), w3(), padding=-1)", ValueError, "padding"),
    bad("F.conv2d(x4(), w3(), stride=1.5)", TypeError, "stride"),
    bad("F.conv2d(x4(), np.zeros((2, 2, 1, 1), np.float32))", ValueError, "w:", "in_channels=3"),
    bad("F.conv2d_backward(F.conv2d(x4(), w3()), x4(), w3(), np.zeros_like(w3()), need_dx='yes')",
        TypeError, "need_dx"),
    bad("F.linear(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))", ValueError, "w:", "(4, 5)"),
    bad("F.linear_backward(np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32), "
        "np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), need_dx=None)", TypeError, "need_dx"),
    bad("F.max_pool2d(x4(), 0)", ValueError, "kernel_size"),
    bad("F.max_pool2d(x4(), 2**40)", ValueError, "kernel_size"),
    bad("F.max_pool2d(x4(), 2, return_indices='yes')", TypeError, "return_indices"),
    bad("F.avg_pool2d(x4(), 2, padding=-1)", ValueError, "padding"),
    bad("F.avg_pool2d(x4(), 2, count_include_pad=None)", TypeError, "count_include_pad"),
    bad("F.max_pool2d_backward(*F.max_pool2d(x4(), 2, return_indices=True), (1, 2, 3))", ValueError, "x_shape"),
    bad("F.global_avg_pool2d_backward(F.global_avg_pool2d(x4()), None)", TypeError, "x_shape"),
    bad("F.avg_pool2d_backward(F.avg_pool2d(x4(), 2), (2, 3, 4.5, 4), 2)", TypeError, "x_shape", "4.5"),
    bad("F.dropout(x4(), 1.0)", ValueError, "p:"),
    bad("F.dropout(x4(), '0.5')", TypeError, "p:"),
    bad("F.dropout(x4(), 0.5, training='yes')", TypeError, "training"),
    bad("F.dropout(x4(), 0.5, seed=1.5)", TypeError, "seed"),
    bad("F.dropout_backward(x4(), F.dropout(x4(), 0.5)[1], float('nan'))", ValueError, "p:"),
    bad("F.batch_norm_train(x4(), None, None, np.zeros(3, np.float32), np.ones(3, np.float32), momentum=2.0)",
        ValueError, "momentum"),
    bad("F.batch_norm_train(x4(), None, None, np.zeros(3, np.float32), np.ones(3, np.float32), eps=-1.0)",
        ValueError, "eps", "-1.0"),
    bad("F.batch_norm_eval(x4(), None, None, np.zeros(3, np.float32), np.ones(3, np.float32), eps='x')",
        TypeError, "eps"),
    bad("F.batch_norm_backward_eval(x4(), x4(), None, np.zeros(3, np.float32), np.ones(3, np.float32), "
        "float('nan'), None, None)", ValueError, "eps"),
    bad("F.cross_entropy(logits(), labels(), label_smoothing=1.5)", ValueError, "label_smoothing"),
    bad("F.cross_entropy(logits(), labels(), label_smoothing='0.1')", TypeError, "label_smoothing"),
    bad("F.cross_entropy(logits(), np.array([0, 7]))", ValueError, "labels", "7"),
    bad("F.cross_entropy(logits(), np.array([0.0, 1.0]))", TypeError, "labels", "float64"),
    bad("F.add(np.zeros(3, np.float32), np.zeros(4, np.float32))", ValueError, "(4,)"),
    bad("F.channel_scale(x4(), np.zeros((2, 4), np.float32))", ValueError, "s:"),
    good("F.relu(np.ones((), np.float32)).shape", ()),
    good("F.sigmoid_backward(np.ones((), np.float32), np.ones((), np.float32)).shape", ()),
    good("F.add(np.ones((), np.float32), np.ones((), np.float32)).item()", 2.0),
    good("F.dropout(np.ones((), np.float32), 0.5, seed=np.int64(3))[0].shape", ()),
    good("F.conv2d(x4(), w3(), stride=np.int64(2), padding=(0, np.int32(1))).shape", (2, 4, 2, 3)),
]

OPTIM = [
    bad("optim.SGD(params(), lr=float('nan'))", ValueError, "lr", "nan"),
    bad("optim.SGD(params(), lr=float('inf'))", ValueError, "lr", "inf"),
    bad("optim.SGD(params(), lr=-0.1)", ValueError, "lr", "-0.1"),
    bad("optim.SGD(params(), lr='0.1')", TypeError, "lr", "'0.1'"),
    bad("optim.SGD(params(), lr=None)", TypeError, "lr", "None"),
    bad("optim.SGD(params(), lr=True)", TypeError, "lr"),
    bad("optim.SGD(params(), lr=0.1, momentum=-0.9)", ValueError, "momentum"),
    bad("optim.SGD(params(), lr=0.1, momentum=float('nan'))", ValueError, "momentum"),
    bad("optim.SGD(params(), lr=0.1, momentum='0.9')", TypeError, "momentum"),
    bad("optim.SGD(params(), lr=0.1, weight_decay=-1)", ValueError, "weight_decay"),
    bad("optim.SGD(params(), lr=0.1, weight_decay=float('inf'))", ValueError, "weight_decay"),
    bad("optim.SGD(params(), lr=0.1, dampening=float('nan'))", ValueError, "dampening"),
    bad("optim.SGD(params(), lr=0.1, nesterov='yes')", TypeError, "nesterov"),
    bad("optim.SGD(params(), lr=0.1, momentum=0, nesterov=True)", ValueError, "nesterov"),
    bad("optim.SGD(None, lr=0.1)", TypeError, "params"),
    bad("optim.SGD([], lr=0.1)", ValueError, "params"),
    bad("optim.SGD([np.zeros(2)], lr=0.1)", TypeError, "params"),
    bad("optim.SGD([{'params': params(), 'lr': float('nan')}], lr=0.1)", ValueError, "lr"),
    bad("optim.Adam(params(), lr=float('nan'))", ValueError, "lr"),
    bad("optim.Adam(params(), betas=(0.9, 1.0))", ValueError, "betas[1]"),
    bad("optim.Adam(params(), betas=0.9)", TypeError, "betas"),
    bad("optim.Adam(params(), betas=(0.9,))", TypeError, "betas"),
    bad("optim.Adam(params(), betas=('a', 0.9))", TypeError, "betas[0]"),
    bad("optim.Adam(params(), eps=-1e-8)", ValueError, "eps"),
    bad("optim.Adam(params(), weight_decay=float('nan'))", ValueError, "weight_decay"),
    bad("optim.AdamW(params(), weight_decay=-1)", ValueError, "weight_decay"),
    bad("setattr(sgd(), 'lr', float('nan'))", ValueError, "lr"),
    bad("setattr(sgd(), 'lr', '0.1')", TypeError, "lr"),
    bad("sgd().load_state_dict({'state': {}, 'param_groups': [dict(sgd().state_dict()['param_groups'][0], "
        "lr=float('nan'))]})", ValueError, "lr"),
    bad("sgd().load_state_dict(None)", ValueError, "state_dict"),
    good("round(optim.SGD(params(), lr=np.float32(0.5), momentum=np.float64(0.9)).lr, 6)", 0.5),
    good("optim.Adam(params(), betas=[0.5, 0.75]).param_groups[0]['betas']", (0.5, 0.75)),
    bad("optim.StepLR(sgd(), 0)", ValueError, "step_size"),
    bad("optim.StepLR(sgd(), 1.5)", TypeError, "step_size"),
    bad("optim.StepLR(sgd(), 2, gamma=float('nan'))", ValueError, "gamma"),
    bad("optim.StepLR(sgd(), 2, gamma='0.1')", TypeError, "gamma"),
    bad("optim.StepLR(None, 2)", TypeError, "optimizer"),
    bad("optim.StepLR(sgd(), 2, last_epoch=-2)", ValueError, "last_epoch"),
    bad("optim.MultiStepLR(sgd(), [2, '4'])", TypeError, "milestones[1]"),
    bad("optim.MultiStepLR(sgd(), [-1])", ValueError, "milestones[0]"),
    bad("optim.MultiStepLR(sgd(), 5)", TypeError, "milestones"),
    bad("optim.MultiStepLR(sgd(), [2.5])", TypeError, "milestones[0]"),
    bad("optim.CosineAnnealingLR(sgd(), 0)", ValueError, "T_max"),
    bad("optim.CosineAnnealingLR(sgd(), 10, eta_min=-1)", ValueError, "eta_min"),
    bad("optim.CosineAnnealingLR(sgd(), 10.0)", TypeError, "T_max"),
    bad("optim.LinearWarmup(sgd(), 0)", ValueError, "warmup_steps"),
    bad("optim.LinearWarmup(sgd(), 3, start_factor=0)", ValueError, "start_factor"),
    bad("optim.LinearWarmup(sgd(), 3, start_factor=1.5)", ValueError, "start_factor"),
    bad("optim.LinearWarmup(sgd(), 3, after=5)", TypeError, "after"),
    bad("optim.LinearWarmup(sgd(), 3, after=optim.StepLR(optim.SGD(params(), 0.1), 2))", ValueError, "after"),
    bad("optim.LambdaLR(sgd(), 5)", TypeError, "lr_lambda"),
    good("optim.MultiStepLR(sgd(), (np.int64(3), 1)).milestones", [1, 3]),
]

MODELS = [
    bad("models.create('wrn99999994_2')", ValueError, "depth", "99999994"),
    bad("models.create('wrn994_64')", ValueError, "widen_factor", "parameters"),
    bad("models.create('wrn16_0')", ValueError, "widen_factor"),
    bad("models.create('wrn17_2')", ValueError, "depth", "6n + 4"),
    bad("models.create('wrn' + '9' * 5000 + '_2')", ValueError, "name", "unknown model"),
    bad("models.create(None)", TypeError, "name"),
    bad("models.create('resnet21')", ValueError, "name", "resnet20"),
    bad("models.create('resnet20', num_classes=0)", ValueError, "num_classes"),
    bad("models.create('resnet20', num_classes=10.0)", TypeError, "num_classes"),
    bad("models.create('resnet20', in_channels=0)", ValueError, "in_channels"),
    bad("models.create('resnet20', width_mult=0)", ValueError, "width_mult"),
    bad("models.create('resnet20', width_mult=float('nan'))", ValueError, "width_mult"),
    bad("models.create('resnet20', width_mult=1e6)", ValueError, "width_mult"),
    bad("models.create('resnet20', width_mult='1')", TypeError, "width_mult"),
    bad("models.create('resnet20', shortcut='C')", ValueError, "shortcut"),
    bad("models.create('mobilenet_v2', dropout=1.0)", ValueError, "dropout"),
    bad("models.create('mobilenet_v1', dropout='0.1')", TypeError, "dropout"),
    bad("models.create('wrn16_4', dropout=-0.1)", ValueError, "dropout"),
    bad("models.create('vgg11', shortcut='A')", TypeError, "unsupported option"),
    bad("models.summary(None, (1, 3, 8, 8))", TypeError, "model"),
    bad("models.summary(model(), (1, 3, 8.5, 8))", TypeError, "input_shape", "8.5"),
    bad("models.summary(model(), (1, 3, 0, 8))", ValueError, "input_shape"),
    bad("models.summary(model(), (1, 1, 8, 8))", ValueError, "input_shape", "3 input channel"),
    bad("models.summary(model(), 32)", TypeError, "input_shape"),
    bad("models.summary(model(), (3, 8))", ValueError, "input_shape"),
    good("models.summary(model(), (np.int64(1), 3, 8, 8)).output_shape", (1, 10)),
    good("models.create('resnet20', width_mult=np.float32(0.25), num_classes=np.int64(3)).num_classes", 3),
]

DATA = [
    bad("data.Dataset(np.zeros((2, 1, 4, 4)), np.array([0.5, 1]))", TypeError, "y:", "float64"),
    bad("data.Dataset(np.zeros((2, 1, 4, 4)), np.zeros(3, np.int64))", ValueError, "x, y", "2 images", "3 labels"),
    bad("data.Dataset(np.zeros((2, 1)), np.zeros(2, np.int64), classes='ab')", TypeError, "classes"),
    bad("data.Dataset(np.zeros((2, 1)), np.zeros(2, np.int64), classes=5)", TypeError, "classes"),
    bad("data.Dataset(np.zeros((2, 1)), np.zeros(2, np.int64), name=5)", TypeError, "name"),
    bad("data.Dataset(np.array(['a', 'b']), np.zeros(2, np.int64))", TypeError, "x:"),
    bad("data.Dataset(np.zeros((2, 1)), np.array([-1, 0]))", ValueError, "y:", "-1"),
    bad("ds().subset([0, 99])", IndexError, "indices", "99"),
    bad("ds().subset([0.5])", TypeError, "indices"),
    bad("ds()[99]", IndexError, "99"),
    bad("data.DataLoader(ds(), 0)", ValueError, "batch_size"),
    bad("data.DataLoader(ds(), 2.0)", TypeError, "batch_size"),
    bad("data.DataLoader(ds(), 2**63)", ValueError, "batch_size"),
    bad("data.DataLoader(ds(), 2, shuffle='yes')", TypeError, "shuffle"),
    bad("data.DataLoader(ds(), 2, seed=-1)", ValueError, "seed"),
    bad("data.DataLoader(ds(), 2, seed=2**64)", ValueError, "seed"),
    bad("data.DataLoader(ds(), 2, augment='rotate')", ValueError, "augment", "'rotate'"),
    bad("data.DataLoader(ds(), 2, augment=5)", TypeError, "augment"),
    bad("data.DataLoader(ds(), 2, mean='a')", TypeError, "mean"),
    bad("data.DataLoader(ds(), 2, mean=[0.1, 0.2])", ValueError, "mean"),
    bad("data.DataLoader(ds(), 2, std=0)", ValueError, "std"),
    bad("data.DataLoader(ds(), 2, crop=-1)", ValueError, "crop"),
    bad("data.DataLoader(ds(), 2, flip='yes')", TypeError, "flip"),
    bad("data.DataLoader(ds(), 2, drop_last=None)", TypeError, "drop_last"),
    bad("data.DataLoader(ds(), 2, prefetch='yes')", TypeError, "prefetch", "'yes'"),
    bad("data.DataLoader(ds(), 2, prefetch=1)", TypeError, "prefetch"),
    bad("data.DataLoader(None, 2)", TypeError, "dataset", "Dataset"),
    bad("data.DataLoader(ds(), 2).set_epoch(-1)", ValueError, "epoch"),
    bad("data.DataLoader(ds(), 2).batch([0], epoch=1.5)", TypeError, "epoch"),
    bad("data.synthetic(num_classes=1)", ValueError, "num_classes"),
    bad("data.synthetic(shape=(1, 8.5, 8))", TypeError, "shape", "8.5"),
    bad("data.synthetic(shape=(1, 0, 8))", ValueError, "shape"),
    bad("data.synthetic(n_train=-1)", ValueError, "n_train"),
    bad("data.synthetic(seed='0')", TypeError, "seed"),
    bad("data.cifar10(root=5)", TypeError, "root"),
    bad("data.cifar10(root='/nonexistent', download='yes')", TypeError, "download"),
    bad("data.cifar100(root='/nonexistent', labels='mid')", ValueError, "labels", "'mid'"),
    bad("data.fashion_mnist(root=5)", TypeError, "root"),
    bad("data.read_idx(None)", TypeError, "path"),
    bad("data.read_idx('/nonexistent', ndim=0)", ValueError, "ndim"),
    good("data.DataLoader(ds(), np.int64(2), seed=np.uint64(1), shuffle=np.bool_(True)).batch_size", 2),
    good("data.DataLoader(ds(), 2, prefetch=np.bool_(False)).prefetch", False),
]

# fit must reject these before its first step: untouched() also checks the model is unchanged
TRAIN = [
    bad("train.fit(None, ds())", TypeError, "model"),
    bad("untouched(None)", TypeError, "train", "NoneType"),
    bad("untouched(ds(), val=5)", TypeError, "val"),
    bad("untouched((ds().x, ds().y))", TypeError, "train", "tuple", "Dataset(x, y)"),
    bad("untouched(ds(), lr='0.1')", TypeError, "lr", "'0.1'"),
    bad("untouched(ds(), lr=float('nan'))", ValueError, "lr", "nan"),
    bad("untouched(ds(), lr=0)", ValueError, "lr", "> 0"),
    bad("untouched(ds(), callbacks=5)", TypeError, "callbacks", "5"),
    bad("untouched(ds(), callbacks=[train.Callback(), print])", TypeError, "callbacks[1]", "Callback"),
    bad("untouched(ds(), callbacks=train.Callback())", TypeError, "callbacks", "iterable"),
    bad("untouched(ds(), loss=5)", TypeError, "loss", "callable"),
    bad("untouched(ds(), loss=lambda z, y, b: (0.0, z), label_smoothing=0.1)", ValueError, "label_smoothing"),
    bad("untouched(ds(), epochs=0)", ValueError, "epochs"),
    bad("untouched(ds(), epochs=1.5)", TypeError, "epochs"),
    bad("untouched(ds(), batch_size=0)", ValueError, "batch_size"),
    bad("untouched(ds(), batch_size='8')", TypeError, "batch_size"),
    bad("untouched(ds(), schedule='linear')", ValueError, "schedule", "'linear'"),
    bad("untouched(ds(), schedule=None)", TypeError, "schedule"),
    bad("untouched(ds(), warmup_epochs=-1)", ValueError, "warmup_epochs"),
    bad("untouched(ds(), optimizer='rmsprop')", ValueError, "optimizer"),
    bad("untouched(ds(), momentum=-0.5)", ValueError, "momentum"),
    bad("untouched(ds(), weight_decay=float('nan'))", ValueError, "weight_decay"),
    bad("untouched(ds(), label_smoothing=1.0)", ValueError, "label_smoothing"),
    bad("untouched(ds(), augment='flip')", ValueError, "augment"),
    bad("untouched(ds(), seed=-1)", ValueError, "seed"),
    bad("untouched(ds(), checkpoint=5)", TypeError, "checkpoint"),
    bad("untouched(ds(), resume='yes')", TypeError, "resume"),
    bad("untouched(ds(), progress=None)", TypeError, "progress"),
    bad("untouched(ds().subset([]))", ValueError, "train", "empty"),
    bad("untouched(ds(), val=data.Dataset(np.zeros((2, 3, 4, 4), np.uint8), np.zeros(2, np.int64)))",
        ValueError, "val", "(3, 8, 8)", "(3, 4, 4)"),
    bad("untouched(data.Dataset(np.zeros((4, 1, 8, 8), np.uint8), np.zeros(4, np.int64)))",
        ValueError, "train", "3 input channel"),
    bad("train.evaluate(None, ds())", TypeError, "model_or_engine"),
    bad("train.evaluate(model(), None)", TypeError, "data"),
    bad("train.evaluate(model(), ds(), batch_size=0)", ValueError, "batch_size"),
    bad("train.evaluate(model(), ds(), per_image='yes')", TypeError, "per_image"),
    bad("train.evaluate(engine(), data.Dataset(np.zeros((2, 3, 4, 4), np.uint8), np.zeros(2, np.int64)))",
        ValueError, "data", "(3, 8, 8)"),
    bad("train.evaluate(model(), (ds().x, ds().y))", TypeError, "data", "tuple"),
    good("sorted(train.evaluate(engine(), ds(), batch_size=np.int64(3)))", ["acc", "loss", "n", "run_ms", "top5"]),
    bad("train.save_checkpoint(None, model())", TypeError, "path"),
    bad("train.save_checkpoint(tmp('c.npz'), None)", TypeError, "model"),
    bad("train.save_checkpoint(tmp('c.npz'), model(), optimizer=5)", TypeError, "optimizer"),
    bad("train.load_checkpoint(None)", TypeError, "path"),
    bad("train.load_checkpoint(tmp('c.npz'), model=5)", TypeError, "model"),
    bad("train.load_checkpoint(tmp('c.npz'), optimizer='sgd')", TypeError, "optimizer"),
]

DEPLOY = [
    bad("deploy.compile(None, input_shape=(1, 3, 8, 8))", TypeError, "model", "NoneType"),
    bad("deploy.compile(model(), 'int4', input_shape=(1, 3, 8, 8))", ValueError, "scheme", "'int4'"),
    bad("deploy.compile(model(), None, input_shape=(1, 3, 8, 8))", TypeError, "scheme"),
    bad("deploy.compile(model(), input_shape=(1, 3, 8.7, 8))", TypeError, "input_shape", "8.7"),
    bad("deploy.compile(model(), input_shape=(1, 3, 8))", ValueError, "input_shape"),
    bad("deploy.compile(model(), input_shape=(1, 3, 0, 8))", ValueError, "input_shape"),
    bad("deploy.compile(model(), input_shape='1,3,8,8')", TypeError, "input_shape"),
    bad("deploy.compile(model(), input_shape=(1, 3, 2**40, 8))", ValueError, "input_shape"),
    bad("deploy.compile(model(), 'int8-full', (1, 3, 8, 8), calib=np.zeros((4, 2, 8, 8), np.float32))",
        ValueError, "calib", "(3, 8, 8)", "(2, 8, 8)"),
    bad("deploy.compile(model(), 'int8-full', (1, 3, 8, 8), "
        "calib=data.Dataset(np.zeros((4, 2, 8, 8), np.uint8), np.zeros(4, np.int64)))", ValueError, "calib"),
    bad("deploy.compile(model(), 'int8-full', (1, 3, 8, 8), calib=None)", ValueError, "calib"),
    bad("deploy.compile(model(), 'int8-full', (1, 3, 8, 8), calib='data')", TypeError, "calib"),
    bad("deploy.compile(model(), 'int8-full', (1, 3, 8, 8), calib=np.zeros((4, 3, 8, 8), np.float32), "
        "rounding='adaround')", ValueError, "rounding", "'adaround'"),
    bad("deploy.compile(model(), 'fp16', (1, 3, 8, 8), rounding='gptq')", ValueError, "rounding", "fp16"),
    bad("deploy.compile(model(), 'int4-weight', (1, 3, 8, 8), rounding='gptq')", ValueError, "calib"),
    bad("deploy.compile(model(), 'int8-weight', (1, 3, 8, 8), rounding='gptq', "
        "calib=np.full((4, 3, 8, 8), np.nan, np.float32))", ValueError, "calib", "NaN"),
    bad("deploy.compile(model(), input_shape=(1, 3, 8, 8), sparse='yes')", ValueError, "sparse"),
    bad("deploy.compile(model(), input_shape=(1, 3, 8, 8), sparse=1)", TypeError, "sparse"),
    bad("deploy.compile(model(), 'fp16', (1, 3, 8, 8), sparse=True)", ValueError, "sparse"),
    bad("eo.graph.trace(None, (1, 3, 8, 8))", TypeError, "model"),
    bad("eo.graph.trace(model(), (1, 3, 8.5, 8))", TypeError, "input_shape"),
    bad("deploy.latency(None)", TypeError, "engine"),
    bad("deploy.latency(engine(), batch=0)", ValueError, "batch"),
    bad("deploy.latency(engine(), batch=2**40)", ValueError, "batch"),
    bad("deploy.latency(engine(), runs=0)", ValueError, "runs"),
    bad("deploy.latency(engine(), warmup=-1)", ValueError, "warmup"),
    bad("deploy.latency(engine(), seed=-1)", ValueError, "seed"),
    bad("engine().activation_bytes(2**55)", ValueError, "batch", str(2**55)),
    bad("engine().activation_bytes(0)", ValueError, "batch"),
    bad("engine().activation_bytes(2**64)", ValueError, "batch"),
    bad("engine().activation_bytes(1.5)", TypeError, "batch"),
    bad("engine().run(None)", TypeError, "x:"),
    bad("engine().run(np.zeros((1, 3, 8, 8)))", TypeError, "x:", "float64"),
    bad("engine().run(np.zeros((3, 8, 8), np.float32))", ValueError, "x:", "4-d"),
    bad("engine().run(np.zeros((1, 2, 8, 8), np.float32))", ValueError, "x:", "(1, 2, 8, 8)"),
    bad("engine().run(np.zeros((0, 3, 8, 8), np.float32))", ValueError, "x:"),
    bad("engine().save(None)", TypeError, "path"),
    bad("deploy.Engine('abc')", TypeError, "data"),
    bad("deploy.load(None)", TypeError, "path"),
    bad("deploy.load(5)", TypeError, "path"),
    bad("deploy.export_onnx(None, tmp('m.onnx'))", TypeError, "model"),
    bad("deploy.export_onnx(model(), None)", TypeError, "path"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), scheme='fp16')", ValueError, "scheme"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), opset=9)", ValueError, "opset"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), opset=17.0)", TypeError, "opset"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), input_shape=(1, 3, 8.7, 8))", TypeError, "input_shape"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), input_shape=(1, 3, 8, 8), dynamic_batch='yes')",
        TypeError, "dynamic_batch"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), input_shape=(1, 3, 8, 8), calib=ds())", ValueError, "calib"),
    bad("deploy.export_onnx(model(), tmp('m.onnx'), 'int8', (1, 3, 8, 8), calib=None)", ValueError, "calib"),
    good("deploy.compile(model(), input_shape=(np.int64(1), 3, 8, 8)).input_shape", (3, 8, 8)),
    good("engine().activation_bytes(np.int64(2)) > 0", True),
]

QUANT_PRUNE = [
    good("math.isfinite(quant.qparams(-1e308, 1e308, symmetric=False)[0])", True),
    good("math.isfinite(quant.qparams(-1e308, 1e308)[0])", True),
    bad("quant.qparams(1.0, -1.0)", ValueError, "xmin", "xmax"),
    bad("quant.qparams(float('nan'), 1.0)", ValueError, "xmin", "finite"),
    bad("quant.qparams('a', 1.0)", TypeError, "xmin", "'a'"),
    bad("quant.qparams(0.0, None)", TypeError, "xmax"),
    bad("quant.qparams(-1, 1, bits=1)", ValueError, "bits"),
    bad("quant.qparams(-1, 1, bits=8.0)", TypeError, "bits"),
    bad("quant.qparams(-1, 1, symmetric='yes')", TypeError, "symmetric"),
    bad("quant.qparams(-5e-324, 5e-324)", ValueError, "xmin", "too small"),
    bad("quant.MinMaxObserver(axis=5)(np.zeros((2, 3)))", IndexError, "axis", "[-2, 1]", "5"),
    bad("quant.MinMaxObserver(axis=-3)(np.zeros((2, 3)))", IndexError, "axis", "-3"),
    bad("quant.MinMaxObserver(axis=1.5)", TypeError, "axis"),
    bad("quant.MinMaxObserver(bits=17)", ValueError, "bits"),
    bad("quant.MinMaxObserver()('abc')", TypeError, "x:"),
    bad("quant.requant_scale(float('nan'), 0.5, 1.0)", ValueError, "s_in:", "finite", "nan"),
    bad("quant.requant_scale(1.0, float('inf'), 1.0)", ValueError, "s_w:", "finite", "inf"),
    bad("quant.requant_scale(1.0, 0.5, 0.0)", ValueError, "s_out:", "> 0", "0.0"),
    bad("quant.requant_scale(1.0, -0.5, 1.0)", ValueError, "s_w:", "> 0", "-0.5"),
    bad("quant.requant_scale(1.0, np.array([0.5, 0.0]), 1.0)", ValueError, "s_w:"),
    bad("quant.requant_scale('0.5', 0.5, 1.0)", TypeError, "s_in:", "'0.5'"),
    bad("quant.requant_scale(1.0, None, 1.0)", TypeError, "s_w:", "None"),
    bad("quant.requant_scale(1e30, 1e30, 1e-30)", ValueError, "s_in * s_w / s_out", "float32 range"),
    bad("quant.requant_scale(1e-30, 1e-30, 1.0)", ValueError, "s_in * s_w / s_out"),
    bad("quant.requant_scale(1e39, 1.0, 1.0)", ValueError, "s_in:", "finite"),
    bad("quant.add_scales(0.5, 0, 0.5, 0, 0.5, 300)", ValueError, "z_y"),
    bad("quant.average_scale(0.5, 0.5, 0)", ValueError, "count"),
    good("float(quant.requant_scale(0.5, 0.25, 2.0))", 0.0625),
    bad("quant.quantize_per_channel(np.ones((2, 3)), axis=2)", IndexError, "axis"),
    bad("quant.quantize_per_channel(np.ones((2, 3)), bits=9)", ValueError, "bits"),
    bad("quant.quantize_per_channel('w')", TypeError, "w:"),
    good("observed_min(-1)", (3,)),
    good("quant.qparams(np.float32(-1), np.int64(1), bits=np.int8(8), symmetric=np.bool_(False))[1]", 128),
    bad("prune.magnitude(None)", TypeError, "model"),
    bad("prune.magnitude(model(), sparsity=1.5)", ValueError, "sparsity"),
    bad("prune.magnitude(model(), sparsity=-0.1)", ValueError, "sparsity"),
    bad("prune.magnitude(model(), sparsity=float('nan'))", ValueError, "sparsity"),
    bad("prune.magnitude(model(), sparsity='0.5')", TypeError, "sparsity"),
    bad("prune.magnitude(model(), scope='net')", ValueError, "scope"),
    bad("prune.magnitude(model(), scope=None)", TypeError, "scope"),
    bad("prune.magnitude(model(), block=(0, 1))", ValueError, "block"),
    bad("prune.magnitude(model(), block=4)", TypeError, "block"),
    bad("prune.sparsity(None)", TypeError, "model"),
    bad("prune.prunable_layers('model')", TypeError, "model"),
    good("round(prune.sparsity(prune.magnitude(model(), np.float32(0.5)))['overall'], 2)", 0.5),
]

ROWS = TOP + LAYERS + FUNCTIONAL + OPTIM + MODELS + DATA + TRAIN + DEPLOY + QUANT_PRUNE


# --------------------------------------------------------------------------- the worker side
_TMP = None  # a folder of the test's tmp_path, given to the worker (rows that take a file path)


@functools.lru_cache(None)
def _namespace() -> dict:
    """What the rows' source sees: the API and small objects, built once per worker."""
    import edgeopt as eo

    @functools.lru_cache(None)
    def model():
        eo.manual_seed(0)
        return eo.models.create("resnet20", num_classes=10, in_channels=3, width_mult=0.25)

    @functools.lru_cache(None)
    def ds():
        return eo.data.synthetic(10, (3, 8, 8), 8, 0, seed=0)[0]

    @functools.lru_cache(None)
    def engine():
        return eo.deploy.compile(model(), "fp32", (1, 3, 8, 8))

    def untouched(train, **kw):
        """fit(fresh model, train, **kw), which must raise; the model must be left unchanged."""
        m = eo.models.create("resnet20", width_mult=0.25)
        before = {k: v.copy() for k, v in m.state_dict().items()}
        try:
            eo.train.fit(m, train, **{"epochs": 1, "batch_size": 4, "progress": False, **kw})
        finally:
            after = m.state_dict()
            if any(not np.array_equal(before[k], after[k]) for k in before) or hasattr(m, "input_norm"):
                raise AssertionError("fit changed the model before rejecting its arguments")
        raise AssertionError("fit did not raise")

    def observed_min(axis):
        obs = eo.quant.MinMaxObserver(axis=axis)
        obs(np.arange(6.0).reshape(2, 3))
        return obs.min_val.shape

    return dict(
        eo=eo, np=np, math=math, nn=eo.nn, F=eo.nn.functional, optim=eo.optim, models=eo.models,
        data=eo.data, train=eo.train, deploy=eo.deploy, quant=eo.quant, prune=eo.prune,
        model=model, ds=ds, engine=engine, untouched=untouched, observed_min=observed_min,
        param=lambda: eo.nn.Parameter(np.zeros((4, 3), np.float32)),
        params=lambda: [eo.nn.Parameter(np.zeros(2, np.float32))],
        sgd=functools.lru_cache(None)(lambda: eo.optim.SGD([eo.nn.Parameter(np.zeros(2, np.float32))], lr=0.1)),
        x4=lambda: np.ones((2, 3, 4, 4), np.float32), w3=lambda: np.ones((4, 3, 1, 1), np.float32),
        logits=lambda: np.zeros((2, 3), np.float32), labels=lambda: np.array([0, 2]),
        tmp=lambda name: os.path.join(_TMP, name),
    )


def _run_row(row: Row) -> dict:
    try:
        value = eval(row.src, dict(_namespace()))  # noqa: S307 (the table above, nothing else)
    except BaseException as e:  # noqa: BLE001 (reported to the parent, which judges it)
        return {"raised": [c.__name__ for c in type(e).__mro__], "message": str(e)}
    return {"raised": None, "value": repr(value)}


def _worker(start: int, fd: int, tmp: str) -> None:
    global _TMP
    _TMP = tmp
    out = os.fdopen(fd, "w")
    for i in range(start, len(ROWS)):
        out.write(json.dumps({"row": i, **_run_row(ROWS[i])}) + "\n")
        out.flush()


# --------------------------------------------------------------------------- the test side
def _spawn(start: int, package_dir: str, tmp: str):
    r, w = os.pipe()
    boot = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]); "
            "import test_bad_arguments as t; t._worker(int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])")
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-W", "error", "-c", boot, package_dir,
                             os.path.dirname(os.path.abspath(__file__)), str(start), str(w), tmp],
                            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    os.close(w)
    return proc, os.fdopen(r, "r"), err


def _stderr_tail(err) -> str:
    err.seek(0)
    return err.read().decode(errors="replace")[-600:]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Row index -> the worker's report; a crash or hang is reported for its row and the worker
    restarts at the next one."""
    import edgeopt

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(edgeopt.__file__)))
    tmp = str(tmp_path_factory.mktemp("bad_arguments"))
    out, start = {}, 0
    while start < len(ROWS):
        proc, pipe, err = _spawn(start, package_dir, tmp)
        try:
            while True:
                ready, _, _ = select.select([pipe], [], [], ROW_TIMEOUT_S)
                line = pipe.readline() if ready else None
                if line is None:  # hung: kill it, the row fails
                    proc.kill()
                    out[start] = {"crashed": f"no answer within {ROW_TIMEOUT_S} s"}
                    start += 1
                    break
                if not line:  # the worker is gone: it finished, or the row it was running crashed it
                    code = proc.wait()
                    if start < len(ROWS):
                        why = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
                        out[start] = {"crashed": f"the worker {why}", "stderr": _stderr_tail(err)}
                        start += 1
                    break
                report = json.loads(line)
                out[report["row"]] = report
                start = report["row"] + 1
        finally:
            proc.kill()
            proc.wait()
            pipe.close()
            err.close()
    return out


def test_table_size():
    assert sum(r.exc is not None for r in ROWS) >= 200
    assert all(r.words for r in ROWS if r.exc is not None), "every bad row names at least the argument"
    assert len({r.src for r in ROWS}) == len(ROWS), "duplicate rows"


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[r.src[:90] for r in ROWS])
def test_row(results, index):
    row, got = ROWS[index], results[index]
    assert "crashed" not in got, f"{row.src}: {got['crashed']}\n{got.get('stderr', '')}"
    if row.exc is None:
        assert got["raised"] is None, f"{row.src}: a valid call raised {got['raised'][0]}: {got['message']}"
        assert got["value"] == repr(row.want), f"{row.src}: returned {got['value']}, expected {row.want!r}"
        return
    assert got["raised"] is not None, f"{row.src}: expected {row.exc.__name__}, returned {got['value']}"
    assert row.exc.__name__ in got["raised"], \
        f"{row.src}: expected {row.exc.__name__}, got {got['raised'][0]}: {got['message']}"
    missing = [w for w in row.words if w not in got["message"]]
    assert not missing, f"{row.src}: message lacks {missing}: {got['message']}"
