"""FID∞ / IS∞ (Chong & Forsyth 2020, metrics/infinity.py): the subsets, the fit against
1/N, its extrapolation on features where the answer is known in closed form, real MNIST
features, the sample-size advisor and ``ganbench eval --curve``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.errors import InputError
from ganbench.metrics.infinity import fid_infinity, fit_sizes, isc_infinity, samples_to_resolve

pytestmark = pytest.mark.usefixtures("one_thread")


def test_paper_sizes():
    # mchong6/FID_IS_infinity score_infinity.py: np.linspace(5000, 50000, 15).astype('int32')
    sizes = fit_sizes(50_000)
    assert sizes == tuple(int(n) for n in np.linspace(5000, 50000, 15).astype(np.int32))
    assert (sizes[0], sizes[1], sizes[-1], len(sizes)) == (5000, 8214, 50000, 15)


def test_exact_line_is_recovered():
    """One-hot rows ``s e_i + t e_(M+1)`` against a reference point at 0: every N-subset of
    distinct rows has |mean|^2 = t^2 + s^2/N and tr(cov) = s^2 exactly, so FID_N = t^2 + s^2 +
    s^2/N for any subset drawn without replacement (a repeated row would change both)."""
    m, s, t = 300, 3.0, 2.0
    fake = torch.cat([s * torch.eye(m, dtype=torch.float64), torch.full((m, 1), t, dtype=torch.float64)], dim=1)
    point = torch.zeros(2, m + 1, dtype=torch.float64)
    sizes = fit_sizes(m, points=15, min_n=30)
    out = fid_infinity(fake, point, sizes=sizes, generator=torch.Generator().manual_seed(0))
    for n in sizes:
        assert out[f"fid_n{n}"] == pytest.approx(t * t + s * s + s * s / n, rel=1e-10)
    assert out["fid_inf"] == pytest.approx(t * t + s * s, rel=1e-10)
    assert out["fid_inf_slope"] == pytest.approx(s * s, rel=1e-9)


def _gaussian_rows(n: int, mu: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows whose sample mean and covariance (ddof=1) are exactly ``mu`` and ``sigma``."""
    z = torch.randn(n, len(mu), generator=generator, dtype=torch.float64)
    z = z - z.mean(0)
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(torch.cov(z.T)), z.T, upper=False).T
    return white @ torch.linalg.cholesky(sigma).T + mu


def test_gaussian_extrapolation_recovers_the_population_fid():
    """Inputs from N(0.1, diag(lam)) in 32-d against reference statistics exactly N(0, I):
    FID∞ = |0.1|^2 * 32 + sum (sqrt(lam) - 1)^2 in closed form. Over 40 inputs of 4,000
    samples (sizes 400..4,000), FID at 4,000 is biased up (measured +0.087, 6.6 standard
    errors of the mean; at 400: +0.87); FID∞ recovers the closed form to within 0.04
    (measured +0.007; the standard error of its mean over 40 inputs is 0.015, one input's
    FID∞ spreads by 0.096)."""
    d, m = 32, 4000
    lam = torch.linspace(0.2, 3.0, d, dtype=torch.float64)
    real = _gaussian_rows(1000, torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64),
                          torch.Generator().manual_seed(0))
    exact = 0.1**2 * d + float(((lam.sqrt() - 1) ** 2).sum())
    sizes = fit_sizes(m, points=15, min_n=400)
    inf, last = [], []
    for seed in range(40):
        g = torch.Generator().manual_seed(seed + 1)
        fake = torch.randn(m, d, generator=g, dtype=torch.float64) * lam.sqrt() + 0.1
        out = fid_infinity(fake, real, sizes=sizes, generator=g)
        inf.append(out["fid_inf"])
        last.append(out[f"fid_n{m}"])
    assert abs(np.mean(inf) - exact) < 0.04
    assert np.mean(last) - exact > 0.05


@pytest.fixture(scope="module")
def mnist_features(data_dir):
    """lenet-mnist features of 1,000 MNIST test digits (the reference) and of 800 MNIST
    training digits with Gaussian pixel noise of sd 25 (FID 64; the clean ones: 10)."""
    from ganbench.data import load_images
    from ganbench.images import to_rgb_uint8
    from ganbench.metrics.lenet import lenet_mnist

    digits = load_images("mnist", "train", limit=800)[0].float()
    noise = 25 * torch.randn(digits.shape, generator=torch.Generator().manual_seed(0))
    net = lenet_mnist()
    with torch.no_grad():
        real = net(to_rgb_uint8(load_images("mnist", "test", limit=1000)[0]))
        fake = net(to_rgb_uint8((digits + noise).clamp(0, 255).to(torch.uint8)))
    return real, fake


