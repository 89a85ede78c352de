"""Training: `fit` a model on a dataset with progress, validation, checkpoints, any loss and
callbacks; `evaluate` it."""
from .callbacks import Batch, Callback, CallbackError
from .fit import fit
from .history import History
from .evaluate import evaluate
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["Batch", "Callback", "CallbackError", "History", "fit", "evaluate", "save_checkpoint", "load_checkpoint"]
