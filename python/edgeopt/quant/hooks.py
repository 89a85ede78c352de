"""What quant needs from deploy, the layer above it: deploy registers these when it is imported
(``import edgeopt`` always imports it), so quant uses the int8 lowering's own rule and the real
Engine without importing deploy.

    quantize_points(g0) -> [tensor id]   the tensors int8-full quantizes (deploy/lower/int8_full.py)
    compile(model, scheme, ...) -> Engine                                   (deploy.compile)
    latency(engine, batch, runs) -> {'median_ms', ...}                     (deploy.latency)
"""
from __future__ import annotations

_registered: dict = {}


def register(**fns) -> None:
    _registered.update(fns)


def _get(name: str):
    fn = _registered.get(name)
    if fn is None:
        raise RuntimeError(f"edgeopt.quant needs edgeopt.deploy.{name}: import edgeopt.deploy first")
    return fn


def quantize_points(g0) -> list:
    return _get("quantize_points")(g0)


def compile(*args, **kwargs):
    return _get("compile")(*args, **kwargs)


def latency(*args, **kwargs):
    return _get("latency")(*args, **kwargs)
