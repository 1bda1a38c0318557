"""``ganbench selfcheck``: numbers that do not depend on the batch size pass; an extractor
that leaks batch statistics into its features (BatchNorm left in training mode, the
classic) is caught, loudly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.metrics.lenet import LeNetExtractor
from ganbench.selfcheck import selfcheck

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def arrays(tmp_path):
    g = torch.Generator().manual_seed(0)
    np.save(tmp_path / "fake.npy", torch.randint(0, 256, (120, 1, 28, 28), generator=g, dtype=torch.uint8).numpy())
    return str(tmp_path / "fake.npy")


def test_the_evaluation_does_not_depend_on_the_batch_size(arrays):
    result = selfcheck(arrays, "mnist:test", ["fid", "kid", "pr"], num_samples=120, num_reference=120,
                       extractor="lenet-mnist", options={"kid": {"subset_size": 50}})
    assert {c.key for c in result.checks} >= {"fid", "kid", "precision", "recall"}
    assert not result.failed, result.summary()
    assert all(c.setting == "batch size 7" for c in result.checks)


def test_batch_statistics_in_the_features_are_caught(arrays, monkeypatch):
    forward = LeNetExtractor.forward

    def leaky(self, images, features=None):  # features centred on their batch: depends on the batching
        return {k: v - v.mean(0, keepdim=True) for k, v in forward(self, images, features).items()}

    monkeypatch.setattr(LeNetExtractor, "forward", leaky)
    result = selfcheck(arrays, "mnist:test", ["fid"], num_samples=120, num_reference=120, extractor="lenet-mnist")
    assert [c.key for c in result.failed] == ["fid"]
    out = CliRunner().invoke(main, ["selfcheck", "-i", arrays, "-r", "mnist:test", "-n", "120",
                                    "--extractor", "lenet-mnist"])
    assert out.exit_code == 1 and "selfcheck FAILED" in out.output and "MOVED beyond 0.001" in out.output


def test_cli_passes_and_says_so(arrays):
    out = CliRunner().invoke(main, ["selfcheck", "-i", arrays, "-r", "mnist:test", "-n", "120", "-m", "fid",
                                    "-m", "isc", "--extractor", "lenet-mnist"])
    assert out.exit_code == 0, out.output
    assert "selfcheck passed" in out.output
