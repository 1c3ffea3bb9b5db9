"""Frozen dataclasses to and from plain mappings (JSON, YAML, argparse), driven by the field types.

The one conversion mechanism of the project: ``ranker.json`` (:class:`~ranker_sdk.package.PackageConfig`),
the training configs (``ranker_training.config``) and the packager's options from the command
line all go through :func:`from_dict` and :func:`to_dict`. Standard library only.

What a field's type accepts (anything else is an error naming the field, what was expected and
what came):

- ``bool``: ``true``/``false`` only (never ``"yes"`` or ``1``);
- ``int``: an integer, a float with an integral value, or a string of an integer;
- ``float``: a number (not a bool), or a string of one (YAML reads ``2e-4`` as a string);
- ``str``: a string, or a number where a name is expected (YAML reads ``split: 2024`` as an int);
- ``X | None``: None, or what ``X`` accepts;
- ``tuple[X, ...]`` / ``list[X]``: a list (one item alone stands for a list of one);
  ``tuple[X, Y]``: a list of exactly that length;
- ``dict[str, X]`` / ``Mapping[str, X]``: a mapping; ``Any``: the value as it is;
- a nested dataclass: a mapping of its fields, or an instance of it.

A key the dataclass does not have, or a missing field that has no default, is an error that lists
the valid keys, so a typo never silently falls back to a default. ``error`` is the exception
class raised (``PackageError`` for a package, ``ConfigError`` for a training config), and
``hooks`` maps a type to a function applied to the raw value first: a bare string that stands for
a whole object, or a class with a JSON shape of its own (its ``from_dict``).

>>> from ranker_sdk.package import ScoreConfig
>>> score = from_dict(ScoreConfig, {"kind": "sigmoid", "scale": "2e-1"})
>>> score
ScoreConfig(kind='sigmoid', scale=0.2, bias=0.0)
>>> to_dict(score)
{'kind': 'sigmoid', 'scale': 0.2, 'bias': 0.0}
>>> from_dict(ScoreConfig, {"kind": "raw", "bias": [1]}, where="ranker.json: score")
Traceback (most recent call last):
...
ValueError: ranker.json: score: bias: expected float, got list [1]
>>> from_dict(ScoreConfig, {"knd": "raw"})
Traceback (most recent call last):
...
ValueError: ScoreConfig: unknown key(s) ['knd']; the valid keys are ['kind', 'scale', 'bias']
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

__all__ = ["from_dict", "to_dict", "convert", "Hooks"]

T = TypeVar("T")
Hooks = Mapping[Any, Callable[[Any], Any]]
_NO_HOOKS: Hooks = {}


def from_dict(
    cls: type[T], data: object, *, where: str = "", error: type[Exception] = ValueError, hooks: Hooks = _NO_HOOKS
) -> T:
    """Build the dataclass ``cls`` from the mapping ``data`` (see the module docstring).

    ``where`` names the source in messages (a file name; default: the class name).
    """
    return _Reader(where or cls.__name__, error, hooks).dataclass(cls, data, "")


def convert(
    tp: Any, value: object, *, where: str, error: type[Exception] = ValueError, hooks: Hooks = _NO_HOOKS
) -> Any:
    """``value`` converted to the type ``tp`` (a field's type), as :func:`from_dict` converts a field."""
    return _Reader(where, error, hooks).value(tp, value, "")


def to_dict(obj: Any, *, hooks: Hooks = _NO_HOOKS) -> Any:
    """The plain form of ``obj``: dataclasses become dicts (in field order), tuples lists.

    ``hooks`` maps a type to the function that writes its instances (a class with a JSON shape
    of its own, such as its ``to_dict``). Mapping and list values are copied recursively.
    """
    hook = hooks.get(type(obj))
    if hook is not None:
        return hook(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name), hooks=hooks) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v, hooks=hooks) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v, hooks=hooks) for k, v in obj.items()}
    return obj


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Reader:
    """One conversion: the source's name, the error class and the hooks, carried down the fields."""

    def __init__(self, source: str, error: type[Exception], hooks: Hooks) -> None:
        self.source, self.error, self.hooks = source, error, hooks

    def fail(self, path: str, message: str) -> NoReturn:
        raise self.error(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    def dataclass(self, cls: type[T], data: object, path: str) -> T:
        if not isinstance(data, Mapping):
            self.fail(path, f"expected a mapping of {cls.__name__}'s fields, got {type(data).__name__} {_show(data)}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = [f.name for f in fields]
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            self.fail(path, f"unknown key(s) {unknown}; the valid keys are {names}")
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in data
        ]
        if required:
            self.fail(path, f"missing key(s) {required}; the valid keys are {names}")
        hints = typing.get_type_hints(cls)
        prefix = f"{path}." if path else ""
        return cls(**{k: self.value(hints[k], v, prefix + k) for k, v in data.items()})

    def value(self, tp: Any, value: object, path: str) -> Any:
        hook = self.hooks.get(tp)
        if hook is not None:
            value = hook(value)
        if tp is Any or tp is object:
            return value
        if dataclasses.is_dataclass(tp) and isinstance(value, tp):  # type: ignore[arg-type]
            return value  # already built (by a hook, or by the caller)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1:
                raise TypeError(f"{path}: only X | None unions are supported, not {tp}")
            return None if value is None else self.value(inner[0], value, path)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, path)  # type: ignore[arg-type]
        if origin in (tuple, list):
            return self.sequence(origin, args, value, path)
        if origin in (dict, Mapping) or tp in (dict, Mapping):
            if not isinstance(value, Mapping):
                self.fail(path, f"expected a mapping, got {type(value).__name__} {_show(value)}")
            item = args[1] if args else Any
            return {str(k): self.value(item, v, f"{path}.{k}") for k, v in value.items()}
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected true/false, got {_show(value)}")
            return value
        if tp in (int, float, str):
            return self.scalar(tp, value, path)
        raise TypeError(f"{path}: no conversion to {tp}")  # a field type this module does not know

    def sequence(self, origin: type, args: tuple[Any, ...], value: object, path: str) -> Any:
        fixed = origin is tuple and bool(args) and args[-1] is not Ellipsis
        if not fixed and (isinstance(value, (str, Mapping)) or dataclasses.is_dataclass(value)):
            value = [value]  # a single item where a list is expected
        if not isinstance(value, (list, tuple)):
            self.fail(path, f"expected a list, got {type(value).__name__} {_show(value)}")
        if fixed:
            if len(value) != len(args):
                self.fail(path, f"expected a list of {len(args)} items, got {len(value)}: {_show(value)}")
            items = [self.value(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item = args[0] if args else Any
            items = [self.value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items

    def scalar(self, tp: type, value: object, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.fail(path, f"expected {tp.__name__}, got {type(value).__name__} {_show(value)}")
        if tp is str:
            return str(value)
        if tp is int and isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            self.fail(path, f"expected int, got {_show(value)}")  # 2.5, or 1e400 (JSON's inf)
        try:
            return tp(value)
        except ValueError:
            self.fail(path, f"expected {tp.__name__}, got {_show(value)}")
