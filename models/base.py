"""The model API: how a GAN is written for ganbench.

A model is one file, ``models/<paper>.py``, with four parts::

    '''DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016. arXiv:1511.06434.'''
    from dataclasses import dataclass
    from ganbench.models.base import GANModel, ModelConfig, register_model, Batch, TrainContext

    @dataclass(frozen=True)
    class DCGANConfig(ModelConfig):          # 1. hyperparameters, a comment per field
        z_dim: int = 100  # length of z
        lr: float = 2e-4  # Adam learning rate, G and D

    class DCGAN(GANModel):                   # 2. networks, optimizers, the paper's step
        def __init__(self, config: DCGANConfig):
            super().__init__(config)
            self.generator = MyGenerator(...)   # a ganbench.generative.GenerativeModel
            self.discriminator = MyDiscriminator(...)
            self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr)
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr)

        def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict:
            z, _ = ctx.latents(self.generator.latent, len(batch.images))
            with ctx.autocast():
                loss_d = ...
            ctx.backward_step(loss_d, self.opt_d)
            ...
            return {"loss_d": loss_d, "loss_g": loss_g}   # floats or 0-d tensors

    @register_model("dcgan", config=DCGANConfig,       # 3. registration + 4. paper defaults
                    paper="Unsupervised Representation Learning with DCGANs",
                    arxiv="1511.06434", year=2015, task="unconditional",
                    defaults={"mnist": {"image_size": 32}, "cifar10": {"image_size": 64}},
                    tiny={"g_channels": 16, "d_channels": 16})  # for the test suite
    def build(config: DCGANConfig) -> DCGAN:
        return DCGAN(config)

The test suite (``tests/test_models.py``) picks every registered model up: it checks the
declaration (a comment on every config field, the arXiv id in the module docstring),
runs one ``train_step``, and for unconditional / class-conditional models trains the
``tiny`` config on MNIST for ``test_steps`` steps and requires a clearly better FID in
the ``lenet-mnist`` feature space than the untrained generator's.

Rules the harness (:mod:`ganbench.training`) relies on:

* The model owns its networks and optimizers. Optimizers are any attributes holding a
  ``torch.optim.Optimizer`` (found by :meth:`GANModel.optimizers`; checkpointed by
  attribute name). Learning-rate schedules are functions of ``step`` applied inside
  ``train_step`` so a resumed run matches an uninterrupted one.
* ``self.generator`` is a :class:`~ganbench.generative.GenerativeModel` with a
  ``latent`` (:class:`~ganbench.generative.LatentSpec`): what evaluation and sampling
  use, and what the harness keeps an EMA copy of.
* Randomness comes from ``ctx``: ``ctx.latents(...)`` / ``ctx.generator`` (seeded and
  checkpointed); dropout and other global-RNG users are covered because the harness
  seeds and checkpoints the global RNG inside its own fork of it. Per-sample noise drawn
  with ``ctx.latents`` / ``ctx.rand`` / ``ctx.randn`` gives each ``torchrun`` process its
  own rows of the whole batch's draw.
* Losses run under ``with ctx.autocast():`` and are applied with
  ``ctx.backward_step(loss, optimizer)`` (zero grad, backward, AMP scaling, step).
* Every hyperparameter lives in the config dataclass; ``image_size``, ``channels``
  and ``num_classes`` come from the dataset unless the model's ``defaults`` or the user
  (``--set k=v``; :data:`ALIASES` lets ``lr`` set ``lr_g`` and ``lr_d``, ``n_dis`` set
  ``n_critic`` and back) override them. Invalid combinations raise
  :class:`~ganbench.errors.GanbenchError` in ``__post_init__`` or ``build``.

Third-party packages register models the same way and expose the factory through the
``ganbench.models`` entry-point group (``mygan = "mypkg.gan:build"``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ganbench.coercion import read_value
from ganbench.errors import GanbenchError, UnknownNameError, first_line
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.registry import models
from ganbench.search_space import (Choice, IntRange, LogUniform, Uniform, check_space,  # noqa: F401 -- re-exported for models
                                   corners)

TASKS = ("unconditional", "class-conditional", "paired translation", "unpaired translation",
         "text-to-image", "restoration", "representation learning")


# ---------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """Fields every model config has. Subclass it (frozen) and add the paper's hyperparameters."""

    image_size: int = 32  # output height = width in pixels; default: the dataset's
    channels: int = 1  # image channels, 1 (gray) or 3 (RGB); default: the dataset's
    num_classes: int = 0  # label classes for conditional models; default: the dataset's
    # size fields (see check_value) where 0 means "none", e.g. {"pool_size"}: they must be >= 0
    allow_zero: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def config_fields(cls: type[ModelConfig]) -> dict[str, Any]:
    """Field name -> resolved type hint."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(value: Any, hint: Any, *, what: str) -> Any:
    """Convert ``value`` (a CLI string or a JSON value) to type ``hint``: the one options
    layer, :func:`ganbench.coercion.read_value`."""
    return read_value(value, hint, what=what)


# words in an int field's name that make it a width or size (>= 1 when its default is)
_SIZE_WORDS = frozenset({"channels", "dim", "size", "hidden", "width"})


def check_value(cls: type[ModelConfig], name: str, value: Any, *, what: str) -> None:
    """The rules every hyperparameter follows, read off its name and default, so that no
    model lists them: floats are finite; a learning rate (a float with ``lr`` in its name)
    whose default is positive stays > 0; a width or size (an int named with channels, dim,
    size, hidden or width) whose default is positive stays >= 1 (>= 0 if in ``allow_zero``)."""
    words = set(name.split("_"))
    positive_default = all(d > 0 for d in _numbers(cls.__dataclass_fields__[name].default) or [0])
    for v in _numbers(value):
        if isinstance(v, float) and not math.isfinite(v):
            raise GanbenchError(f"{what} must be a finite number, got {v}")
        if positive_default and isinstance(v, float) and "lr" in words and v <= 0:
            raise GanbenchError(f"{what} must be > 0, got {v}")
        lowest = 0 if name in cls.allow_zero else 1
        if positive_default and isinstance(v, int) and words & _SIZE_WORDS and v < lowest:
            raise GanbenchError(f"{what} must be >= {lowest}, got {v}")


def _numbers(value: Any) -> list[int | float]:
    """The numbers in a field value (tuple fields hold several)."""
    items = value if isinstance(value, tuple) else (value,)
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def make_config(cls: type[ModelConfig], values: dict[str, Any], *, model: str = "model") -> ModelConfig:
    """Build ``cls`` from ``values`` (strings or JSON values), checking names, types and
    :func:`check_value`'s rules."""
    fields = config_fields(cls)
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise UnknownNameError(f"{model} hyperparameter", key, fields)
        what = f"{model} hyperparameter {key!r}"
        out[key] = coerce(value, fields[key], what=what)
        check_value(cls, key, out[key], what=what)
    try:
        return cls(**out)
    except GanbenchError:
        raise
    except (TypeError, ValueError) as exc:
        raise GanbenchError(f"{model}: invalid hyperparameters: {exc}") from None


