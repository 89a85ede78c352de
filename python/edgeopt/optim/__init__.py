"""edgeopt.optim: optimizers (updates computed in C++) and learning-rate schedules."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LambdaLR, LinearWarmup, LRScheduler, MultiStepLR, StepLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "LRScheduler", "StepLR", "MultiStepLR",
           "CosineAnnealingLR", "LinearWarmup", "LambdaLR"]
