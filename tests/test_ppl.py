"""PPL (ganbench.metrics.ppl): the path maths, closed forms for linear generators, and
agreement with torch-fidelity's ``calculate_metrics(ppl=True)`` on seeded VGG16 weights.

Tolerances: against torch-fidelity, the mean and std agree to a relative 1e-4 (observed
~1e-5) and per-path distances to 1e-3. Both are float32: at epsilon 1e-4 a distance is a
small difference of nearly equal features, and against a float64 computation the
per-path error is ~4e-5 for torch-fidelity's NCHW convolutions and ~2e-4 for ganbench's
channels-last ones (oneDNN picks other kernels) -- far below the uint8 quantisation
both apply to the images, and below the sampling noise of the mean. Closed forms, computed
in float64 end to end: lerp in w is linear, so exact to relative 1e-9; slerp in z carries
the O(epsilon) error of the forward difference against the derivative (relative 1e-3 at
epsilon 1e-4; ~1e-4 observed).
"""
from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pytest
import torch

from ganbench.errors import InputError, MissingFileError, UnknownNameError
from ganbench.generative import GenerativeModel, LatentSpec, ModuleGenerator
from ganbench.metrics.ppl import (compute_ppl, filter_percentiles, lerp, path_distances, path_endpoints, slerp,
                                  summarize, build_similarity)
from ganbench.weights import CATALOG


