"""Search spaces (:mod:`ganbench.search_space`, ``register_model(search_space=...)``): every
built-in model declares one and its own defaults lie inside it; impossible spaces fail at
registration with one line; the command-line syntax; JSON round trips; ``ganbench models
show`` prints them. Parametrised over the registry, so models added later are covered."""
from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.models.base import Choice, IntRange, LogUniform, ModelConfig, Uniform, model_info, register_model
from ganbench.models.began import BEGANConfig
from ganbench.registry import models
from ganbench.search_space import from_json, is_range, parse_range, to_json

BUILTIN = sorted(entry.name for entry in models.entries() if entry.origin == "builtin")
TEST_MODEL = "_test_space"

# (model, field) whose paper default lies outside the searched range on purpose: the paper
# trains with SGD or Adagrad and the default learning rate is on that optimizer's scale; the
# space fixes optimizer="adam", so searched draws take Adam's rates (draw 0 keeps the paper's).
OPTIMIZER_SWAPPED = {("gan", "lr"), ("cgan", "lr"), ("vae", "lr")}


def inside(space_range, value) -> bool:
    """Whether ``value`` is a point of ``space_range`` (both ends included)."""
    if isinstance(space_range, Choice):
        return value in space_range.values
    if isinstance(space_range, IntRange) and not isinstance(value, int):
        return False
    return space_range.low <= value <= space_range.high


def default_values(name: str) -> dict[str, dict]:
    """Where a model's defaults come from -> the values: its dataclass, and each dataset's
    paper defaults over it."""
    info = model_info(name)
    base = {f.name: f.default for f in dataclasses.fields(info.config)}
    return {"dataclass": base, **{ds: {**base, **values} for ds, values in info.defaults.items()}}


@pytest.fixture
def cleanup():
    """Unregisters the throwaway model, whether or not the test registered it."""
    yield
    if TEST_MODEL in models.names():
        models.unregister(TEST_MODEL)


@dataclasses.dataclass(frozen=True)
class ToyConfig(ModelConfig):
    lr: float = 2e-4  # Adam learning rate
    gamma: float = 0.5  # an equilibrium ratio in (0, 1], as BEGAN's
    n_dis: int = 1  # D updates per G update
    z_dist: str = "normal"  # "normal" or "uniform"

    def __post_init__(self):
        if not 0.0 < self.gamma <= 1.0:
            raise GanbenchError(f"toy: gamma must lie in (0, 1], got {self.gamma}")


def register_toy(space: dict, config: type = ToyConfig):
    return register_model(TEST_MODEL, config=config, paper="A test", year=2024, task="unconditional",
                          search_space=space)(lambda config: None)


# ---------------------------------------------------------------------------------------
# The built-in models' spaces
# ---------------------------------------------------------------------------------------
def test_builtin_models_found():
    assert {"gan", "dcgan", "wgan-gp", "stylegan", "ali", "cgan-pd"} <= set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_model_searches_a_learning_rate(name):
    space = model_info(name).search_space
    assert space, f"{name} declares no search space"
    assert any("lr" in field.split("_") and isinstance(value, LogUniform) for field, value in space.items())


@pytest.mark.parametrize("name", BUILTIN)
def test_adam_beta1_and_d_steps_are_searched_where_the_config_has_them(name):
    info = model_info(name)
    fields = {f.name for f in dataclasses.fields(info.config)}
    for field, expected in [("beta1", Uniform(0.0, 1.0)), ("n_dis", IntRange(1, 5)), ("n_critic", IntRange(1, 5))]:
        if field in fields:
            assert info.search_space.get(field) == expected, f"{name}.{field}"


@pytest.mark.parametrize("name", BUILTIN)
def test_the_model_defaults_lie_inside_its_ranges(name):
    space = model_info(name).search_space
    ranges = {field: value for field, value in space.items() if is_range(value)}
    outside = [(field, source, values[field]) for source, values in default_values(name).items()
               for field, space_range in ranges.items() if not inside(space_range, values[field])]
    expected = {field for model, field in OPTIMIZER_SWAPPED if model == name}
    assert {field for field, _, _ in outside} == expected, outside
    for source, values in default_values(name).items():
        if expected:  # the exemption holds only while the space swaps the optimizer
            assert space.get("optimizer") == "adam" != values["optimizer"], source


def test_inside_is_inclusive_and_typed():
    assert inside(Uniform(0.9, 0.999), 0.999) and inside(Uniform(0.0, 1.0), 0.0)
    assert not inside(LogUniform(1e-5, 1e-2), 0.1) and not inside(IntRange(1, 5), 6)
    assert not inside(IntRange(1, 5), 2.5) and inside(Choice("a", "b"), "b") and not inside(Choice("a"), "c")


