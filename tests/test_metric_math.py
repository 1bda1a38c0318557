"""The metric maths as pure functions of features: closed forms, hand-computed examples,
agreement with torch-fidelity's own functions on the same features, option validation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganbench.errors import GanbenchError, InputError
from ganbench.metrics.density_coverage import density_coverage
from ganbench.metrics.fid import feature_stats, fid_from_features, fid_from_stats, trace_sqrt_product
from ganbench.metrics.isc import inception_score
from ganbench.metrics.kid import kernel_inception_distance, kid_subset_indices
from ganbench.metrics.prc import f_score, precision_recall
from ganbench.metrics.stats import FeatureStats
from ganbench.registry import metrics as metric_registry

MINE = ("fid", "isc", "kid", "pr", "pr-vgg16", "dc")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small LAPACK calls are fastest single-threaded (and OpenBLAS threads thrash on busy CPUs)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def low_rank_features(n: int, d: int, *, shift: float = 0.3, rank: int = 16, noise: float = 0.1,
                      seed: int = 0) -> torch.Tensor:
    """Non-negative, correlated float32 features (N, D), like ReLU'd pool activations."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rank, d, generator=g) / rank**0.5
    z = torch.randn(n, rank, generator=g)
    return torch.relu(z @ w + noise * torch.randn(n, d, generator=g) + shift).float()


def scipy_trace_sqrt(s1: np.ndarray, s2: np.ndarray) -> float:
    return float(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)


def nuclear_trace_sqrt(x: torch.Tensor, y: torch.Tensor) -> float:
    """tr((S1 S2)^1/2) = nuclear norm of Xc Yc^T / sqrt((n1-1)(n2-1)): a small, well-conditioned
    reference for N < D (no D x D null space)."""
    xc = x.double().numpy() - x.double().numpy().mean(0)
    yc = y.double().numpy() - y.double().numpy().mean(0)
    return float(scipy.linalg.svdvals(xc @ yc.T).sum() / np.sqrt((len(x) - 1) * (len(y) - 1)))


