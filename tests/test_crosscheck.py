"""``ganbench eval --cross-check``: torch-fidelity recomputes the inception-feature metrics
on the same images with the same (seeded) weights file, and the numbers agree."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from ganbench.cli import main

pytest.importorskip("torch_fidelity")

SMALL = ["-o", "isc.splits=3", "-o", "kid.subsets=4", "-o", "kid.subset_size=20"]  # for 30 images


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """30 tiny RGB images and a reference of 30 others, as .npy files."""
    folder = tmp_path_factory.mktemp("crosscheck")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 16, 16, 3))
    for name, seed in (("fake", 1), ("real", 2)):
        noise = np.random.default_rng(seed).normal(0, 60 if name == "fake" else 30, (30, 16, 16, 3))
        np.save(folder / f"{name}.npy", np.clip(base + noise, 0, 255).astype(np.uint8))
    return folder


def run(folder, weights, *args):
    return CliRunner().invoke(main, ["eval", "--no-record", "-q", "-i", str(folder / "fake.npy"), "-r",
                                     str(folder / "real.npy"), "--weights", str(weights), "--device", "cpu",
                                     "-b", "30", "--cross-check", *args])


def test_cross_check_agrees_with_torch_fidelity(image_files, inception_weights, monkeypatch):
    res = run(image_files, inception_weights, "-m", "fid", "-m", "isc", "-m", "kid", *SMALL)
    assert res.exit_code == 0, res.output
    table = res.stdout[res.stdout.index("cross-check"):].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["fid", "isc", "isc_std", "kid", "kid_std"]
    assert "DISAGREES" not in res.stdout
    # a number torch-fidelity does not reproduce: shown, and the exit status says so
    import ganbench.crosscheck as crosscheck

    monkeypatch.setattr(crosscheck, "_calculate", lambda **kw: {"frechet_inception_distance": 1e6})
    res = run(image_files, inception_weights, "-m", "fid")
    assert res.exit_code == 1 and "DISAGREES" in res.stdout and "cross-check failed" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["-m", "fid", "--extractor", "lenet-mnist"], "torch-fidelity's inception-v3-compat features; "
                                                  "this evaluation uses extractor 'lenet-mnist'"),
    (["-m", "kid", "-o", "kid.rng=generator"], "--cross-check needs kid.rng=torch-fidelity"),
    (["-m", "isc", "-m", "kid", "-o", "kid.seed=1"], "isc.seed == kid.seed"),
    (["-m", "dc"], "torch-fidelity computes none of dc"),
])
def test_cross_check_refuses_what_it_cannot_compare(image_files, inception_weights, args, message):
    res = run(image_files, inception_weights, *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert len([line for line in res.output.splitlines() if line.startswith("Error")]) == 1
