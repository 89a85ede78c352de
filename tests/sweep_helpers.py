"""A tiny sweep on synthetic data (seconds per run, every stage kind: a baseline and a shared PRN
stage), shared by tests/sweep."""
TINY = {
    "name": "tiny",
    "models": [{"name": "resnet20", "width": 0.25}],
    "datasets": [{"name": "synthetic", "shape": [1, 16, 16], "n_train": 512, "n_test": 128}],
    "techniques": ["NQ", "BLQ", "FIQ", "F16", {"name": "QAT", "epochs": 0.25}, {"name": "PRN", "finetune_epochs": 0.25},
                   "PRQ"],
    "budget": {"epochs": 2, "batch_size": 64, "lr": 0.05},
    "calibration": 32,
    "threads": 2,
    "latency": {"runs": 5, "warmup": 1},
}

# metrics that depend only on the arithmetic, not on timing
EXACT = ("acc", "top5", "size_bytes", "test_images", "macs", "params", "nonzero_params", "peak_activation_bytes")


def fp16_step(model, data, params):
    """A user technique (module-level, so spawned and Dask workers can import it by reference)."""
    return model, {"scheme": "fp16"}


def make_stage_concurrently(root, counter):
    """Ask the stage store for one stage while another process asks for it too; `make` notes
    each call in `counter` and takes a while, so the two requests overlap."""
    import time

    import edgeopt as eo
    from edgeopt.sweep.stages import StageStore

    def new():
        return eo.models.create("resnet20", num_classes=10, in_channels=1, width_mult=0.25)

    def make():
        with open(counter, "a") as f:
            f.write("made\n")
        time.sleep(0.5)
        m = new()
        m.input_norm = {"mean": [0.5], "std": [0.25]}
        return m

    _, rec = StageStore(root).get("baseline", "k" * 20, {"test": 1}, new, make)
    return rec["sha256"]
