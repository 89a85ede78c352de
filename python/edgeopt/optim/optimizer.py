"""Optimizer base: parameter groups, per-parameter state, zero_grad, state dicts.

Parameters come as plain ``Parameter`` objects, as ``(name, Parameter)`` pairs (e.g.
``model.named_parameters()``, so errors can name them) or as PyTorch-style groups
``[{"params": ..., "lr": ...}, ...]``. Updates run in C++ (``_core.optim.sgd_step``/``adam_step``);
a gradient holding NaN or Inf leaves that parameter untouched and raises ValueError naming it
(parameters earlier in the list have been updated by then).
"""
from __future__ import annotations

import numpy as np

from .._check import check_float
from ..nn.parameter import Parameter

__all__ = ["Optimizer"]


def _is_named(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], Parameter)


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Parameter, dict] = {}
        self._names: dict[int, str] = {}
        if isinstance(params, (Parameter, dict)) or _is_named(params):
            params = [params]
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"params: expected an iterable of Parameters, (name, Parameter) pairs or "
                            f"parameter-group dicts, got {type(params).__name__}") from None
        if not groups:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        if not isinstance(group, dict):
            raise TypeError(f"param group: expected a dict, got {type(group).__name__}")
        items = group.get("params")
        if items is None:
            raise ValueError("param group: missing 'params'")
        if isinstance(items, Parameter) or _is_named(items):
            items = [items]
        params = []
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        for item in list(items):
            if _is_named(item):
                name, p = item
            elif isinstance(item, Parameter):
                name, p = None, item
            else:
                raise TypeError(f"params: expected Parameter or (name, Parameter) items, got {type(item).__name__}")
            if id(p) in existing:
                raise ValueError(f"parameter {name or p!r} appears in more than one parameter group")
            existing.add(id(p))
            index = sum(len(g["params"]) for g in self.param_groups) + len(params)
            self._names[id(p)] = name if name is not None else f"#{index} {p.shape}"
            params.append(p)
        new = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
        self._validate(new)
        self.param_groups.append(new)

    def _validate(self, group: dict) -> None:
        """Check a group's hyperparameters and store them as plain floats / bools, so a bad value
        (lr=nan, lr="0.1") fails here rather than at the first step(). Subclasses extend it."""
        group["lr"] = check_float("lr", group.get("lr"), 0.0)
        group["weight_decay"] = check_float("weight_decay", group.get("weight_decay", 0.0), 0.0)

    @property
    def lr(self) -> float:
        """The first group's learning rate; assigning sets every group's (a schedule in one line)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_float("lr", value, 0.0)
        for g in self.param_groups:
            g["lr"] = value

    def param_name(self, p: Parameter) -> str:
        return self._names.get(id(p), repr(p))

    def zero_grad(self) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad.fill(0.0)

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                if not self._update(p, group, self.state.setdefault(p, {})):
                    raise ValueError(f"gradient of parameter '{self.param_name(p)}' contains NaN or Inf; "
                                     "this parameter was not updated")

    def _update(self, p: Parameter, group: dict, state: dict) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [index...]}]}``
        with copies of the arrays."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if groups is None or "state" not in state_dict:
            raise ValueError("state_dict: expected a dict with 'state' and 'param_groups'")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        by_index = {}
        for saved, own in zip(groups, self.param_groups):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"state_dict: a parameter group has {len(saved['params'])} parameters, "
                                 f"the matching group here has {len(own['params'])}")
            by_index.update(zip(saved["params"], own["params"]))
        new_state = {}
        for idx, entry in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"state_dict: state for unknown parameter index {idx}")
            new = {}
            for k, v in entry.items():
                if hasattr(v, "__array__") and np.ndim(v) == 0:  # a step count saved as an array
                    v = np.asarray(v).item()
                elif hasattr(v, "__array__"):
                    v = np.array(v, dtype=np.float32)
                    if v.shape != p.shape:
                        raise ValueError(f"state_dict: '{k}' of parameter '{self.param_name(p)}' has shape "
                                         f"{v.shape}, the parameter has shape {p.shape}")
                new[k] = v
            new_state[p] = new
        updated = []
        for saved, own in zip(groups, self.param_groups):
            g = {**own, **{k: v for k, v in saved.items() if k != "params"}}
            self._validate(g)  # a saved group holds hyperparameters too: lr=nan must not load
            updated.append(g)
        for own, g in zip(self.param_groups, updated):
            own.update(g)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
