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
