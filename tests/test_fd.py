"""fd: the Fréchet distance on the run's extractor's features. On Inception-v3 pool features
it is FID, number for number, interval for interval; its rows name their feature space."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganbench.evaluation import evaluate
from ganbench.metrics import fd, fid
from ganbench.metrics.bootstrap import half_sample_indices

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
