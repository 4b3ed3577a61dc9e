"""Declaring the parameters of a component spec by type, for the custom components that need a
spec/executor split (a Beam executor or a driver of their own)."""
from __future__ import annotations

from tfx.types.component_spec import ExecutionParameter


def parameters(optional: tuple[str, ...] = (), **types: type) -> dict[str, ExecutionParameter]:
    """{name: ExecutionParameter(type)} for `name=type` pairs; names in `optional` may be unset."""
    return {name: ExecutionParameter(type=kind, optional=name in optional)
            for name, kind in types.items()}
