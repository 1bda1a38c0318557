"""Studies: creation, workers sharing one storage, killed workers, bad input.

Small studies on the embedded digits: VAE and DCGAN (the fastest models), a few draws, a
few steps, 64 samples per evaluation."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.search_space import IntRange, LogUniform, Uniform
from ganbench.study import engine, worker

SMALL = ["--models", "vae,dcgan", "--dataset", "digits", "--trials", "2", "--seeds", "1", "--steps", "8",
         "-n", "64"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def start_worker(name, storage, runs, *extra):
    """A `ganbench study run` in its own process (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from ganbench.cli import main; main()", "study", "run", name,
               "--storage", str(storage), "--runs", str(runs), "--threads", "1", "--device", "cpu", *map(str, extra)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def trials_by_state(storage, name):
    store = engine.open_storage(str(storage))
    protocol = engine.load_protocol(store, name)
    return {model: Counter((t.user_attrs["draw"], t.state) for t in
                           engine.model_study(store, name, model).get_trials(deepcopy=False))
            for model in protocol["models"]}


def test_two_workers_share_a_study_and_run_every_draw_once(tmp_path):
    storage = tmp_path / "studies.sqlite"
    assert cli("study", "create", "pair", *SMALL, "--storage", storage).exit_code == 0
    procs = [start_worker("pair", storage, tmp_path / "runs") for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    ran = [int(out.rsplit(": ", 1)[1].split()[0]) for out in outputs]
    assert sum(ran) == 6  # 2 models x 3 draws, between the two workers
    for model, counts in trials_by_state(storage, "pair").items():
        assert counts == Counter({(d, TrialState.COMPLETE): 1 for d in range(3)}), model
    store = engine.open_storage(str(storage))
    frame = engine.trial_frame(store, engine.load_protocol(store, "pair"))
    assert len(frame) == 6 and not frame.duplicated(["model", "draw", "seed"]).any()
    assert (frame.outcome == "ok").all() and frame.value.gt(0).all()


def test_a_killed_worker_s_draw_is_retried_and_counted_once(tmp_path):
    storage, runs = tmp_path / "studies.sqlite", tmp_path / "runs"
    args = ["--models", "dcgan", "--dataset", "digits", "--trials", "1", "--seeds", "1", "--steps", "400",
            "-n", "64", "--storage", storage]
    assert cli("study", "create", "killed", *args).exit_code == 0
    victim = start_worker("killed", storage, runs, "--heartbeat", "1")
    deadline = time.time() + 300
    while not any(state == TrialState.RUNNING for (_, state) in trials_by_state(storage, "killed")["dcgan"]):
        assert time.time() < deadline and victim.poll() is None, "the worker never started a trial"
        time.sleep(0.5)
    time.sleep(2)  # mid-trial
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rerun = start_worker("killed", storage, runs, "--heartbeat", "1")
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, out
    counts = trials_by_state(storage, "killed")["dcgan"]
    assert sum(n for (_, state), n in counts.items() if state == TrialState.COMPLETE) == 2, counts
    assert counts[(0, TrialState.COMPLETE)] == 1 and counts[(1, TrialState.COMPLETE)] == 1
    assert sum(n for (_, state), n in counts.items() if state == TrialState.FAIL) == 1  # the killed one
    store = engine.open_storage(str(storage))
    frame = engine.trial_frame(store, engine.load_protocol(store, "killed"))
    assert sorted(frame.draw) == [0, 1] and (frame.outcome == "ok").all()


def test_storage_url_path_and_default_name_the_same_study(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_HOME", str(tmp_path / "home"))
    assert cli("study", "create", "where", *SMALL).exit_code == 0
    database = tmp_path / "home" / "studies.sqlite"
    assert database.is_file()
    for location in (f"sqlite:///{database}", str(database)):
        result = cli("study", "status", "where", "--storage", location)
        assert result.exit_code == 0 and "vae" in result.output and "dcgan" in result.output, result.output


def test_draws_are_fixed_at_creation_inside_their_ranges():
    space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "n_critic": IntRange(1, 5), "opt": "adam"}
    draws = engine.draw_values(space, 20, "random", seed=3)
    assert draws == engine.draw_values(space, 20, "random", seed=3)
    assert draws != engine.draw_values(space, 20, "random", seed=4)
    for d in draws:
        assert 1e-5 <= d["lr"] <= 1e-2 and 0 <= d["beta1"] <= 1 and d["n_critic"] in range(1, 6) and "opt" not in d
    grid = engine.draw_values({"n_critic": IntRange(1, 5), "lr": LogUniform(1e-4, 1e-2)}, 15, "grid", seed=0)
    centres = [10 ** (-4 + 2 * (i + 0.5) / 3) for i in range(3)]  # of three equal bins in log space
    assert sorted((d["n_critic"], round(d["lr"], 9)) for d in grid) == sorted(
        (n, round(lr, 9)) for n in range(1, 6) for lr in centres)
    with pytest.raises(GanbenchError, match="grid has 15 points"):
        engine.draw_values({"n_critic": IntRange(1, 5), "lr": LogUniform(1e-4, 1e-2)}, 16, "grid", seed=0)


def test_a_diverged_seed_counts_as_the_untrained_generator():
    runs = [{"value": 40.0, "outcome": "ok"}, {"value": float("nan"), "outcome": "diverged"}]
    assert worker.draw_value(runs, untrained=400.0) == pytest.approx(220.0)


@pytest.mark.parametrize("args, message", [
    (["--models", "vae,nosuchgan"], "nosuchgan"),
    (["--models", "vae", "--metric", "nosuchmetric"], "nosuchmetric"),
    (["--models", "vae", "--metric", "pr"], "no single value"),
    (["--models", "vae", "--trials", "0"], "at least 1"),
    (["--models", "vae", "--space", "lr=1e-2..1e-5:log"], "empty range"),
    (["--models", "vae", "--space", "lr=0..1e-2:log"], "low > 0"),
    (["--models", "vae", "--space", "nosuchfield=1..2"], "nosuchfield"),
    (["--models", "vae", "--space", "z_dim=0..4:int"], "refuses"),
    (["--models", "vae", "--sampler", "grid", "--trials", "50"], "grid has"),
])
def test_bad_study_input_is_one_line(tmp_path, args, message):
    storage = tmp_path / "s.sqlite"
    result = cli("study", "create", "bad", "--dataset", "digits", "--storage", storage, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_study_name_reused_with_another_protocol_is_refused_and_kept(tmp_path):
    storage = tmp_path / "s.sqlite"
    assert cli("study", "create", "keep", *SMALL, "--storage", storage).exit_code == 0
    again = cli("study", "create", "keep", *SMALL, "--storage", storage)
    assert again.exit_code == 0 and "nothing changed" in again.output
    other = cli("study", "create", "keep", *SMALL[:-2], "-n", "128", "--storage", storage)
    assert other.exit_code == 2 and "different protocol" in other.output and "num_samples" in other.output
    store = engine.open_storage(str(storage))
    protocol = engine.load_protocol(store, "keep")
    assert protocol["num_samples"] == 64 and engine.status_frame(store, protocol).waiting.tolist() == [3, 3]


def test_unknown_study_and_unreachable_storage_are_one_line(tmp_path):
    result = cli("study", "status", "nosuchstudy", "--storage", tmp_path / "s.sqlite")
    assert result.exit_code == 2 and "nosuchstudy" in result.output
    result = cli("study", "status", "x", "--storage", "mysql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 2 and "cannot open study storage" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_the_protocol_records_what_decides_the_numbers(tmp_path):
    storage = tmp_path / "s.sqlite"
    assert cli("study", "create", "proto", *SMALL, "--storage", storage).exit_code == 0
    protocol = engine.load_protocol(engine.open_storage(str(storage)), "proto")
    assert protocol["extractor"] == "lenet-mnist" and protocol["split"] == "test"
    assert protocol["higher_is_better"] is False and protocol["batch_size"] == 64 and protocol["seeds"] == [0]
    assert protocol["search_spaces"]["vae"]["lr"] == {"loguniform": [1e-5, 1e-2]}
    assert "study create proto" in protocol["command"] or protocol["command"].startswith("ganbench study create")
    assert json.loads(json.dumps(protocol)) == protocol
    assert optuna.__version__ == protocol["versions"]["optuna"]


def _created(tmp_path, name, *extra):
    storage = tmp_path / "s.sqlite"
    args = ["--models", "vae", "--dataset", "digits", "--trials", "1", "--seeds", "2", "--steps", "4", "-n", "64"]
    assert cli("study", "create", name, *args, *extra, "--storage", storage).exit_code == 0
    return str(storage)


def test_a_draw_that_keeps_raising_is_retried_then_reported_failed(tmp_path, monkeypatch):
    storage = _created(tmp_path, "raising")
    calls = Counter()

    def broken(protocol, model, draw, seed, params, folder, device):
        calls[draw] += 1
        raise RuntimeError("out of memory")

    monkeypatch.setattr(worker, "train_and_evaluate", broken)
    monkeypatch.setattr(worker, "untrained_value", lambda *args: 400.0)
    worker.run_worker("raising", storage, runs=tmp_path / "runs", heartbeat=1, log=lambda line: None)
    assert calls == {0: 1 + engine.MAX_RETRY, 1: 1 + engine.MAX_RETRY}  # first seed raises each time
    store = engine.open_storage(storage)
    frame = engine.trial_frame(store, engine.load_protocol(store, "raising"))
    assert sorted(zip(frame.draw, frame.seed)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (frame.outcome == "failed").all() and frame.value.isna().all()

    monkeypatch.setattr(worker, "train_and_evaluate", lambda *args: ("ok", 50.0, 256))  # the cause is fixed
    assert engine.retry_failed(store, engine.load_protocol(store, "raising")) == 2
    assert engine.retry_failed(store, engine.load_protocol(store, "raising")) == 0  # queued: not failed now
    worker.run_worker("raising", storage, runs=tmp_path / "runs", heartbeat=1, log=lambda line: None)
    frame = engine.trial_frame(store, engine.load_protocol(store, "raising"))
    assert sorted(zip(frame.draw, frame.seed)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (frame.outcome == "ok").all() and (frame.value == 50.0).all()
    draws = engine.draw_values(engine.search_space("vae"), 1, "random", 0)  # the draw kept its values
    assert json.loads(frame.params[frame.draw == 1].iloc[0])["lr"] == pytest.approx(draws[0]["lr"], rel=1e-12)


def test_diverged_runs_are_recorded_and_score_as_untrained(tmp_path, monkeypatch):
    storage = _created(tmp_path, "diverging")
    def second_seed_diverges(protocol, model, draw, seed, *rest):
        return ("diverged", math.nan, 0) if seed else ("ok", 50.0, 256)

    monkeypatch.setattr(worker, "train_and_evaluate", second_seed_diverges)
    monkeypatch.setattr(worker, "untrained_value", lambda *args: 400.0)
    worker.run_worker("diverging", storage, runs=tmp_path / "runs", heartbeat=1, log=lambda line: None)
    store = engine.open_storage(storage)
    values = [t.value for t in engine.model_study(store, "diverging", "vae").get_trials(states=(TrialState.COMPLETE,))]
    assert values == [pytest.approx(225.0)] * 2  # (50 + 400) / 2
    frame = engine.trial_frame(store, engine.load_protocol(store, "diverging"))
    assert frame.outcome.tolist() == ["ok", "diverged"] * 2 and frame.learned.tolist() == [True, False] * 2


def test_tpe_suggests_each_draw_when_it_runs(tmp_path, monkeypatch):
    storage = _created(tmp_path, "adaptive", "--sampler", "tpe")
    seen = []

    def record(protocol, model, draw, seed, params, folder, device):
        seen.append(dict(params))
        return "ok", 100.0 - draw, 256

    monkeypatch.setattr(worker, "train_and_evaluate", record)
    monkeypatch.setattr(worker, "untrained_value", lambda *args: 400.0)
    worker.run_worker("adaptive", storage, runs=tmp_path / "runs", heartbeat=1, log=lambda line: None)
    searched = [p for p in seen if p]
    assert len(searched) == 2 and searched[0] == searched[1]  # one draw, its two seeds
    assert searched[0]["optimizer"] == "adam" and 1e-5 <= searched[0]["lr"] <= 1e-2
