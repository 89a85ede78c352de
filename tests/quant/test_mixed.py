"""Mixed precision: a plan meets its budget on the compiled Engine's file, its per-layer table
comes from measurements, deploy.compile(scheme=plan) stores each layer at its bits, and budgets
no plan can meet are clear errors."""
import numpy as np
import pytest

import edgeopt as eo
from edgeopt import quant


@pytest.fixture(scope="module")
def setup():
    eo.manual_seed(0)
    train, test = eo.data.synthetic(num_classes=10, shape=(3, 16, 16), n_train=256, n_test=128, seed=2)
    m = eo.models.create("resnet20", num_classes=10, width_mult=0.25)
    eo.train.fit(m, train, epochs=1, batch_size=64, lr=0.05, progress=False)
    return m, train, test


def test_plan_meets_a_size_budget_and_deploys(setup):
    m, train, test = setup
    shape = (1, 3, 16, 16)
    plan = quant.mixed_precision(m, train, test, budget={"size": 0.3}, input_shape=shape)
    fp32 = eo.deploy.compile(m, "fp32", input_shape=shape).size_bytes
    e = eo.deploy.compile(m, scheme=plan, input_shape=shape)
    assert e.size_bytes == plan.size_bytes <= 0.3 * fp32
    assert e.scheme == "mixed"
    bits = set(plan.bits.values())
    assert bits <= {8, 4, 2} and len(bits) >= 2           # really mixed at this budget
    info = {r["name"]: r["info"] for r in e.summary()}
    width = {8: "w:i8", 4: "w:i4", 2: "w:i2"}
    assert all(width[b] in info[k] for k, b in plan.bits.items())
    # the table holds every layer's measured sensitivity and latency at each width
    assert len(plan.rows) == len(plan.bits)
    for r in plan.rows:
        assert set(r["drop"]) == {4, 2} and set(r["latency_ms"]) == {8, 4, 2}
        assert all(v > 0 for v in r["latency_ms"].values())
    assert "budget" in str(plan)
    assert plan.accuracy == pytest.approx(eo.train.evaluate(e, test.subset(np.arange(len(test))))["acc"])
    # the same plan, compiled by hand from its bits
    again = eo.deploy.compile(m, scheme=quant.MixedPrecisionPlan.of(plan.bits), input_shape=shape)
    assert again.to_bytes() == e.to_bytes()
    # with GPTQ rounding: the same layout and size, logits closer to the fp32 Engine's
    g = eo.deploy.compile(m, scheme=plan, input_shape=shape, calib=train, rounding="gptq")
    assert g.size_bytes == pytest.approx(e.size_bytes, abs=128) and g.metadata["weights"] == {"rounding": "gptq"}
    x = next(quant.calibration_batches(m, test, 64))      # held-out images, preprocessed as calib is
    ref = eo.deploy.compile(m, "fp32", input_shape=shape).run(x)
    assert np.mean((g.run(x) - ref) ** 2) < np.mean((e.run(x) - ref) ** 2)
    with pytest.raises(ValueError, match="calib"):
        eo.deploy.compile(m, scheme=plan, input_shape=shape, rounding="gptq")
    with pytest.raises(ValueError, match="calib only with rounding='gptq'"):
        eo.deploy.compile(m, scheme=plan, input_shape=shape, calib=train)


def test_impossible_budgets_and_bad_arguments(setup):
    m, train, test = setup
    shape = (1, 3, 16, 16)
    with pytest.raises(ValueError, match="no plan meets"):
        quant.mixed_precision(m, train, test, budget={"size": 0.01}, input_shape=shape)
    with pytest.raises(ValueError, match="no plan meets"):
        quant.mixed_precision(m, train, test, budget={"latency_ms": 1e-6}, input_shape=shape)
    with pytest.raises(ValueError, match="unknown key"):
        quant.mixed_precision(m, train, test, budget={"flops": 1}, input_shape=shape)
    with pytest.raises(ValueError, match="budget"):
        quant.mixed_precision(m, train, test, budget={"size": 1.5}, input_shape=shape)
    with pytest.raises(ValueError, match="val"):
        quant.mixed_precision(m, train, None, budget={"size": 0.3}, input_shape=shape)
    with pytest.raises(ValueError, match="does not fit"):
        eo.deploy.compile(m, scheme=quant.MixedPrecisionPlan.of({"nope": 4}), input_shape=shape)
    with pytest.raises(ValueError, match="weights only"):
        eo.deploy.compile(m, scheme=quant.MixedPrecisionPlan.of({}), input_shape=shape, observer="mse")
