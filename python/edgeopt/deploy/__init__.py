"""Deployment: compile a model's fused graph (edgeopt.graph) for the C++ runtime; save, load,
latency, ONNX export."""
from .engine import Engine, load
from .compile import SCHEMES, compile
from .latency import latency

__all__ = ["compile", "SCHEMES", "Engine", "load", "latency"]

from .onnx_export import export_onnx  # noqa: E402
__all__ += ["export_onnx"]
