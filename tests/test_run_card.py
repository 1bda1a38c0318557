"""Run cards (README.md in a run folder) and the training device default."""
from __future__ import annotations

import json
import re
import shlex

import pytest
import torch
from click.testing import CliRunner

import ganbench.run_card as run_card
import ganbench.training as training
from ganbench.checkpoints import read_checkpoint
from ganbench.cli import main
from ganbench.errors import GanbenchError

TINY = ["--set", "g_channels=4", "--set", "d_channels=4", "--set", "image_size=16"]

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fenced(card: str, language: str) -> str:
    return re.search(rf"^(`{{3,}}){language}\n(.*?)\n\1$", card, re.S | re.M).group(2)


def sha256_of(folder) -> str:
    return read_checkpoint(folder / "checkpoint.safetensors")[1]["sha256"]


def table_rows(card: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table whose header starts with ``header_start``, split on unescaped pipes."""
    lines = card[card.index(header_start):].split("\n\n")[0].splitlines()
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


@pytest.fixture
def cards_written(monkeypatch):
    """(step, card text) for every card the training loop writes."""
    written = []
    write = run_card.write_run_card

    def spy(folder, **kw):
        path = write(folder, **kw)
        written.append((kw["step"], path.read_text()))
        return path

    monkeypatch.setattr(run_card, "write_run_card", spy)
    return written


def test_card_command_reproduces_the_checkpoint(tmp_path, cards_written):
    first, again = tmp_path / "first", tmp_path / "again"
    result = cli("train", "dcgan", "-d", "digits", "--steps", 3, "-b", 8, "-o", first, "--ema", 0.9,
                 "--checkpoint-every", 2, "--sample-every", 2, *TINY)
    assert result.exit_code == 0, result.output
    assert result.output.count("ganbench: training dcgan on cpu") == 1  # the device, printed once
    assert json.loads((first / "run.json").read_text())["device"] == "cpu"

    assert [step for step, _ in cards_written] == [2, 3]  # one card per checkpoint, each rewritten
    assert "at step 2 of 3" in cards_written[0][1] and "](samples/step-0000002.png)" in cards_written[0][1]
    card = (first / "README.md").read_text()
    assert card == cards_written[1][1] and "at step 3 of 3" in card and "](samples/step-0000003.png)" in card
    assert (first / "samples" / "step-0000003.png").is_file()

    argv = shlex.split(fenced(card, "bash"))
    assert argv[:3] == ["ganbench", "train", "dcgan"] and argv[-2:] == ["--device", "cpu"]
    argv[argv.index("--out") + 1] = str(again)
    result = cli(*argv[1:], "-q")
    assert result.exit_code == 0, result.output
    assert sha256_of(again) == sha256_of(first)

    hyper = {row[0]: row[1:] for row in table_rows(card, "| name |")[2:]}
    assert hyper["g_channels"] == ["4", "64", "yes"] and hyper["lr_g"][2] == ""
    assert hyper["generator EMA"] == ["0.9", "none", "yes"] and hyper["batch size (whole)"][0] == "8"


def test_card_escapes_store_rows_and_updates_at_a_resume(tmp_path, monkeypatch):
    from ganbench.evaluation import evaluate
    from ganbench.leaderboards.store import open_store

    monkeypatch.chdir(tmp_path)
    options = dict(model="dcgan", dataset="digits", steps=2, batch_size=8, seed=3, out="run", progress=False,
                   overrides={"g_channels": "4", "d_channels": "4", "image_size": "16"})
    training.train(**options)
    card = (tmp_path / "run" / "README.md").read_text()
    assert "None recorded yet" in card
    evil = "<script>alert(1)</script>|x"
    evaluate("run/checkpoint.safetensors", "digits:test", ["fid"], extractor="lenet-mnist", num_samples=64,
             model_name=evil, tags={"note": "a|b"}, progress=False, record=True)  # a relative source, into the folder
    evaluate("digits:test", "digits:test", ["fid"], extractor="lenet-mnist", progress=False, record=True)  # another
    training.train(**{**options, "steps": 4, "resume": True})

    card = (tmp_path / "run" / "README.md").read_text()
    assert "at step 4 of 4" in card and "resumed the run at step 2" in card
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in card
    rows = table_rows(card, "| metric |")
    assert all(len(row) == len(rows[0]) for row in rows)  # no escaped pipe splits a cell
    stored = open_store().load(model=evil)
    assert [row[5] for row in rows[2:]] == stored.protocol_id.tolist()  # the one row of this run
    assert rows[2][1] == f"{stored.value.iloc[0]:.6g}"

    code = fenced(card, "python")  # started from Python: the card shows the call
    assert "resume" not in code and "steps=4" in code
    exec(code.replace("'run'", "'rerun'"), {})  # the card's own code, in a temp folder
    assert sha256_of(tmp_path / "rerun") == sha256_of(tmp_path / "run")


@pytest.mark.parametrize("cuda", [True, False])
def test_train_device_defaults_to_cuda_when_available(monkeypatch, tmp_path, cuda):
    seen = {}

    def fake_train(options, evaluate=None, command=None):
        seen.update(device=options.device, command=command)
        raise GanbenchError("stopped by the test")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(training, "train", fake_train)
    result = cli("train", "dcgan", "-o", tmp_path / "run", "-q")
    assert result.exit_code == 2 and "stopped by the test" in result.output
    assert seen["device"] == ("cuda" if cuda else "cpu") and seen["command"][-2:] == ["--device", seen["device"]]


def test_unknown_logger_is_a_one_line_error(tmp_path):
    result = cli("train", "dcgan", "-o", tmp_path / "run", "--logger", "wandbb", "-q")
    assert result.exit_code == 2 and "unknown logger 'wandbb'" in result.output and "wandb" in result.output
    assert result.output.strip().count("\n") == 0 and not (tmp_path / "run").exists()
