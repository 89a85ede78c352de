"""The graph every technique shares: a model traced into an IR, its reference executor with
observation hooks, and the rewrites deployment applies (BatchNorm folding, fusion).

    g = edgeopt.graph.trace(model, (1, 3, 32, 32))      # Graph of Nodes (edgeopt.graph.ir)
    y = g.execute(x, observe={t: fn})                   # fp32 reference, hooks on any tensor
    g = edgeopt.graph.fuse(g)                           # fold BN, fuse residual adds and activations

deploy, calibration and ONNX export read it; nothing here depends on deploy.
"""
from .executor import execute
from .rewrite import batchnorm_affine, fold_batchnorm, fuse, fuse_activation, fuse_residual
from .ir import Graph, Node
from .tracer import trace

__all__ = ["Graph", "Node", "trace", "execute", "fuse", "fold_batchnorm", "fuse_residual", "fuse_activation",
           "batchnorm_affine"]
