"""``ganbench compare``: paired differences with intervals and p-values. Two generators
drawing from the same distribution are rarely called different; a generator and a
noisier copy of it always are; bad comparisons are one-line errors."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.comparison import compare
from ganbench.errors import InputError
from ganbench.generative import GenerativeModel, LatentSpec

pytestmark = pytest.mark.usefixtures("one_thread")


class DigitBank(GenerativeModel):
    """Draws stored MNIST digits (the one z picks), plus Gaussian pixel noise of ``noise``."""

    def __init__(self, images: torch.Tensor, noise: float = 0.0):
        super().__init__()
        self.latent = LatentSpec(z_dim=2, channels=1, image_size=28, output_range=(0.0, 255.0))
        self.images, self.noise = images.float(), noise

    def generate(self, z, labels=None):
        pick = ((z[:, 0].abs() + z[:, 1].abs()) * 1e4).long() % len(self.images)
        out = self.images[pick]
        if self.noise:
            out = out + self.noise * torch.randn(out.shape, generator=torch.Generator().manual_seed(int(pick[0])))
        return out.clamp(0, 255)


@pytest.fixture(scope="module")
def banks(data_dir):
    from ganbench.data import load_images

    train, _ = load_images("mnist", "train", limit=20000)
    return DigitBank(train[:10000]), DigitBank(train[10000:]), DigitBank(train[:10000], noise=40.0)


def run(a, b, seed, **kw):
    return compare(a, b, "mnist:test", ["fid"], extractor="lenet-mnist", num_samples=1000, num_reference=2000,
                   device="cpu", seed=seed, progress=False, **kw)


def test_same_distribution_is_rarely_called_different(banks):
    first, second, _ = banks
    p_values = [run(first, second, seed).differences[0][1].p_value for seed in range(8)]
    assert sum(p > 0.05 for p in p_values) >= 6, p_values  # a 5 % test: 3+ rejections in 8 has p ~ 0.006


def test_a_noisier_copy_is_distinguishable_and_worse(banks):
    first, _, noisy = banks
    result = run(noisy, first, 0)
    metric, diff, higher = result.differences[0]
    assert result.paired_latents and metric == "fid" and not higher
    assert diff.difference > 0 and diff.low > 0 and diff.p_value < 0.01
    assert "B is better, distinguishable" in result.summary()


def test_identical_generators_differ_by_exactly_nothing(banks):
    first = banks[0]
    diff = run(first, first, 0).differences[0][1]
    assert diff.difference == 0 and diff.low == diff.high == 0 and diff.p_value == 1.0


def test_bad_comparisons_are_one_line_errors(banks, tmp_path):
    import numpy as np

    first = banks[0]
    with pytest.raises(InputError, match="compare works on metrics of the features"):
        compare(first, first, "mnist:test", ["ppl"], extractor="lenet-mnist", num_samples=100, progress=False)
    np.save(tmp_path / "a.npy", torch.randint(0, 255, (50, 1, 28, 28), dtype=torch.uint8).numpy())
    np.save(tmp_path / "b.npy", torch.randint(0, 255, (60, 1, 28, 28), dtype=torch.uint8).numpy())
    out = CliRunner().invoke(main, ["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-r", "mnist:test",
                                    "--extractor", "lenet-mnist", "-q", "--no-cache"])
    assert out.exit_code == 2 and "compare at the same N (--num-samples 50)" in out.output
    out = CliRunner().invoke(main, ["compare", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), "-r", "mnist:test",
                                    "--extractor", "lenet-mnist", "-q", "--bootstrap", "3"])
    assert out.exit_code == 2 and "at least 10 replicates" in out.output


def test_feature_archives_compare_without_the_generators(banks, tmp_path):
    """``eval --save-features`` keeps the pass; ``compare`` of two archives gives the numbers
    of comparing the generators themselves, and refuses archives of different protocols."""
    from ganbench.evaluation import evaluate

    first, _, noisy = banks
    common = dict(extractor="lenet-mnist", num_samples=1000, num_reference=2000, device="cpu", seed=0,
                  progress=False, bootstrap=0)
    paths = [tmp_path / "noisy.safetensors", tmp_path / "first.safetensors"]
    for generator, path in zip((noisy, first), paths):
        evaluate(generator, "mnist:test", ["fid"], save_features=path, **common)
    direct = run(noisy, first, 0).differences[0][1]
    archived = compare(*map(str, paths), metrics=["fid"], extractor="lenet-mnist", seed=0).differences[0][1]
    assert archived.difference == pytest.approx(direct.difference, rel=1e-9)
    assert (archived.low, archived.high, archived.p_value) == pytest.approx((direct.low, direct.high, direct.p_value))
    with pytest.raises(InputError, match="never overwritten"):
        evaluate(first, "mnist:test", ["fid"], save_features=paths[1], **common)
    other_n = tmp_path / "small.safetensors"
    evaluate(first, "mnist:test", ["fid"], save_features=other_n, **{**common, "num_samples": 500})
    with pytest.raises(InputError, match="number of samples"):
        compare(str(paths[0]), str(other_n), metrics=["fid"], extractor="lenet-mnist")
