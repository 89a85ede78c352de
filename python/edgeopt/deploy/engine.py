"""The deployed network: ``Engine`` wraps the C++ runtime (``edgeopt._core.runtime_engine.RuntimeEngine``).

An Engine is always built by *loading* ``.edgeopt`` bytes, whether they come from ``compile`` or
from a file, so compiling and loading share one path. ``engine.run(x)`` takes the same input as
``model.forward(x)``: float32 (N, C, H, W), already normalized. The training input normalization
(``model.input_norm``) is stored in the file and exposed as ``engine.input_norm``; it is *not*
applied inside ``run`` (``edgeopt.train.evaluate`` normalizes for models and engines alike).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._check import INT32_MAX, check_int, check_path
from .._io import atomic_write_bytes, parse_json

__all__ = ["Engine", "load"]


class Engine:
    """A compiled inference network (all layers in C++). Thread-safe: several Python threads may
    call ``run`` at once (the GIL is released; each call has its own activation memory)."""

    def __init__(self, data: bytes):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expected the bytes of an .edgeopt file, got {type(data).__name__}")
        self._core = _core.runtime_engine.RuntimeEngine(bytes(data))  # ValueError on a bad file
        meta = parse_json(self._core.metadata, "edgeopt file") if self._core.metadata else {}
        if not isinstance(meta, dict):
            raise ValueError(f"edgeopt file: metadata must be a JSON object, got {type(meta).__name__}")
        self.metadata = meta
        # The fields this class reads are checked here, once, so the properties, repr() and
        # summary() of any engine that loaded cannot fail later.
        scheme = meta.get("scheme", "unknown")
        if not isinstance(scheme, str) or len(scheme) > 64:
            raise ValueError(f"edgeopt file: metadata 'scheme' must be a short string, got {_short(scheme)}")
        self._scheme = scheme
        ncls = meta.get("num_classes", self._core.output_shape[0])
        if isinstance(ncls, bool) or not isinstance(ncls, int) or not 1 <= ncls < 2**31:
            raise ValueError(f"edgeopt file: metadata 'num_classes' must be an integer in [1, 2**31), "
                             f"got {_short(ncls)}")
        self._num_classes = ncls
        norm = meta.get("input_norm")
        if norm is not None:
            c = self._core.input_shape[0]
            ok = (isinstance(norm, dict) and all(isinstance(norm.get(k), list) and len(norm[k]) == c
                                                  and all(_finite_number(v) for v in norm[k])
                                                  for k in ("mean", "std"))
                  and all(v > 0 for v in norm["std"]))
            if not ok:
                raise ValueError(f"edgeopt file: input_norm must hold 'mean' and 'std' lists of {c} finite "
                                 f"numbers (std > 0), got {_short(norm)}")
        self._input_norm = norm

    # ------------------------------------------------------------------ running
    def run(self, x) -> np.ndarray:
        """Logits (N, classes) for x float32 (N, C, H, W), any N >= 1."""
        if isinstance(x, np.ndarray) and x.dtype == np.float32 and not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        return self._core.run(x)

    __call__ = run

    # ------------------------------------------------------------------ file
    def to_bytes(self) -> bytes:
        """The .edgeopt file this engine was loaded from (byte for byte)."""
        return self._core.to_bytes()

    def save(self, path) -> None:
        """Write the .edgeopt file atomically: a temp file in the same folder, fsync, rename."""
        atomic_write_bytes(check_path("path", path), self.to_bytes())

    # ------------------------------------------------------------------ facts
    @property
    def size_bytes(self) -> int:
        """Bytes of the .edgeopt file (what `save` writes)."""
        return self._core.size_bytes

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def input_shape(self) -> tuple:
        """(C, H, W) of one input image."""
        return tuple(self._core.input_shape)

    @property
    def output_shape(self) -> tuple:
        return tuple(self._core.output_shape)

    @property
    def input_norm(self):
        """{'mean': [...], 'std': [...]} recorded by training, or None. Not applied by run()."""
        return self._input_norm

    @property
    def peak_activation_bytes(self) -> int:
        """Arena bytes for the activations of one image (the memory plan's peak)."""
        return self._core.peak_activation_bytes(1)

    def activation_bytes(self, batch: int = 1) -> int:
        """Activation arena + op workspace bytes for a call with `batch` images (1 to 2^31 - 1:
        the runtime plans in int64 bytes, which a larger batch could overflow)."""
        batch = check_int("batch", batch, 1, INT32_MAX)
        return self._core.peak_activation_bytes(batch) + self._core.workspace_bytes(batch)

    @property
    def weight_bytes(self) -> int:
        return self._core.weight_bytes

    def summary(self) -> "EngineSummary":
        """Per-op rows: name, op, output, info (kernel, weight dtype, fusions), macs, weight
        bytes, output bytes, arena offset; prints as a table."""
        return EngineSummary(self._core.summary(), self)

    def profile(self, x=None, runs: int = 50, warmup: int = 5, seed: int = 0) -> "EngineSummary":
        """The summary's rows with each op's mean time in ms ('ms') over `runs` calls on `x`
        (default: one random image of the input shape), after `warmup` untimed calls; prints as a
        table with a time column."""
        runs = check_int("runs", runs, 1, INT32_MAX)
        warmup = check_int("warmup", warmup, 0, INT32_MAX)
        if x is None:
            x = np.random.default_rng(check_int("seed", seed, 0)).standard_normal(
                (1,) + tuple(self.input_shape)).astype(np.float32)
        if warmup:
            self._core.profile(x, warmup)
        rows = self._core.summary()
        for r, t in zip(rows, self._core.profile(x, runs)):
            r["ms"] = t * 1e3
        return EngineSummary(rows, self)

    def report(self) -> str:
        """What compilation decided, as text: the scheme and, for int8-full, the ops that fell back
        to float, the observer and (with observer='auto') each tensor's chosen rule with the
        prediction divergence of every rule tried; GPTQ weight rounding when it was used."""
        lines = [f"scheme {self.scheme}"]
        q = self.metadata.get("int8_full")
        fallbacks = q.get("fallbacks") if isinstance(q, dict) else None
        if isinstance(fallbacks, list) and fallbacks:
            lines.append(f"float fallbacks ({len(fallbacks)}: no integer operator, run in f32 between "
                         "dequantize and quantize):")
            lines += [f"  {f[:120]}" if isinstance(f, str) else f"  {_short(f)}" for f in fallbacks]
        if isinstance(q, dict) and "observer" in q:
            lines.append(f"activation ranges: observer={_short(q['observer'])}")
            rows = q.get("observers")
            if isinstance(rows, list) and rows:
                rules = ("minmax", "percentile", "mse", "kl")
                w = max(len(str(r.get("tensor", ""))) for r in rows if isinstance(r, dict))
                lines.append(f"  {'tensor':<{w}}  {'chosen':<10}" + "".join(f" {m:>14}" for m in rules))
                for r in rows:
                    if not isinstance(r, dict):
                        continue
                    err = r.get("divergence") if isinstance(r.get("divergence"), dict) else {}
                    cells = "".join(f" {err[m]:>14.4g}" if _finite_number(err.get(m)) else f" {'(same)':>14}"
                                    for m in rules)
                    lines.append(f"  {str(r.get('tensor', '')):<{w}}  {str(r.get('chosen', '')):<10}{cells}")
                lines.append("  (per rule: the mean KL divergence of the int8 Engine's softmax from the fp32 "
                             "model's on the calibration data with that tensor's range from the rule; '(same)': "
                             "the rule gave the range of one tried before)")
        for meta in (q, self.metadata.get("weights")):
            if isinstance(meta, dict) and meta.get("rounding") == "gptq":
                lines.append("weight codes: rounding=gptq (each layer's rounding errors compensated over its "
                             "calibration inputs)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Engine(scheme={self.scheme!r}, input={self.input_shape}, classes={self.num_classes}, "
                f"ops={self._core.num_ops}, size={self.size_bytes} B, "
                f"peak_activations={self.peak_activation_bytes} B)")


class EngineSummary(list):
    """A list of per-op dicts that prints as a table."""

    def __init__(self, rows, engine: Engine):
        super().__init__(rows)
        self.total_macs = sum(r["macs"] for r in rows)
        self.weight_bytes = sum(r["weight_bytes"] for r in rows)
        self.peak_activation_bytes = engine.peak_activation_bytes
        self.size_bytes = engine.size_bytes
        self.scheme = engine.scheme

    def __str__(self) -> str:
        w = max([len(r["name"]) for r in self] + [4])
        timed = bool(self) and all("ms" in r for r in self)
        lines = [f"{'#':>3}  {'name':<{w}}  {'op':<16} {'output':<24} {'MACs':>11} {'weights':>9}"
                 + (f" {'ms':>9}" if timed else "") + "  info"]
        for i, r in enumerate(self):
            lines.append(f"{i:>3}  {r['name']:<{w}}  {r['op']:<16} {r['output']:<24} {r['macs']:>11,} "
                         f"{r['weight_bytes']:>9,}" + (f" {r['ms']:>9.4f}" if timed else "") + f"  {r['info']}")
        lines.append(f"scheme {self.scheme}: {len(self)} ops, {self.total_macs:,} MACs/image, weights "
                     f"{self.weight_bytes:,} B, peak activations {self.peak_activation_bytes:,} B/image, "
                     f"file {self.size_bytes:,} B" + (f", {sum(r['ms'] for r in self):.4f} ms in ops" if timed else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


def load(path) -> Engine:
    """Load a saved .edgeopt file (ValueError naming the file if it is not a valid one)."""
    path = check_path("path", path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return Engine(data)
    except ValueError as e:
        raise ValueError(f"{path!r}: {e}") from None


def _finite_number(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int beyond float range
        return False


def _short(v) -> str:
    """repr for a message, cut short (the value comes from an untrusted file)."""
    try:
        r = repr(v)
    except ValueError:  # an int too long to print
        return f"<{type(v).__name__}>"
    return r if len(r) <= 80 else r[:77] + "..."
