"""Vendi Score: identical samples give 1, k orthogonal equal clusters give k, unequal clusters
their closed form, both eigenproblems (n < D, n >= D) against numpy on the n x n kernel, and
the metric through the evaluation runner on LeNet features of the digits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganbench.errors import InputError
from ganbench.metrics.vendi import similarity_eigenvalues, vendi_score

pytestmark = pytest.mark.usefixtures("one_thread")


def numpy_vendi(x: np.ndarray) -> float:
    """exp of the Shannon entropy of the eigenvalues of K / n, K = the n x n cosine similarity."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    eigenvalues = np.linalg.eigvalsh(unit @ unit.T / len(x))
    positive = eigenvalues[eigenvalues > 0]
    return float(np.exp(-np.sum(positive * np.log(positive))))


def test_identical_samples_score_one():
    x = torch.tensor(np.random.default_rng(0).normal(size=(1, 6))).repeat(10, 1)
    assert vendi_score(x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k, per_cluster, dim", [(3, 4, 5), (2, 2, 10), (5, 1, 5)])
def test_orthogonal_equal_clusters_score_their_number(k, per_cluster, dim):
    rng = np.random.default_rng(k)
    # cluster c: positive multiples of the basis vector e_c (cosine similarity ignores length)
    x = np.concatenate([np.eye(dim)[c] * rng.uniform(0.5, 3.0, (per_cluster, 1)) for c in range(k)])
    assert vendi_score(torch.tensor(x)) == pytest.approx(k, rel=1e-12)


def test_unequal_clusters_have_the_entropy_of_their_shares():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [5.0, 0.0], [0.0, 1.0]])  # shares 3/4 and 1/4
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert vendi_score(x) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n, dim", [(12, 5), (5, 12), (7, 7)])
def test_equals_numpy_on_the_full_kernel(n, dim):
    x = np.random.default_rng(n * dim).normal(0.3, 1.0, (n, dim))
    assert vendi_score(torch.tensor(x)) == pytest.approx(numpy_vendi(x), rel=1e-10)
    assert vendi_score(torch.tensor(x, dtype=torch.float32)) == pytest.approx(numpy_vendi(x), rel=1e-5)
    eigenvalues = similarity_eigenvalues(torch.tensor(x))
    assert len(eigenvalues) == min(n, dim) and float(eigenvalues.sum()) == pytest.approx(1.0, rel=1e-12)


def test_a_zero_vector_is_refused():
    with pytest.raises(InputError, match="all zeros"):
        vendi_score(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_vendi_through_the_evaluation_runner():
    from ganbench.data import load_images
    from ganbench.evaluation import evaluate
    from ganbench.images import to_rgb_uint8
    from ganbench.metrics.lenet import lenet_mnist

    result = evaluate("digits:test", metrics=["vendi"], extractor="lenet-mnist", device="cpu", progress=False,
                      use_cache=False, bootstrap=20)
    images, _ = load_images("digits", split="test")
    with torch.inference_mode():
        pool = lenet_mnist()(to_rgb_uint8(images), ("pool",))["pool"]
    assert result.value("vendi") == pytest.approx(numpy_vendi(pool.double().numpy()), rel=1e-9)
    row = result.rows[0]
    assert row["higher_is_better"] and row["num_reference"] is None and row["extractor"] == "lenet-mnist"
    assert row["ci_low"] < row["value"] < row["ci_high"]
