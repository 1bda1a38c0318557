"""The study engine: Optuna storage, the protocol, the queue of draws (workers:
:mod:`ganbench.study.worker`).

Layout in the Optuna storage (SQLite under ``GANBENCH_HOME`` by default, or any SQLAlchemy
URL shared by many machines):

* ``ganbench:NAME``: the protocol study; its user attribute ``protocol`` (JSON) is what
  ``study create`` was given, ``untrained:MODEL`` the untrained generator's value.
* ``ganbench:NAME:MODEL``: one Optuna study per model, one trial per hyperparameter draw;
  the draw's seeds run inside the trial, its value is their mean (the report reads the
  per-seed results from the trial's ``runs`` attribute).

``study create`` enqueues every draw as a waiting trial: draw 0 with the model's default
configuration, draws 1..N with values drawn at creation by Optuna's sampler (``random``,
the study's protocol; ``grid``), so a restart never changes the draws; with ``tpe`` the
draws are placeholders whose values Optuna's TPE sampler suggests when a worker takes
them (adaptive, so not reproducible across different worker schedules).

A worker takes a waiting trial atomically (Optuna's state change from WAITING to RUNNING
succeeds for exactly one worker), keeps a heartbeat while it runs, and completes it.
A trial whose worker was killed stops beating; after the grace period the next worker to
look fails it and re-enqueues a copy with the same draw (Optuna's
``RetryHeartbeatStaleTrialCallback``), so it is retried, never lost, and never counted twice (the
report takes the completed trial of each draw). Each seed's run keeps its folder
(``RUNS/NAME/MODEL/draw-NNN/seed-S``) with a checkpoint and a ``done.json``, so a retried
draw on the same machine resumes instead of starting over.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from ganbench.errors import GanbenchError, first_line
from ganbench.search_space import Choice, IntRange, LogUniform, Uniform, from_json, is_range, to_json

PREFIX = "ganbench:"
HEARTBEAT_S = 60  # seconds between a running trial's heartbeats
GRACE_FACTOR = 3  # a trial without a heartbeat for this many intervals is failed and retried
MAX_RETRY = 2  # retries of a draw whose worker died or raised
SAMPLERS = ("random", "grid", "tpe")
SCALES = ("tiny", "paper")
GRID_POINTS = 3  # values per continuous range on a grid: the centres of equal bins (never an end: Adam refuses beta1 1)
# protocol fields that identify a study; the others (command, versions, created) describe it
IDENTITY = ("models", "dataset", "split", "metric", "extractor", "num_samples", "steps", "batch_size", "seeds",
            "trials", "sampler", "scale", "study_seed", "search_spaces")

optuna.logging.set_verbosity(optuna.logging.WARNING)
# heartbeats and fail_stale_trials are marked experimental; the study relies on them knowingly
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class StudySettings:
    """What ``ganbench study create`` is given."""

    name: str
    models: tuple[str, ...]
    dataset: str = "mnist"
    metric: str = "fid"
    extractor: str | None = None  # None: the dataset's shipped classifier (lenet-*), else Inception
    num_samples: int = 2000  # generated and reference (test split) images per evaluation
    steps: int = 2000  # generator steps per run
    seeds: int = 2  # training seeds per draw
    trials: int = 20  # random draws per model besides draw 0 (the default configuration)
    sampler: str = "random"
    scale: str = "tiny"  # "tiny": each model's small configuration, batch 64, raw G; "paper": paper recipe
    batch_size: int | None = None  # None: 64 at scale tiny, the paper recipe's at scale paper
    study_seed: int = 0  # seeds the draws
    space_overrides: tuple[tuple[str, Any], ...] = ()  # ("model.field" or "field", range or value)


# ----------------------------------------------------------------------------- storage
def default_storage() -> str:
    from ganbench.thirdparty.registry_file import home_dir

    return f"sqlite:///{home_dir() / 'studies.sqlite'}"


def storage_url(location: str | None) -> str:
    """A database URL; a plain path is an SQLite file."""
    if not location:
        return default_storage()
    return location if "://" in location else f"sqlite:///{Path(location).expanduser().resolve()}"


def open_storage(location: str | None = None, *, heartbeat: int = HEARTBEAT_S) -> RDBStorage:
    """Optuna's RDB storage with heartbeats and retries; one-line error when unreachable."""
    from ganbench.leaderboards.store import _redact

    url = storage_url(location)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                          grace_period=GRACE_FACTOR * heartbeat,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
    except Exception as exc:  # noqa: BLE001 -- drivers raise anything: one line for the user
        raise GanbenchError(f"cannot open study storage {_redact(url)}: {first_line(exc)}") from None


