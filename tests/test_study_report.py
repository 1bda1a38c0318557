"""ganbench.study.report: the four files, what report.md must say, and no overwriting
without force."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ganbench.errors import GanbenchError
from ganbench.search_space import IntRange, LogUniform, Uniform, to_json
from ganbench.study.report import REPORT_FILES, write_report

COMMAND = "ganbench study run demo --models gan,wgan,lsgan --trials 3 --seeds 0,1 --steps 20"
UNTRAINED = {"gan": 400.0, "wgan": 380.0, "lsgan": 390.0}
# value per (model, draw) for seeds 0 and 1; None = the run diverged (gan) or failed (lsgan)
VALUES = {
    "gan": [(60.0, 70.0), (30.0, 34.0), (90.0, None), (45.0, 47.0)],  # best draw: 1, score 32
    "wgan": [(50.0, 52.0), (41.0, 43.0), (55.0, 57.0), (61.0, 59.0)],  # best draw: 1, score 42
    "lsgan": [(80.0, 84.0), (66.0, None), (75.0, 77.0), (70.0, 72.0)],  # best draw: 3, score 71
}
BEST = {"gan": 32.0, "wgan": 42.0, "lsgan": 71.0}


def make_trials(values: dict = VALUES) -> pd.DataFrame:
    rows = []
    for model, draws in values.items():
        for draw, values in enumerate(draws):
            for seed, value in enumerate(values):
                outcome = "ok" if value is not None else "diverged" if model == "gan" else "failed"
                rows.append({"model": model, "draw": draw, "seed": seed,
                             "value": math.nan if value is None else value, "outcome": outcome,
                             "learned": value is not None and value < 0.7 * UNTRAINED[model],
                             "params": json.dumps({} if draw == 0 else {"lr": 10.0 ** -(2 + draw)}),
                             "seconds": 30.0, "images": 1280, "steps": 20, "trial": draw})
    return pd.DataFrame(rows).sample(frac=1, random_state=0).reset_index(drop=True)  # any order in


def make_protocol() -> dict:
    space = to_json({"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 1.0), "n_critic": IntRange(1, 5)})
    return {"name": "demo", "models": ["gan", "wgan", "lsgan"], "dataset": "mnist", "split": "test",
            "extractor": "inception-v3-compat", "metric": "fid", "higher_is_better": False, "num_samples": 1000,
            "steps": 20, "batch_size": 64, "seeds": [0, 1], "trials": 3, "sampler": "random", "scale": "tiny",
            "study_seed": 0, "search_spaces": {m: space for m in ("gan", "wgan", "lsgan")},
            "untrained": UNTRAINED, "command": COMMAND, "versions": {"ganbench": "0.1.0", "torch": "2.4.0"},
            "storage": "sqlite:///demo.db", "created": "2025-01-01T00:00:00Z"}


def budget_table(report: str) -> dict[str, list[str]]:
    """model -> its row's cells in the budget table (model, n, k = 1, 2, 5, n)."""
    section = report.split("## Best score against the budget")[1].split("\n## ")[0]
    rows = [line.strip("| ").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0]: cells for cells in rows[1:]}


