"""ganbench.study.statistics: draw scores, the exact best-of-k curve against enumeration of
every k-subset, the permutation test's calibration and closed forms, Holm by hand."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from ganbench.errors import GanbenchError
from ganbench.study.statistics import (
    best_of_k_distribution,
    draw_scores,
    holm,
    min_over_budget,
    pairwise_comparisons,
    permutation_test,
    summary_table,
)


def run(model, draw, seed, value, outcome="ok", learned=True, seconds=10.0, images=640):
    return {"model": model, "draw": draw, "seed": seed, "value": value if outcome == "ok" else math.nan,
            "outcome": outcome, "learned": learned and outcome == "ok", "params": json.dumps({"lr": draw / 10}),
            "seconds": seconds, "images": images, "steps": 10, "trial": draw}


@pytest.fixture
def trials():
    return pd.DataFrame([
        run("gan", 0, 0, 20.0), run("gan", 0, 1, 30.0),
        run("gan", 1, 0, 10.0), run("gan", 1, 1, math.nan, "diverged"),
        run("gan", 2, 0, 50.0, learned=False), run("gan", 2, 1, math.nan, "failed"),
        run("wgan", 0, 0, 40.0), run("wgan", 0, 1, 44.0),
        run("wgan", 1, 0, 42.0), run("wgan", 1, 1, 46.0),
    ])


UNTRAINED = {"gan": 100.0, "wgan": 200.0}


# --------------------------------------------------------------------------- draw scores
def test_draw_scores_count_diverged_and_failed_runs_as_the_untrained_generator(trials):
    scores = draw_scores(trials, UNTRAINED, higher_is_better=False)
    assert list(zip(scores["model"], scores["draw"])) == [("gan", 0), ("gan", 1), ("gan", 2), ("wgan", 0), ("wgan", 1)]
    assert scores["score"].tolist() == pytest.approx([25.0, (10 + 100) / 2, (50 + 100) / 2, 42.0, 44.0])
    assert scores["seeds"].tolist() == [2, 2, 2, 2, 2]
    assert scores["ok"].tolist() == [2, 1, 1, 2, 2]
    assert json.loads(scores["params"].iloc[1]) == {"lr": 0.1}


def test_draw_scores_need_every_models_untrained_value(trials):
    with pytest.raises(GanbenchError, match="wgan"):
        draw_scores(trials, {"gan": 100.0}, False)


# --------------------------------------------------------------------------- best of k draws
def test_min_over_budget_by_hand():
    curve = min_over_budget([5, 3, 9, 1])
    assert curve["k"].tolist() == [1, 2, 3, 4]
    # k=1: the mean; k=2: minima of the 6 pairs (5,3)(5,9)(5,1)(3,9)(3,1)(9,1) = 3,5,1,3,1,1
    assert curve["mean"].tolist() == pytest.approx([4.5, 14 / 6, (1 + 1 + 1 + 3) / 4, 1.0])
    assert (curve["low"].iloc[0], curve["high"].iloc[0]) == (1.0, 9.0)
    assert (curve["low"].iloc[3], curve["high"].iloc[3]) == (1.0, 1.0)
    assert (curve["low"].iloc[1], curve["high"].iloc[1]) == (1.0, 5.0)


def enumerated(scores, k, higher_is_better, level):
    """The oracle: the best of every k-subset, each subset counted once."""
    pick = max if higher_is_better else min
    bests = np.sort([pick(c) for c in itertools.combinations(scores, k)])
    count = len(bests)

    def quantile(q):  # smallest value whose share of subsets at or below it reaches q
        return next(v for v in bests if np.count_nonzero(bests <= v) >= q * count - 1e-6)

    return bests.mean(), quantile((1 - level) / 2), quantile((1 + level) / 2)


@pytest.mark.parametrize("higher_is_better", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_min_over_budget_equals_enumeration_of_every_subset(seed, higher_is_better):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    scores = rng.integers(0, 6, size=n).astype(float) * 1.5  # few distinct values: ties
    level = [0.95, 0.8, 0.5][seed % 3]
    curve = min_over_budget(scores, higher_is_better, level)
    assert curve["k"].tolist() == list(range(1, n + 1))
    for k, mean, low, high in curve.itertuples(index=False):
        expected = enumerated(scores, k, higher_is_better, level)
        assert (mean, low, high) == pytest.approx(expected, rel=1e-12), (k, scores.tolist())


def test_best_of_k_distribution_sums_to_one_for_many_draws():
    scores = np.random.default_rng(0).normal(size=300)
    for k in (1, 7, 150, 300):
        values, probabilities = best_of_k_distribution(scores, k)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
        assert (probabilities >= 0).all() and np.all(np.diff(values) >= 0)
    assert min_over_budget(scores)["mean"].iloc[-1] == scores.min()


def test_min_over_budget_refuses_bad_input():
    with pytest.raises(GanbenchError, match="no draw scores"):
        min_over_budget([])
    with pytest.raises(GanbenchError, match="finite"):
        min_over_budget([1.0, math.nan])
    with pytest.raises(GanbenchError, match="level"):
        min_over_budget([1.0, 2.0], level=1.0)


# --------------------------------------------------------------------------- permutation test
def test_permutation_test_closed_form_for_one_score_each():
    # the two splits give -1 and +1: every |permuted| equals |observed|
    assert permutation_test([0.0], [1.0], "best", n_permutations=999) == (-1.0, 1.0)
    assert permutation_test([0.0], [1.0], "median", n_permutations=50)[1] == 1.0


def test_permutation_test_exact_count_for_separated_samples():
    # |min A - min B| >= 10 only when one group is 10..14: 2 of the C(10, 5) = 252 splits
    a, b = [0.0, 1, 2, 3, 4], [10.0, 11, 12, 13, 14]
    pooled = np.array(a + b)
    exact = np.mean([abs(pooled[list(s)].min() - np.delete(pooled, list(s)).min()) >= 10
                     for s in itertools.combinations(range(10), 5)])
    assert exact == 2 / 252
    observed, p = permutation_test(a, b, "best", n_permutations=20000, seed=3)
    assert observed == -10.0
    assert p == pytest.approx(exact, abs=0.01)
    assert p < 0.01


def test_permutation_test_is_calibrated_under_the_null():
    rng = np.random.default_rng(2024)
    for statistic in ("best", "median"):
        p = [permutation_test(rng.normal(size=10), rng.normal(size=10), statistic, 1000, seed=i)[1]
             for i in range(200)]
        assert np.mean(np.less(p, 0.05)) < 0.1, statistic
        assert 0.35 < np.mean(np.less(p, 0.5)) < 0.65, statistic


def test_permutation_test_separated_samples_and_seeds():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 10), rng.normal(5, 1, 10)
    assert permutation_test(a, b, "median")[1] < 0.01
    assert permutation_test(a, b, "median", seed=7) == permutation_test(a, b, "median", seed=7)
    null_a, null_b = rng.normal(size=8), rng.normal(size=8)
    assert permutation_test(null_a, null_b, "median", seed=1) != permutation_test(null_a, null_b, "median", seed=2)


def test_permutation_test_best_follows_the_direction():
    a, b = [1.0, 5.0], [2.0, 3.0]
    assert permutation_test(a, b, "best")[0] == -1.0
    assert permutation_test(a, b, "best", higher_is_better=True)[0] == 2.0


def test_unknown_statistic_lists_the_known_ones():
    with pytest.raises(GanbenchError, match="best, median"):
        permutation_test([1.0], [2.0], "mean")


# --------------------------------------------------------------------------- pairwise comparisons
def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.01]).tolist() == pytest.approx([0.5, 0.02])
    assert holm([0.4, 0.6]).tolist() == pytest.approx([0.8, 0.8])
    assert holm([0.9, 0.8, 0.7]).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_pairwise_comparisons_verdicts_after_holm(higher_is_better):
    rng = np.random.default_rng(0)
    good, bad = rng.normal(0, 1, 12), rng.normal(8, 1, 12)
    if higher_is_better:
        good, bad = -good, -bad
    scores = {"good": good, "bad": bad, "twin": rng.permutation(good) + 0.01}
    table = pairwise_comparisons(scores, higher_is_better, "median", n_permutations=2000)
    assert list(zip(table["a"], table["b"])) == [("good", "bad"), ("good", "twin"), ("bad", "twin")]
    assert table["p_holm"].tolist() == pytest.approx(holm(table["p"]).tolist())
    assert table["verdict"].tolist() == ["A better", "not distinguishable", "B better"]
    assert table["difference"].tolist() == pytest.approx((table["a_value"] - table["b_value"]).tolist())
    assert table["a_value"].iloc[0] == pytest.approx(np.median(good))


def test_pairwise_comparisons_of_one_model_is_empty():
    assert pairwise_comparisons({"gan": [1.0, 2.0]}).empty


# --------------------------------------------------------------------------- summary
def test_summary_table(trials):
    scores = draw_scores(trials, UNTRAINED, False)
    table = summary_table(trials, scores, higher_is_better=False).set_index("model")
    gan, wgan = table.loc["gan"], table.loc["wgan"]
    assert (gan["runs"], gan["draws"]) == (6, 3)
    assert gan["best"] == 25.0 and gan["median"] == 55.0
    assert gan["mean"] == pytest.approx(np.mean([20, 30, 10, 50]))
    assert gan["std"] == pytest.approx(np.std([20, 30, 10, 50], ddof=1))
    assert (gan["diverged"], gan["failed"], gan["not_learned"]) == pytest.approx((1 / 6, 1 / 6, 1 / 4))
    assert json.loads(gan["best_params"]) == {"lr": 0.0}
    assert (gan["seconds"], gan["images"]) == (60.0, 6 * 640)
    assert wgan["best"] == 42.0 and (wgan["diverged"], wgan["failed"], wgan["not_learned"]) == (0, 0, 0)
    higher = summary_table(trials, scores, higher_is_better=True).set_index("model")
    assert higher.loc["gan", "best"] == 75.0 and json.loads(higher.loc["gan", "best_params"]) == {"lr": 0.2}
