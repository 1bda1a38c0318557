"""Checkpoint files: damaged sidecars, the integrity hash in the header, stale temp files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from ganbench.checkpoints import load_generator, read_checkpoint
from ganbench.errors import GanbenchError
from ganbench.training import TrainOptions, train

TINY = {"g_channels": "4", "d_channels": "4", "image_size": "16"}

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def train_tiny(out, steps=4, **kw):
    return train(TrainOptions(model="dcgan", dataset="digits", steps=steps, batch_size=16, out=str(out),
                              overrides=TINY, checkpoint_every=4, sample_every=0, log_every=2,
                              progress=False, **kw))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run at step 4, trained once per module; tests work on copies."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train_tiny(out)
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("sidecar", ["[1]", '"abc"', "5", "null", "{not json", '{"step": 4, "sha256": 7}'])
def test_damaged_sidecar_warns_and_the_header_is_used(run_dir, sidecar):
    (run_dir / "checkpoint.json").write_text(sidecar)
    with pytest.warns(UserWarning, match="checkpoint.json"):
        generator, meta = load_generator(run_dir)
    assert meta["step"] == 4 and generator.generate(torch.zeros(2, 100)).shape == (2, 1, 16, 16)
    with pytest.warns(UserWarning, match="checkpoint.json"):
        result = train_tiny(run_dir, steps=6, resume=True)
    assert read_checkpoint(result.checkpoint)[1]["step"] == 6


def flip_last_bytes(path, n=10):
    data = path.read_bytes()
    path.write_bytes(data[:-n] + bytes(b ^ 0xFF for b in data[-n:]))


def test_corrupt_tensors_are_detected_without_a_sidecar(run_dir):
    (run_dir / "checkpoint.json").unlink()
    flip_last_bytes(run_dir / "checkpoint.safetensors")  # inside the last tensor: safetensors cannot tell
    with pytest.raises(GanbenchError, match="does not match the sha256 stored in it") as info:
        load_generator(run_dir)
    assert "\n" not in str(info.value)
    with pytest.raises(GanbenchError, match="does not match the sha256 stored in it"):
        train_tiny(run_dir, steps=6, resume=True)


def test_checkpoints_without_the_stored_hash_still_load(run_dir):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = run_dir / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["ganbench"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    del meta["payload_sha256"]  # as checkpoints were written before it
    save_file(tensors, str(path), metadata={"ganbench": json.dumps(meta)})
    (run_dir / "checkpoint.json").unlink()
    _, meta = load_generator(run_dir)
    assert meta["step"] == 4


def test_metadata_that_is_not_an_object_is_a_one_line_error(run_dir):
    from safetensors.torch import save_file

    path = run_dir / "checkpoint.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"ganbench": "[1]"})
    with pytest.raises(GanbenchError, match="corrupt metadata"):
        read_checkpoint(path)


def test_stale_temp_files_are_removed_when_a_run_starts(run_dir):
    stale, alive = dead_pid(), os.getppid()
    ours = [f".checkpoint.safetensors.tmp{stale}", f".checkpoint.json.tmp{stale}",
            f".metrics.jsonl.tmp{stale}", f"samples/.step-0000004.png.tmp{stale}"]
    kept = [f".checkpoint.safetensors.tmp{alive}",  # another process may be writing it right now
            ".notes.tmp", "data.tmp123", f"samples/.step-0000004.png.tmp{stale}x"]
    (run_dir / "samples").mkdir(exist_ok=True)
    for name in ours + kept:
        (run_dir / name).write_bytes(b"x" * 100)
    train_tiny(run_dir, steps=6, resume=True)
    assert [n for n in ours if (run_dir / n).exists()] == []
    assert [n for n in kept if not (run_dir / n).exists()] == []