def _load(storage: RDBStorage, study_name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


def load_protocol(storage: RDBStorage, name: str) -> dict[str, Any]:
    study = _load(storage, PREFIX + name)
    if study is None or "protocol" not in study.user_attrs:
        known = [s.study_name[len(PREFIX):] for s in optuna.get_all_study_summaries(storage)
                 if s.study_name.startswith(PREFIX) and s.study_name.count(":") == 1]
        from ganbench.errors import UnknownNameError

        raise UnknownNameError("study", name, known)
    protocol = json.loads(study.user_attrs["protocol"])
    protocol["untrained"] = {k.split(":", 1)[1]: v for k, v in study.user_attrs.items()
                             if k.startswith("untrained:")}
    return protocol


def model_study(storage: RDBStorage, name: str, model: str) -> optuna.Study:
    return optuna.load_study(study_name=f"{PREFIX}{name}:{model}", storage=storage)


# ----------------------------------------------------------------------------- create
def build_protocol(settings: StudySettings, command: str) -> dict[str, Any]:
    """Validate the settings (one-line errors) and return the study's protocol."""
    s = settings
    _check_numbers(s)
    direction = _metric_direction(s.metric)
    from ganbench.data import dataset_info

    dataset_info(s.dataset)  # unknown dataset: UnknownNameError with a suggestion
    extractor = s.extractor or _default_extractor(s.dataset)
    from ganbench.registry import feature_extractors

    feature_extractors.entry(extractor)
    spaces = {model: to_json(search_space(model, s.space_overrides)) for model in s.models}
    return {"name": s.name, "models": list(s.models), "dataset": s.dataset, "split": "test", "metric": s.metric,
            "higher_is_better": direction, "extractor": extractor, "num_samples": s.num_samples,
            "steps": s.steps, "batch_size": _batch_size(s), "seeds": list(range(s.seeds)), "trials": s.trials,
            "sampler": s.sampler, "scale": s.scale, "study_seed": s.study_seed, "search_spaces": spaces,
            "generator": "raw" if s.scale == "tiny" else "paper recipe", "command": command,
            "versions": _versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _check_numbers(s: StudySettings) -> None:
    if not s.name or ":" in s.name or "/" in s.name:
        raise GanbenchError(f"study name must be non-empty without ':' or '/', got {s.name!r}")
    if not s.models:
        raise GanbenchError("a study needs at least one model (--models a,b,c)")
    if len(set(s.models)) != len(s.models):
        raise GanbenchError(f"--models lists a model twice: {', '.join(s.models)}")
    if s.trials < 1 or s.seeds < 1 or s.steps < 1:
        raise GanbenchError(f"--trials, --seeds and --steps must be at least 1, got {s.trials}, {s.seeds}, {s.steps}")
    if s.num_samples < 2:
        raise GanbenchError(f"--num-samples must be at least 2, got {s.num_samples}")
    if s.sampler not in SAMPLERS or s.scale not in SCALES:
        raise GanbenchError(f"--sampler must be one of {', '.join(SAMPLERS)} and --scale one of "
                            f"{', '.join(SCALES)}, got {s.sampler!r} / {s.scale!r}")


def _metric_direction(metric: str) -> bool:
    """True when higher is better; refuses metrics without a value of their own name."""
    from ganbench.registry import metrics

    higher = metrics.metadata(metric).get("higher_is_better", {})
    if metric not in higher:
        raise GanbenchError(f"metric {metric!r} has no single value named {metric!r} to optimise "
                            f"(its outputs: {', '.join(higher) or 'none'}); use fid, kid, isc, ...")
    return bool(higher[metric])


def _default_extractor(dataset: str) -> str:
    from ganbench.evaluation import DEFAULT_EXTRACTOR
    from ganbench.leaderboards.reproduce import EXTRACTORS

    return EXTRACTORS.get(dataset, DEFAULT_EXTRACTOR)


def _batch_size(s: StudySettings) -> int | None:
    return s.batch_size if s.batch_size is not None else (64 if s.scale == "tiny" else None)


def _versions() -> dict[str, str]:
    import torch

    import ganbench

    return {"ganbench": ganbench.__version__, "torch": torch.__version__, "optuna": optuna.__version__}


def search_space(model: str, overrides: tuple[tuple[str, Any], ...] = ()) -> dict[str, Any]:
    """The model's declared space with the study's ``--space`` overrides applied
    (``model.field`` for one model, ``field`` for every model that has it), checked."""
    from ganbench.models.base import check_search_space, config_fields, model_info

    info = model_info(model)
    if not info.search_space:
        raise GanbenchError(f"model {model!r} declares no search space (register_model(search_space=...))")
    space = dict(info.search_space)
    fields = config_fields(info.config)
    for key, value in overrides:
        target, _, field = key.rpartition(".")
        if target == model or (not target and field in fields):
            space[field] = value
    check_search_space(info.config, space, model)
    return space


def check_overrides(models: tuple[str, ...], overrides: tuple[tuple[str, Any], ...]) -> None:
    """Every ``--space`` names a study model's hyperparameter (else a one-line error)."""
    from ganbench.models.base import config_fields, model_info

    for key, _ in overrides:
        target, _, field = key.rpartition(".")
        owners = [target] if target else [m for m in models if field in config_fields(model_info(m).config)]
        if target and target not in models:
            raise GanbenchError(f"--space {key}: {target!r} is not one of the study's models")
        if not owners or field not in config_fields(model_info(owners[0]).config):
            raise GanbenchError(f"--space {key}: no study model has a hyperparameter {field!r}")


def create_study(settings: StudySettings, storage: RDBStorage, *, command: str = "") -> tuple[dict, bool]:
    """Declare the study (enqueue every draw); (protocol, created). An existing study with
    the same protocol is left as it is; one with a different protocol is refused."""
    check_overrides(settings.models, settings.space_overrides)
    protocol = build_protocol(settings, command)
    existing = _load(storage, PREFIX + settings.name)
    if existing is not None and "protocol" in existing.user_attrs:
        _refuse_different(settings.name, json.loads(existing.user_attrs["protocol"]), protocol)
        return load_protocol(storage, settings.name), False
    for model in settings.models:  # a create that died half-way left model studies: redo them
        if _load(storage, f"{PREFIX}{settings.name}:{model}") is not None:
            optuna.delete_study(study_name=f"{PREFIX}{settings.name}:{model}", storage=storage)
        _enqueue_draws(storage, settings, protocol, model)
    meta = existing or optuna.create_study(study_name=PREFIX + settings.name, storage=storage)
    meta.set_user_attr("protocol", json.dumps(protocol))
    return protocol, True


def _refuse_different(name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in IDENTITY if old.get(k) != new.get(k)]
    if diffs:
        shown = "; ".join(d if len(d) < 120 else d[:117] + "..." for d in diffs)
        raise GanbenchError(f"study {name!r} exists with a different protocol ({shown}); choose another name "
                            f"(studies under different protocols are never mixed)")


def _enqueue_draws(storage: RDBStorage, s: StudySettings, protocol: dict, model: str) -> None:
    space = from_json(protocol["search_spaces"][model])
    direction = "maximize" if protocol["higher_is_better"] else "minimize"
    study = optuna.create_study(study_name=f"{PREFIX}{s.name}:{model}", storage=storage, direction=direction,
                                sampler=_sampler(s.sampler, space, s.study_seed))
    study.enqueue_trial({}, user_attrs={"draw": 0})
    seed = s.study_seed * 1000 + protocol["models"].index(model)
    for draw, params in enumerate(draw_values(space, s.trials, s.sampler, seed), start=1):
        study.enqueue_trial(params or {}, user_attrs={"draw": draw, "searched": True})


def draw_values(space: dict[str, Any], n: int, sampler: str, seed: int) -> list[dict[str, Any] | None]:
    """``n`` draws of the ranges of ``space`` by Optuna's sampler (None for each with
    ``tpe``: suggested when run)."""
    if sampler == "tpe":
        return [None] * n
    distributions = {k: distribution(v) for k, v in space.items() if is_range(v)}
    if sampler == "grid":
        points = math.prod(len(grid_values(v)) for v in space.values() if is_range(v))
        if n > points:
            raise GanbenchError(f"the grid has {points} points; --trials {n} exceeds it (use --sampler random)")
    memory = optuna.create_study(sampler=_sampler(sampler, space, seed))
    return [memory.ask(distributions).params for _ in range(n)]


def _sampler(name: str, space: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    if name == "grid":
        return optuna.samplers.GridSampler({k: grid_values(v) for k, v in space.items() if is_range(v)}, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def distribution(value: Any) -> optuna.distributions.BaseDistribution:
    if isinstance(value, Choice):
        return optuna.distributions.CategoricalDistribution(value.values)
    if isinstance(value, IntRange):
        return optuna.distributions.IntDistribution(value.low, value.high)
    return optuna.distributions.FloatDistribution(value.low, value.high, log=isinstance(value, LogUniform))


def grid_values(value: Any) -> list[Any]:
    if isinstance(value, Choice):
        return list(value.values)
    if isinstance(value, IntRange):
        return list(range(value.low, value.high + 1))
    centres = [(i + 0.5) / GRID_POINTS for i in range(GRID_POINTS)]
    if isinstance(value, LogUniform):
        low, high = math.log(value.low), math.log(value.high)
        return [math.exp(low + c * (high - low)) for c in centres]
    assert isinstance(value, Uniform)
    return [value.low + c * (value.high - value.low) for c in centres]


# ----------------------------------------------------------------------------- read
def iter_trials(storage: RDBStorage, protocol: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for model in protocol["models"]:
        for t in model_study(storage, protocol["name"], model).get_trials(deepcopy=False):
            yield model, t


def trial_frame(storage: RDBStorage, protocol: dict[str, Any]):
    """The study's runs as the report reads them (ganbench.study): one row per run of
    each draw's completed trial (the first, should a draw ever complete twice); a draw
    whose retries all failed gives rows with outcome "failed"."""
    import pandas as pd

    rows, seen = [], set()
    for model, t in iter_trials(storage, protocol):
        draw = t.user_attrs.get("draw", 0)
        if t.state == TrialState.COMPLETE and (model, draw) not in seen:
            seen.add((model, draw))
            rows += [_run_row(model, draw, t.number, r) for r in t.user_attrs.get("runs", [])]
    for (model, draw), t in failed_for_good(storage, protocol).items():
        failed = {"value": math.nan, "outcome": "failed", "learned": False, "params": t.params}
        rows += [_run_row(model, draw, t.number, {"seed": s, **failed}) for s in protocol["seeds"]]
    columns = ["model", "draw", "seed", "value", "outcome", "learned", "params", "seconds", "images", "steps", "trial"]
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "draw", "seed"], ignore_index=True)


def _run_row(model: str, draw: int, number: int, run: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "draw": draw, "seed": run["seed"], "value": run["value"], "outcome": run["outcome"],
            "learned": bool(run["learned"]), "params": json.dumps(run.get("params", {}), sort_keys=True),
            "seconds": run.get("seconds", 0.0), "images": run.get("images", 0), "steps": run.get("steps", 0),
            "trial": number}


def failed_for_good(storage: RDBStorage, protocol: dict[str, Any]) -> dict[tuple[str, int], Any]:
    """{(model, draw): its last failed trial} of the draws whose retries all failed and that
    no trial has completed or is still running or waiting for."""
    failed, alive = {}, set()
    for model, t in iter_trials(storage, protocol):
        draw = (model, t.user_attrs.get("draw", 0))
        if t.state == TrialState.FAIL and len(t.system_attrs.get("retry_history", [])) >= MAX_RETRY:
            failed[draw] = t
        elif t.state != TrialState.FAIL:
            alive.add(draw)
    return {draw: t for draw, t in failed.items() if draw not in alive}


def retry_failed(storage: RDBStorage, protocol: dict[str, Any]) -> int:
    """Queue again, with a fresh retry budget, every draw that failed for good (after the
    cause, e.g. a crash or a full disk, was fixed); the number of draws queued. A draw keeps
    its values: a searched draw's fixed values, or what was suggested for it."""
    failed = failed_for_good(storage, protocol)
    for (model, _), t in sorted(failed.items(), key=lambda item: item[0]):
        params = t.system_attrs.get("fixed_params") or t.params
        attrs = {key: value for key, value in t.user_attrs.items() if key in ("draw", "searched")}
        model_study(storage, protocol["name"], model).enqueue_trial(params, user_attrs=attrs)
    return len(failed)


def status_frame(storage: RDBStorage, protocol: dict[str, Any]):
    """Per model: draws done, running, waiting, failed for good, and failed trials retried."""
    import pandas as pd

    rows = []
    failed = Counter(model for model, _ in failed_for_good(storage, protocol))
    for model in protocol["models"]:
        trials = model_study(storage, protocol["name"], model).get_trials(deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in TrialState}
        rows.append({"model": model, "draws": protocol["trials"] + 1, "done": count[TrialState.COMPLETE],
                     "running": count[TrialState.RUNNING], "waiting": count[TrialState.WAITING],
                     "failed": failed[model], "retried": count[TrialState.FAIL] - failed[model]})
    return pd.DataFrame(rows)
