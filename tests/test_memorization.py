"""Memorization metrics: Meehan et al.'s C_T (ct) and Alaa et al.'s authenticity (authpct).

Hand-made cases pin the definitions (the authors' Z_U, the test-share weights, the tau
threshold, the authenticity rule); copies of the training set must be caught and fresh
samples of the same distribution must not, on Gaussians and on MNIST digits through the
evaluation runner with the training split as the third set.
"""
from __future__ import annotations

import json

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from ganbench.errors import InputError
from ganbench.evaluation import evaluate
from ganbench.metrics.memorization import authenticity, c_t, mann_whitney_z, training_split

pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian(n: int, dims: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- the definitions, by hand ----------------------------------------------------------------------
def test_z_u_is_the_authors_z_scored_u_of_the_generated_distances():
    # generated all below test: U = 0; z = (0 - (2 * 2 / 2 - 0.5)) / sqrt(2 * 2 * 5 / 12)
    assert mann_whitney_z(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == pytest.approx(-1.5 / math.sqrt(5 / 3))
    rng = np.random.default_rng(0)
    generated, test = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 30).astype(float)  # many ties
    u = mannwhitneyu(generated, test, alternative="less").statistic  # scipy's U of the first sample
    expected = (u - (40 * 30 / 2 - 0.5)) / math.sqrt(40 * 30 * 71 / 12)
    assert mann_whitney_z(generated, test) == pytest.approx(expected, rel=1e-12)


def one_d(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_c_t_on_a_hand_made_partition():
    # two cells, {0, 10} and {100, 110}. Cell A: test distances 1, 4, generated 0.5, 2 -> U = 1,
    # z = (1 - 1.5) / sqrt(4 * 5 / 12). Cell B: test 3, generated 4, 5, 1 -> U = 2,
    # z = (2 - 1) / sqrt(3 * 5 / 12). Weights: the test shares 2/3 and 1/3.
    train, test, generated = one_d([0, 10, 100, 110]), one_d([1, 4, 103]), one_d([0.5, 12, 104, 105, 101])
    z_a, z_b = -0.5 / math.sqrt(20 / 12), 1 / math.sqrt(15 / 12)
    assert c_t(generated, test, train, cells=2, tau_samples=0, pca=0) == pytest.approx(2 / 3 * z_a + 1 / 3 * z_b)
    # a cell enters with MORE than tau_samples generated samples: at 2, cell A (2 samples) is out
    assert c_t(generated, test, train, cells=2, tau_samples=2, pca=0) == pytest.approx(z_b)
    with pytest.raises(InputError, match="no cell holds more than 3"):
        c_t(generated, test, train, cells=2, tau_samples=3, pca=0)
    with pytest.raises(InputError, match="holds no test or no training samples"):
        c_t(generated, one_d([1, 4]), train, cells=2, tau_samples=0, pca=0)


def test_authenticity_on_hand_made_points():
    # training spacing: 0 -> 1, 1 -> 1, 10 -> 9. Generated 0.2 (0.2 from 0 < 1), 15 (5 from 10 < 9)
    # are not authentic; 30 (20 from 10 > 9) is.
    assert authenticity(one_d([0.2, 15, 30]), one_d([0, 1, 10])) == pytest.approx(100 / 3)


# -- copies are caught, fresh samples are not --------------------------------------------------------
@pytest.mark.parametrize("dims", [16, 96])  # 96: through the PCA to 64 dimensions
def test_copies_of_the_training_set_are_caught_and_fresh_samples_are_not(dims):
    # measured over seeds 0-4: copies -17.2..-17.3 (the floor: every generated distance below every test
    # distance), fresh -0.5..0.0 (16 dims), -0.8..1.0 (96); authpct copies 0 %, fresh 68-73 % (16), 81-86 % (96)
    for seed in range(5):
        train, test, fresh = (gaussian(n, dims, 10 * seed + k) for k, n in enumerate((2000, 1000, 1000)))
        copies = train[:1000] + 0.01 * gaussian(1000, dims, 10 * seed + 3)
        copied, independent = (c_t(x, test, train, cells=5, seed=seed) for x in (copies, fresh))
        assert copied < -10 and abs(independent) < 2.5, (seed, copied, independent)
        assert authenticity(copies, train) == 0.0 and authenticity(fresh, train) > 50


def test_c_t_is_a_fixed_function_of_its_seed():
    train, test, fresh = gaussian(600, 8, 0), gaussian(300, 8, 1), gaussian(300, 8, 2)
    assert c_t(fresh, test, train, cells=3, seed=4) == c_t(fresh, test, train, cells=3, seed=4)


# -- through the runner: the training split as the third set ------------------------------------------
@pytest.fixture(scope="module")
def digit_files(data_dir, tmp_path_factory):
    """Training split (3,000 MNIST train digits), a reference and a fresh sample (two disjoint
    random halves of 2,000 test digits: MNIST's test writers are not its training writers, so
    train digits left out would not be an independent sample), and copies of 1,000 training
    digits with +-3 grey levels of noise."""
    from ganbench.data import load_images

    folder = tmp_path_factory.mktemp("digits")
    train = load_images("mnist", "train", limit=3000)[0].numpy()
    test = load_images("mnist", "test")[0].numpy()[np.random.default_rng(0).permutation(10000)[:2000]]
    noise = np.random.default_rng(1).integers(-3, 4, train[:1000].shape)
    arrays = {"train": train, "reference": test[:1000], "fresh": test[1000:],
              "copies": np.clip(train[:1000].astype(int) + noise, 0, 255).astype(np.uint8)}
    for name, images in arrays.items():
        np.savez(folder / f"{name}.npz", images=images)
    return {name: str(folder / f"{name}.npz") for name in arrays}


def memorization(files, which: str, **train):
    options = {"train": files["train"], **train}
    return evaluate(files[which], files["reference"], metrics=["ct", "authpct"], extractor="lenet-mnist",
                    device="cpu", progress=False, bootstrap=0,
                    options={"ct": {"cells": 10, **options}, "authpct": options})


def test_digits_copied_from_the_training_split_are_caught(digit_files):
    # measured: copies ct -12.2, authpct 0 %; fresh ct 0.24, authpct 61 %
    copied, fresh = memorization(digit_files, "copies"), memorization(digit_files, "fresh")
    assert copied.value("ct") < -8 and abs(fresh.value("ct")) < 2.5
    assert copied.value("authpct") < 5 and fresh.value("authpct") > 50
    protocol = next(r["protocol"] for r in copied.rows if r["key"] == "ct")
    assert '"train": "' + digit_files["train"] in protocol and '"num_train": 3000' in protocol
    assert '"cells": 10' in protocol and '"tau_samples": 20' in protocol
    assert json.loads(protocol)["ideal"] == {"ct": 0.0}  # what leaderboards rank it by


def test_c_t_refuses_the_training_split_as_reference(digit_files):
    with pytest.raises(InputError, match="is the training split itself"):
        evaluate(digit_files["fresh"], digit_files["train"], metrics=["ct"], extractor="lenet-mnist",
                 device="cpu", progress=False, options={"ct": {"train": digit_files["train"], "cells": 10}})


def test_auto_training_split_is_the_references_train_split(data_dir):
    from ganbench.sources import resolve_source

    reference = SimpleNamespace(real=resolve_source("mnist:test"), fake=None)
    assert training_split("auto", reference, "ct").descriptor == "mnist:train"
    checkpoint = SimpleNamespace(real=None, fake=SimpleNamespace(provenance=lambda: {"dataset": "mnist"}))
    assert training_split("auto", checkpoint, "authpct").descriptor == "mnist:train"
    unknown = SimpleNamespace(real=None, fake=SimpleNamespace(provenance=lambda: {}))
    with pytest.raises(InputError, match="-o authpct.train=DATASET:train"):
        training_split("auto", unknown, "authpct")


@pytest.mark.slow
def test_paper_scale_digits(data_dir, tmp_path):
    """The authors' MNIST setting: 50 cells, tau 20, the whole training split (auto), 5,000
    test digits as reference and 5,000 as a fresh sample, 5,000 noisy copies of training digits.
    Measured (lenet-mnist): copies -12.7, fresh 0.08 (authpct 0.04 % vs 60.9 %); 115 s on one core."""
    from ganbench.data import load_images

    test = load_images("mnist", "test")[0].numpy()[np.random.default_rng(0).permutation(10000)]
    train = load_images("mnist", "train", limit=5000)[0].numpy()
    noise = np.random.default_rng(1).integers(-3, 4, train.shape)
    for name, images in {"reference": test[:5000], "fresh": test[5000:],
                         "copies": np.clip(train.astype(int) + noise, 0, 255).astype(np.uint8)}.items():
        np.savez(tmp_path / f"{name}.npz", images=images)
    values = {which: evaluate(str(tmp_path / f"{which}.npz"), str(tmp_path / "reference.npz"), metrics=["ct"],
                              extractor="lenet-mnist", device="cpu", progress=False,
                              options={"ct": {"train": "mnist:train"}}).value("ct")
              for which in ("copies", "fresh")}
    assert values["copies"] < -10 and abs(values["fresh"]) < 3, values


# -- C_T's direction: best at 0 -------------------------------------------------------------------
def ct_rows(values: dict[str, float]) -> list[dict]:
    """One stored ct row per model, as the evaluation writes them (higher_is_better False: ct has
    none; its protocol records the ideal)."""
    from ganbench.leaderboards import make_protocol

    protocol, protocol_id = make_protocol(extractor="lenet-mnist", weights_sha256="ab" * 32, num_samples=1000,
                                          reference="mnist:test", num_reference=1000, metric="ct", metric_version=1,
                                          ideal={"ct": 0.0})
    return [dict(run_id=f"run-{model}", timestamp="2024-05-01T12:00:00+00:00", model=model, checkpoint_sha256=None,
                 step=None, third_party=False, dataset="mnist:test", split="test", metric="ct", key="ct", value=value,
                 std=None, higher_is_better=False, num_samples=1000, num_reference=1000, extractor="lenet-mnist",
                 weights_sha256="ab" * 32, weights_standard=True, protocol=protocol, protocol_id=protocol_id, seed=0,
                 ganbench_version="0.1.0", git_commit=None, torch_version="2.3.0", device="cpu", wall_time_s=1.0,
                 source=model, tags="{}")
            for model, value in values.items()]


def test_leaderboards_rank_c_t_by_its_distance_to_zero(tmp_path):
    from ganbench.leaderboards import build_leaderboards, open_store, render_leaderboards

    store = open_store(tmp_path / "results.sqlite")
    # higher-is-better would put underfitter first, lower-is-better copier first
    store.append(ct_rows({"copier": -6.0, "faithful": 0.3, "underfitter": 2.0, "mirror": -0.3}))
    [board] = build_leaderboards(store.load())
    assert board.primary_column.ideal == 0.0
    ranks = dict(zip(board.frame["model"], board.frame["rank"]))
    assert ranks == {"faithful": 1, "mirror": 1, "underfitter": 3, "copier": 4}
    markdown = render_leaderboards([board], "md")
    assert "ct →0" in markdown and "closest to 0 is best" in markdown
    assert "| **0.300** |" in markdown and "| **-0.300** |" in markdown and "| 2.000 |" in markdown
    assert r"ct $\to$0" in render_leaderboards([board], "latex")


def test_a_study_refuses_to_optimise_c_t():
    from ganbench.errors import GanbenchError
    from ganbench.study.engine import _metric_direction

    assert _metric_direction("fid") is False and _metric_direction("isc") is True
    with pytest.raises(GanbenchError, match="no single value named 'ct' to optimise"):
        _metric_direction("ct")
