"""Pruning: set the least important weights to zero so the deployed Engine can skip them.

    pruned = eo.prune.magnitude(model, sparsity=0.8, scope="global")   # a pruned copy
    eo.prune.sparsity(pruned)   # {'layers': {name: fraction of zeros}, 'overall': ..., ...}

Only the weights of Conv2d and Linear layers are pruned; biases and BatchNorm parameters and
statistics are left as they are. ``deploy.compile(..., sparse="auto")`` then runs the pruned 1x1
convs and linear layers with sparse kernels and stores their weights sparse-packed.
"""
from .magnitude import magnitude, prunable_layers, sparsity

__all__ = ["magnitude", "sparsity", "prunable_layers"]
