"""Confidence intervals of feature-based metrics (ganbench.metrics.bootstrap): coverage
on Gaussian features whose expected FID is known, the fast FID path against the plain
recomputation, the rows and protocols an evaluation writes, and bad settings."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganbench.errors import InputError
from ganbench.metrics import fid, prc
from ganbench.metrics.bootstrap import bootstrap_interval, generic_replicates, half_sample_indices

pytestmark = pytest.mark.usefixtures("one_thread")  # thousands of tiny FIDs: see conftest

D, N = 8, 300
MIXING = torch.randn(D, D, generator=torch.Generator().manual_seed(0)) / D ** 0.5


def gaussian_pair(generator: torch.Generator, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated features N(0.3, A A^T) and reference features N(0, I), n rows each."""
    x = torch.randn(n, D, generator=generator) @ MIXING.T + 0.3
    y = torch.randn(n, D, generator=generator)
    return x, y


def test_fid_interval_covers_the_expected_fid_at_this_n():
    """95 % intervals cover E[FID_N] (estimated from 3,000 independent draws) in 88-99 % of
    100 seeded repetitions. FID is biased in N (here E[FID_300] ~ 3.43 against ~3.3 at
    N = infinity), so an interval that ignored the bias of the half-samples would miss."""
    g = torch.Generator().manual_seed(1)
    expected = np.mean([fid.fid_from_features(*gaussian_pair(g)) for _ in range(3000)])
    covered = 0
    for rep in range(100):
        x, y = gaussian_pair(g)
        estimate = {"fid": fid.fid_from_features(x, y)}
        interval = bootstrap_interval(estimate, fid.FID.replicates, fid.FID.compute, {"pool": x}, {"pool": y},
                                      replicates=200, level=0.95, seed=rep)
        assert interval.low["fid"] < estimate["fid"] < interval.high["fid"]
        covered += interval.low["fid"] <= expected <= interval.high["fid"]
    assert 88 <= covered <= 99, covered


def test_fast_fid_replicates_equal_fid_of_the_half_samples():
    g = torch.Generator().manual_seed(2)
    x, y = gaussian_pair(g, 101)
    fx, fy = half_sample_indices(101, 12, g), half_sample_indices(101, 12, g)
    assert fx.shape == (12, 50) and all(len(set(row.tolist())) == 50 for row in fx)  # halves without repeats
    fast = fid.replicates({"pool": x}, {"pool": y}, fx, fy)["fid"]
    plain = [fid.fid_from_features(x[a], y[b]) for a, b in zip(fx, fy)]
    scale = np.array([fid.fid_from_features(x[a], y[b]) + 2 * fid.trace_sqrt_product(
        np.cov(x[a].double().numpy(), rowvar=False), np.cov(y[b].double().numpy(), rowvar=False))
        for a, b in zip(fx, fy)])  # |mu1 - mu2|^2 + tr S1 + tr S2: what float32 round-off is relative to
    assert np.all(np.abs(fast - np.asarray(plain)) < 1e-5 * scale)
    generic = generic_replicates(fid.FID.compute, {"pool": x}, {"pool": y}, fx, fy, g)["fid"]
    np.testing.assert_allclose(generic, plain, rtol=1e-12)


def test_knn_metrics_get_intervals_from_halves_without_repeats():
    g = torch.Generator().manual_seed(3)
    x, y = gaussian_pair(g, 200)
    estimate = prc.PR.compute({"pool": x}, {"pool": y}, generator=g, **prc.PR.defaults)
    interval = bootstrap_interval(estimate, None, prc.PR.compute, {"pool": x}, {"pool": y}, replicates=30,
                                  seed=0, options=prc.PR.defaults)
    for key in ("precision", "recall"):
        assert interval.low[key] < estimate[key] < interval.high[key]
        assert interval.high[key] - interval.low[key] < 0.5  # duplicates would make every point its own neighbour


@pytest.mark.parametrize("replicates,level,message", [
    (5, 0.95, "at least 10 replicates"), (100, 1.0, "strictly between 0 and 1"), (100, 0.0, "strictly between")])
def test_bad_settings_are_one_line_errors(replicates, level, message):
    x = torch.zeros(20, 2)
    with pytest.raises(InputError, match=message):
        bootstrap_interval({"fid": 0.0}, None, fid.FID.compute, {"pool": x}, {"pool": x}, replicates=replicates,
                           level=level)


def test_evaluation_rows_carry_the_interval_and_its_protocol(tmp_path):
    from ganbench.evaluation import evaluate

    g = torch.Generator().manual_seed(4)
    fake = torch.randint(0, 256, (120, 1, 28, 28), generator=g, dtype=torch.uint8)
    real = torch.randint(0, 200, (120, 1, 28, 28), generator=g, dtype=torch.uint8)
    common = dict(extractor="lenet-mnist", device="cpu", progress=False, use_cache=False)
    with_ci = evaluate(fake, real, ["fid", "isc"], bootstrap=50, ci=0.9, **common)
    for row in with_ci.rows:
        assert row["ci_low"] < row["value"] < row["ci_high"], row["key"]
        assert json.loads(row["protocol"])["interval"] == {"method": "centred half-sample bootstrap",
                                                           "replicates": 50, "level": 0.9}
    without = evaluate(fake, real, ["fid"], bootstrap=0, **common)
    assert without.rows[0]["ci_low"] is None and "interval" not in json.loads(without.rows[0]["protocol"])
    assert without.rows[0]["value"] == with_ci.rows[0]["value"]  # the interval never changes the number
    assert without.rows[0]["protocol_id"] != with_ci.rows[0]["protocol_id"]
    with pytest.raises(InputError, match="at least 10 replicates"):
        evaluate(fake, real, ["fid"], bootstrap=3, **common)


def _arrays(tmp_path):
    g = torch.Generator().manual_seed(5)
    np.save(tmp_path / "fake.npy", torch.randint(0, 256, (80, 1, 28, 28), generator=g, dtype=torch.uint8).numpy())
    np.save(tmp_path / "real.npy", torch.randint(0, 200, (80, 1, 28, 28), generator=g, dtype=torch.uint8).numpy())
    return ["-i", str(tmp_path / "fake.npy"), "-r", str(tmp_path / "real.npy")]


def test_cli_prints_the_interval_and_refuses_bad_settings(tmp_path):
    from click.testing import CliRunner

    from ganbench.cli import main

    base = ["eval", "--no-record", "-q", "--no-cache", "--extractor", "lenet-mnist", "-m", "fid", *_arrays(tmp_path)]
    out = CliRunner().invoke(main, [*base, "--bootstrap", "20", "--ci", "0.9"])
    assert out.exit_code == 0, out.output
    line = next(row for row in out.output.splitlines() if row.startswith("fid "))
    assert "90% [" in line
    for args, message in ((["--bootstrap", "5"], "at least 10 replicates"), (["--ci", "1.5"], "strictly between")):
        bad = CliRunner().invoke(main, [*base, *args])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output


def test_fast_fid_replicates_with_fewer_rows_than_dimensions():
    """Halves of 30 rows in 64 dimensions: singular covariances, the nuclear-norm path."""
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(60, 64, generator=g) + 0.2, torch.randn(61, 64, generator=g) * 1.3
    fx, fy = half_sample_indices(60, 5, g), half_sample_indices(61, 5, g)
    fast = fid.replicates({"pool": x}, {"pool": y}, fx, fy)["fid"]
    plain = np.array([fid.fid_from_features(x[a], y[b]) for a, b in zip(fx, fy)])
    np.testing.assert_allclose(fast, plain, rtol=1e-4)
