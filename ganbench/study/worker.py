"""Study workers: take a waiting trial, train and evaluate its seeds, complete it.

A worker takes a waiting trial atomically (Optuna's state change from WAITING to RUNNING
succeeds for exactly one worker), keeps a heartbeat while it runs, and completes it. Each
seed's run keeps its folder (``RUNS/NAME/MODEL/draw-NNN/seed-S``) with a checkpoint and a
``done.json``, so a retried draw on the same machine resumes instead of starting over.
Training and evaluation are the one training loop and the one evaluation pass; every run's
evaluation is recorded in the results store, tagged with the study, draw and values.
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from ganbench.errors import InputError, first_line
from ganbench.search_space import Choice, IntRange, LogUniform, from_json, is_range
from ganbench.study.engine import HEARTBEAT_S, MAX_RETRY, PREFIX, _load, load_protocol, model_study, open_storage


@dataclass
class Claimed:
    model: str
    study: optuna.Study
    trial_id: int
    draw: int


def claim_next(storage: RDBStorage, protocol: dict[str, Any]) -> Claimed | None:
    """Take the next waiting trial (lowest draw first, models interleaved, so a study cut
    short covers every model alike); None when none is waiting."""
    waiting = []
    for model in protocol["models"]:
        study = model_study(storage, protocol["name"], model)
        fail_stale_trials(study)
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            waiting.append((t.user_attrs.get("draw", 0), protocol["models"].index(model), model, study, t))
    for draw, _, model, study, t in sorted(waiting, key=lambda w: (w[0], w[1], w[4].number)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
                return Claimed(model, study, t._trial_id, draw)  # noqa: SLF001
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def running_trials(storage: RDBStorage, protocol: dict[str, Any]) -> int:
    return sum(len(model_study(storage, protocol["name"], m).get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
               for m in protocol["models"])


class Heartbeat:
    """Record a trial's heartbeat every ``interval`` seconds in a thread while in use."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 -- a missed beat is retried; the trial goes on
                pass
            if self.stop.wait(self.interval):
                return

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def import_everything() -> None:
    """Import every registered model, metric and feature extractor now, so that a worker
    running for hours runs one version of the code, not the version found on disk when a
    module is first needed (an upgrade or an edit in between mixes them)."""
    from ganbench.registry import feature_extractors, metrics, models

    for registry in (models, metrics, feature_extractors):
        for entry in registry.entries():
            entry.load()


def run_worker(name: str, location: str | None = None, *, runs: str | Path = "runs/studies", device: str = "cpu",
               heartbeat: int = HEARTBEAT_S, max_trials: int | None = None, log=print) -> int:
    """Run waiting trials of study ``name`` until none is left (waiting for the running
    ones of dead workers to time out and come back); the number of trials this worker ran."""
    storage = open_storage(location, heartbeat=heartbeat)
    protocol = load_protocol(storage, name)
    import_everything()
    done = 0
    while max_trials is None or done < max_trials:
        claimed = claim_next(storage, protocol)
        if claimed is None:
            if running_trials(storage, protocol) == 0:
                break
            time.sleep(min(heartbeat, 10))  # a running trial may yet fail and come back
            continue
        with Heartbeat(storage, claimed.trial_id, heartbeat):
            run_trial(storage, protocol, claimed, Path(runs), device, log)
        done += 1
    return done


def run_trial(storage: RDBStorage, protocol: dict[str, Any], claimed: Claimed, runs: Path, device: str, log) -> None:
    """Train and evaluate every seed of the claimed draw; complete the trial (or fail it,
    which re-enqueues it up to MAX_RETRY times)."""
    trial = optuna.trial.Trial(claimed.study, claimed.trial_id)
    try:
        params = suggest(trial, from_json(protocol["search_spaces"][claimed.model])) if claimed.draw else {}
        untrained = untrained_value(storage, protocol, claimed.model, device)
        results = [run_seed(protocol, claimed.model, claimed.draw, seed, params, runs, device, untrained)
                   for seed in protocol["seeds"]]
    except Exception as exc:  # noqa: BLE001 -- any failure: record it, retry the draw, keep the worker alive
        log(f"{claimed.model} draw {claimed.draw}: FAILED: {first_line(exc)}")
        trial.set_user_attr("error", first_line(exc))
        claimed.study.tell(trial, state=TrialState.FAIL)
        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(claimed.study, storage.get_trial(claimed.trial_id))
        return
    trial.set_user_attr("params", params)
    trial.set_user_attr("runs", results)
    claimed.study.tell(trial, draw_value(results, untrained))
    log(f"{claimed.model} draw {claimed.draw}: " + ", ".join(
        f"seed {r['seed']} {r['outcome']} {r['value']:.4g}" for r in results) + f" ({progress(storage, protocol)})")


