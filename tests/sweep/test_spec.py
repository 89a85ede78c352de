"""Sweep specs: validated in full before any work, with errors naming the field; cells and keys."""
import copy

import numpy as np
import pytest

import edgeopt as eo
from edgeopt.sweep import SpecError, load_spec, presets, techniques
from edgeopt.sweep.spec import stage_key


def _bad(spec, field):
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert field in str(e.value), str(e.value)
    return str(e.value)


def test_tiny_spec_expands_to_one_cell_per_technique(tiny_spec):
    spec = load_spec(tiny_spec)
    cells = spec.cells()
    assert [c.coords["technique"] for c in cells] == ["NQ", "BLQ", "FIQ", "F16", "QAT", "PRN", "PRQ"]
    assert len({c.key for c in cells}) == len(cells)
    # every technique starts from the same baseline; PRQ's parent stage is PRN's own output
    assert len({stage_key(c.config) for c in cells}) == 1
    prn = next(c for c in cells if c.coords["technique"] == "PRN").config
    prq = next(c for c in cells if c.coords["technique"] == "PRQ").config
    assert stage_key(prq, prq["parent"]) == stage_key(prn, prn["technique"])


def test_a_changed_parameter_changes_only_the_cells_it_reaches(tiny_spec):
    before = {c.coords["technique"]: c.key for c in load_spec(tiny_spec).cells()}
    changed = copy.deepcopy(tiny_spec)
    changed["techniques"][5] = {"name": "PRN", "finetune_epochs": 0.25, "sparsity": 0.5}
    after = {c.coords["technique"]: c.key for c in load_spec(changed).cells()}
    assert {t for t in before if before[t] != after[t]} == {"PRN", "PRQ"}
    changed["latency"] = {"runs": 7, "warmup": 1}      # timing settings re-measure but keep stages
    cells = load_spec(changed).cells()
    assert all(c.key != after[c.coords["technique"]] for c in cells)
    assert len({stage_key(c.config) for c in cells}) == 1


def test_prq_starts_from_the_spec_s_prn_setting_whatever_its_label(tiny_spec):
    tiny_spec["techniques"][5] = {"name": "PRN", "label": "PRN-90", "sparsity": 0.9}
    cells = {c.coords["technique"]: c.config for c in load_spec(tiny_spec).cells()}
    assert cells["PRQ"]["parent"]["params"]["sparsity"] == 0.9
    assert stage_key(cells["PRQ"], cells["PRQ"]["parent"]) == stage_key(cells["PRN-90"], cells["PRN-90"]["technique"])


