"""LPIPS (ganbench.metrics.lpips) against the lpips package and torch-fidelity, and the
LPIPS-diversity metric, all with seeded (non-ImageNet) backbones.

The seeded torchvision files are put in a private torch hub cache under their official
names, where torchvision (hence lpips and torch-fidelity) and ganbench's resolver all
find them: the references run unmodified, on the same weights.
"""
from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch

from ganbench.errors import GanbenchError, InputError, MissingFileError
from ganbench.generative import LatentSpec, ModuleGenerator
from ganbench.weights import CATALOG, sha256_file

NET_KEYS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory, vgg16_weights):
    """A TORCH_HOME whose hub cache holds seeded AlexNet / VGG16 / SqueezeNet files and
    torch-fidelity's LPIPS linear weights (the lpips wheel's vgg.pth, which it re-uploads)."""
    from ganbench.metrics.lpips import lin_weights_path
    from ganbench.testing import make_seeded_alexnet_weights, make_seeded_squeezenet_weights

    home = tmp_path_factory.mktemp("torch-home")
    hub = home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    make_seeded_alexnet_weights(hub / CATALOG["alexnet"].filename, seed=0)
    make_seeded_squeezenet_weights(hub / CATALOG["squeezenet1_1"].filename, seed=0)
    os.symlink(vgg16_weights, hub / CATALOG["vgg16"].filename)
    shutil.copy(lin_weights_path("vgg"), hub / "weights-vgg16-lpips.pth")
    return home


@pytest.fixture
def torch_home(hub_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub_home))
    monkeypatch.delenv("GANBENCH_WEIGHTS_DIR", raising=False)
    return hub_home