# -- FID -------------------------------------------------------------------------------
def test_fid_closed_form_diagonal_gaussians():
    rng = np.random.default_rng(0)
    d = 50
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3, size=d), rng.uniform(0, 2, size=d)
    s2[:5] = 0  # singular
    expected = ((m1 - m2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert fid_from_stats(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rank1, rank2", [(80, 80), (30, 80), (80, 10), (5, 7)])
def test_fid_full_covariances_match_scipy_sqrtm(rank1, rank2):
    rng = np.random.default_rng(rank1 + rank2)
    d = 80
    a, b = rng.normal(size=(d, rank1)) / rank1**0.5, rng.normal(size=(d, rank2)) * 0.5 / rank2**0.5
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    base = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
    exact = base - 2 * scipy.linalg.svdvals(a.T @ b).sum()  # tr((A A^T B B^T)^1/2) = |A^T B|_*
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-12)
    # scipy's sqrtm (torch-fidelity's former route) loses ~1e-7 when a covariance is singular.
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(base - 2 * scipy_trace_sqrt(s1, s2), rel=1e-6)


@pytest.mark.parametrize("n1, n2, d", [(400, 300, 256), (60, 90, 256), (20, 400, 256)])
def test_trace_sqrt_exact_including_n_below_d(n1, n2, d):
    x = low_rank_features(n1, d, seed=1)
    y = low_rank_features(n2, d, shift=0.35, seed=2)
    (_, s1), (_, s2) = feature_stats(x), feature_stats(y)
    ref = nuclear_trace_sqrt(x, y)
    assert trace_sqrt_product(s1, s2) == pytest.approx(ref, rel=1e-10)
    assert trace_sqrt_product(s1, s2) == pytest.approx(scipy_trace_sqrt(s1, s2), rel=1e-6)


def test_fid_of_identical_sets_is_zero():
    x = low_rank_features(500, 128)
    _, sigma = feature_stats(x)
    scale = np.trace(sigma)
    assert abs(fid_from_features(x, x)) <= 1e-9 * scale
    assert abs(fid_from_features(x[:50], x[:50])) <= 1e-9 * scale  # N < D


def test_fid_round_off_below_zero_is_zero_but_a_real_negative_is_not_hidden():
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    _, sigma = feature_stats(x)
    assert np.trace(sigma) + np.trace(sigma) - 2.0 * trace_sqrt_product(sigma, sigma) < 0  # round-off: -7e-15
    assert fid_from_features(x, x) == 0.0
    for seed in range(10):
        y = torch.from_numpy(np.random.default_rng(seed).normal(size=(200, 64)).astype(np.float32))
        assert fid_from_features(y, y) >= 0.0
    # statistics that are not a covariance give a genuinely negative number: a bug to see, not to clamp
    d = np.zeros(4)
    assert fid_from_stats(d, -np.eye(4), d, -np.eye(4)) == -8.0


def test_feature_stats_match_numpy_and_merge_in_batches():
    x = low_rank_features(300, 40, shift=5.0)  # a large mean: the merge must not cancel
    mu, sigma = feature_stats(x)
    xd = x.double().numpy()
    np.testing.assert_allclose(mu, xd.mean(0), rtol=1e-13)
    np.testing.assert_allclose(sigma, np.cov(xd, rowvar=False), rtol=1e-10, atol=1e-14)
    stats = FeatureStats()
    for rows in (slice(0, 1), slice(1, 120), slice(120, 121), slice(121, 300)):
        stats.update(x[rows])
    mu2, sigma2 = stats.mean_cov()
    np.testing.assert_allclose(mu2, mu, rtol=1e-13)
    np.testing.assert_allclose(sigma2, sigma, rtol=1e-10, atol=1e-14)


def test_fid_agrees_with_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    x = low_rank_features(600, 256, seed=3)
    y = low_rank_features(500, 256, shift=0.35, seed=4)
    ref = fid_statistics_to_metric(fid_features_to_statistics(x), fid_features_to_statistics(y), False)
    # torch-fidelity's means are float32: agreement is ~1e-8 relative.
    assert fid_from_features(x, y) == pytest.approx(ref["frechet_inception_distance"], rel=1e-6)


# -- Inception Score --------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [True, False])
def test_isc_agrees_with_torch_fidelity(shuffle):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = 3 * torch.randn(1003, 20, generator=torch.Generator().manual_seed(0))
    ref = isc_features_to_metric(logits, splits=10, shuffle=shuffle, rng_seed=2020)
    mean, std = inception_score(logits, 10, shuffle=shuffle, rng="torch-fidelity", seed=2020)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9)


def test_isc_generator_shuffle_is_a_permutation():
    logits = torch.randn(100, 7, generator=torch.Generator().manual_seed(1))
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(5))
    shuffled = inception_score(logits, 4, generator=torch.Generator().manual_seed(5))
    assert shuffled == inception_score(logits[perm], 4, shuffle=False)
    # Uniform predictions: IS 1; one-hot over C classes, balanced: IS C.
    assert inception_score(torch.zeros(40, 5), 2, shuffle=False)[0] == pytest.approx(1.0)
    assert inception_score(torch.eye(5).repeat(8, 1) * 50, 1, shuffle=False)[0] == pytest.approx(5.0, rel=1e-9)


# -- KID -----------------------------------------------------------------------------------------
def test_kid_agrees_with_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    x = low_rank_features(300, 64, seed=5)
    y = low_rank_features(250, 64, shift=0.35, seed=6)
    ref = kid_features_to_metric(x, y, kid_subsets=20, kid_subset_size=100, rng_seed=2020, verbose=False)
    mean, std, _ = kernel_inception_distance(x, y, 20, 100, rng="torch-fidelity", seed=2020)
    # torch-fidelity computes its kernels in float32, here float64.
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-5)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4)


