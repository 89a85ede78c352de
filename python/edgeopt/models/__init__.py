"""The model zoo: CIFAR-sized VGG, ResNet, MobileNet v1/v2/v3 and Wide ResNet built from
``edgeopt.nn`` layers, and ``summary`` (per-layer shapes, parameters, MACs, activation bytes).

    model = edgeopt.models.create("resnet20", num_classes=10, in_channels=3, width_mult=1.0)
    edgeopt.models.summary(model, (1, 3, 32, 32))
"""
from .registry import available, create
from .summary import LayerRow, ModelSummary, summary

__all__ = ["create", "available", "summary", "ModelSummary", "LayerRow"]
