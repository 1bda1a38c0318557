"""CMMD: the authors' biased RBF-kernel MMD (sigma 10, x1000) against a direct double loop of
their formula, its closed form on two points, identity/symmetry, the blocked kernel sums,
the one-pass bootstrap replicates, and the metric through the evaluation runner."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganbench.errors import InputError
from ganbench.metrics.bootstrap import generic_replicates, half_sample_indices
from ganbench.metrics.cmmd import SCALE, SIGMA, cmmd, compute, replicates

pytestmark = pytest.mark.usefixtures("one_thread")


def authors_formula(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> float:
    """google-research cmmd/distance.py's mmd, written as loops over every pair (diagonal included)."""
    def mean_kernel(a, b):
        return np.mean([[math.exp(-np.sum((p - q) ** 2) / (2 * sigma**2)) for q in b] for p in a])

    return SCALE * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))


def random_features(n, d, seed, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).normal(shift, scale, (n, d))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_closed_form_on_two_points():
    # k(0, 0) = 1 and k(0, 10) = exp(-100 / 200): 1000 (1 + 1 - 2 exp(-1/2))
    value = cmmd(torch.tensor([[0.0]]), torch.tensor([[10.0]]), normalize=False)
    assert value == pytest.approx(SCALE * (2 - 2 * math.exp(-0.5)), rel=1e-14)


@pytest.mark.parametrize("normalize", [True, False])
def test_equals_the_authors_formula_computed_by_loops(normalize):
    x = random_features(7, 4, seed=0, scale=6.0)  # norms ~12: the raw kernel is far from 1
    y = random_features(5, 4, seed=1, scale=6.0, shift=3.0)
    expected = authors_formula(unit(x), unit(y)) if normalize else authors_formula(x, y)
    assert cmmd(torch.tensor(x), torch.tensor(y), normalize=normalize) == pytest.approx(expected, rel=1e-10)
    assert expected > 0.1  # the sets differ: not a comparison of two zeros


def test_other_bandwidths_follow_the_formula():
    x, y = random_features(6, 3, seed=2), random_features(8, 3, seed=3, shift=1.0)
    assert cmmd(torch.tensor(x), torch.tensor(y), sigma=0.7, normalize=False) == pytest.approx(
        authors_formula(x, y, sigma=0.7), rel=1e-10)


def test_identical_sets_give_zero_and_the_distance_is_symmetric():
    x = torch.tensor(random_features(20, 5, seed=4))
    y = torch.tensor(random_features(30, 5, seed=5, shift=0.5))
    assert abs(cmmd(x, x)) < 1e-10  # the biased estimator: exactly 0 but for round-off
    assert cmmd(x, y) == pytest.approx(cmmd(y, x), rel=1e-12)
    assert cmmd(x, y) > 1e-3


def test_blocks_do_not_change_the_number():
    x = torch.tensor(random_features(23, 6, seed=6))
    y = torch.tensor(random_features(17, 6, seed=7, shift=0.3))
    whole = cmmd(x, y)
    assert cmmd(x, y, max_elements=5) == pytest.approx(whole, rel=1e-12)  # blocks of one row
    assert cmmd(x.float(), y.float()) == pytest.approx(whole, rel=1e-6)  # float32 features, float64 sums


def test_bootstrap_fast_path_equals_the_metric_on_each_half():
    fake = {"pool": torch.tensor(random_features(40, 6, seed=8), dtype=torch.float32)}
    real = {"pool": torch.tensor(random_features(36, 6, seed=9, shift=0.4), dtype=torch.float32)}
    gen = torch.Generator().manual_seed(0)
    fake_idx, real_idx = half_sample_indices(40, 12, gen), half_sample_indices(36, 12, gen)
    fast = replicates(fake, real, fake_idx, real_idx, sigma=2.0, normalize=False)["cmmd"]
    direct = generic_replicates(compute, fake, real, fake_idx, real_idx, gen, sigma=2.0, normalize=False)["cmmd"]
    assert fast == pytest.approx(direct, rel=1e-9)
    assert np.ptp(fast) > 0  # the halves differ


def test_bad_input_is_one_line():
    x = torch.ones(4, 3)
    with pytest.raises(InputError, match="all zeros"):
        cmmd(torch.zeros(4, 3), x)
    with pytest.raises(InputError, match="sigma must be a positive"):
        compute({"pool": x}, {"pool": x}, sigma=0.0)
    with pytest.raises(InputError, match="differ in dimension"):
        compute({"pool": x}, {"pool": torch.ones(4, 2)})


def test_cmmd_through_the_evaluation_runner():
    from ganbench.evaluation import evaluate

    common = dict(metrics=["cmmd", "vendi"], extractor="lenet-mnist", device="cpu", progress=False,
                  use_cache=False, bootstrap=0)
    same = evaluate("digits:train", "digits:train", **common)
    other = evaluate("digits:train", "digits:test", **common)
    assert abs(same.value("cmmd")) < 1e-9 and other.value("cmmd") > 1e-3
    row = next(r for r in other.rows if r["key"] == "cmmd")
    assert row["extractor"] == "lenet-mnist" and not row["higher_is_better"]
    protocol = json.loads(row["protocol"])
    assert protocol["metric"] == "cmmd" and protocol["options"] == {"normalize": True, "sigma": 10.0}


@pytest.mark.gpu
def test_thirty_thousand_samples_fit_on_the_gpu_and_agree_with_the_cpu():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(30_000, 768, generator=gen), torch.randn(30_000, 768, generator=gen) + 0.05
    torch.cuda.reset_peak_memory_stats()
    on_gpu = cmmd(x.cuda(), y.cuda())
    assert torch.cuda.max_memory_allocated() < 2 * 2**30  # blocks of 2**25 float64 entries, not 30k x 30k
    assert on_gpu > 0
    assert cmmd(x[:2000].cuda(), y[:2000].cuda()) == pytest.approx(cmmd(x[:2000], y[:2000]), rel=1e-9)