# ---------------------------------------------------------------------------------------
# register_model refuses impossible spaces, in one line
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("space, message", [
    ({"lr": LogUniform(1e-2, 1e-5)}, "empty range"),
    ({"gamma": Uniform(0.5, 0.5)}, "empty range"),
    ({"n_dis": IntRange(5, 1)}, "empty range"),
    ({"lr": LogUniform(0.0, 1e-2)}, "log-uniform range needs low > 0"),
    ({"lr": LogUniform(-1.0, 1e-2)}, "log-uniform range needs low > 0"),
    ({"lr": Uniform(1e-5, float("inf"))}, "must be finite"),
    ({"n_dis": IntRange(1, 5.5)}, "integer bounds"),
    ({"z_dist": Choice()}, "at least one value"),
    ({"z_dist": Choice("normal", "normal")}, "repeated values"),
    ({"lr_g": LogUniform(1e-5, 1e-2)}, "names 'lr_g', which is not one of its hyperparameters"),
    ({"gamma": Uniform(0.0, 1.0)}, "gamma must lie in (0, 1], got 0.0"),  # an end the config refuses
    ({"gamma": Uniform(0.5, 2.0)}, "gamma must lie in (0, 1], got 2.0"),  # the high end
    ({"gamma": 0.0}, "gamma must lie in (0, 1], got 0.0"),  # a fixed value
    ({"lr": Uniform(-1e-3, 1e-2)}, "'lr' must be > 0"),  # the rules every learning rate follows
    ({"n_dis": Choice(1, "many")}, "n_dis"),  # a value of the wrong type
])
def test_register_model_refuses_an_impossible_space(space, message, cleanup):
    with pytest.raises(GanbenchError) as caught:
        register_toy(space)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert TEST_MODEL not in models.names()


def test_began_refuses_gamma_zero(cleanup):
    """Why BEGAN's space starts gamma at 0.01."""
    with pytest.raises(GanbenchError, match="refuses") as caught:
        register_toy({"gamma": Uniform(0.0, 1.0)}, config=BEGANConfig)
    assert "\n" not in str(caught.value)


def test_register_model_keeps_a_possible_space(cleanup):
    space = {"lr": LogUniform(1e-5, 1e-2), "gamma": Uniform(0.01, 1.0), "n_dis": IntRange(1, 5),
             "z_dist": Choice("normal", "uniform")}
    register_toy(space)
    assert model_info(TEST_MODEL).search_space == space


# ---------------------------------------------------------------------------------------
# The command-line syntax and JSON
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("item, name, value", [
    ("lr=1e-5..1e-2:log", "lr", LogUniform(1e-5, 1e-2)),
    ("gamma=0.01..1", "gamma", Uniform(0.01, 1.0)),
    ("n_dis=1..5:int", "n_dis", IntRange(1, 5)),
    ("z_dist=normal,uniform", "z_dist", Choice("normal", "uniform")),
    ("beta1=0.5", "beta1", 0.5),
    ("optimizer = adam", "optimizer", "adam"),
])
def test_parse_range(item, name, value):
    assert parse_range(item) == (name, value)


def test_parse_range_keeps_integer_bounds_integers():
    _, value = parse_range("n_dis=1..5:int")
    assert type(value.low) is int and type(value.high) is int


@pytest.mark.parametrize("item", [
    "lr=1..", "lr=..2", "lr=a..b", "x=1..2:cube", "n_dis=1.5..5:int", "=1..2", "lr", "lr=",
    "lr=2..1",
    "lr=0..1:log",
])
def test_parse_range_refuses(item):
    with pytest.raises(GanbenchError) as caught:
        parse_range(item)
    assert "\n" not in str(caught.value) and repr(item) in str(caught.value)


def test_to_json_writes_one_kind_per_name():
    space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "n_dis": IntRange(1, 5),
             "z_dist": Choice("normal", "uniform"), "optimizer": "adam"}
    assert to_json(space) == {"lr": {"loguniform": [1e-5, 1e-2]}, "beta1": {"uniform": [0.0, 1.0]},
                              "n_dis": {"intrange": [1, 5]}, "z_dist": {"choice": ["normal", "uniform"]},
                              "optimizer": {"fixed": "adam"}}


@pytest.mark.parametrize("name", BUILTIN)
def test_json_round_trip(name):
    space = model_info(name).search_space
    back = from_json(json.loads(json.dumps(to_json(space))))
    assert back == space and list(back) == list(space)
    assert all(type(back[k]) is type(v) for k, v in space.items())


# ---------------------------------------------------------------------------------------
# ganbench models show
# ---------------------------------------------------------------------------------------
def shown_search_space(*args) -> list[str]:
    result = CliRunner().invoke(main, ["models", "show", *args])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("search space"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))
    return lines[start + 1:end]


def test_models_show_prints_the_search_space():
    assert shown_search_space("wgan-gp") == [
        "  lr: log-uniform [1e-05, 0.01] (default 0.0001)",
        "  beta1: uniform [0, 1] (default 0.0)",
        "  gp_lambda: log-uniform [0.1, 100] (default 10.0)",
        "  n_critic: integers 1..5 (default 5)",
    ]


def test_models_show_prints_the_defaults_of_the_dataset_shown():
    lines = shown_search_space("sngan", "--dataset", "cifar10")  # the ResNet setting: beta2 0.9, n_dis 5
    assert "  beta2: uniform [0.9, 0.999] (default 0.9)" in lines and "  n_dis: integers 1..5 (default 5)" in lines
    assert "  beta2: uniform [0.9, 0.999] (default 0.999)" in shown_search_space("sngan")
    assert "  optimizer: fixed 'adam' (default 'sgd')" in shown_search_space("gan")


def test_models_show_without_a_search_space(cleanup):
    register_toy({})
    assert shown_search_space(TEST_MODEL) == ["  none declared"]
