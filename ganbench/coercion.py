"""Reading settings given as text: the one options layer.

Metric options (``-o kid.subset_size=100``), model hyperparameters (``--set lr=2e-4``)
and any other setting that arrives as a string (or as a JSON/Python value) are read by
:func:`read_value` into the type they are declared with, with one style of error:
``<what> expects <type>, got <value>``.

    >>> read_value("2e-4", float, what="lr")
    0.0002
    >>> read_value("none", int | None, what="resize") is None
    True
    >>> read_options("metric 'kid'", {"subsets": "5"}, {"subsets": 100, "gamma": None})
    {'subsets': 5, 'gamma': None}
"""
from __future__ import annotations

import types
import typing
from typing import Any, Mapping

from ganbench.errors import GanbenchError, did_you_mean

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NONE_WORDS = ("none", "null")


def read_value(value: Any, hint: Any, *, what: str) -> Any:
    """``value`` (a CLI string or a JSON/Python value) read as type ``hint``.

    Supported hints: bool, int, float, str, ``X | None`` ("none"/"null" or None),
    ``tuple[X, ...]`` and ``tuple[X, Y]`` (comma-separated text), ``Literal[...]``,
    ``Any`` (the value as given). Raises a one-line GanbenchError naming ``what``.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _read_union(value, args, what)
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise GanbenchError(f"{what} must be one of {', '.join(map(repr, args))}, got {value!r}")
    if origin is tuple or hint is tuple:
        return _read_tuple(value, args, what)
    if hint is bool:
        return _read_bool(value, what)
    if hint in (int, float):
        return _read_number(value, hint, what)
    if hint is str:
        return str(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise GanbenchError(f"{what}: cannot set a value of type {_type_name(hint)} from {value!r}")


def hint_of(default: Any) -> Any:
    """The type a default value implies: its own type, ``tuple[X, ...]`` of its first
    item for tuples, ``Any`` for None (a None default says nothing about the type)."""
    if default is None:
        return Any
    if isinstance(default, tuple):
        return tuple[type(default[0]), ...] if default else tuple
    return type(default)


def read_options(owner: str, given: Mapping[str, Any], defaults: Mapping[str, Any],
                 hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``defaults`` overridden by ``given``, each given value read as its declared type
    (``hints[key]``, else the type of its default; see :func:`hint_of`).

    An unknown key raises ``<owner> has no option <key>. Did you mean ...? Its options: ...``.
    """
    hints = hints or {}
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise UnknownOptionError(owner, key, defaults)
        out[key] = read_value(value, hints.get(key, hint_of(defaults[key])), what=f"{owner} option {key!r}")
    return out


class UnknownOptionError(GanbenchError, KeyError):
    """An option that its owner (a metric, a model...) does not have."""

    def __init__(self, owner: str, key: str, known: typing.Iterable[str]):
        known = sorted(known)
        super().__init__(f"{owner} has no option {key!r}.{did_you_mean(key, known)} "
                         f"Its options: {', '.join(known) or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def _read_union(value: Any, args: tuple[Any, ...], what: str) -> Any:
    if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)):
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return read_value(value, arg, what=what)
        except GanbenchError as exc:
            errors.append(str(exc))
    raise GanbenchError(errors[0] if errors else f"{what}: bad value {value!r}")


def _read_tuple(value: Any, args: tuple[Any, ...], what: str) -> tuple:
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    if len(args) <= 1 or (len(args) == 2 and args[1] is Ellipsis):
        item_hint = args[0] if args else str
        return tuple(read_value(v, item_hint, what=what) for v in items)
    if len(items) != len(args):
        raise GanbenchError(f"{what} expects {len(args)} comma-separated values, got {value!r}")
    return tuple(read_value(v, a, what=what) for v, a in zip(items, args))


def _read_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
        return True
    if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
        return False
    raise GanbenchError(f"{what} expects true/false, got {value!r}")


def _read_number(value: Any, hint: type, what: str) -> int | float:
    try:
        if isinstance(value, bool):
            raise ValueError
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value.strip() if isinstance(value, str) else value)
        return float(value)
    except (TypeError, ValueError):
        raise GanbenchError(f"{what} expects {hint.__name__}, got {value!r}") from None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
