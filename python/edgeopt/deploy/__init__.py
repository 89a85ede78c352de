"""Deployment: compile a model's fused graph (edgeopt.graph) for the C++ runtime; save, load,
latency, ONNX export."""
from .engine import Engine, load
from .compile import SCHEMES, compile
from .latency import latency
from .lower import CALIBRATED_SCHEMES  # the schemes that take calib= and observer=

__all__ = ["compile", "SCHEMES", "CALIBRATED_SCHEMES", "Engine", "load", "latency"]

from .onnx_export import export_onnx  # noqa: E402
__all__ += ["export_onnx"]