# -- path maths -----------------------------------------------------------------------------------
def _stylegan_slerp(a, b, t):
    """NVlabs/stylegan3 metrics/perceptual_path_length.py, verbatim maths (unit sphere)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


def test_slerp_direction_is_stylegans_and_norm_is_interpolated():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = torch.rand(6, generator=g, dtype=torch.float64)
    out = slerp(a, b, t)
    torch.testing.assert_close(out / out.norm(dim=-1, keepdim=True), _stylegan_slerp(a, b, t[:, None]))
    torch.testing.assert_close(out.norm(dim=-1), a.norm(dim=-1) + (b.norm(dim=-1) - a.norm(dim=-1)) * t)
    torch.testing.assert_close(slerp(a, b, torch.zeros(6, dtype=torch.float64)), a)
    torch.testing.assert_close(slerp(a, b, torch.ones(6, dtype=torch.float64)), b)
    torch.testing.assert_close(slerp(a, a.clone(), t), a)  # parallel: no NaN


def test_lerp_and_endpoints():
    a, b = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)  # w of shape (N, num_ws, w_dim)
    e0, e1 = path_endpoints(a, b, torch.tensor([0.0, 0.5]), 0.25, "lerp")
    assert e0.dtype == torch.float64
    assert torch.equal(e0[:, 0, 0], torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert torch.equal(e1[:, 0, 0], torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert torch.equal(lerp(a, b, torch.tensor([1.0, 1.0])), b)
    with pytest.raises(UnknownNameError, match="Did you mean 'slerp'"):
        path_endpoints(a, b, torch.zeros(2), 0.1, "slerpp")


def test_filter_percentiles_matches_reference_semantics():
    rng = np.random.RandomState(0)
    d = rng.lognormal(size=1000)
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = filter_percentiles(d)
    assert np.array_equal(kept, d[(d >= lo) & (d <= hi)])
    assert len(kept) == 1000 - 9 - 9  # sample 9 is the 1st percentile ("lower"), 990 the 99th ("higher")
    assert np.array_equal(filter_percentiles(d, None, None), d)
    out = summarize(d)
    assert out["ppl"] == pytest.approx(kept.mean()) and out["ppl_std"] == pytest.approx(kept.std())


# -- closed forms ---------------------------------------------------------------------------------------
RANGE = (-4.0, 4.0)  # declared output range of the linear generators below
PIXELS = 3 * 8 * 8


def _orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q


class LinearGenerator(GenerativeModel):
    """images = A z (A with orthonormal columns); with ``mapping``: w = M z, images = A w."""

    def __init__(self, z_dim: int = 6, mapping: bool = False):
        super().__init__()
        self.latent = LatentSpec(z_dim, output_range=RANGE, image_size=8)
        self.A = _orthonormal(PIXELS, z_dim, seed=1)  # float64: closed forms to float64 rounding
        self.M = (torch.randn(z_dim, z_dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
                  if mapping else None)
        self.has_mapping = mapping

    def mapping(self, z, labels=None):
        return z.to(self.M.dtype) @ self.M.T

    def synthesis(self, w):
        return (w.to(self.A.dtype) @ self.A.T).view(-1, 3, 8, 8)

    def generate(self, z, labels=None):
        return self.synthesis(self.mapping(z) if self.has_mapping else z)


# l2 on images scaled to [0, 1] and averaged over pixels: |A v|^2 / ((hi - lo)^2 * PIXELS).
L2_SCALE = 1.0 / ((RANGE[1] - RANGE[0]) ** 2 * PIXELS)


def _latents(n: int, z_dim: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, z_dim, generator=g, dtype=torch.float64),
            torch.randn(n, z_dim, generator=g, dtype=torch.float64),
            torch.rand(n, generator=g, dtype=torch.float64))


def test_closed_form_slerp_in_z():
    # d/dt [r(t) u(t)] = r' u + r u' with u' _|_ u and |u'| = omega, so the squared speed is
    # (|b| - |a|)^2 + r(t)^2 omega^2; A is an isometry.
    z0, z1, t = _latents(64, 6, seed=0)
    model = LinearGenerator()
    d = path_distances(model, z0, z1, t, similarity=build_similarity("l2", resize=None), epsilon=1e-4,
                       space="z", z_interp="slerp", quantize=False, batch_size=16)
    a, b, tt = z0.double(), z1.double(), t.double()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    omega = torch.acos(((a / na[:, None]) * (b / nb[:, None])).sum(1))
    expected = ((nb - na) ** 2 + (na + (nb - na) * tt) ** 2 * omega ** 2) * L2_SCALE
    np.testing.assert_allclose(d, expected.numpy(), rtol=1e-3)


def test_closed_form_lerp_in_w():
    z0, z1, t = _latents(64, 6, seed=1)
    model = LinearGenerator(mapping=True)
    d = path_distances(model, z0, z1, t, similarity=build_similarity("l2", resize=None), epsilon=1e-4,
                       space="w", quantize=False)
    expected = ((z1 - z0) @ model.M.T).square().sum(1) * L2_SCALE
    np.testing.assert_allclose(d, expected.numpy(), rtol=1e-9)


def test_compute_ppl_closed_form_expectation():
    # space auto -> w; w1 - w0 = M (z1 - z0) ~ N(0, 2 M M^T): E|A(w1 - w0)|^2 = 2 ||M||_F^2.
    model = LinearGenerator(mapping=True)
    n = 3000
    out = compute_ppl(model, generator=torch.Generator().manual_seed(0), num_paths=n, similarity="l2",
                      resize=None, quantize=False, discard_lower=None, discard_upper=None, batch_size=512)
    mm = model.M @ model.M.T
    mean = 2 * mm.trace().item() * L2_SCALE
    std = math.sqrt(2 * (2 * mm).square().sum().item()) * L2_SCALE  # of a Gaussian quadratic form
    assert out["ppl"] == pytest.approx(mean, abs=5 * std / math.sqrt(n))
    assert out["ppl_std"] == pytest.approx(std, rel=0.15)
    assert out.extractor["extractor"] == "l2"


def test_batch_size_independence_and_options():
    model = LinearGenerator()
    kw = dict(num_paths=40, similarity="l2", resize=None, quantize=False, sampling="full")
    a = compute_ppl(model, generator=torch.Generator().manual_seed(3), batch_size=7, **kw)
    b = compute_ppl(model, generator=torch.Generator().manual_seed(3), batch_size=64, **kw)
    assert a["ppl"] == pytest.approx(b["ppl"], rel=1e-6)
    with pytest.raises(InputError, match="mapping network"):
        compute_ppl(model, generator=torch.Generator(), space="w", **kw)
    with pytest.raises(UnknownNameError, match="Did you mean 'full'"):
        compute_ppl(model, generator=torch.Generator(), **{**kw, "sampling": "ful"})
    with pytest.raises(UnknownNameError, match="lpips-vgg16-tf"):
        compute_ppl(model, generator=torch.Generator(), **{**kw, "similarity": "lpips"})


def test_registered():
    from ganbench.registry import metrics

    metric = metrics.get("ppl")
    assert metric.needs_generator and not metric.needs_reference and metric.higher_is_better == {"ppl": False}
    assert metric.defaults["epsilon"] == 1e-4 and metric.defaults["similarity"] == "lpips-vgg16-tf"


# -- torch-fidelity -------------------------------------------------------------------------------------
@pytest.fixture
def torch_home(tmp_path_factory, vgg16_weights, monkeypatch):
    """Seeded VGG16 + the lpips wheel's vgg.pth (torch-fidelity's LPIPS weights file is a
    re-upload of it) in a private torch hub cache, where all three libraries find them."""
    from ganbench.metrics.lpips import lin_weights_path

    home = tmp_path_factory.getbasetemp() / "ppl-torch-home"
    hub = home / "hub" / "checkpoints"
    if not hub.is_dir():
        hub.mkdir(parents=True)
        os.symlink(vgg16_weights, hub / CATALOG["vgg16"].filename)
        shutil.copy(lin_weights_path("vgg"), hub / "weights-vgg16-lpips.pth")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("GANBENCH_WEIGHTS_DIR", raising=False)
    # torch-fidelity 0.4 passes np.percentile(interpolation=...), removed in NumPy 2.4.
    original = np.percentile

    def percentile(a, q, *args, interpolation=None, **kwargs):
        return original(a, q, *args, **({"method": interpolation} if interpolation else {}), **kwargs)

    monkeypatch.setattr(np, "percentile", percentile)
    return home


class Toy(torch.nn.Module):
    def __init__(self, z_dim=16, size=32, classes=0):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.size = size
        self.w = torch.nn.Parameter(torch.randn(z_dim, 3 * size * size, generator=g) * 0.8)
        self.emb = torch.nn.Parameter(torch.randn(max(classes, 1), 3 * size * size, generator=g))

    def forward(self, z, labels=None):
        x = z @ self.w
        if labels is not None:
            x = x + self.emb[labels]
        return torch.tanh(x).view(-1, 3, self.size, self.size)


class Uint8(torch.nn.Module):
    """torch-fidelity's PPL takes uint8 images from the generator."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        from ganbench.images import float_to_uint8

        return float_to_uint8(self.module(*args))


