"""Hyperparameter search spaces: the ranges a study (:mod:`ganbench.study`) draws from.

Each model declares its space next to its paper defaults
(``@register_model(search_space={...})``): config field name -> one of

* :class:`LogUniform` ``(low, high)``: learning rates, penalty weights (log-uniform);
* :class:`Uniform` ``(low, high)``: Adam betas, BEGAN's gamma;
* :class:`IntRange` ``(low, high)``: D steps per G step (every integer equally likely);
* :class:`Choice` ``(values...)``: a categorical choice;
* a plain value: fixed in every searched draw (e.g. ``"optimizer": "adam"`` for a model
  whose paper used SGD, so that its searched draws use the study's Adam); draw 0 of a
  study, the paper default, keeps the model's own value.

Where the paper gives no range, the models use the "wide" ranges of Lucic et al. 2018
("Are GANs Created Equal?", arXiv:1711.10337; ``compare_gan``'s ``GetDefaultWideRange``):
learning rate log-uniform on [1e-5, 1e-2], Adam beta1 uniform on [0, 1], D steps per G step
1..5, gradient-penalty weight log-uniform on [0.1, 100], WGAN clipping log-uniform on
[1e-3, 1], BEGAN's k learning rate log-uniform on [1e-4, 1e-2] and gamma uniform on [0, 1].

On the command line a range is written ``NAME=LOW..HIGH`` (uniform), ``NAME=LOW..HIGH:log``
(log-uniform), ``NAME=LOW..HIGH:int`` (integers), ``NAME=A,B,C`` (a choice) or
``NAME=VALUE`` (fixed): :func:`parse_range`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

from ganbench.errors import GanbenchError


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def check(self, name: str) -> None:
        _check_bounds(name, self.low, self.high)

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class LogUniform(Uniform):
    """Uniform in log space (learning rates, penalty weights)."""

    def check(self, name: str) -> None:
        super().check(name)
        if self.low <= 0:
            raise GanbenchError(f"search space {name}: a log-uniform range needs low > 0, got {self.low:g}")

    def describe(self) -> str:
        return "log-" + super().describe()


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int

    def check(self, name: str) -> None:
        if not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise GanbenchError(f"search space {name}: an integer range needs integer bounds, got "
                                f"{self.low!r}..{self.high!r}")
        _check_bounds(name, self.low, self.high)

    def describe(self) -> str:
        return f"integers {self.low}..{self.high}"


@dataclass(frozen=True)
class Choice:
    values: tuple

    def __init__(self, *values: Any):
        object.__setattr__(self, "values", tuple(values))

    def check(self, name: str) -> None:
        if not self.values:
            raise GanbenchError(f"search space {name}: a choice needs at least one value")
        if len(set(map(repr, self.values))) != len(self.values):
            raise GanbenchError(f"search space {name}: repeated values in {list(self.values)}")

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


Range = Union[Uniform, LogUniform, IntRange, Choice]
RANGES = (Uniform, LogUniform, IntRange, Choice)


def _check_bounds(name: str, low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise GanbenchError(f"search space {name}: bounds must be finite, got {low}..{high}")
    if not low < high:
        raise GanbenchError(f"search space {name}: empty range {low:g}..{high:g} (needs low < high)")


def is_range(value: Any) -> bool:
    return isinstance(value, RANGES)


def describe(value: Any) -> str:
    """One phrase for a range or a fixed value (``ganbench models show``)."""
    return value.describe() if is_range(value) else f"fixed {value!r}"


def check_space(space: Mapping[str, Any], fields: Mapping[str, Any], model: str) -> None:
    """Every name is a config field (``fields``: name -> type hint) and every range is
    possible; a one-line GanbenchError otherwise."""
    for name, value in space.items():
        if name not in fields:
            from ganbench.errors import did_you_mean

            raise GanbenchError(f"model {model!r}: search space names {name!r}, which is not one of its "
                                f"hyperparameters{did_you_mean(name, fields)}")
        if is_range(value):
            value.check(f"{model}.{name}")


def corners(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The low and high ends of every range (and every choice), one at a time over the
    others' low ends: the values a config must accept for the space to be usable."""
    low = {name: _ends(value)[0] for name, value in space.items()}
    out = [dict(low)]
    for name, value in space.items():
        for end in _ends(value)[1:]:
            out.append({**low, name: end})
    return out


def _ends(value: Any) -> list[Any]:
    if isinstance(value, Choice):
        return list(value.values)
    if is_range(value):
        return [value.low, value.high]
    return [value]


def parse_range(item: str) -> tuple[str, Any]:
    """``"lr=1e-5..1e-2:log"`` -> ``("lr", LogUniform(1e-5, 1e-2))``; see the module doc."""
    name, sep, text = item.partition("=")
    name, text = name.strip(), text.strip()
    if not sep or not name or not text:
        raise GanbenchError(f"bad range {item!r}: expected NAME=LOW..HIGH[:log|:int], NAME=A,B,C or NAME=VALUE")
    body, _, kind = text.partition(":")
    if ".." in body:
        value = _parse_bounds(item, body, kind)
        try:
            value.check(name)
        except GanbenchError as exc:
            raise GanbenchError(f"bad range {item!r}: {str(exc).split(': ', 1)[1]}") from None
        return name, value
    if "," in text:
        return name, Choice(*(_scalar(v.strip()) for v in text.split(",")))
    return name, _scalar(text)


def _parse_bounds(item: str, body: str, kind: str) -> Range:
    low_text, _, high_text = body.partition("..")
    if kind not in ("", "log", "int"):
        raise GanbenchError(f"bad range {item!r}: the kind after ':' must be 'log' or 'int', got {kind!r}")
    try:
        if kind == "int":
            return IntRange(int(low_text), int(high_text))
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise GanbenchError(f"bad range {item!r}: the bounds must be numbers") from None
    return LogUniform(low, high) if kind == "log" else Uniform(low, high)


def _scalar(text: str) -> Any:
    """A CLI word as a JSON-like scalar: int, float, bool, else the string itself (the
    config coerces it to the field's type)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def to_json(space: Mapping[str, Any]) -> dict[str, Any]:
    """A space as JSON-able data (stored with a study's protocol)."""
    out: dict[str, Any] = {}
    for name, value in space.items():
        if isinstance(value, Choice):
            out[name] = {"choice": list(value.values)}
        elif is_range(value):
            out[name] = {type(value).__name__.lower(): [value.low, value.high]}
        else:
            out[name] = {"fixed": value}
    return out


def from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    kinds = {"uniform": Uniform, "loguniform": LogUniform, "intrange": IntRange}
    out: dict[str, Any] = {}
    for name, spec in data.items():
        ((kind, value),) = spec.items()
        out[name] = (Choice(*value) if kind == "choice" else value if kind == "fixed"
                     else kinds[kind](*value))
    return out
