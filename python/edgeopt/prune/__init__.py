"""Pruning: mask the least important weights to zero so the deployed Engine can skip them.

    pruned = eo.prune.magnitude(model, sparsity=0.8, scope="global")   # a masked copy
    eo.train.fit(pruned, ...)   # fine-tune: the masks hold (weight_orig x weight_mask)
    eo.prune.sparsity(pruned)   # {'layers': {name: fraction of zeros}, 'overall': ..., ...}
    final = eo.prune.remove(pruned)   # masks made permanent: plain weights with zeros

Only the weights of Conv2d and Linear layers are pruned; biases and BatchNorm parameters and
statistics are left as they are. ``deploy.compile(..., sparse="auto")`` traces the effective
(masked) weights and runs the pruned 1x1 convs and linear layers with sparse kernels, storing
their weights sparse-packed.
"""
from .magnitude import effective_weight, magnitude, prunable_layers, sparsity
from .mask import Mask, remove

__all__ = ["magnitude", "sparsity", "remove", "prunable_layers", "effective_weight", "Mask"]