@pytest.mark.parametrize("epsilon,classes", [(1e-4, 0), (1e-2, 3)])
def test_matches_torch_fidelity(torch_home, epsilon, classes):
    import torch_fidelity

    n, z_dim, batch = 24, 16, 8
    toy = Toy(z_dim, classes=classes).eval()
    ref = torch_fidelity.calculate_metrics(
        input1=torch_fidelity.GenerativeModelModuleWrapper(Uint8(toy), z_dim, "normal", classes),
        input1_model_num_samples=n, input1_model_num_classes=classes,  # its PPL reads this, not the wrapper's
        ppl=True, ppl_epsilon=epsilon, ppl_reduction="none", batch_size=batch,
        cuda=False, verbose=False, rng_seed=2020)
    # torch-fidelity's draws: RandomState(seed), z0 then z1, then the labels; t = 0, lerp in z.
    rng = np.random.RandomState(2020)
    z0, z1 = (torch.from_numpy(rng.randn(n, z_dim)).float() for _ in range(2))
    labels = torch.from_numpy(rng.randint(0, classes, (n,))) if classes else None
    model = ModuleGenerator(toy, LatentSpec(z_dim, num_classes=classes, image_size=32))
    d = path_distances(model, z0, z1, torch.zeros(n), labels, similarity=build_similarity("lpips-vgg16-tf"),
                       epsilon=epsilon, z_interp="lerp", batch_size=batch)
    assert (d > 0).mean() > 0.5  # the comparison is not between zeros
    np.testing.assert_allclose(filter_percentiles(d), ref["perceptual_path_length_raw"], rtol=1e-3)
    ours = summarize(d)
    assert ours["ppl"] == pytest.approx(ref["perceptual_path_length_mean"], rel=1e-4)
    assert ours["ppl_std"] == pytest.approx(ref["perceptual_path_length_std"], rel=1e-4)


def test_compute_ppl_with_lpips_records_weights(torch_home):
    from ganbench.weights import sha256_file

    model = ModuleGenerator(Toy(), LatentSpec(16, image_size=32))
    out = compute_ppl(model, generator=torch.Generator().manual_seed(0), num_paths=6, batch_size=6,
                      epsilon=1e-2)
    assert out["ppl"] > 0 and out["ppl_std"] >= 0
    assert out.extractor["extractor"] == "lpips-vgg16-tf" and out.extractor["weights_standard"] is False
    weights_file = torch_home / "hub" / "checkpoints" / CATALOG["vgg16"].filename
    assert out.extractor["weights_sha256"] == sha256_file(weights_file)


def test_missing_vgg16_names_file_and_sha(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GANBENCH_WEIGHTS_DIR", raising=False)
    model = ModuleGenerator(Toy(), LatentSpec(16, image_size=32))
    with pytest.raises(MissingFileError) as info:
        compute_ppl(model, generator=torch.Generator(), num_paths=2)
    assert CATALOG["vgg16"].filename in str(info.value) and CATALOG["vgg16"].sha256 in str(info.value)
