"""fd: the Fréchet distance on the run's extractor's features. On Inception-v3 pool features
it is FID, number for number, interval for interval; its rows name their feature space; option
``feature`` reads another key, checked against the distance written out with numpy/scipy."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganbench.errors import GanbenchError
from ganbench.evaluation import evaluate
from ganbench.metrics import fd, fid
from ganbench.metrics.bootstrap import half_sample_indices
from ganbench.registry import feature_extractors
from ganbench.registry import metrics as metric_registry

pytestmark = pytest.mark.usefixtures("one_thread")


def features(n, d, seed, shift=0.0):
    return {"pool": torch.tensor(np.random.default_rng(seed).normal(shift, 1.0, (n, d)), dtype=torch.float32)}


def test_fd_is_fids_maths_on_any_features():
    x, y = features(30, 6, seed=0), features(25, 6, seed=1, shift=0.7)
    assert fd.compute(x, y)["fd"] == fid.compute(x, y)["fid"] > 1.0
    gen = torch.Generator().manual_seed(0)
    fake_idx, real_idx = half_sample_indices(30, 10, gen), half_sample_indices(25, 10, gen)
    distances = fd.replicates(x, y, fake_idx, real_idx)["fd"]
    assert np.array_equal(distances, fid.replicates(x, y, fake_idx, real_idx)["fid"]) and np.ptp(distances) > 0


def test_fd_on_inception_pool_features_is_fid(inception_weights):
    rng = np.random.default_rng(2)
    fake = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    real = rng.integers(0, 200, (6, 16, 16, 3), dtype=np.uint8)
    result = evaluate(fake, real, ["fd", "fid"], extractor="inception-v3-compat", weights=inception_weights,
                      device="cpu", progress=False, use_cache=False, bootstrap=10)
    assert result.value("fd") == result.value("fid") > 0
    rows = {r["key"]: r for r in result.rows}
    assert (rows["fd"]["ci_low"], rows["fd"]["ci_high"]) == (rows["fid"]["ci_low"], rows["fid"]["ci_high"])
    protocol = json.loads(rows["fd"]["protocol"])
    assert protocol["metric"] == "fd" and protocol["extractor"] == "inception-v3-compat"
    assert rows["fd"]["protocol_id"] != rows["fid"]["protocol_id"]  # the metric's name is part of its protocol


def test_fd_in_another_feature_space_records_it():
    result = evaluate("digits:train", "digits:test", ["fd", "fid"], extractor="lenet-mnist", device="cpu",
                      progress=False, use_cache=False, bootstrap=0)
    assert result.value("fd") == result.value("fid")
    assert {r["extractor"] for r in result.rows} == {"lenet-mnist"}


# -- the feature key: option `feature` -------------------------------------------------------------
def frechet_oracle(x: torch.Tensor, y: torch.Tensor) -> float:
    """The Fréchet distance written out with numpy's covariance and scipy's matrix square root."""
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    x, y = x.double().numpy(), y.double().numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = x.mean(0) - y.mean(0)
    with warnings.catch_warnings():  # LeNet's pool on digits has dead units: a singular product, still exact
        warnings.simplefilter("ignore", LinAlgWarning)
        root = sqrtm(s1 @ s2).real
    return float(diff @ diff + np.trace(s1 + s2 - 2 * root))


def test_fd_reads_the_feature_key_it_is_given():
    x = {**features(40, 6, seed=3), "logits": features(40, 4, seed=4, shift=0.3)["pool"]}
    y = {**features(35, 6, seed=5, shift=0.5), "logits": features(35, 4, seed=6)["pool"]}
    on_logits = fd.compute(x, y, feature="logits")["fd"]
    assert on_logits == pytest.approx(frechet_oracle(x["logits"], y["logits"]), rel=1e-9)
    assert fd.compute(x, y)["fd"] == pytest.approx(frechet_oracle(x["pool"], y["pool"]), rel=1e-9)
    assert abs(on_logits - fd.compute(x, y)["fd"]) > 0.1
    gen = torch.Generator().manual_seed(1)
    fake_idx, real_idx = half_sample_indices(40, 8, gen), half_sample_indices(35, 8, gen)
    expected = fid.replicates({"pool": x["logits"]}, {"pool": y["logits"]}, fake_idx, real_idx)["fid"]
    assert np.array_equal(fd.replicates(x, y, fake_idx, real_idx, feature="logits")["fd"], expected)
    with pytest.raises(GanbenchError, match="'spatial' feature of the input"):
        fd.compute(x, y, feature="spatial")


def test_fd_declares_the_feature_it_reads():
    metric = metric_registry.get("fd")
    assert metric.defaults == {"feature": "pool"}
    assert metric.features_for(metric.read_options()) == ("pool",)
    assert metric.features_for(metric.read_options({"feature": "logits"})) == ("logits",)


def test_fd_on_another_feature_key_through_the_runner_records_it():
    from ganbench.features import extract
    from ganbench.sources import resolve_source

    run = dict(extractor="lenet-mnist", device="cpu", progress=False, use_cache=False, bootstrap=0)
    on_logits = evaluate("digits:train", "digits:test", ["fd"], options={"fd": {"feature": "logits"}}, **run)
    on_pool = evaluate("digits:train", "digits:test", ["fd"], **run)
    module = {"lenet-mnist": (feature_extractors.get("lenet-mnist")(), ("logits", "pool"))}
    fake, real = (extract(resolve_source(s), module, use_cache=False, progress=False).features["lenet-mnist"]
                  for s in ("digits:train", "digits:test"))
    assert on_logits.value("fd") == pytest.approx(frechet_oracle(fake["logits"], real["logits"]), rel=1e-9)
    assert on_pool.value("fd") == pytest.approx(frechet_oracle(fake["pool"], real["pool"]), rel=1e-9)
    assert abs(on_logits.value("fd") - on_pool.value("fd")) > 1e-3 * on_pool.value("fd")
    row_logits, row_pool = (next(r for r in result.rows if r["key"] == "fd") for result in (on_logits, on_pool))
    assert json.loads(row_logits["protocol"])["options"] == {"feature": "logits"}
    assert json.loads(row_pool["protocol"])["options"] == {"feature": "pool"}
    assert row_logits["protocol_id"] != row_pool["protocol_id"]
