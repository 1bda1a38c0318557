"""Memorization: does a generator copy its training set?

Both metrics need a third set besides the generated samples and the reference: the
**training split** the model learned from (what it could copy). The option ``train`` names
it; ``"auto"`` takes the train split of the reference's dataset (``-r mnist:test`` ->
``mnist:train``), else of the dataset a ganbench checkpoint was trained on. Its features come
through the run's extractor (and the feature cache), like the reference's; its name, size and
content hash are recorded in the protocol.

``ct`` -- Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric Test to Detect Data-Copying
in Generative Models" (AISTATS). The reference is the held-out **test** split ``P_n``, the
input the generated samples ``Q_m``, the training split ``T``. Feature space is cut into
k-means cells fitted on ``T``; in each cell the distances from generated samples to their
nearest training sample of the cell are compared with those of the test samples by a
Mann-Whitney U test, z-scored; ``C_T`` is the average of the cells' z-scores weighted by
their share of test samples, over the cells holding more than ``tau_samples`` generated
samples. ``C_T << 0``: generated samples sit closer to the training set than fresh data
does (data-copying); ``>> 0``: farther (underfitting); under the null hypothesis (generated
samples as far from the training set as fresh data) a weighted mean of z-scores, so about
standard normal or tighter. Its ideal is 0, neither higher nor lower: leaderboards rank it
by ``|C_T|``. Definitions as the authors' code has them
(github.com/casey-meehan/data-copying, ``data_copying_tests.py``: ``Zu``, ``Zu_cells``,
``C_T``; read at commit a0ba2db): U is scipy's statistic of the generated distances
(``mannwhitneyu(LQm, LPn, alternative="less")``), z-scored with mean ``nm/2 - 0.5`` and
standard deviation ``sqrt(nm(n+m+1)/12)`` (no tie correction); in-cell nearest neighbours
are Euclidean, among the cell's training samples only; a cell without test samples is an
error. Defaults from their MNIST experiments (``MNIST_kde_test.py``, ``MNIST_vae_test.py``):
50 cells, ``tau = 20 / m`` (a cell enters with more than 20 generated samples), in a
64-d space; wider features are first reduced to 64 dimensions by PCA fitted on the
training split, as dgm-eval does (Stein et al. 2023, ``dgm_eval/metrics/ct.py``, which
also uses 3 cells; ``-o ct.cells=3`` for its setting). k-means: scikit-learn's, 10
initialisations, seeded from the evaluation seed.

``authpct`` -- Alaa et al. 2022, "How Faithful is your Synthetic Data?" (ICML), the
authenticity score as dgm-eval computes it (``dgm_eval/metrics/authpct.py``): the
percentage of generated samples whose nearest training sample is closer to another
training sample than to them. Done because it costs one nearest-neighbour pass and no
extra set: it needs only the training split, and reads per sample where C_T reads per
cell. On the full feature (no PCA), float32 distances as dgm-eval's ``torch.cdist``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from ganbench.errors import InputError
from ganbench.metrics.base import Metric, MetricResult, keyword_defaults, register_metric

CHUNK = 1024  # query rows per distance block: 1024 x 60,000 float32 distances are 0.25 GB


def training_split(train: str, inputs: Any, metric: str):
    """The training split as an :class:`~ganbench.sources.ImageSource`: ``train`` resolved, or for
    ``"auto"`` the train split of the reference's dataset (``mnist:test`` -> ``mnist:train``), else of
    the dataset a ganbench checkpoint was trained on."""
    from ganbench.data.contract import SPLITS
    from ganbench.sources import resolve_source

    if train == "auto":
        reference = inputs.real.descriptor if inputs.real is not None else ""
        name, _, split = reference.partition(":")
        if split not in SPLITS:
            name, split = inputs.fake.provenance().get("dataset") or "", "train"
        if not name or ":" in name:
            raise InputError(f"{metric} needs the training split the model learned from: "
                             f"-o {metric}.train=DATASET:train (or a folder / .npz)")
        train = f"{name}:train"
    return resolve_source(train)


def split_provenance(source) -> dict[str, Any]:
    """How the training split is recorded in the protocol."""
    return {"train": source.descriptor, "train_content": (source.content_key() or "")[:16], "num_train": len(source)}


def nearest_distances(queries: torch.Tensor, points: torch.Tensor, *,
                      exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance from each row of ``queries`` (Q, D) to its nearest row of ``points``
    (P, D), and that row's index; ``exclude_self``: queries are ``points`` and a row is not its own neighbour."""
    dists, index = [], []
    for start in range(0, len(queries), CHUNK):
        block = torch.cdist(queries[start:start + CHUNK], points)
        if exclude_self:
            rows = torch.arange(len(block))
            block[rows, rows + start] = float("inf")
        d, i = block.min(1)
        dists.append(d)
        index.append(i)
    return torch.cat(dists), torch.cat(index)


# -- C_T ---------------------------------------------------------------------------------------
def mann_whitney_z(generated: np.ndarray, test: np.ndarray) -> float:
    """The authors' Z_U: U of ``generated`` against ``test`` (pairs with the generated value the
    larger, ties counting half), centred on ``nm/2 - 0.5`` and scaled by ``sqrt(nm(n+m+1)/12)``.
    Negative: generated distances are the smaller."""
    from scipy.stats import rankdata

    m, n = len(generated), len(test)
    ranks = rankdata(np.concatenate([generated, test]))
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))


def reduce_dimension(train: np.ndarray, others: list[np.ndarray], dims: int, seed: int) -> list[np.ndarray]:
    """``[train, *others]`` projected on the first ``dims`` principal axes of ``train``
    (unchanged when ``dims`` is 0 or the features have no more dimensions)."""
    if not dims or train.shape[1] <= dims:
        return [train, *others]
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dims, random_state=seed).fit(train)
    return [pca.transform(x) for x in (train, *others)]