def test_kid_batching_and_subsets():
    x = low_rank_features(120, 16, seed=7)
    y = low_rank_features(110, 16, shift=0.5, seed=8)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    one_batch = kernel_inception_distance(x, y, 7, 50, generator=gen())
    tiny_batches = kernel_inception_distance(x, y, 7, 50, generator=gen(), max_elements=1)
    np.testing.assert_allclose(one_batch[2], tiny_batches[2], rtol=1e-12)
    # per subset: the textbook unbiased estimate on the drawn indices
    i1, i2 = kid_subset_indices(120, 110, 7, 50, generator=gen())
    assert all(len(set(row.tolist())) == 50 for row in torch.cat([i1, i2]))
    a, b = x[i1[2]].double().numpy(), y[i2[2]].double().numpy()
    k = lambda u, v: (u @ v.T / 16 + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    manual = ((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (50 * 49) - 2 * kxy.mean())
    assert one_batch[2][2] == pytest.approx(manual, rel=1e-10)


def test_kid_of_identical_sets_is_about_zero():
    x = low_rank_features(1000, 32, seed=9)
    y = low_rank_features(1000, 32, shift=0.4, seed=10)
    same, same_std, _ = kernel_inception_distance(x, x, 50, 100, generator=torch.Generator().manual_seed(0))
    different = kernel_inception_distance(x, y, 50, 100, generator=torch.Generator().manual_seed(0))[0]
    # ~0: small against a real difference and within its own spread (the subsets of one set overlap)
    assert abs(same) < 0.05 * different and abs(same) < same_std


# -- precision / recall ---------------------------------------------------------------------------
def test_pr_agrees_with_torch_fidelity():
    from torch_fidelity.metric_prc import prc_features_to_metric

    g = torch.Generator().manual_seed(0)
    x = torch.randn(700, 16, generator=g)
    y = 0.8 * torch.randn(600, 16, generator=g) + 0.5
    for fake, real in ((x, y), (y, x)):
        ref = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False,
                                     verbose=False)
        p, r = precision_recall(fake, real, 3)
        assert 0.2 < p < 0.95 and 0.2 < r < 0.95
        # the same counts (torch-fidelity's fractions are float32)
        assert (round(p * len(fake)), round(r * len(real))) == (
            round(ref["precision"] * len(fake)), round(ref["recall"] * len(real)))
        assert f_score(p, r) == pytest.approx(ref["f_score"], rel=1e-6)
    assert precision_recall(x, y, 3, max_elements=64) == precision_recall(x, y, 3)  # chunking


def test_pr_identical_and_disjoint():
    x = low_rank_features(100, 8, seed=12)
    assert precision_recall(x, x, 3) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0, 3) == (0.0, 0.0)
    assert f_score(0.0, 0.0) == 0.0


def test_pr_hand_computed_with_boundary():
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [5.0], [12.0]])
    # k=1 radii: real 1, 1, 2, 4; fake 4.5, 4.5, 7. Fake 5.0 is exactly on real 3's ball: counted (<=).
    assert precision_recall(fake, real, 1) == (pytest.approx(2 / 3), 1.0)
    from torch_fidelity.metric_prc import prc_features_to_metric

    ref = prc_features_to_metric(fake, real, prc_neighborhood=1, prc_batch_size=10000, save_cpu_ram=False,
                                 verbose=False)
    assert precision_recall(fake, real, 1) == (pytest.approx(ref["precision"]), ref["recall"])


# -- density / coverage -------------------------------------------------------------------------
def test_dc_hand_computed_with_strict_boundary():
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [5.0], [12.0]])
    # k=1 radii 1, 1, 2, 4. Fake 0.5 is in balls 0 and 1, 5.0 only in ball 7 (it is exactly on
    # ball 3's boundary: not counted, strict <), 12 in none: density (2 + 1 + 0) / (1 * 3) = 1.
    # Nearest fake of real 0, 1, 3, 7: 0.5, 0.5, 5.0 (= radius 2: not covered), 5.0: coverage 3/4.
    density, coverage = density_coverage(fake, real, 1)
    assert density == pytest.approx(1.0) and coverage == pytest.approx(0.75)
    # k=2 radii 3, 2, 3, 6: counts 3 (0.5), 2 (5.0), 1 (12): density 6 / 6; all covered.
    assert density_coverage(fake, real, 2) == (pytest.approx(1.0), pytest.approx(1.0))


def test_dc_identical_and_disjoint():
    x = low_rank_features(300, 16, seed=13)
    density, coverage = density_coverage(x, x, 5)
    assert coverage == 1.0 and density == pytest.approx(1.0, abs=0.15)
    assert density_coverage(x, x + 100.0, 5) == (0.0, 0.0)
    assert density_coverage(x, x, 5, max_elements=50) == (density, coverage)


