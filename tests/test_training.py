"""The training loop and checkpoints: determinism, exact resume, atomic writes, errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from ganbench.checkpoints import load_generator, read_checkpoint, save_checkpoint
from ganbench.cli import main
from ganbench.errors import GanbenchError, UnknownNameError
from ganbench.training import TrainOptions, train

TINY = {
    "dcgan": {"g_channels": "4", "d_channels": "4", "image_size": "16"},
    "gan": {"g_hidden": "16", "d_hidden": "8", "image_size": "8"},
}


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def run(tmp_path, name="run", model="dcgan", steps=6, **kw):
    if "overrides" not in kw:
        kw["overrides"] = TINY[model]
    options = dict(model=model, dataset="digits", steps=steps, batch_size=16, seed=0,
                   out=str(tmp_path / name), checkpoint_every=3, sample_every=3, progress=False)
    options.update(kw)
    return train(TrainOptions(**options))


def tensors_of(path):
    return read_checkpoint(path)[0]


def test_same_command_same_checkpoint(tmp_path):
    a = run(tmp_path, "a", ema=0.9)
    b = run(tmp_path, "b", ema=0.9)
    assert read_checkpoint(a.checkpoint)[1]["sha256"] == read_checkpoint(b.checkpoint)[1]["sha256"]
    c = run(tmp_path, "c", ema=0.9, seed=1)
    assert not torch.equal(tensors_of(a.checkpoint)["model.generator.net.0.weight"],
                           tensors_of(c.checkpoint)["model.generator.net.0.weight"])


@pytest.mark.parametrize("model,ema", [("dcgan", 0.9), ("gan", None)])  # BN+Adam+EMA; dropout+SGD schedule
def test_resume_is_bit_exact(tmp_path, model, ema):
    whole = run(tmp_path, "whole", model=model, steps=8, ema=ema)
    run(tmp_path, "parts", model=model, steps=5, ema=ema)  # stops after step 5 (last checkpoint: 5)
    resumed = run(tmp_path, "parts", model=model, steps=8, ema=ema, resume=True)
    a, b = tensors_of(whole.checkpoint), tensors_of(resumed.checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert read_checkpoint(whole.checkpoint)[1]["sha256"] == read_checkpoint(resumed.checkpoint)[1]["sha256"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicate log lines after the resume


def test_outputs_of_a_run(tmp_path):
    calls = []
    before = torch.get_rng_state()
    result = train(TrainOptions(
        model="dcgan", dataset="digits", steps=6, batch_size=16, out=str(tmp_path / "run"), ema=0.9,
        overrides=TINY["dcgan"], sample_every=3, checkpoint_every=3, eval_every=3, progress=False),
        evaluate=lambda g, step: calls.append((step, g.training)) or {"score": float(step)})
    assert torch.equal(before, torch.get_rng_state())  # the caller's global RNG is untouched
    out = tmp_path / "run"
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-0000003.png", "step-0000006.png"]
    assert calls == [(3, False), (6, False)]
    assert [json.loads(line)["score"] for line in (out / "eval.jsonl").read_text().splitlines()] == [3.0, 6.0]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 6 and {"loss_d", "loss_g", "it_s"} <= set(lines[-1])
    sidecar = json.loads((out / "checkpoint.json").read_text())
    assert sidecar["model"] == "dcgan" and sidecar["step"] == 6 and sidecar["seed"] == 0
    assert sidecar["config"]["g_channels"] == 4 and sidecar["latent"]["z_dim"] == 100
    assert len(sidecar["sha256"]) == 64 and sidecar["ganbench_version"]
    assert result.generator is not result.model.generator  # the EMA copy


def test_checkpoint_round_trip(tmp_path):
    result = run(tmp_path, ema=0.9)
    generator, meta = load_generator(result.checkpoint)
    assert meta["model"] == "dcgan" and meta["step"] == 6 and meta["ema"] is True
    assert meta["checkpoint_sha256"] == json.loads((tmp_path / "run" / "checkpoint.json").read_text())["sha256"]
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    result.generator.eval()
    with torch.no_grad():
        assert torch.equal(generator.generate(z), result.generator.generate(z))
    raw, meta = load_generator(tmp_path / "run", ema=False)  # the run folder works too
    result.model.generator.eval()
    with torch.no_grad():
        assert torch.equal(raw.generate(z), result.model.generator.generate(z))
    assert not meta["ema"] and not raw.training


def test_checkpoint_survives_kill(tmp_path):
    out = tmp_path / "killed"
    sets = [arg for k, v in TINY["dcgan"].items() for arg in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-c", "from ganbench.cli import main; main()", "train", "dcgan", "--dataset", "digits",
           "--steps", "100000", "--batch-size", "16", "--checkpoint-every", "2", "--sample-every", "0",
           "--quiet", "--out", str(out), *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            sidecar = out / "checkpoint.json"
            if sidecar.is_file() and json.loads(sidecar.read_text() or "{}").get("step", 0) >= 6:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint written within 120 s")
        time.sleep(0.37)  # somewhere inside a later step or checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    _, meta = read_checkpoint(out / "checkpoint.safetensors")
    step = meta["step"]
    assert step >= 6 and step % 2 == 0
    generator, _ = load_generator(out / "checkpoint.safetensors")
    assert generator.generate(torch.zeros(2, 100)).shape == (2, 1, 16, 16)
    args = [a if a != "100000" else str(step + 2) for a in cmd[3:]] + ["--resume"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert read_checkpoint(out / "checkpoint.safetensors")[1]["step"] == step + 2


def test_corrupt_checkpoints_give_one_line_errors(tmp_path):
    result = run(tmp_path)
    path = result.checkpoint
    data = path.read_bytes()

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanbenchError, match="corrupt or truncated") as info:
        load_generator(truncated)
    assert "\n" not in str(info.value)

    flipped = tmp_path / "flipped" / "checkpoint.safetensors"
    flipped.parent.mkdir()
    flipped.write_bytes(data[:-10] + bytes(b ^ 0xFF for b in data[-10:]))
    (flipped.parent / "checkpoint.json").write_bytes((path.parent / "checkpoint.json").read_bytes())
    with pytest.raises(GanbenchError, match="does not match the sha256"):
        load_generator(flipped)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(GanbenchError, match="corrupt or truncated"):
        read_checkpoint(garbage)

    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(GanbenchError, match="not a ganbench training checkpoint"):
        load_generator(foreign)
    with pytest.raises(GanbenchError, match="does not exist"):
        load_generator(tmp_path / "nope.safetensors")


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    result = run(tmp_path)
    before = result.checkpoint.read_bytes()
    import ganbench.checkpoints as ck

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed between writing the temp file and renaming it

    monkeypatch.setattr(ck, "sha256_file", explode)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(result.checkpoint, {"x": torch.zeros(1)}, {"step": 99})
    assert result.checkpoint.read_bytes() == before
    assert sorted(p.name for p in result.checkpoint.parent.iterdir() if p.name.startswith(".")) == []


def test_resume_with_other_settings_is_refused(tmp_path):
    run(tmp_path)
    with pytest.raises(GanbenchError, match="cannot resume .*seed: 0 -> 1"):
        run(tmp_path, seed=1, steps=8, resume=True)
    with pytest.raises(GanbenchError, match="g_channels: 4 -> 8"):
        run(tmp_path, steps=8, resume=True, overrides={**TINY["dcgan"], "g_channels": "8"})


def cli(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_train_and_refuse_overwrite(tmp_path):
    out = str(tmp_path / "cli")
    args = ["train", "dcgan", "--steps", "2", "--batch-size", "8", "--out", out, "-q",
            "--set", "g_channels=4", "--set", "d_channels=4", "--set", "image_size=16"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "checkpoint" in result.output
    result = cli(*args)
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--resume" in result.output and "not empty" in result.output


@pytest.mark.parametrize("args,message", [
    (["train", "dcgn"], "Did you mean 'dcgan'?"),
    (["train", "dcgan", "--dataset", "mnsit"], "Did you mean 'mnist'?"),
    (["train", "dcgan", "--set", "lr_dd=1"], "Did you mean 'lr_d'?"),
    (["train", "dcgan", "--set", "lr_d=fast"], "'lr_d' expects float, got 'fast'"),
    (["train", "dcgan", "--set", "lr_d"], "expected NAME=VALUE"),
    (["train", "dcgan", "--set", "image_size=30"], "image_size must be"),
    (["train", "dcgan", "--ema", "1.5"], "--ema must lie"),
    (["train", "dcgan", "--dataset", "mnist:test"], "not a split"),
    (["train", "dcgan", "--device", "tpu"], "bad device 'tpu'"),
    (["train", "dcgan", "--device", "mps"], "MPS is not available"),
    (["train", "dcgan", "--device", "meta"], "bad device 'meta'"),
    (["train", "dcgan", "--set", "lr_g=-1"], "'lr_g' must be > 0, got -1.0"),
    (["train", "dcgan", "--set", "lr_g=0"], "'lr_g' must be > 0, got 0.0"),
    (["train", "dcgan", "--set", "lr_g=nan"], "'lr_g' must be a finite number, got nan"),
    (["train", "dcgan", "--set", "beta1=inf"], "'beta1' must be a finite number, got inf"),
    (["train", "dcgan", "--set", "g_channels=0"], "'g_channels' must be >= 1, got 0"),
    (["train", "dcgan", "--set", "z_dim=-3"], "'z_dim' must be >= 1, got -3"),
])
def test_cli_bad_inputs(tmp_path, args, message):
    result = cli(*args, "--out", str(tmp_path / "bad"), "-q")
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert not (tmp_path / "bad").exists()  # checked before anything is built or written


@pytest.mark.parametrize("device,message", [("tpu", "bad device 'tpu'"), ("mps", "MPS is not available")])
def test_cli_eval_checks_the_device_first(device, message):
    result = cli("eval", "-m", "fid", "-i", "digits:test", "-r", "digits", "--device", device, "-q")
    assert result.exit_code == 2 and message in result.output
    assert result.output.strip().count("\n") == 0, result.output


def test_api_checks_the_device_before_building(tmp_path):
    with pytest.raises(GanbenchError, match="MPS is not available"):
        run(tmp_path, device="mps")
    assert not (tmp_path / "run").exists()


def test_values_torch_refuses_are_one_line_errors(tmp_path):
    result = cli("train", "dcgan", "--set", "beta1=2", "--out", str(tmp_path / "bad"), "-q")
    assert result.exit_code == 2 and "invalid hyperparameters (Invalid beta parameter" in result.output
    assert result.output.strip().count("\n") == 0, result.output


def test_out_below_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    result = cli("train", "dcgan", "--steps", "2", "--out", str(tmp_path / "file" / "sub"), "-q")
    assert result.exit_code == 2 and "cannot create run folder" in result.output
    assert result.output.strip().count("\n") == 0, result.output


def test_every_models_defaults_pass_the_value_rules():
    from ganbench.models.base import list_models, make_config, model_info

    for name in list_models():
        info = model_info(name)
        for values in [{}, info.tiny, *info.defaults.values(), {**info.tiny, **info.defaults_for("mnist")}]:
            make_config(info.config, values, model=name)


def test_value_rules_follow_the_fields_defaults():
    from ganbench.models.base import make_config, model_info

    cyclegan, infogan = model_info("cyclegan").config, model_info("infogan").config
    assert make_config(cyclegan, {"pool_size": "0"}).pool_size == 0  # 0: no buffer (declared)
    assert make_config(infogan, {"cont_dim": "0"}).cont_dim == 0
    with pytest.raises(GanbenchError, match="'pool_size' must be >= 0, got -1"):
        make_config(cyclegan, {"pool_size": "-1"}, model="cyclegan")
    assert make_config(cyclegan, {"beta1": "0"}).beta1 == 0.0  # not a size: 0 is fine
    with pytest.raises(GanbenchError, match="'lr' must be > 0"):
        make_config(cyclegan, {"lr": "-2e-4"}, model="cyclegan")


def test_tuple_fields_follow_the_same_rules():
    from ganbench.models.base import list_models, make_config, model_info

    name = next(n for n in list_models() if "tuple" in str(model_info(n).config.__annotations__.get("d_channels")))
    with pytest.raises(GanbenchError, match="'d_channels' must be >= 1, got 0"):
        make_config(model_info(name).config, {"d_channels": "20,0"}, model=name)


def write_log(path, steps, tail=""):
    path.write_text("".join(json.dumps({"step": s, "loss_d": 1.0}) + "\n" for s in steps) + tail)


def log_steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]  # every line parses


def test_resume_without_a_checkpoint_starts_fresh_logs(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    write_log(out / "metrics.jsonl", [2, 4, 6], tail='{"step": 8, "loss')  # killed mid-line, before step 10
    write_log(out / "eval.jsonl", [4])
    run(tmp_path, steps=4, log_every=2, resume=True)
    assert log_steps(out / "metrics.jsonl") == [2, 4]
    assert not (out / "eval.jsonl").read_text()


def test_resume_trims_logs_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    run(tmp_path, steps=4, log_every=2, checkpoint_every=4)
    out = tmp_path / "run"
    write_log(out / "metrics.jsonl", [2, 4, 6], tail='5\n{"step": 8, "loss')  # not a record; torn
    run(tmp_path, steps=8, log_every=2, checkpoint_every=4, resume=True)
    assert log_steps(out / "metrics.jsonl") == [2, 4, 6, 8]


def test_api_errors_list_valid_choices():
    from ganbench.models.base import resolve_config

    with pytest.raises(UnknownNameError) as info:
        resolve_config("dcgan", "mnist", {"zdim": 64})
    assert "z_dim" in str(info.value)
    with pytest.raises(GanbenchError, match="unknown training option"):
        train("dcgan", "digits", step=3)


def test_tensorboard_gets_losses_and_evaluations(tmp_path, require_extra):
    require_extra("tensorboard", extra="tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ganbench import train_loggers

    out = tmp_path / "run"
    train(TrainOptions(model="dcgan", dataset="digits", steps=4, batch_size=16, out=str(out),
                       overrides=TINY["dcgan"], log_every=2, eval_every=4, progress=False),
          evaluate=lambda g, step: {"fid": 1.5, "note": "text is not a scalar"})
    events = EventAccumulator(str(out / "tensorboard")).Reload()  # what TensorBoard itself would show
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in scalars["train/loss_d"]] == [r["step"] for r in logged] == [2, 4]
    assert [v for _, v in scalars["train/loss_g"]] == pytest.approx([r["loss_g"] for r in logged])
    assert scalars["eval/fid"] == [(4, 1.5)] and "eval/note" not in scalars
    assert train_loggers.tensorboard_writer(None) is None  # no run folder, no TensorBoard


def test_cli_periodic_evaluation_lands_in_the_results_store(tmp_path):
    from ganbench.leaderboards.store import open_store

    out = tmp_path / "evalrun"
    result = cli("train", "dcgan", "--steps", "4", "--batch-size", "8", "--out", str(out), "-q",
                 "--set", "g_channels=4", "--set", "d_channels=4", "--set", "image_size=16",
                 "--eval-every", "2", "--eval-metric", "fid", "--eval-metric", "isc", "--eval-samples", "40")
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [2, 4] and all(r["fid"] > 0 for r in logged)
    rows = open_store().load(model="dcgan")
    fid = rows[rows.metric == "fid"]
    assert sorted(fid.step.tolist()) == [2, 4] and set(fid.extractor) == {"lenet-mnist"}
    assert fid.value.tolist() == pytest.approx([r["fid"] for r in logged])


# -- the paper's recipe: a fresh real batch per D update, batch size / EMA / precision ------------
N_DIS = {"model": "sngan", "overrides": {"g_channels": "4", "d_channels": "4", "image_size": "16", "z_dim": "8",
                                        "n_dis": "3"}}


def test_every_d_update_draws_a_fresh_real_batch(tmp_path, monkeypatch):
    from ganbench.models.base import TrainContext

    seen = []
    draw = TrainContext.next_real_batch

    def recording(ctx):
        batch = draw(ctx)
        seen.append(hash(batch.images.numpy().tobytes()))
        return batch

    monkeypatch.setattr(TrainContext, "next_real_batch", recording)
    result = run(tmp_path, steps=4, **N_DIS)
    assert len(seen) == 4 * 3 and len(set(seen)) == 4 * 3  # 3 distinct batches per generator step
    meta = read_checkpoint(result.checkpoint)[1]
    assert meta["ctx"]["real_batches_drawn"] == 12


def test_resume_continues_the_real_batch_stream(tmp_path):
    whole = run(tmp_path, "whole", steps=5, **N_DIS)
    run(tmp_path, "parts", steps=3, checkpoint_every=3, **N_DIS)
    resumed = run(tmp_path, "parts", steps=5, resume=True, **N_DIS)
    a, b = tensors_of(whole.checkpoint), tensors_of(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batch_size_and_ema_follow_the_paper_recipe_and_are_recorded(tmp_path):
    from ganbench.models.base import model_info

    recipe = model_info("progan").recipe_for("digits")
    assert recipe.ema == 0.999  # ProGAN evaluates an EMA generator (G smoothing, 0.999)
    result = run(tmp_path, "paper", model="dcgan", steps=2, batch_size=None)
    train_meta = read_checkpoint(result.checkpoint)[1]["train"]
    dcgan = model_info("dcgan").recipe_for("digits")
    assert train_meta["batch_size"] == dcgan.batch_size == 128  # DCGAN's mini-batch
    assert (train_meta["ema"], train_meta["generator"], train_meta["precision"]) == (None, "raw", "float32")
    run_json = json.loads((tmp_path / "paper" / "run.json").read_text())
    assert run_json["training"]["batch_size"] == 128
    explicit = run(tmp_path, "mine", model="dcgan", steps=2, batch_size=8, ema=0.5)
    train_meta = read_checkpoint(explicit.checkpoint)[1]["train"]
    assert (train_meta["batch_size"], train_meta["ema"], train_meta["generator"]) == (8, 0.5, "ema")


def test_ema_starts_as_a_copy_of_g_until_ema_start(tmp_path):
    before = run(tmp_path, "copy", steps=3, ema=0.9, ema_start=10)
    tensors = tensors_of(before.checkpoint)
    g = {k.removeprefix("model.generator."): v for k, v in tensors.items() if k.startswith("model.generator.")}
    e = {k.removeprefix("ema."): v for k, v in tensors.items() if k.startswith("ema.")}
    assert g.keys() == e.keys() and all(torch.equal(g[k], e[k]) for k in g)
    averaged = tensors_of(run(tmp_path, "avg", steps=3, ema=0.9, ema_start=1).checkpoint)
    assert not torch.equal(averaged["ema.net.0.weight"], averaged["model.generator.net.0.weight"])


def test_amp_is_off_unless_asked():
    from ganbench.cli.train_cmd import train_cmd
    from ganbench.models.base import TrainContext

    assert TrainOptions(model="dcgan").amp is False
    assert next(p for p in train_cmd.params if p.name == "amp").default is False
    assert TrainContext("cpu", amp=True).precision == "float32"  # AMP is CUDA-only


def test_result_rows_record_how_the_checkpoint_was_trained(tmp_path):
    from ganbench.evaluation import evaluate

    result = run(tmp_path, ema=0.9, batch_size=8)
    rows = evaluate(str(result.checkpoint), "digits:test", ["fid"], extractor="lenet-mnist", num_samples=64,
                    device="cpu", progress=False, record=False).rows
    assert json.loads(rows[0]["training"]) == {"batch_size": 8, "ema": 0.9, "ema_start": 0, "generator": "ema",
                                               "precision": "float32", "steps": 6}


def test_a_run_resumed_at_its_last_step_returns_its_checkpoint(tmp_path):
    first = run(tmp_path, steps=4, checkpoint_every=4)
    again = run(tmp_path, steps=4, checkpoint_every=4, resume=True)  # nothing left to train
    assert again.step == 4 and again.checkpoint == first.checkpoint and again.checkpoint.is_file()