def test_mnist_fid_inf_below_fid_at_largest_n(mnist_features):
    """FID falls with N (measured 87 at N = 100, 64 at 800), so FID∞ (measured 60) lies below
    the FID of all 800 samples (slopes 1,200-2,900 over 8 subset seeds, all positive).
    With a far larger FID (Fashion-MNIST: 520) the subsets' noise in the mean term, which
    grows with the distance, swamps the 1/N bias at these N and the slope's sign is luck."""
    real, fake = mnist_features
    sizes = fit_sizes(800, points=15, min_n=100)
    out = fid_infinity(fake["pool"], real["pool"], sizes=sizes, generator=torch.Generator().manual_seed(0))
    assert out["fid_inf_slope"] > 0
    assert out["fid_inf"] < out["fid_n800"] < out["fid_n100"]


def test_mnist_isc_inf_above_isc_at_largest_n(mnist_features):
    """The Inception Score is biased low at small N (the class marginal of few samples is
    too peaked): IS∞ lies above the IS of all samples (slopes -23 to -58 over 8 seeds)."""
    _, fake = mnist_features
    sizes = fit_sizes(800, points=15, min_n=100)
    out = isc_infinity(fake["logits"], sizes=sizes, generator=torch.Generator().manual_seed(0))
    assert out["isc_inf_slope"] < 0
    assert out["isc_inf"] > out["isc_n800"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(available=1000), "fid-inf fits subsets of 5000 samples and more but the input has 1000; give more "
                           "samples or lower the smallest: -o fid-inf.min_n=N (or -o fid-inf.sizes=N1,N2,...)"),
    (dict(available=100, sizes=(50, 200)), "fits subsets of up to 200 samples but the input has 100"),
    (dict(available=100, min_n=100), "fid-inf needs two different subset sizes to fit a line, got [100]"),
    (dict(available=100, points=1, min_n=10), "needs points >= 2 and min_n >= 2"),
])
def test_too_few_samples_is_one_line_error(kwargs, message):
    available = kwargs.pop("available")
    with pytest.raises(InputError) as err:
        fit_sizes(available, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_samples_to_resolve_by_hand():
    # no bias (slope 0): 2 * sqrt(2) * 0.5 * sqrt(1000 / N) = 1  <=>  N = 8 * 1000 * 0.25 = 2000
    assert samples_to_resolve(1.0, 0.0, 0.5, 1000) == 2000
    # slope 1000: 1 - 1000/N = sqrt(2000/N)  <=>  with u = 1/sqrt(N): 1000 u^2 + sqrt(2000) u - 1 = 0,
    # u = (sqrt(6000) - sqrt(2000)) / 2000 = (sqrt(3) - 1) / sqrt(2000), N = 2000 / (4 - 2 sqrt(3))
    # = 1000 (2 + sqrt(3)) = 3732.05, rounded up
    assert samples_to_resolve(1.0, 1000.0, 0.5, 1000) == math.ceil(1000 * (2 + math.sqrt(3))) == 3733
    # a bias larger than the difference must be outgrown even without noise: N > slope / difference
    assert samples_to_resolve(1.0, 1000.0, 0.0, 1000) == 1000
    with pytest.raises(InputError):
        samples_to_resolve(0.0, 1.0, 0.5, 1000)


def _npz(path, n, seed):
    np.savez(path, images=np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8))
    return str(path)


def test_eval_curve_prints_the_points_of_the_fit(tmp_path):
    fake, real = _npz(tmp_path / "fake.npz", 60, 0), _npz(tmp_path / "real.npz", 60, 1)
    args = ["eval", "--no-record", "-q", "--no-cache", "--extractor", "lenet-mnist", "-i", fake, "-r", real]
    res = CliRunner().invoke(main, [*args, "-m", "fid-inf", "-o", "fid-inf.sizes=20,40,60", "--curve"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("fid-inf curve"))
    points = lines[start + 1:start + 4]
    assert [line.split()[0] for line in points] == ["N=20", "N=40", "N=60"]
    few = CliRunner().invoke(main, [*args, "-m", "fid-inf"])  # the paper's smallest N is 5,000
    assert few.exit_code == 2 and "fid-inf needs at least 5000 samples per input but the input has 60" in few.output
    bad = CliRunner().invoke(main, [*args, "-m", "fid", "--curve"])
    assert bad.exit_code == 2
    assert [line for line in bad.output.splitlines() if line.startswith("Error")] == \
        ["Error: --curve prints the points of the fit of fid-inf or isc-inf: add -m fid-inf or -m isc-inf"]