def _images(n: int, size: int | tuple[int, int], seed: int) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    # Smooth-ish images (upsampled noise) so features are not all alike.
    small = torch.randint(0, 256, (n, 3, h // 4, w // 4), generator=g).float()
    return torch.nn.functional.interpolate(small, (h, w), mode="bilinear").round().to(torch.uint8)


def _reference_lpips(net: str):
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net=net, pretrained=True, verbose=False)  # trunk from the hub cache


@pytest.mark.parametrize("net,size", [("alex", 64), ("vgg", 32), ("squeeze", (48, 64))])
def test_matches_lpips_package(torch_home, net, size):
    from ganbench.metrics.lpips import build_lpips

    a, b = _images(4, size, seed=1), _images(4, size, seed=2)
    ours = build_lpips(net)
    ref = _reference_lpips(net)
    with torch.no_grad():
        expected = ref(a.float() / 127.5 - 1, b.float() / 127.5 - 1).flatten()
    got = ours(a, b)
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert ours.weights_sha256 == sha256_file(torch_home / "hub" / "checkpoints" / CATALOG[NET_KEYS[net]].filename)
    assert ours.weights_standard is False
    assert torch.equal(ours(a, a), torch.zeros(4))


def test_torch_fidelity_convention_matches_its_similarity(torch_home):
    from torch_fidelity.utils import create_sample_similarity

    from ganbench.metrics.lpips import build_lpips

    ref = create_sample_similarity("lpips-vgg16", cuda=False, sample_similarity_resize=64,
                                   sample_similarity_dtype="uint8", verbose=False)
    ours = build_lpips("vgg", convention="torch-fidelity", resize=64)
    ours_lpips = build_lpips("vgg", resize=64)
    for size in (32, 80):  # bilinear up to 64, area down to 64
        a, b = _images(3, size, seed=3), _images(3, size, seed=4)
        with torch.no_grad():
            expected = ref(a, b)
        torch.testing.assert_close(ours(a, b), expected, rtol=1e-5, atol=1e-6)
        # The lpips convention differs from it only by float rounding of the normalisation.
        torch.testing.assert_close(ours_lpips(a, b), expected, rtol=1e-4, atol=1e-6)


def test_explicit_path_and_env_dir(torch_home, tmp_path, monkeypatch):
    from ganbench.metrics.lpips import build_lpips
    from ganbench.testing import make_seeded_alexnet_weights

    other = make_seeded_alexnet_weights(tmp_path / "mine.pth", seed=5)
    explicit = build_lpips("alex", weights=other)
    assert explicit.weights_sha256 == sha256_file(other)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    shutil.copy(other, env_dir / CATALOG["alexnet"].filename)
    monkeypatch.setenv("GANBENCH_WEIGHTS_DIR", str(env_dir))
    assert build_lpips("alex").weights_sha256 == explicit.weights_sha256


def test_missing_backbone_names_file_and_sha(tmp_path, monkeypatch):
    from ganbench.metrics.lpips import build_lpips

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("GANBENCH_WEIGHTS_DIR", raising=False)
    for net, key in NET_KEYS.items():
        with pytest.raises(MissingFileError) as info:
            build_lpips(net)
        assert CATALOG[key].filename in str(info.value) and CATALOG[key].sha256 in str(info.value)
    with pytest.raises(MissingFileError, match="nowhere.pth"):
        build_lpips("alex", weights=tmp_path / "nowhere.pth")


def test_bad_inputs(torch_home, tmp_path):
    from ganbench.metrics.lpips import build_lpips

    torch.save({"features.0.weight": torch.zeros(2, 2)}, tmp_path / "bad.pth")
    with pytest.raises(GanbenchError, match="not a torchvision alexnet state dict"):
        build_lpips("alex", weights=tmp_path / "bad.pth")
    with pytest.raises(GanbenchError, match="Did you mean 'alex'"):
        build_lpips("alexx")
    with pytest.raises(InputError, match="at least 31 px"):
        build_lpips("alex")(_images(1, 28, 0), _images(1, 28, 1))


# -- LPIPS diversity ---------------------------------------------------------------------------
class NoisyPattern(torch.nn.Module):
    """A fixed pattern plus ``scale`` times a noise-driven pattern; optional class offset."""

    def __init__(self, scale: float, z_dim: int = 8, size: int = 32, classes: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.scale, self.size = scale, size
        self.base = torch.rand(1, 3, size, size, generator=g) * 1.2 - 0.6
        self.proj = torch.randn(z_dim, 3 * 8 * 8, generator=g) / z_dim ** 0.5
        self.class_pattern = torch.rand(max(classes, 1), 3, size, size, generator=g) * 0.6 - 0.3

    def forward(self, z, labels=None):
        noise = torch.nn.functional.interpolate((z @ self.proj).view(-1, 3, 8, 8), self.size, mode="bilinear")
        x = self.base + self.scale * noise
        if labels is not None:
            x = x + self.class_pattern[labels]
        return x.clamp(-1, 1)


def _diversity(module, torch_home, classes=0, **options):
    from ganbench.registry import metrics

    metric = metrics.get("lpips-diversity")
    model = ModuleGenerator(module, LatentSpec(8, num_classes=classes, image_size=32))
    return metric.compute(model, generator=torch.Generator().manual_seed(0), device="cpu", batch_size=16,
                          weights=None, **{"num_pairs": 24, **options})


def test_diversity_zero_when_noise_is_ignored(torch_home):
    from ganbench.registry import metrics

    assert metrics.get("lpips-diversity").needs_generator
    out = _diversity(NoisyPattern(0.0), torch_home)
    assert out["lpips_diversity"] == pytest.approx(0.0, abs=1e-7)
    assert out.extractor["extractor"] == "lpips-alex" and out.extractor["weights_standard"] is False
    # Conditional: both samples of a pair share the class, so class-only variation counts 0.
    out = _diversity(NoisyPattern(0.0, classes=5), torch_home, classes=5)
    assert out["lpips_diversity"] == pytest.approx(0.0, abs=1e-7)
    assert _diversity(NoisyPattern(0.3, classes=5), torch_home, classes=5)["lpips_diversity"] > 1e-3


def test_diversity_grows_with_noise_scale(torch_home):
    values = [_diversity(NoisyPattern(s), torch_home)["lpips_diversity"] for s in (0.05, 0.2, 0.6)]
    assert values[0] > 0 and values[0] < values[1] < values[2], values


def test_diversity_independent_of_batch_size(torch_home):
    from ganbench.registry import metrics

    model = ModuleGenerator(NoisyPattern(0.3), LatentSpec(8, image_size=32))
    compute = metrics.get("lpips-diversity").compute
    a = compute(model, generator=torch.Generator().manual_seed(1), device="cpu", batch_size=5, weights=None,
                num_pairs=12)
    b = compute(model, generator=torch.Generator().manual_seed(1), device="cpu", batch_size=64, weights=None,
                num_pairs=12)
    assert a["lpips_diversity"] == pytest.approx(b["lpips_diversity"], rel=1e-5)
    assert a["lpips_diversity_std"] == pytest.approx(b["lpips_diversity_std"], rel=1e-4)
