"""Named sweep specs: ``quick`` (the README's main job, real Fashion-MNIST in minutes on 2 cores)
and ``study`` (the reference study's grid on CIFAR-10/100, for users who have the data)."""
from __future__ import annotations

import copy

__all__ = ["get", "PRESETS"]

_STUDY_TECHNIQUES = ["NQ", "BLQ", "FIQ", "F16", "QAT", "PRN", "PRQ"]

PRESETS = {
    # Widths and training subsets chosen so the whole grid (3 baselines, 21 cells) fits the
    # README's 15-minute budget on 2 cores with room to spare (install + sweep measured ~9 min,
    # README "Measured"); accuracies are those of short training.
    "quick": {
        "name": "quick",
        "models": [{"name": "resnet20", "budget": {"epochs": 3, "subset": 16000}},
                   {"name": "mobilenet_v2", "width": 0.5, "budget": {"epochs": 3, "subset": 12000}},
                   {"name": "vgg11", "width": 0.25, "budget": {"epochs": 3, "subset": 16000}}],
        "datasets": ["fashion-mnist"],
        "techniques": ["NQ", "BLQ", {"name": "FIQ", "observer": "auto"}, "F16",
                       {"name": "QAT", "epochs": 0.25},
                       {"name": "PRN", "sparsity": 0.5, "steps": 2, "finetune_epochs": 0.25}, "PRQ"],
        "budget": {"batch_size": 128, "lr": 0.1},
        "calibration": 200,
        "seeds": [0],
        "latency": {"runs": 100, "warmup": 10},
    },
    # The study's Tables 5-14 grid; CIFAR needs its folder ($EDGEOPT_DATA or a root per dataset).
    "study": {
        "name": "study",
        "models": ["vgg16", "resnet50", "resnet101", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                   "mobilenet_v3_small", "wrn16_4"],
        "datasets": ["cifar10", "cifar100"],
        "techniques": _STUDY_TECHNIQUES,
        "budget": {"epochs": 30, "batch_size": 128, "lr": 0.1, "augment": True},
        "calibration": 500,
        "seeds": [0],
    },
}


def get(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[name])
