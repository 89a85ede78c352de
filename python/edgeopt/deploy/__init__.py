"""Deployment: trace a model into an inference graph, fuse it, and compile it for the C++ runtime."""
from .graph import Graph, Node, trace
from .fuse import fold_batchnorm, fuse, fuse_activation, fuse_residual

from .engine import Engine, load
from .compile import SCHEMES, compile
from .latency import latency

__all__ = ["Graph", "Node", "trace", "fuse", "fold_batchnorm", "fuse_residual", "fuse_activation",
           "compile", "SCHEMES", "Engine", "load", "latency"]

from .onnx_export import export_onnx  # noqa: E402
__all__ += ["export_onnx"]