def cell_labels(train: np.ndarray, others: list[np.ndarray], cells: int, seed: int) -> list[np.ndarray]:
    """The k-means cell (fitted on ``train``) of every row of ``train`` and of each of ``others``."""
    from sklearn.cluster import KMeans

    if len(train) < cells:
        raise InputError(f"ct: {cells} cells need at least as many training samples, have {len(train)}")
    kmeans = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(train)
    return [kmeans.predict(x) for x in (train, *others)]


def cell_z_scores(test: np.ndarray, generated: np.ndarray, train: np.ndarray, labels: list[np.ndarray],
                  cells: list[int]) -> np.ndarray:
    """Z_U of each cell in ``cells``: in-cell distances to the nearest in-cell training sample."""
    train_cells, test_cells, generated_cells = labels
    scores = []
    for cell in cells:
        points = torch.from_numpy(train[train_cells == cell])
        dist_test = nearest_distances(torch.from_numpy(test[test_cells == cell]), points)[0]
        dist_generated = nearest_distances(torch.from_numpy(generated[generated_cells == cell]), points)[0]
        scores.append(mann_whitney_z(dist_generated.numpy(), dist_test.numpy()))
    return np.array(scores)


def c_t(generated: torch.Tensor, test: torch.Tensor, train: torch.Tensor, *, cells: int = 50,
        tau_samples: int = 20, pca: int = 64, seed: int = 0) -> float:
    """Meehan et al.'s C_T of ``generated`` (m, D) against ``test`` (n, D), both judged by their
    distance to ``train`` (l, D) (see the module docstring). A cell enters when it holds more
    than ``tau_samples`` generated samples; ``pca``: dimensions kept (0: all)."""
    as_numpy = [x.double().cpu().numpy() for x in (train, test, generated)]
    train_, test_, generated_ = reduce_dimension(as_numpy[0], as_numpy[1:], pca, seed)
    labels = cell_labels(train_, [test_, generated_], cells, seed)
    train_counts, test_counts = (np.bincount(x, minlength=cells) for x in labels[:2])
    if (np.minimum(train_counts, test_counts) == 0).any():  # the authors' Zu_cells refuses these too
        empty = int(np.argmin(np.minimum(train_counts, test_counts)))
        raise InputError(f"ct: cell {empty} of {cells} holds no test or no training samples; lower "
                         f"-o ct.cells or give more reference samples")
    entered = np.flatnonzero(np.bincount(labels[2], minlength=cells) > tau_samples)
    if len(entered) == 0:
        raise InputError(f"ct: no cell holds more than {tau_samples} of the {len(generated_)} generated samples; "
                         f"give more samples or lower -o ct.cells")
    weights = test_counts[entered] / len(test_)
    scores = cell_z_scores(test_, generated_, train_, labels, list(entered))
    return float(weights @ scores / weights.sum())


def compute_ct(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor], *, generator: torch.Generator,
               inputs: Any, features_of: Callable, train: str = "auto", cells: int = 50, tau_samples: int = 20,
               pca: int = 64) -> MetricResult:
    split = training_split(train, inputs, "ct")
    if split.content_key() is not None and split.content_key() == inputs.real.content_key():
        raise InputError(f"ct: the reference {inputs.real.descriptor!r} is the training split itself; the "
                         f"reference must be held-out data (e.g. -r mnist:test)")
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    value = c_t(fake["pool"], real["pool"], features_of(split)["pool"], cells=cells, tau_samples=tau_samples,
                pca=pca, seed=seed)
    return MetricResult({"ct": value}, options=split_provenance(split))


# -- authenticity ----------------------------------------------------------------------------------
def authenticity(generated: torch.Tensor, train: torch.Tensor) -> float:
    """Percentage (0..100) of ``generated`` (m, D) rows farther from their nearest ``train``
    (l, D) row than that row is from its own nearest other training row (Alaa et al. 2022)."""
    if len(train) < 2:
        raise InputError(f"authpct needs at least 2 training samples, have {len(train)}")
    train = train.float().cpu()
    train_nearest, _ = nearest_distances(train, train, exclude_self=True)
    generated_nearest, index = nearest_distances(generated.float().cpu(), train)
    return float(100.0 * (train_nearest[index] < generated_nearest).double().mean())


def compute_authpct(fake: dict[str, torch.Tensor], real, *, generator: torch.Generator, inputs: Any,
                    features_of: Callable, train: str = "auto") -> MetricResult:
    split = training_split(train, inputs, "authpct")
    value = authenticity(fake["pool"], features_of(split)["pool"])
    return MetricResult({"authpct": value}, options=split_provenance(split))


register_metric(Metric(
    name="ct",
    compute=compute_ct,
    features=("pool",),
    needs_reference=True,  # the held-out test split
    higher_is_better={},
    ideal={"ct": 0.0},  # < 0: copies the training set, > 0: underfits; neither side is better by itself
    version=1,
    defaults=keyword_defaults(compute_ct),
    min_samples=lambda options: max(options["cells"], options["tau_samples"] + 1),
    interval=False,  # a z-score: its own scale of chance
    description="Meehan et al. 2020 data-copying test C_T (training split vs held-out reference; << 0: copying)",
))

register_metric(Metric(
    name="authpct",
    compute=compute_authpct,
    features=("pool",),
    needs_reference=False,
    higher_is_better={"authpct": True},
    version=1,
    defaults=keyword_defaults(compute_authpct),
    min_samples=lambda options: 1,
    interval=False,
    description="Alaa et al. 2022 authenticity: % of samples farther from the training set than its own spacing",
))
