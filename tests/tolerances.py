"""How close is close enough, one row per dtype (and, for float32, per kind of comparison).

Most comparisons in this suite use one metric, ``rel_err(got, want) = max|got - want| / max|want|``
(``torch_oracle.rel_err``, ``deploy_helpers.rel_err``): the error relative to the reference's
largest magnitude, so elements near zero need no absolute tolerance of their own. ``rtol`` below is
the bound on that metric. ``atol`` is the absolute floor a test adds when it uses
``np.testing.assert_allclose`` (element-wise ``rtol``) instead, for elements near zero.

Tests take their bound from here (``TOL["f32"].rtol``). A test that needs a different bound keeps
its literal with a comment saying why (e.g. a trained model, float64 statistics, finite
differences).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float
    use: str


TOL = {
    # float32 computed two ways: different summation order, blocking, SIMD lanes, thread splits,
    # accumulated over up to ~50 layers.
    "f32": Tol(1e-4, 1e-4,
               "float32 kernel, layer, model or Engine against PyTorch float32 or edgeopt's own fp32 "
               "forward (also: an fp16 / int8-weight Engine against its fp32 simulation, a sparse "
               "Engine against the dense one, ONNX fp32 against the model)"),
    # one op, or one extra rounding: only the order of a single reduction differs.
    "f32-op": Tol(1e-5, 1e-5,
                  "one float32 op against its numpy / PyTorch formula, an Engine against itself over "
                  "ISA paths, thread counts and batch splits, a BN-folded graph against the unfolded "
                  "one (the folded weight rounds once more)"),
    # element-wise arithmetic, no reductions: a few roundings per element.
    "f32-elementwise": Tol(1e-6, 1e-6,
                           "element-wise float32 kernels (optimizer updates, dropout, activation "
                           "gradients) against the same formula in PyTorch / numpy"),
    # the cost of a deploy scheme, against the fp32 model (untrained zoo models with realistic BN).
    "f16-weight": Tol(2e-2, 0.0,
                      "an fp16-weight Engine against the fp32 model: weights rounded to 11 "
                      "significant bits, the error compounding over the layers"),
    "int8-weight": Tol(0.5, 0.0,
                       "an int8-weight Engine against the fp32 model on random (untrained) weights: "
                       "a sanity bound only; the exact check is against the simulation at 'f32'"),
    "int8-full": Tol(5e-2, 0.0,
                     "an int8 (activations and weights) model, e.g. the ONNX QDQ export, against the "
                     "fp32 model on a trained or well-scaled model"),
}