# Names papers spell differently. An alias sets the fields it stands for, on a model that
# has all of them and not the alias itself: alias -> (fields, what they are).
ALIASES: dict[str, tuple[tuple[str, ...], str]] = {
    "lr": (("lr_g", "lr_d"), "learning rates"),  # one rate for G and D (TTUR models)
    "n_dis": (("n_critic",), "D updates per G update"),  # SNGAN's name for WGAN's n_critic
    "n_critic": (("n_dis",), "D updates per G update"),
}


def aliases(cls: type[ModelConfig]) -> dict[str, tuple[str, ...]]:
    """The aliases a config accepts: alias -> the fields it sets (see :data:`ALIASES`)."""
    fields = config_fields(cls)
    return {alias: targets for alias, (targets, _) in ALIASES.items()
            if alias not in fields and all(t in fields for t in targets)}


def expand_aliases(cls: type[ModelConfig], values: dict[str, Any], *, model: str = "model") -> dict[str, Any]:
    """``values`` with each alias replaced by the fields it sets (``lr=X`` -> ``lr_g=X,
    lr_d=X``); a field given by its own name too keeps that value. An alias the model
    cannot take is a one-line error naming the fields it has instead."""
    fields, accepted = config_fields(cls), aliases(cls)
    out = {k: v for k, v in values.items() if k not in accepted}
    for key, value in values.items():
        if key in accepted:
            out.update({t: value for t in accepted[key] if t not in values})
        elif key in ALIASES and key not in fields:
            raise GanbenchError(_no_alias(key, fields, model))
    return out


