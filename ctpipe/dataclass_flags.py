"""Settings dataclasses as command-line flags: one `--field-name` per field, typed and defaulted
by the field's default (the thresholds of `rollout analyze`, the gate of `score`)."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def add_flags(parser: argparse.ArgumentParser, settings: type, what: str) -> None:
    """A flag per field of the dataclass `settings`; `what` names them in the help."""
    for field in dataclasses.fields(settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name,
                            type=type(field.default), default=field.default,
                            help=f"{what} (default {field.default})")


def from_flags(settings: type[T], args: argparse.Namespace) -> T:
    """The dataclass `settings` made from the flags `add_flags` added."""
    values: dict[str, Any] = {f.name: getattr(args, f.name) for f in dataclasses.fields(settings)}
    return settings(**values)
