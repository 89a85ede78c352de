"""Non-finite values never deploy: a NaN or Inf in a weight, a bias, a BatchNorm statistic or the
calibration data raises ValueError naming the tensor (or "calib" and the sample) in every
compile scheme, the sparse lowering and both ONNX exports. All of them start from one trace
(edgeopt.graph.trace), which is where the model's tensors are checked."""
import numpy as np
import pytest

import edgeopt as eo
from edgeopt import deploy, nn

SHAPE = (1, 3, 8, 8)
# (name, how to call it): every lowering and export a user can reach
TARGETS = {
    "fp32": lambda m, path, calib: deploy.compile(m, "fp32", SHAPE, sparse=False),
    "fp32-sparse": lambda m, path, calib: deploy.compile(m, "fp32", SHAPE, sparse=True),
    "fp16": lambda m, path, calib: deploy.compile(m, "fp16", SHAPE),
    "int8-weight": lambda m, path, calib: deploy.compile(m, "int8-weight", SHAPE),
    "int8-full": lambda m, path, calib: deploy.compile(m, "int8-full", SHAPE, calib=calib),
    "onnx-fp32": lambda m, path, calib: deploy.export_onnx(m, path, "fp32", SHAPE),
    "onnx-int8": lambda m, path, calib: deploy.export_onnx(m, path, "int8", SHAPE, calib=calib),
}
# tensor name -> how to reach its array on the model below
TENSORS = {
    "0.weight": lambda m: m[0].weight.data,
    "0.bias": lambda m: m[0].bias.data,
    "1.weight": lambda m: m[1].weight.data,
    "1.running_mean": lambda m: m[1].running_mean,
    "1.running_var": lambda m: m[1].running_var,
    "3.weight": lambda m: m[3].weight.data,     # 1x1 conv: a sparse op under sparse=True
    "7.bias": lambda m: m[7].bias.data,
}
VALUES = {"NaN": np.nan, "inf": np.inf, "-inf": -np.inf}


def small_model():
    eo.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 1, bias=False), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Flatten(),
                      nn.Linear(8, 4))
    m.eval()
    return m


def calib_data(n=16):
    rng = np.random.default_rng(0)
    return eo.data.Dataset(rng.uniform(0, 1, (n, 3, 8, 8)).astype(np.float32), np.zeros(n, np.int64))


@pytest.mark.parametrize("target", TARGETS)
def test_clean_model_deploys_everywhere(target, tmp_path):
    TARGETS[target](small_model(), str(tmp_path / "m.onnx"), calib_data())


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("tensor", TENSORS)
@pytest.mark.parametrize("target", TARGETS)
def test_nonfinite_tensor_is_refused_naming_it(target, tensor, value, tmp_path):
    m = small_model()
    arr = TENSORS[tensor](m)
    pos = (arr.shape[0] - 1,) + (0,) * (arr.ndim - 1)
    arr[pos] = VALUES[value]
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=rf"^{tensor.replace('.', chr(92) + '.')} contains {value} at index "
                                         rf"\({', '.join(map(str, pos))},?\)"):
        TARGETS[target](m, str(path), calib_data())
    assert not path.exists()


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("target", ["int8-full", "onnx-int8"])
def test_nonfinite_calibration_sample_is_refused(target, value, tmp_path):
    calib = calib_data()
    calib.x[5, 2, 3, 4] = VALUES[value]
    with pytest.raises(ValueError, match=rf"^calib: sample 5 contains a non-finite value \({value}\) "
                                         r"at index \(2, 3, 4\): calibration data must be finite"):
        TARGETS[target](small_model(), str(tmp_path / "m.onnx"), calib)


@pytest.mark.parametrize("value", VALUES)
def test_int8_full_checks_a_preprocessed_calibration_array(value):
    x = calib_data().x.copy()
    x[2, 0, 0, 1] = VALUES[value]
    with pytest.raises(ValueError, match=rf"^calib: sample 2 contains a non-finite value \({value}\) "
                                         r"at index \(0, 0, 1\)"):
        deploy.compile(small_model(), "int8-full", SHAPE, calib=x)


def test_unused_calibration_samples_are_not_checked():
    # only the first num_samples (256) calibrate; a bad sample after them changes nothing
    calib = calib_data(300)
    calib.x[280] = np.nan
    deploy.compile(small_model(), "int8-full", SHAPE, calib=calib)


@pytest.mark.parametrize("target", ["int8-full", "onnx-int8"])
def test_calibration_activations_that_overflow_are_refused(target, tmp_path):
    # finite data, finite weights, yet the first conv's output overflows float32
    calib = calib_data()
    calib.x[3] = 3e38
    with pytest.raises(ValueError, match=r"^calib: .*layer '0.*' is non-finite on the calibration data"):
        TARGETS[target](small_model(), str(tmp_path / "m.onnx"), calib)


def test_float64_calibration_value_beyond_float32_is_refused():
    calib = eo.data.Dataset(calib_data().x.astype(np.float64), np.zeros(16, np.int64))
    calib.x[1, 0, 0, 0] = 1e300
    with pytest.raises(ValueError, match=r"^calib: sample 1 contains a value beyond the float32 range "
                                         r"\(1e\+300\) at index \(0, 0, 0\)"):
        deploy.compile(small_model(), "int8-full", SHAPE, calib=calib)


@pytest.mark.parametrize("target", TARGETS)
def test_negative_running_var_is_refused(target, tmp_path):
    # finite but impossible: folding takes sqrt(running_var + eps), which would deploy NaN weights
    m = small_model()
    m[1].running_var[5] = -0.5
    with pytest.raises(ValueError, match=r"^1\.running_var holds -0\.5 at index \(5,\): a variance must be >= 0"):
        TARGETS[target](m, str(tmp_path / "m.onnx"), calib_data())