def progress(storage: RDBStorage, protocol: dict[str, Any]) -> str:
    done = sum(len(model_study(storage, protocol["name"], m).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
               for m in protocol["models"])
    return f"{done}/{len(protocol['models']) * (protocol['trials'] + 1)} draws done"


def suggest(trial: optuna.trial.Trial, space: dict[str, Any]) -> dict[str, Any]:
    """The draw's values: Optuna returns the values enqueued at creation (random, grid)
    or asks the sampler (tpe); fixed values of the space are added."""
    params = {}
    for name, value in space.items():
        if isinstance(value, Choice):
            params[name] = trial.suggest_categorical(name, value.values)
        elif isinstance(value, IntRange):
            params[name] = trial.suggest_int(name, value.low, value.high)
        elif is_range(value):
            params[name] = trial.suggest_float(name, value.low, value.high, log=isinstance(value, LogUniform))
        else:
            params[name] = value
    return params


def draw_value(results: list[dict[str, Any]], untrained: float) -> float:
    """The draw's score: the mean over its seeds, a run that did not finish counting as
    the untrained generator (it learned nothing)."""
    return sum(r["value"] if r["outcome"] == "ok" else untrained for r in results) / len(results)


def run_dir(runs: Path, protocol: dict[str, Any], model: str, draw: int, seed: int) -> Path:
    return runs / protocol["name"] / model / f"draw-{draw:03d}" / f"seed-{seed}"


def run_overrides(protocol: dict[str, Any], model: str, params: dict[str, Any]) -> dict[str, Any]:
    from ganbench.models.base import model_info

    tiny = dict(model_info(model).tiny) if protocol["scale"] == "tiny" else {}
    return {**tiny, **params}


def run_seed(protocol: dict[str, Any], model: str, draw: int, seed: int, params: dict[str, Any], runs: Path,
             device: str, untrained: float) -> dict[str, Any]:
    """Train one run and evaluate it; its record (kept in the run folder's done.json)."""
    folder = run_dir(runs, protocol, model, draw, seed)
    done = folder / "done.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("params") == params:
            return record
    t0 = time.perf_counter()
    outcome, value, images = train_and_evaluate(protocol, model, draw, seed, params, folder, device)
    record = {"seed": seed, "value": value, "outcome": outcome, "learned": learned(value, untrained, protocol)
              if outcome == "ok" else False, "params": params, "seconds": round(time.perf_counter() - t0, 2),
              "images": images, "steps": protocol["steps"]}
    folder.mkdir(parents=True, exist_ok=True)
    from ganbench.atomic import atomic_write_text

    atomic_write_text(done, json.dumps(record) + "\n")
    return record


def train_and_evaluate(protocol: dict[str, Any], model: str, draw: int, seed: int, params: dict[str, Any],
                       folder: Path, device: str) -> tuple[str, float, int]:
    """(outcome, value, real images seen): "diverged" when the losses or the samples are
    not finite, NaN value."""
    from ganbench.training import TrainingDiverged, train

    steps = protocol["steps"]
    try:
        result = train(model, protocol["dataset"], steps=steps, batch_size=protocol["batch_size"],
                       ema=0.0 if protocol["scale"] == "tiny" else None, seed=seed, device=device,
                       out=str(folder), resume=True, overrides=run_overrides(protocol, model, params),
                       sample_every=0, checkpoint_every=max(steps // 4, 1), progress=False)
    except TrainingDiverged:
        return "diverged", math.nan, 0
    try:
        value = evaluate_run(protocol, model, draw, seed, params, result.checkpoint)
    except InputError as exc:  # the generator's samples are NaN/Inf
        if "NaN" not in str(exc):
            raise
        return "diverged", math.nan, result.real_images
    return ("ok" if math.isfinite(value) else "diverged"), value, result.real_images


def evaluate_run(protocol: dict[str, Any], model: str, draw: int, seed: int, params: dict[str, Any],
                 generator: Any) -> float:
    """The study's metric on the held-out split; recorded in the results store with the
    study's name and the draw's values in its tags."""
    from ganbench.evaluation import evaluate

    tags = {"study": protocol["name"], "draw": draw, "hparams": json.dumps(params, sort_keys=True),
            "scale": protocol["scale"], "train_steps": protocol["steps"], "train_seed": seed}
    n = protocol["num_samples"]
    result = evaluate(str(generator) if isinstance(generator, Path) else generator,
                      f"{protocol['dataset']}:{protocol['split']}", [protocol["metric"]],
                      extractor=protocol["extractor"], num_samples=n, num_reference=n, seed=seed, device=None,
                      progress=False, record=isinstance(generator, Path), model_name=model, tags=tags,
                      options=_metric_options(protocol["metric"], n), bootstrap=0)
    return float(result.values[protocol["metric"]])


def _metric_options(metric: str, n: int) -> dict[str, dict[str, Any]]:
    return {"kid": {"subset_size": min(1000, n)}} if metric == "kid" else {}


def learned(value: float, untrained: float, protocol: dict[str, Any]) -> bool:
    from ganbench.study import LEARNED_FRACTION

    if protocol["higher_is_better"]:
        return value > untrained / LEARNED_FRACTION
    return value < LEARNED_FRACTION * untrained


def untrained_value(storage: RDBStorage, protocol: dict[str, Any], model: str, device: str) -> float:
    """The metric of the model's untrained generator (draw 0's configuration, seed 0),
    computed once per study and kept with the protocol."""
    meta = _load(storage, PREFIX + protocol["name"])
    key = f"untrained:{model}"
    if key in meta.user_attrs:
        return float(meta.user_attrs[key])
    import torch

    from ganbench.data import dataset_info, parse_name
    from ganbench.models.base import create_model, resolve_config

    config = resolve_config(model, parse_name(protocol["dataset"]).key, run_overrides(protocol, model, {}),
                            data=dataset_info(protocol["dataset"]))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        generator = create_model(model, config).generator.eval()
    value = evaluate_run(protocol, model, -1, 0, {}, generator)
    meta.set_user_attr(key, value)
    return value
