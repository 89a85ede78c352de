"""quant.fma32, the float32 fused multiply-add the integer add's constants and its numpy simulation
are computed with, against exact rational arithmetic rounded to float32 by hand."""
from fractions import Fraction

import numpy as np

from edgeopt import quant


def _round_f32(q: Fraction) -> np.float32:
    """The float32 nearest to q, ties to even, found among the neighbours of float(q)."""
    f = np.float32(float(q))
    cands = [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - q), int(np.array(v).view(np.int32)) & 1))


def test_fma32_rounds_once_like_an_exact_fma():
    rng = np.random.default_rng(0)
    cases = []
    for t in range(3000):
        a = int(rng.integers(0, 256))
        b = np.float32(rng.uniform(0, 3))
        c = np.float32(rng.uniform(-300, 300) * 10 ** rng.uniform(-8, 0))
        if t % 3 == 0:   # a b + c close to 0: the float64 sum is inexact, ties are near
            c = np.float32(-(np.float64(a) * np.float64(b)) + float(np.float32(rng.uniform(-1, 1)) * 1e-7))
        cases.append((a, b, c))
    got = quant.fma32(np.array([a for a, _, _ in cases]), np.array([b for _, b, _ in cases], np.float32),
                      np.array([c for _, _, c in cases], np.float32))
    want = [_round_f32(Fraction(a) * Fraction(float(b)) + Fraction(float(c))) for a, b, c in cases]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(want, np.float32))


def test_fma32_differs_from_two_roundings_where_it_must():
    # 3 * (1 + 2^-23) - 3: exact 3 * 2^-23; rounding the product first loses it
    b = np.float32(1 + 2.0 ** -23)
    assert quant.fma32(3, b, np.float32(-3.0)) == np.float32(3 * 2.0 ** -23)
    assert np.float32(np.float32(3) * b) + np.float32(-3.0) != np.float32(3 * 2.0 ** -23)


def test_add_scales_offset_is_the_fused_constant():
    r_a, r_b, off = quant.add_scales(0.3, 17, 0.7, 201, 0.45, 9)
    want = np.float32(9) - _round_f32(Fraction(17) * Fraction(float(r_a)) + Fraction(float(np.float32(r_b * np.float32(201)))))
    assert (r_a, r_b) == (np.float32(0.3) / np.float32(0.45), np.float32(0.7) / np.float32(0.45))
    assert off == want
