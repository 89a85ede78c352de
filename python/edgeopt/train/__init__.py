"""Training: `fit` a model on a dataset with progress, validation, checkpoints; `evaluate` it."""
from .fit import History, fit
from .evaluate import evaluate
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["History", "fit", "evaluate", "save_checkpoint", "load_checkpoint"]