def _no_alias(alias: str, fields: dict[str, Any], model: str) -> str:
    targets, what = ALIASES[alias]
    words = set(alias.split("_")) - {"n"}
    related = [f for f in fields if words & set(f.split("_"))]
    instead = f"its {what} are {', '.join(related)}" if related else f"it has no setting for {what}"
    return f"{model} has no {alias!r} and no {' or '.join(targets)} for it to set; {instead}"


def parse_overrides(items: typing.Iterable[str]) -> dict[str, str]:
    """``["lr=2e-4", "z_dim=64"]`` -> ``{"lr": "2e-4", "z_dim": "64"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GanbenchError(f"bad --set {item!r}: expected NAME=VALUE, e.g. --set lr=2e-4")
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------------------------------
# The training recipe around train_step
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingRecipe:
    """The paper's training setup around a model's ``train_step``, for one dataset: what
    ``ganbench train`` and ``leaderboards/reproduce.py`` use unless told otherwise, and what
    every checkpoint records. The papers trained in float32; mixed precision is the
    user's opt-in (``--amp``), never a recipe's."""

    batch_size: int = 64  # real images per D update (each D update draws a fresh batch) = latents per G update
    ema: float | None = None  # decay of the generator EMA that samples and evaluation use; None: the raw G
    ema_start: int = 0  # generator steps during which the EMA is a copy of G (BigGAN's ema_start)
    ema_halflife_kimg: float | None = None  # instead of ema: the EMA's half-life in thousands of images
    source: str = ""  # where the numbers come from (paper section, the authors' script)

    def __post_init__(self):
        if self.batch_size < 1 or self.ema_start < 0:
            raise GanbenchError(f"training recipe: batch_size must be >= 1 and ema_start >= 0, got {self}")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise GanbenchError(f"training recipe: ema must lie in [0, 1), got {self.ema}")
        if self.ema is not None and self.ema_halflife_kimg is not None:
            raise GanbenchError("training recipe: give ema or ema_halflife_kimg, not both")
        if self.ema_halflife_kimg is not None and self.ema_halflife_kimg <= 0:
            raise GanbenchError(f"training recipe: ema_halflife_kimg must be > 0, got {self.ema_halflife_kimg}")

    def ema_decay(self, batch_size: int) -> float | None:
        """The per-step EMA decay at ``batch_size`` (a half-life in images becomes
        ``0.5 ** (batch_size / images)``, as StyleGAN's G smoothing); None: no EMA."""
        if self.ema_halflife_kimg is not None:
            return 0.5 ** (batch_size / (1000.0 * self.ema_halflife_kimg))
        return self.ema

    def describe(self) -> str:
        ema = ("raw G (no EMA)" if self.ema is None and self.ema_halflife_kimg is None else
               f"EMA half-life {self.ema_halflife_kimg:g}k images" if self.ema_halflife_kimg is not None
               else f"EMA {self.ema:g}")
        if self.ema_start and (self.ema is not None or self.ema_halflife_kimg is not None):
            ema += f" from step {self.ema_start}"
        return f"batch {self.batch_size}, {ema}, float32" + (f" ({self.source})" if self.source else "")


# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """What ``ganbench models`` shows about a model."""

    name: str
    config: type  # the ModelConfig subclass
    paper: str  # paper title
    year: int
    task: str  # one of TASKS
    arxiv: str | None = None  # arXiv id, e.g. "1511.06434"
    authors: str | None = None
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> {field: value}
    description: str = ""
    reference_code: str | None = None  # the code the implementation follows, if any
    tiny: dict[str, Any] = field(default_factory=dict)  # overrides making it small for tests
    test_steps: int = 300  # steps after which `tiny` on MNIST must clearly beat the untrained FID
    recipes: dict[str, TrainingRecipe] = field(default_factory=dict)  # dataset (or "default") -> recipe
    departures: tuple[tuple[str, str], ...] = ()  # (what differs from the paper, why)
    search_space: dict[str, Any] = field(default_factory=dict)  # field -> range (ganbench.search_space)

    def defaults_for(self, dataset: str | None) -> dict[str, Any]:
        return dict(self.defaults.get(dataset or "", {}))

    def recipe_for(self, dataset: str | None) -> TrainingRecipe:
        """The paper's recipe for ``dataset``, else the model's ``"default"`` one, else
        :class:`TrainingRecipe`'s (batch 64, raw G)."""
        return self.recipes.get(dataset or "") or self.recipes.get("default") or TrainingRecipe()


def register_model(name: str, *, config: type, paper: str, year: int, task: str,
                   arxiv: str | None = None, authors: str | None = None,
                   defaults: dict[str, dict[str, Any]] | None = None, description: str = "",
                   reference_code: str | None = None, tiny: dict[str, Any] | None = None,
                   test_steps: int = 300, recipes: dict[str, TrainingRecipe] | None = None,
                   departures: typing.Sequence[tuple[str, str]] = (),
                   search_space: dict[str, Any] | None = None) -> Callable:
    """Decorator registering ``build(config) -> GANModel`` in ``ganbench.registry.models``.

    Args:
        config: the model's frozen :class:`ModelConfig` subclass.
        paper, year, arxiv, authors: the paper the model implements.
        task: one of :data:`TASKS`.
        defaults: the paper's hyperparameters per dataset name (``"mnist"``,
            ``"cifar10"``...), applied over the dataclass defaults.
        tiny: hyperparameter overrides that make the model fast enough for the test
            suite (narrow layers; same losses and architecture shape).
        test_steps: training steps of the learning test (``tiny`` on MNIST, batch 64)
            after which the generator must clearly beat its untrained FID.
        recipes: the paper's :class:`TrainingRecipe` (batch size, EMA) per dataset name,
            ``"default"`` for the others.
        departures: ``(what, why)`` pairs: where the implementation knowingly differs
            from the paper, each with its reason (``ganbench models show`` prints them).
        search_space: the hyperparameters a study searches and their ranges
            (:mod:`ganbench.search_space`); checked here, so an impossible range fails at import.
    """
    if task not in TASKS:
        raise GanbenchError(f"model {name!r}: task {task!r} is not one of {', '.join(TASKS)}")
    if not (isinstance(config, type) and issubclass(config, ModelConfig)):
        raise GanbenchError(f"model {name!r}: config must be a ModelConfig subclass")
    defaults = defaults or {}
    for values in [*defaults.values(), tiny or {}]:
        make_config(config, values, model=name)  # fail at import on a typo in defaults
    recipes = dict(recipes or {})
    if not all(isinstance(r, TrainingRecipe) for r in recipes.values()):
        raise GanbenchError(f"model {name!r}: recipes must map dataset names to TrainingRecipe")
    departures = tuple((str(what), str(why)) for what, why in departures)
    search_space = dict(search_space or {})
    check_search_space(config, search_space, name)
    info = ModelInfo(name, config, paper, year, task, arxiv, authors, defaults, description, reference_code,
                     dict(tiny or {}), test_steps, recipes, departures, search_space)

    def decorate(build: Callable) -> Callable:
        build.model_info = info  # type: ignore[attr-defined]
        existing = models._entries.get(name)  # noqa: SLF001 -- an entry-point placeholder
        if existing is not None and isinstance(existing.target, str) and existing.origin.startswith("entry-point"):
            existing.target, existing.metadata = build, {"info": info}
            return build
        origin = "builtin" if build.__module__.startswith("ganbench.") else "user"
        models.register(name, build, origin=origin, info=info)
        return build

    return decorate


def check_search_space(config: type[ModelConfig], space: dict[str, Any], model: str) -> None:
    """Names are hyperparameters, ranges are possible, and the config accepts both ends of
    every range (over its own defaults): one-line GanbenchError otherwise."""
    check_space(space, config_fields(config), model)
    for corner in corners(space):
        try:
            make_config(config, corner, model=model)
        except GanbenchError as exc:
            raise GanbenchError(f"model {model!r}: its search space reaches a value the model refuses: "
                                f"{exc}") from None


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model (UnknownNameError with a suggestion)."""
    build = models.get(name)
    info = getattr(build, "model_info", None)
    if not isinstance(info, ModelInfo):
        raise GanbenchError(f"model {name!r} ({models.entry(name).origin}) was not declared with "
                            f"@register_model")
    return info


def list_models(pattern: str | None = None) -> list[str]:
    return models.names(pattern)


def resolve_config(name: str, dataset: str | None = None, overrides: dict[str, Any] | None = None,
                   *, data: dict[str, Any] | None = None) -> ModelConfig:
    """The config a run uses: dataclass defaults < the dataset's image_size/channels/
    num_classes (``data``) < the model's defaults for ``dataset`` < ``overrides`` (which
    may use :data:`ALIASES`)."""
    info = model_info(name)
    values: dict[str, Any] = {}
    for key in ("image_size", "channels", "num_classes"):
        if data and data.get(key) is not None:
            values[key] = data[key]
    values.update(info.defaults_for(dataset))
    values.update(expand_aliases(info.config, overrides or {}, model=name))
    return make_config(info.config, values, model=name)


def create_model(name: str, config: ModelConfig | None = None, *, dataset: str | None = None,
                 overrides: dict[str, Any] | None = None, **hparams: Any) -> "GANModel":
    """Build a registered model from ``config``, or from its paper defaults for ``dataset``
    with ``overrides`` / keyword hyperparameters applied (``create_model("dcgan", dataset="mnist", lr_g=1e-4)``)."""
    info = model_info(name)
    if hparams:
        if config is not None:
            raise GanbenchError("pass either a config or hyperparameters, not both")
        overrides = {**(overrides or {}), **hparams}
    if config is None:
        data = None
        if dataset is not None:
            from ganbench.data import dataset_info, parse_name

            data, dataset = dataset_info(dataset), parse_name(dataset).key
        config = resolve_config(name, dataset, overrides, data=data)
    if not isinstance(config, info.config):
        raise GanbenchError(f"model {name!r} needs a {info.config.__name__}, got {type(config).__name__}")
    try:
        model = models.get(name)(config)
    except GanbenchError:
        raise
    except ValueError as exc:  # e.g. torch.optim refusing a beta outside [0, 1)
        raise GanbenchError(f"model {name!r}: invalid hyperparameters ({first_line(exc)})") from None
    if not isinstance(model, GANModel):
        raise GanbenchError(f"model {name!r}: build() returned {type(model).__name__}, not a GANModel")
    if not isinstance(getattr(model, "generator", None), GenerativeModel):
        raise GanbenchError(f"model {name!r}: .generator must be a ganbench.generative.GenerativeModel")
    model.name = name
    return model


# ---------------------------------------------------------------------------------------
# What a training step sees
# ---------------------------------------------------------------------------------------
@dataclass
class Batch:
    """One batch of training data, on the training device.

    images: float (B, C, H, W) in [-1, 1] (channels_last on CUDA).
    labels: int64 (B,) class labels, or None for unlabelled datasets.
    extra: anything else a task needs (paired targets, text embeddings...).
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TrainContext:
    """Services the harness gives a model's ``train_step``.

    Attributes:
        device: the training device.
        generator: seeded ``torch.Generator`` on ``device`` for the model's sampling.
        amp: mixed precision on (CUDA only; bfloat16, or float16 with loss scaling).
        channels_last: conv tensors use channels_last memory format (CUDA).
        real_batches_drawn: real batches taken from the data so far (checkpointed, so a
            resumed run continues the same stream).

    ``train_step`` receives its first real batch; a model whose paper draws more per
    generator step (n_critic / n_dis D updates, each on a fresh batch) takes them with
    :meth:`next_real_batch` or :meth:`real_batches`. ``real_batches`` is a callable
    returning the next :class:`Batch` (the harness gives its seeded data stream; tests may
    give any, e.g. ``itertools.repeat(batch).__next__``).
    """

    def __init__(self, device: torch.device | str = "cpu", *, seed: int = 0, amp: bool = False,
                 channels_last: bool = False, real_batches: Callable[[], Batch] | None = None):
        self.device = torch.device(device)
        self._draw = real_batches
        self.real_batches_drawn = 0
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.channels_last = bool(channels_last) and self.device.type == "cuda"
        self.amp_dtype = torch.float16
        if self.amp and torch.cuda.is_bf16_supported():
            self.amp_dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision region for forward passes and losses (no-op without AMP)."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, *,
                      retain_graph: bool = False, clip_grad_norm: float | None = None) -> None:
        """Zero ``optimizer``'s grads, backpropagate ``loss`` and step (with AMP scaling).

        Gradients reaching parameters of other optimizers are left alone (each optimizer
        zeroes its own before its backward).
        """
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward(retain_graph=retain_graph)
        self.reduce_gradients(optimizer)
        if clip_grad_norm is not None:
            self.scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Between backward and step: nothing in one process; under ``torchrun``
        (:class:`ganbench.distributed.DistributedTrainContext`) the gradients of
        ``optimizer``'s parameters are averaged over the processes here."""

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """``n`` per-sample draws from U[0, 1), shape ``(n, *shape)``, from ``ctx.generator``
        (under ``torchrun``: this process's rows of the whole batch's draw)."""
        return torch.rand(n, *shape, device=self.device, generator=self.generator)

    def randn(self, n: int, *shape: int) -> torch.Tensor:
        """``n`` per-sample draws from N(0, 1), shape ``(n, *shape)``, as :meth:`rand`."""
        return torch.randn(n, *shape, device=self.device, generator=self.generator)

    def latents(self, latent: LatentSpec, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` latents z (and uniform labels for conditional models) from ``ctx.generator``."""
        if latent.z_dist == "normal":
            z = torch.randn(n, latent.z_dim, device=self.device, generator=self.generator)
        else:
            z = torch.rand(n, latent.z_dim, device=self.device, generator=self.generator) * 2 - 1
        labels = None
        if latent.num_classes:
            labels = torch.randint(0, latent.num_classes, (n,), device=self.device, generator=self.generator)
        return z, labels

    def next_real_batch(self) -> Batch:
        """The next real batch of the run's seeded data stream (same size as the step's)."""
        if self._draw is None:
            raise GanbenchError("this train_step draws several real batches per step, but its "
                                "TrainContext has no data (pass real_batches=...)")
        batch = self._draw()
        self.real_batches_drawn += 1
        return batch

    def real_batches(self, first: Batch, n: int) -> typing.Iterator[Batch]:
        """``first`` (the step's batch), then ``n - 1`` fresh ones: one per D update."""
        yield first
        for _ in range(n - 1):
            yield self.next_real_batch()

    @property
    def precision(self) -> str:
        """What the run computes in: "float32", or "bfloat16 autocast" / "float16 autocast"."""
        return f"{str(self.amp_dtype).removeprefix('torch.')} autocast" if self.amp else "float32"

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory format the run uses (channels_last on CUDA for 4-d tensors)."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def state(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "real_batches_drawn": self.real_batches_drawn}

    def load_state(self, state: dict[str, Any], *, step: int = 0) -> None:
        """Restore :meth:`state`; checkpoints from before fresh batches per D update drew
        one batch per step, hence ``step`` when the count is missing."""
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.real_batches_drawn = int(state.get("real_batches_drawn", step))


# ---------------------------------------------------------------------------------------
# The model base class
# ---------------------------------------------------------------------------------------
class GANModel(nn.Module):
    """Base class of trainable models (see the module docstring).

    Subclasses set ``self.generator`` (a GenerativeModel), their other networks and
    optimizers in ``__init__``, and implement :meth:`train_step`.
    """

    name: str = ""
    generator: GenerativeModel

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, float | torch.Tensor]:
        """One training iteration at ``step`` (0-based): every network update the paper
        makes per generator step (n_critic etc.). Returns losses for the log."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The model's optimizers by attribute name (checkpointed under these names)."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, torch.optim.Optimizer)}

    @property
    def latent(self) -> LatentSpec:
        return self.generator.latent


# ---------------------------------------------------------------------------------------
# Network state for the length of a block (D frozen during G's update, eval mode to sample)
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def frozen(*modules: nn.Module) -> typing.Iterator[None]:
    """Inside the block no parameter of ``modules`` requires grad (e.g. D during G's
    update, so no gradient is computed for it); afterwards, also after an exception,
    each parameter's own ``requires_grad`` comes back."""
    params = [p for m in modules for p in m.parameters()]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> typing.Iterator[None]:
    """Inside the block ``modules`` are in eval mode (BatchNorm running statistics, no
    dropout); afterwards, also after an exception, each goes back to the mode it had
    (``module.train(flag)``, which sets its submodules too)."""
    before = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, flag in zip(modules, before):
            m.train(flag)
