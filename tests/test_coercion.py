"""The one options layer: text (or a value) read as a declared type, for metric options
(``-o kid.subsets=5``) and model hyperparameters (``--set lr_d=2e-4``) alike."""
from __future__ import annotations

from typing import Any, Literal

import pytest

from ganbench.coercion import UnknownOptionError, hint_of, read_options, read_value
from ganbench.errors import GanbenchError


@pytest.mark.parametrize("value, hint, expected", [
    ("2e-4", float, 2e-4), (3, float, 3.0), ("7", int, 7), (" 7 ", int, 7), (4.0, int, 4),
    ("yes", bool, True), ("Off", bool, False), (True, bool, True),
    ("none", int | None, None), ("NULL", float | None, None), (None, int | None, None), ("64", int | None, 64),
    ("1, 2,3", tuple[int, ...], (1, 2, 3)), ((1, 2), tuple[float, ...], (1.0, 2.0)),
    ("0.5,0.9", tuple[float, float], (0.5, 0.9)), ("b", Literal["a", "b"], "b"), ("2", Literal[1, 2], 2),
    ("x", str, "x"), ("anything", Any, "anything"), ([1], Any, [1]),
])
def test_read_value(value, hint, expected):
    out = read_value(value, hint, what="x")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value, hint, message", [
    ("fast", float, "lr expects float, got 'fast'"),
    ("2.5", int, "lr expects int, got '2.5'"),
    (2.5, int, "lr expects int, got 2.5"),
    (True, int, "lr expects int, got True"),
    ("maybe", bool, "lr expects true/false, got 'maybe'"),
    ("x", int | None, "lr expects int, got 'x'"),
    ("1,2,3", tuple[int, int], "lr expects 2 comma-separated values, got '1,2,3'"),
    ("c", Literal["a", "b"], "lr must be one of 'a', 'b', got 'c'"),
])
def test_read_value_errors_are_one_line(value, hint, message):
    with pytest.raises(GanbenchError) as info:
        read_value(value, hint, what="lr")
    assert str(info.value) == message


def test_hint_of_a_default():
    assert hint_of(3) is int and hint_of(0.5) is float and hint_of(True) is bool and hint_of("a") is str
    assert hint_of((1, 2)) == tuple[int, ...] and hint_of(None) is Any


def test_read_options():
    defaults = {"subsets": 100, "subset_size": 1000, "gamma": None}
    assert read_options("metric 'kid'", {"subsets": "5"}, defaults) == {**defaults, "subsets": 5}
    # a None default says nothing about the type: a declared hint does
    assert read_options("metric 'kid'", {"gamma": "0.5"}, defaults, {"gamma": float | None})["gamma"] == 0.5
    with pytest.raises(UnknownOptionError) as info:
        read_options("metric 'kid'", {"subset": "5"}, defaults)
    assert str(info.value) == ("metric 'kid' has no option 'subset'. Did you mean 'subsets'? "
                               "Its options: gamma, subset_size, subsets")


def test_metric_options_and_hyperparameters_read_alike():
    from ganbench.models.base import make_config, model_info
    from ganbench.registry import metrics

    with pytest.raises(GanbenchError, match="metric 'kid' option 'degree' expects int, got 'three'"):
        metrics.get("kid").read_options({"degree": "three"})
    with pytest.raises(GanbenchError, match="dcgan hyperparameter 'z_dim' expects int, got 'three'"):
        make_config(model_info("dcgan").config, {"z_dim": "three"}, model="dcgan")
