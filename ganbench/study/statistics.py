"""The statistics of a study: draw scores, the best score as a function of the budget, and
whether two models can be told apart at all.

Lucic et al. 2018 ("Are GANs Created Equal?", arXiv:1711.10337) compare models by the
distribution of their scores over random hyperparameter draws, and by the best score
reached with a budget of k draws, estimated there by resampling.
:func:`min_over_budget` computes that curve exactly, over all k-subsets of the draws;
:func:`permutation_test` and :func:`pairwise_comparisons` say whether the difference
between two models is larger than the draws' own spread (Holm-adjusted over all pairs).

Pure functions of pandas frames and numpy arrays (the frames of :mod:`ganbench.study`).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from ganbench.errors import GanbenchError, UnknownNameError

Statistic = Union[str, Callable[[np.ndarray, int], np.ndarray]]
STATISTICS = ("best", "median")
ALPHA = 0.05  # the verdicts' level, after Holm's adjustment
_CDF_SLACK = 1e-9  # a CDF within this of a quantile level reaches it (float sums of exact fractions)


# --------------------------------------------------------------------------- draw scores
def draw_scores(trials: pd.DataFrame, untrained: Mapping[str, float], higher_is_better: bool = False) -> pd.DataFrame:
    """One row per (model, draw): ``score``, the mean over the draw's seeds of ``value``.

    A run whose outcome is not "ok" (diverged or failed) counts as the model's untrained
    generator's value, ``untrained[model]``: a run that diverged learned nothing, and
    leaving it out would reward a model whose bad draws blow up. ``higher_is_better`` is
    accepted for symmetry with the other functions; the mean does not depend on it.

    Returns columns model, draw, score, seeds (runs of the draw), ok (runs that ended
    "ok"), params (the draw's JSON), sorted by model and draw.
    """
    del higher_is_better  # the mean is the same either way
    missing = sorted(set(trials["model"]) - set(untrained))
    if missing:
        raise GanbenchError(f"no untrained generator's value for model(s) {', '.join(missing)}")
    ok = trials["outcome"].eq("ok")
    counted = trials["value"].where(ok, trials["model"].map(untrained))
    frame = trials.assign(counted=counted.astype("float64"), is_ok=ok)
    grouped = frame.groupby(["model", "draw"], sort=True)
    return pd.DataFrame({
        "score": grouped["counted"].mean(),
        "seeds": grouped.size(),
        "ok": grouped["is_ok"].sum().astype("int64"),
        "params": grouped["params"].first(),
    }).reset_index()


# --------------------------------------------------------------------------- best of k draws
def best_of_k_distribution(scores: Sequence[float], k: int, higher_is_better: bool = False
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The exact distribution of the best (min, or max when higher is better) of ``k`` of
    the ``n`` scores drawn without replacement: (values ascending, probabilities).

    With the scores sorted best first, x(1), ..., x(n), every k-subset equally likely:
    P(best = x(i)) = C(n-i, k-1) / C(n, k) = k/n * prod_{j<i} (n-j-k+1)/(n-j).
    Tied scores keep one entry each (their probabilities add up where it matters).
    """
    x = _finite_scores(scores)
    n = len(x)
    if not 1 <= k <= n:
        raise GanbenchError(f"budget k={k} is outside 1..{n} (the number of draws)")
    best_first = np.sort(x)[::-1] if higher_is_better else np.sort(x)
    j = np.arange(1, n)
    ratios = np.clip((n - j - k + 1) / (n - j), 0.0, None)
    probabilities = (k / n) * np.concatenate([[1.0], np.cumprod(ratios)])
    order = np.argsort(best_first, kind="stable")
    return best_first[order], probabilities[order]


def min_over_budget(scores: Sequence[float], higher_is_better: bool = False, level: float = 0.95) -> pd.DataFrame:
    """The best score among k draws taken without replacement, for k = 1..n: columns k,
    mean, low, high (the (1-level)/2 and (1+level)/2 quantiles), exact over all k-subsets.

    Lucic et al. 2018's "min FID as a function of the budget"; k = 1 is the
    mean score, k = n the best one (low = high = mean).
    """
    if not 0 < level < 1:
        raise GanbenchError(f"level must be in (0, 1), got {level}")
    n = len(_finite_scores(scores))
    rows = []
    for k in range(1, n + 1):
        values, probabilities = best_of_k_distribution(scores, k, higher_is_better)
        rows.append({"k": k, "mean": float(values @ probabilities),
                     "low": _quantile(values, probabilities, (1 - level) / 2),
                     "high": _quantile(values, probabilities, (1 + level) / 2)})
    return pd.DataFrame(rows, columns=["k", "mean", "low", "high"])


def _quantile(values: np.ndarray, probabilities: np.ndarray, q: float) -> float:
    """The smallest value whose CDF reaches ``q`` (values ascending)."""
    cdf = np.cumsum(probabilities)
    return float(values[min(int(np.searchsorted(cdf, q - _CDF_SLACK)), len(values) - 1)])


def _finite_scores(scores: Sequence[float]) -> np.ndarray:
    x = np.asarray(scores, dtype="float64").ravel()
    if x.size == 0:
        raise GanbenchError("no draw scores")
    if not np.isfinite(x).all():
        raise GanbenchError(f"draw scores must be finite, got {x[~np.isfinite(x)][0]}")
    return x


# --------------------------------------------------------------------------- tests
def statistic_function(statistic: Statistic, higher_is_better: bool = False) -> Callable[[np.ndarray, int], np.ndarray]:
    """``"best"`` (min, or max when higher is better), ``"median"``, or a callable
    ``f(array, axis)`` as given."""
    if callable(statistic):
        return statistic
    if statistic == "best":
        return np.max if higher_is_better else np.min
    if statistic == "median":
        return np.median
    raise UnknownNameError("statistic", statistic, STATISTICS)


def permutation_test(a: Sequence[float], b: Sequence[float], statistic: Statistic = "best",
                     n_permutations: int = 10000, seed: int = 0, *, higher_is_better: bool = False
                     ) -> tuple[float, float]:
    """Two-sided permutation test of statistic(a) - statistic(b): (observed, p).

    The pooled scores are split at random ``n_permutations`` times (seeded: the same inputs
    and seed give the same p); p = (1 + #{|permuted| >= |observed|}) / (1 + n_permutations),
    never 0.
    """
    x, y = _finite_scores(a), _finite_scores(b)
    if n_permutations < 1:
        raise GanbenchError(f"n_permutations must be at least 1, got {n_permutations}")
    f = statistic_function(statistic, higher_is_better)
    observed = float(f(x, 0) - f(y, 0))
    pooled = np.tile(np.concatenate([x, y]), (n_permutations, 1))
    shuffled = np.random.default_rng(seed).permuted(pooled, axis=1)
    permuted = f(shuffled[:, :len(x)], 1) - f(shuffled[:, len(x):], 1)
    slack = 1e-12 * max(1.0, abs(observed))  # the same split computed in another order: equal, not rounded apart
    extreme = int(np.count_nonzero(np.abs(permuted) >= abs(observed) - slack))
    return observed, (1 + extreme) / (1 + n_permutations)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest p times (m - i + 1), made
    non-decreasing in that order and capped at 1."""
    p = np.asarray(p_values, dtype="float64")
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return adjusted


def pairwise_comparisons(scores_by_model: Mapping[str, Sequence[float]], higher_is_better: bool = False,
                         statistic: Statistic = "best", n_permutations: int = 10000, seed: int = 0,
                         alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair of models (in the mapping's order): columns a, b, a_value, b_value
    (the statistic of each model's draw scores), difference (a - b), p (permutation test),
    p_holm (Holm-adjusted over all pairs) and verdict: "A better", "B better" or
    "not distinguishable" at ``alpha`` after Holm."""
    f = statistic_function(statistic, higher_is_better)
    rows = []
    for a, b in itertools.combinations(scores_by_model, 2):
        difference, p = permutation_test(scores_by_model[a], scores_by_model[b], f, n_permutations, seed)
        rows.append({"a": a, "b": b, "a_value": float(f(_finite_scores(scores_by_model[a]), 0)),
                     "b_value": float(f(_finite_scores(scores_by_model[b]), 0)), "difference": difference, "p": p})
    columns = ["a", "b", "a_value", "b_value", "difference", "p", "p_holm", "verdict"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p"])
    frame["verdict"] = [_verdict(d, p, higher_is_better, alpha) for d, p in zip(frame["difference"], frame["p_holm"])]
    return frame[columns]


def _verdict(difference: float, p_holm: float, higher_is_better: bool, alpha: float) -> str:
    if p_holm >= alpha or difference == 0:
        return "not distinguishable"
    return "A better" if (difference > 0) == higher_is_better else "B better"


# --------------------------------------------------------------------------- summary
SUMMARY_COLUMNS = ["model", "runs", "draws", "best", "median", "mean", "std", "diverged", "failed",
                   "not_learned", "best_params", "seconds", "images"]


def summary_table(trials: pd.DataFrame, scores: pd.DataFrame, higher_is_better: bool = False) -> pd.DataFrame:
    """Per model: runs, draws, best and median draw score, mean and std of the values of all
    "ok" runs, the shares of runs that diverged / failed, the share of ok runs that did not
    learn, the best draw's params, and total seconds and images (sorted by model)."""
    rows = [_summary_row(model, runs, scores[scores["model"] == model], higher_is_better)
            for model, runs in trials.groupby("model", sort=True)]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summary_row(model: str, runs: pd.DataFrame, scores: pd.DataFrame, higher_is_better: bool) -> dict:
    ok = runs[runs["outcome"] == "ok"]
    best = scores["score"].idxmax() if higher_is_better else scores["score"].idxmin()
    return {
        "model": model, "runs": len(runs), "draws": len(scores),
        "best": scores["score"].max() if higher_is_better else scores["score"].min(),
        "median": scores["score"].median(),
        "mean": ok["value"].mean(), "std": ok["value"].std(ddof=1) if len(ok) > 1 else math.nan,
        "diverged": runs["outcome"].eq("diverged").mean(), "failed": runs["outcome"].eq("failed").mean(),
        "not_learned": (~ok["learned"].astype(bool)).mean() if len(ok) else math.nan,
        "best_params": scores.loc[best, "params"] if len(scores) else None,
        "seconds": float(runs["seconds"].sum()), "images": int(runs["images"].sum()),
    }