def test_toml_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "t"\ntechniques = ["NQ", {name = "PRN", sparsity = 0.5}]\n'
                 '[[models]]\nname = "resnet20"\nwidth = 0.25\n[[datasets]]\nname = "synthetic"\n'
                 '[budget]\nepochs = 0.5\n')
    spec = load_spec(str(p))
    assert spec.techniques[1]["params"]["sparsity"] == 0.5
    assert spec.models[0][1]["epochs"] == 0.5
    p.write_text("name = [")
    _bad(str(p), "not valid TOML")


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["models"].append({"name": "resnet21"}), "spec.models[1].name"),
    (lambda s: s["techniques"].append("XYZ"), "spec.techniques[7].name"),
    (lambda s: s["techniques"].append({"name": "PRN", "sparsity": "high", "label": "p2"}), "spec.techniques[7].sparsity"),
    (lambda s: s["techniques"].append({"name": "FIQ", "bogus": 1, "label": "f2"}), "'bogus'"),
    (lambda s: s["techniques"].__setitem__(5, {"name": "PRN", "sparsity": 1.5}), "spec.techniques[5].sparsity"),
    (lambda s: s["techniques"].__setitem__(5, {"name": "PRN", "steps": 0}), "spec.techniques[5].steps"),
    (lambda s: s["techniques"].__setitem__(4, {"name": "QAT", "freeze_bn": 1.5}), "spec.techniques[4].freeze_bn"),
    (lambda s: s["techniques"].append({"name": "PRN", "sparsity": 0.5, "label": "PRN-50"}), "settings of PRN"),
    (lambda s: s["models"][0].update(in_channels=3), "spec.models[0].in_channels"),
    (lambda s: s["models"][0].update(num_classes=5), "spec.models[0].num_classes"),
    (lambda s: s["budget"].update(epochs=0), "spec.budget.epochs"),
    (lambda s: s["techniques"].append({"name": "FIQ", "observer": "best", "label": "f3"}), "spec.techniques[7].observer"),
    (lambda s: s["techniques"].append({"name": "INT4", "rounding": "up", "label": "i3"}), "spec.techniques[7].rounding"),
    (lambda s: s["techniques"].append({"name": "INT4", "rounding": "gptq", "qat_epochs": 1.0}),
     "spec.techniques[7].rounding: 'gptq' is for post-training rows"),
    (lambda s: s["techniques"].append({"name": "BIN", "activations": "all", "qat_epochs": 0.0}),
     "spec.techniques[7].activations: 'all' binarizes activations during training"),
    (lambda s: s["budget"].update(epochs=-1), "spec.budget.epochs"),
    (lambda s: s["budget"].update(epochs=1.5), "spec.budget.epochs"),
    (lambda s: s["budget"].update(batch_size="64"), "spec.budget.batch_size"),
    (lambda s: s.update(seeds=[0, "1"]), "spec.seeds[1]"),
    (lambda s: s.update(calibration=0), "spec.calibration"),
    (lambda s: s.update(threads=True), "spec.threads"),
    (lambda s: s.update(models=[]), "spec.models"),
    (lambda s: s.update(colour="red"), "'colour'"),
    (lambda s: s["datasets"].append({"name": "cifar10", "root": "/nonexistent/cifar"}), "spec.datasets[1].root"),
    (lambda s: s["datasets"].append({"name": "imagenet"}), "spec.datasets[1].name"),
    (lambda s: s["datasets"].append({"name": "mine", "train": np.zeros(3), "test": None}), "spec.datasets[1].train"),
    (lambda s: s["techniques"].append("NQ"), "listed twice"),
])
def test_malformed_specs_are_refused_naming_the_field(tiny_spec, mutate, field):
    mutate(tiny_spec)
    _bad(tiny_spec, field)


def test_cifar_folder_without_the_files_is_refused_before_work(tiny_spec, tmp_path):
    tiny_spec["datasets"] = [{"name": "cifar10", "root": str(tmp_path)}]
    _bad(tiny_spec, "spec.datasets[0]")


def test_dataset_objects_are_addressed_by_content(tiny_spec):
    tr, te = eo.data.synthetic(shape=(1, 8, 8), n_train=64, n_test=32)
    tiny_spec["datasets"] = [{"name": "mine", "train": tr, "test": te}]
    k1 = load_spec(tiny_spec).cells()[0].key
    tr.x[0, 0, 0, 0] ^= 1
    assert load_spec(tiny_spec).cells()[0].key != k1


def test_presets_validate():
    quick = load_spec(presets.get("quick"))
    assert [m["name"] for m, _ in quick.models] == ["resnet20", "mobilenet_v2", "vgg11"]
    assert {t["name"] for t in quick.techniques} == {"NQ", "BLQ", "FIQ", "F16", "QAT", "PRN", "PRQ"}
    with pytest.raises(ValueError, match="preset"):
        presets.get("huge")


def test_registry_refuses_duplicates_and_unknown_parents():
    with pytest.raises(ValueError, match="already registered"):
        techniques.register("NQ", lambda m, d, p: (m, {"scheme": "fp32"}))
    with pytest.raises(ValueError, match="parent"):
        techniques.register("ZZZ", lambda m, d, p: (m, {"scheme": "fp32"}), parent="nope")
    assert "ZZZ" not in techniques.TECHNIQUES
