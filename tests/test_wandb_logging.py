"""``--logger wandb``: what the training loop logs, read back from the offline run files.

WANDB_MODE=offline keeps everything on this machine, in ``OUT/wandb/offline-run-*/``. In
offline mode wandb writes no summary or config files, only ``run-<id>.wandb``: wandb's
record log (a 7-byte ``:W&B`` header, then LevelDB-log framing: 32 KiB blocks of chunks with
a 7-byte header: crc32c, length, kind = full / first / middle / last) holding
``wandb_internal_pb2.Record`` protobufs. The reader below uses the installed wandb's own
schema, so it reads what ``wandb sync`` would upload; the media files sit beside it.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from ganbench.training import TrainOptions, train

TINY = {"g_channels": "4", "d_channels": "4", "image_size": "16"}
BLOCK = 32768  # LevelDB log block size
FULL, LAST = 1, 4

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def wandb_records(path):
    """The Record protobufs of a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and data[6] == 0, data[:7]  # header, format version 0
    pos, chunks = 7, []
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunks.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def history_by_step(records) -> dict[int, dict]:
    """{step: {key: value}}: wandb's history rows (keys of nested values joined with /)."""
    rows = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            rows.setdefault(int(row["_step"]), {}).update(row)
    return rows


def test_wandb_offline_run_holds_losses_grids_evaluations_and_config(tmp_path, monkeypatch, require_extra):
    require_extra("wandb", extra="wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # nothing leaves the machine
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    out = tmp_path / "dcgan-wandb"
    train(TrainOptions(model="dcgan", dataset="digits", steps=4, batch_size=8, out=str(out), overrides=TINY,
                       log_every=2, sample_every=2, eval_every=4, progress=False, logger="wandb"),
          evaluate=lambda g, step: {"fid": 1.5, "note": "text is not a number"})

    (log,) = out.glob("wandb/offline-run-*/run-*.wandb")
    records = list(wandb_records(log))
    history = history_by_step(records)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted(history) == [r["step"] for r in logged] == [2, 4]
    for r in logged:
        assert history[r["step"]]["train/loss_d"] == pytest.approx(r["loss_d"])
        assert history[r["step"]]["train/loss_g"] == pytest.approx(r["loss_g"])
    assert history[4]["eval/fid"] == 1.5 and "eval/note" not in history[4] and "eval/fid" not in history[2]

    for step in (2, 4):  # the grid wandb stored is the one in samples/
        image = history[step]
        assert image["samples/_type"] == "image-file"
        stored = np.asarray(Image.open(log.parent / "files" / image["samples/path"]))
        ours = np.asarray(Image.open(out / "samples" / f"step-{step:07d}.png"))
        assert np.array_equal(stored, ours)

    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert run.display_name == "dcgan-wandb"
    assert config["options"]["model"] == "dcgan" and config["config"]["g_channels"] == 4
    assert config["training"]["batch_size"] == 8 and config["device"] == "cpu"
    assert not (out / "tensorboard").exists()  # one logger at a time
