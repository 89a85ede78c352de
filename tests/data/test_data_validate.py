"""The C++ scans behind fit's data checks and deploy's finite checks (cpp/src/data/validate.h),
through their bindings: the fast path and the plain reference against numpy, and the binding's
argument errors. The kernel's edge sizes and thread splits are tested in C++
(cpp/tests/test_data_validate.cc)."""
import numpy as np
import pytest

from edgeopt import _core


def numpy_first_nonfinite(arrays):
    for i, a in enumerate(arrays):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            return i, int(bad[0])
    return None


@pytest.mark.parametrize("reference", [False, True])
def test_first_nonfinite_over_a_list_matches_numpy(reference, rng):
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (0,), (700,), (2, 3, 5, 5)]]
    assert _core.data.data_first_nonfinite(arrays, reference) is None
    for pos, flat, v in [(0, 0, np.nan), (2, 699, np.inf), (3, 77, -np.inf), (2, 256, np.nan)]:
        bad = [a.copy() for a in arrays]
        bad[pos].flat[flat] = v
        bad[3].flat[-1] = np.nan  # a later one never wins
        want = numpy_first_nonfinite(bad)
        assert want[0] == pos and (pos == 3 or want[1] == flat)
        assert _core.data.data_first_nonfinite(bad, reference) == want


def test_first_nonfinite_finite_extremes_are_finite():
    f = np.finfo(np.float32)
    x = np.array([f.max, -f.max, f.tiny, f.smallest_subnormal, -0.0, 1e30], np.float32)
    assert _core.data.data_first_nonfinite([x]) is None


def test_first_nonfinite_rejects_other_dtypes_naming_the_array():
    with pytest.raises(TypeError, match=r"arrays\[1\]"):
        _core.data.data_first_nonfinite([np.zeros(3, np.float32), np.zeros(3, np.float64)])
    with pytest.raises(ValueError, match=r"arrays\[0\].*contiguous"):
        _core.data.data_first_nonfinite([np.zeros((4, 4), np.float32)[:, ::2]])


@pytest.mark.parametrize("reference", [False, True])
def test_first_bad_label_matches_numpy(reference):
    y = np.arange(50) % 10
    assert _core.data.data_first_bad_label(y, 10, reference) == -1
    for i, v in [(0, -1), (49, 10), (17, 2**62), (3, -(2**63))]:
        z = y.copy()
        z[i] = v
        z[-1] = 11  # a later one never wins (or is this one)
        want = int(np.flatnonzero((z < 0) | (z >= 10))[0])
        assert _core.data.data_first_bad_label(z, 10, reference) == want == i
    assert _core.data.data_first_bad_label(y.astype(np.uint8), 5, reference) == 5
    with pytest.raises(ValueError, match="num_classes"):
        _core.data.data_first_bad_label(y, -1)