# -- the registered metrics -------------------------------------------------------------------------
@pytest.mark.parametrize("name", MINE)
def test_registered_metric_contract(name):
    metric = metric_registry.get(name)
    assert metric.name == name
    assert metric.min_samples(dict(metric.defaults)) >= 1
    assert metric.higher_is_better
    x = low_rank_features(60, 12, seed=14)
    y = low_rank_features(70, 12, shift=0.5, seed=15)
    feats = {f: x for f in metric.features}
    ref = {f: y for f in metric.features} if metric.needs_reference else None
    opts = {"subset_size": 30, "subsets": 5} if name == "kid" else {}
    out = metric.compute(feats, ref, generator=torch.Generator().manual_seed(0), **opts)
    assert set(metric.higher_is_better) <= set(out)
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert all(k[:-4] in out for k in out if k.endswith("_std"))


@pytest.mark.parametrize("name", metric_registry.names())
def test_every_metric_declares_a_version(name):
    version = metric_registry.get(name).version
    assert isinstance(version, int) and not isinstance(version, bool) and version >= 1


# Values computed by hand, pinned to the metric version they hold for: a change to a metric's
# numbers must bump its version (which changes the protocol, so old and new results are never
# ranked together) and then the value here.
_X = [[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]  # mean 0, unbiased variances 2/3 and 8/3
PINNED = {  # name: (version, features, reference features, options, expected)
    # |(5, 0)|^2 + (2/3 + 6 - 2 sqrt(2/3 * 6)) + (8/3 + 24 - 2 sqrt(8/3 * 24)) for Y = 3X + (5, 0)
    "fid": (1, {"pool": _X}, {"pool": [[3 * a + 5, 3 * b] for a, b in _X]}, {}, {"fid": 115 / 3}),
    # both rows have KL 0.8 ln(0.8/0.5) + 0.2 ln(0.2/0.5) to the marginal (1/2, 1/2)
    "isc": (1, {"logits": np.log([[0.8, 0.2], [0.2, 0.8]])}, None, {"splits": 1},
            {"isc": 1.6**0.8 * 0.4**0.2, "isc_std": 0.0}),
    # k(a, b) = (ab + 1)^3, one subset of both points: k(0, 1) + k(1, 2) - 2 (1 + 1 + 8 + 27) / 4
    "kid": (1, {"pool": [[0.0], [1.0]]}, {"pool": [[1.0], [2.0]]}, {"subsets": 1, "subset_size": 2},
            {"kid": 9.5, "kid_std": 0.0}),
    # k=1 radii of real 0, 1, 10: 1, 1, 9; fake 0.5 is in 0's ball, 20 in none; fake radii 19.5
    # cover every real point
    "pr": (1, {"pool": [[0.5], [20.0]]}, {"pool": [[0.0], [1.0], [10.0]]}, {"k": 1},
           {"precision": 0.5, "recall": 1.0}),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_metric_numbers_are_pinned_to_its_version(name):
    version, feats, ref, options, expected = PINNED[name]
    metric = metric_registry.get(name)
    as_tensors = lambda d: {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}  # noqa: E731
    out = metric.compute(as_tensors(feats), ref and as_tensors(ref), generator=torch.Generator().manual_seed(0),
                         **options)
    assert metric.version == version, f"{name} is at version {metric.version}: recompute PINNED[{name!r}] by hand"
    assert {k: out[k] for k in expected} == pytest.approx(expected, rel=1e-9, abs=1e-12), \
        f"the numbers of {name} changed: bump its version, then update PINNED[{name!r}]"


def test_registered_metrics_names_and_seeds():
    assert metric_registry.get("pr-vgg16").extractor == "vgg16"
    assert metric_registry.get("pr-vgg16").features == ("fc2_relu",)
    assert metric_registry.get("pr").extractor is None
    assert not metric_registry.get("isc").needs_reference
    kid = metric_registry.get("kid")
    x, y = {"pool": low_rank_features(80, 8, seed=16)}, {"pool": low_rank_features(80, 8, shift=0.5, seed=17)}
    run = lambda seed, **o: kid.compute(x, y, generator=torch.Generator().manual_seed(seed),  # noqa: E731
                                        subsets=4, subset_size=20, **o)
    assert run(1) == run(1) and run(1) != run(2)
    assert run(1, rng="torch-fidelity") == run(2, rng="torch-fidelity")


def test_option_validation():
    kid, isc, pr = (metric_registry.get(n) for n in ("kid", "isc", "pr"))
    x, y = {"pool": low_rank_features(50, 8)}, {"pool": low_rank_features(40, 8, seed=1)}
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(InputError, match="subset_size=45 is larger than the number of samples") as err:
        kid.compute(x, y, generator=gen, subset_size=45)
    assert "\n" not in str(err.value)
    assert kid.min_samples({"subset_size": 45}) == 45
    with pytest.raises(GanbenchError, match="metric 'kid' has no option 'subset_sise'. Did you mean 'subset_size'"):
        kid.read_options({"subset_sise": 10})
    with pytest.raises(GanbenchError, match="torch-fidelity"):
        kid.compute(x, y, generator=gen, subset_size=10, rng="numpy")
    with pytest.raises(InputError, match="gamma"):
        kid.compute(x, y, generator=gen, subset_size=10, gamma=-1)
    cli_text = kid.read_options({"subset_size": "10", "subsets": "2", "gamma": "0.5"})
    assert cli_text == {**kid.defaults, "subset_size": 10, "subsets": 2, "gamma": 0.5}
    assert kid.compute(x, y, generator=gen, **cli_text)["kid"] > 0
    with pytest.raises(InputError, match="kid.subsets must be >= 1, got 0"):
        kid.compute(x, y, generator=gen, **kid.read_options({"subsets": "0"}))
    with pytest.raises(InputError, match="at least 10"):
        isc.compute({"logits": torch.randn(5, 3)}, None, generator=gen)
    with pytest.raises(InputError, match="'logits'"):
        isc.compute(x, None, generator=gen)
    with pytest.raises(InputError, match="differ in dimension"):
        pr.compute(x, {"pool": torch.randn(40, 9)}, generator=gen)
    with pytest.raises(InputError, match="NaN"):
        pr.compute({"pool": torch.full((10, 8), float("nan"))}, y, generator=gen)
    with pytest.raises(InputError, match="reference features"):
        pr.compute(x, None, generator=gen)
    with pytest.raises(InputError, match="at least 4"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2), 3)
    with pytest.raises(InputError, match="inconsistent shapes"):
        fid_from_stats(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(InputError, match="rng='generator' needs a torch.Generator"):
        inception_score(torch.randn(20, 3), 2, generator=None)


def test_options_are_read_as_their_declared_types():
    """Text from the command line becomes each option's type: the compute function's
    annotation (None-able ones such as kid.gamma, ppl.resize), else its default's type."""
    kid, isc, ppl = (metric_registry.get(n) for n in ("kid", "isc", "ppl"))
    assert kid.read_options({"gamma": "none", "coef0": "2"})["gamma"] is None
    assert kid.read_options({"coef0": "2"})["coef0"] == 2.0 and kid.read_options({"coef0": 2})["coef0"] == 2.0
    assert isc.read_options({"shuffle": "no"})["shuffle"] is False
    assert ppl.read_options({"resize": "none", "discard_lower": "none"})["resize"] is None
    assert ppl.read_options({"resize": "32"})["resize"] == 32
    with pytest.raises(GanbenchError, match="metric 'kid' option 'subsets' expects int, got 'many'"):
        kid.read_options({"subsets": "many"})
    with pytest.raises(GanbenchError, match="metric 'isc' option 'shuffle' expects true/false, got 'maybe'"):
        isc.read_options({"shuffle": "maybe"})


@pytest.mark.slow
def test_fid_2048d_matches_scipy_sqrtm():
    for n1, n2 in ((3000, 2500), (1000, 1500)):
        x = low_rank_features(n1, 2048, rank=64, seed=20)
        y = low_rank_features(n2, 2048, rank=64, shift=0.35, seed=21)
        (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
        expected = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * scipy_trace_sqrt(s1, s2)
        assert fid_from_stats(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)