def test_write_report_writes_the_four_files(tmp_path):
    trials = make_trials()
    paths = write_report(trials, make_protocol(), tmp_path / "out")
    assert [p.name for p in paths] == list(REPORT_FILES)
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
    for png in ("distribution.png", "budget.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = pd.read_csv(tmp_path / "out" / "trials.csv")
    expected = trials.sort_values(["model", "draw", "seed"]).reset_index(drop=True)
    assert written[["model", "draw", "seed", "outcome"]].equals(expected[["model", "draw", "seed", "outcome"]])
    pd.testing.assert_series_equal(written["value"], expected["value"])


def test_report_says_the_command_the_protocol_and_every_model(tmp_path):
    write_report(make_trials(), make_protocol(), tmp_path, storage="runs/my studies.sqlite")
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Study demo\n")
    assert (f"```\n{COMMAND}\nganbench study run demo --storage 'runs/my studies.sqlite'\n"
            f"ganbench study report demo --out {tmp_path} --storage 'runs/my studies.sqlite'\n```") in report
    assert "do not edit by hand; regenerate with the last command" in report
    assert "Incomplete study" not in report
    for model in ("gan", "wgan", "lsgan"):
        assert f"| {model} |" in report
        assert f"  - {model}: lr: log-uniform \\[1e-05, 0.01\\]; beta1: uniform \\[0, 1\\]; n_critic: integers 1..5" \
            in report
    for phrase in ("mnist", "inception-v3-compat", "fid (lower is better)", "batch 64", "0, 1 (2 per draw)",
                   "1 default configuration (the model's small test configuration with its paper's losses) + "
                   "3 random draws", "24 runs", "ganbench 0.1.0, torch 2.4.0",
                   "10,000 permutations, statistic = best draw; Holm-adjusted over the 3 pairs",
                   "](distribution.png)", "](budget.png)"):
        assert phrase in report, phrase


# draw scores (a diverged or failed run counting as the untrained generator): gan 65, 32, 245, 46;
# wgan 51, 42, 56, 60; lsgan 82, 228, 76, 71
HIGHEST = {"gan": 245.0, "wgan": 60.0, "lsgan": 228.0}


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_budget_table_at_k_n_is_the_best_draw(tmp_path, higher_is_better):
    write_report(make_trials(), {**make_protocol(), "higher_is_better": higher_is_better}, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert ("The highest draw score" in report) == higher_is_better
    table = budget_table(report)
    expected = HIGHEST if higher_is_better else BEST
    assert set(table) == set(expected)
    for model, best in expected.items():
        cells = table[model]
        assert cells[1] == "4"  # draws
        assert cells[-1] == f"{best:.4g} \\[{best:.4g}, {best:.4g}\\]"
        assert cells[4] == ""  # k = 5 > n = 4
        mean_of_draws = float(cells[2].split()[0])  # k = 1: the mean draw score
        assert (mean_of_draws < best) if higher_is_better else (mean_of_draws > best)


def test_summary_counts_diverged_and_failed_runs(tmp_path):
    write_report(make_trials(), make_protocol(), tmp_path)
    report = (tmp_path / "report.md").read_text()
    summary = report.split("## Summary")[1].split("\n## ")[0]
    gan = next(line for line in summary.splitlines() if line.startswith("| gan |")).split(" | ")
    assert gan[1:4] == ["8", "4", "32"]  # runs, draws, best draw
    assert gan[6:8] == ["12.5%", "0%"]  # 1 of 8 diverged, none failed
    assert gan[9] == "lr=0.001"  # draw 1's params


def test_conclusions_name_the_better_model(tmp_path):
    # 4 draws are too few for any verdict: the smallest p of a 4-vs-4 permutation test is 2/70,
    # above 0.05 / 3 after Holm; 8 draws (one seed) with lsgan's far above the others' are enough
    values = {"gan": [(40.0 + 3 * i,) for i in range(8)], "wgan": [(41.0 + 3 * i,) for i in range(8)],
              "lsgan": [(300.0 + i,) for i in range(8)]}
    protocol = {**make_protocol(), "trials": 7, "seeds": [0]}
    write_report(make_trials(values), protocol, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "Incomplete study" not in report
    assert "- gan is better than lsgan (best draw 40 vs 300 fid, Holm-adjusted p = " in report
    assert "- wgan is better than lsgan (" in report
    assert "- gan and wgan cannot be told apart with these draws (" in report
    assert "| gan | lsgan | 40 | 300 | -260 |" in report


def test_incomplete_study_is_said_at_the_top(tmp_path):
    trials = make_trials()
    trials = trials[~((trials["model"] == "wgan") & (trials["draw"] == 3))]
    write_report(trials, make_protocol(), tmp_path)
    report = (tmp_path / "report.md").read_text()
    note = "**Incomplete study:** 22 of 24 runs (3 models x 4 draws x 2 seeds); runs per model: wgan 6/8."
    assert note in report
    assert report.index(note) < report.index("## Protocol")
    assert budget_table(report)["wgan"][1] == "3"


def test_one_model_has_nothing_to_compare(tmp_path):
    trials = make_trials()
    protocol = {**make_protocol(), "models": ["wgan"]}
    write_report(trials[trials["model"] == "wgan"], protocol, tmp_path)
    assert "One model: nothing to compare." in (tmp_path / "report.md").read_text()


def test_no_overwrite_without_force(tmp_path):
    trials, protocol = make_trials(), make_protocol()
    paths = write_report(trials, protocol, tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    with pytest.raises(GanbenchError, match="report.md already exists; pass --force"):
        write_report(trials, protocol, tmp_path)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before
    (tmp_path / "report.md").write_text("stale\n")
    (tmp_path / "trials.csv").write_text("stale\n")
    write_report(trials, protocol, tmp_path, force=True)
    assert (tmp_path / "report.md").read_bytes() == before[paths[0]][0]
    assert (tmp_path / "trials.csv").read_bytes() == before[paths[3]][0]


def test_any_existing_output_is_refused(tmp_path):
    (tmp_path / "budget.png").write_bytes(b"someone else's figure")
    with pytest.raises(GanbenchError, match="budget.png already exists"):
        write_report(make_trials(), make_protocol(), tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_bad_protocol_and_empty_study(tmp_path):
    protocol = make_protocol()
    del protocol["untrained"]
    with pytest.raises(GanbenchError, match="lacks untrained"):
        write_report(make_trials(), protocol, tmp_path)
    with pytest.raises(GanbenchError, match="no runs yet"):
        write_report(make_trials().iloc[:0], make_protocol(), tmp_path)
    assert not any(tmp_path.iterdir())
