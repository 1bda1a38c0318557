"""Training on several processes (ganbench.distributed) on the CPU with gloo: 2 processes x
batch 32 train like 1 process x batch 64 (DCGAN, WGAN-GP's double backward, SNGAN's
spectral norm), a 2-process run resumes a 1-process checkpoint, and a killed process
stops the run with a clear error and an intact checkpoint.

Two processes are spawned with torch.multiprocessing and join a gloo group through a file;
they run every 2-process job of the module (start-up is most of the cost)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torch.nn.modules.batchnorm import _BatchNorm

from ganbench.checkpoints import read_checkpoint
from ganbench.distributed import DistributedTrainContext, Shard, rank_batches
from ganbench.generative import LatentSpec
from ganbench.models.base import GANModel, TrainContext, create_model
from ganbench.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest

# tiny networks at 16 px; BatchNorm in every G (and DCGAN's D), so equality needs sync_bn
TINY = {
    "dcgan": {"g_channels": 4, "d_channels": 4, "image_size": 16},
    "wgan-gp": {"g_channels": 4, "d_channels": 4, "z_dim": 16, "image_size": 16, "g_batchnorm": True,
                "n_critic": 2},
    "sngan": {"g_channels": 4, "d_channels": 4, "z_dim": 16, "image_size": 16},
}
GAN_TINY = {"g_hidden": 16, "d_hidden": 8, "image_size": 8}  # sets G's output bias from each process's batch
STEPS = 3
KILL_AFTER = 3  # process 1 of the last job kills itself after this step; checkpoints every 2
# Largest |x_2proc - x_1proc| / max|x_1proc| per tensor after 3 steps, measured:
#                  weights, buffers   G, D outputs (training mode)   G, D outputs (eval mode)
#   dcgan          5.6e-7             1.4e-7, 2.1e-7                  1.6e-7, 2.4e-6
#   wgan-gp        3.3e-7             2.6e-7, 1.4e-7                  6.3e-5, 2.1e-5
#   wgan-gp resumed 3.6e-7            2.4e-7, 1.4e-7                  8.0e-5, 2.1e-5
#   sngan          6.0e-6             2.7e-7, 3.2e-6                  1.2e-3, 4.6e-6
# (float32 sums in another order). The weights leave out noise_keys (biases straight before
# batch norm: up to 1.7 apart, in any two runs that round differently); eval mode normalises
# with running means that lag behind those biases, hence its looser tolerance.
TOLERANCE = 2e-5
EVAL_TOLERANCE = 5e-3


def options(model: str, out, **kw) -> dict:
    return {"model": model, "dataset": "digits", "steps": STEPS, "batch_size": 32, "seed": 0, "out": str(out),
            "overrides": TINY.get(model), "sample_every": 0, "checkpoint_every": 0, "log_every": 1,
            "progress": False, **kw}


def worker(rank: int, init_file: str, jobs: list[tuple[dict, int | None]], report: str) -> None:
    """One of the two processes: every job (options, step after which process 1 kills
    itself or None), this process's final weights after each (to check that the processes
    stay identical), and how the last job ended, in ``report`` (process 0)."""
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    ended = "finished"
    try:
        for job, kill_after in jobs:
            result = train(TrainOptions(**job), evaluate=killer(rank, kill_after))
            state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
            save_file(state, f"{job['out']}-process{rank}.safetensors")
    except Exception as exc:  # noqa: BLE001 -- the test reads it
        ended = f"{type(exc).__name__}: {exc}"
    finally:
        dist.destroy_process_group()
    if rank == 0:
        with open(report, "w") as f:
            f.write(ended)


def killer(rank: int, kill_after: int | None):
    """An ``evaluate`` callback that SIGKILLs process 1 after step ``kill_after``."""
    if kill_after is None:
        return None

    def evaluate(generator, step):
        if rank == 1 and step == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    return evaluate


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two spawned processes run every 2-process job (2 x 32), the kill last; meanwhile this
    process trains the 1-process references (batch 64)."""
    root = tmp_path_factory.mktemp("ddp")
    train(TrainOptions(**options("wgan-gp", root / "resumed", batch_size=64, steps=1)))  # a 1-process checkpoint
    jobs = [(options(m, root / f"{m}-2", sync_bn=True), None) for m in TINY]
    jobs += [(options("dcgan", root / "dcgan-2-per-process"), None),
             (options("gan", root / "gan-2", overrides=GAN_TINY), None),
             (options("wgan-gp", root / "resumed", sync_bn=True, resume=True), None),
             (options("dcgan", root / "killed", steps=1000, checkpoint_every=2, eval_every=1), KILL_AFTER)]
    context = mp.get_context("spawn")
    procs = [context.Process(target=worker, args=(r, str(root / "group"), jobs, str(root / "report.txt")))
             for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        one = {m: train(TrainOptions(**options(m, root / f"{m}-1", batch_size=64))) for m in TINY}
        for p in procs:
            p.join(180)
    finally:
        hung = [p for p in procs if p.is_alive()]
        for p in hung:
            p.kill()
    assert not hung, "a process kept waiting (for the killed one?)"
    return root, one, [p.exitcode for p in procs]


def relative_differences(a: dict, b: dict) -> dict[str, float]:
    """|a - b|.max() / |a|.max() of every float tensor of ``a``."""
    assert a.keys() <= b.keys()
    return {k: ((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-12)).item()
            for k in a if a[k].is_floating_point()}


def noise_keys(model: torch.nn.Module) -> set[str]:
    """State keys holding Adam's normalised rounding noise: a bias straight before batch norm
    has a zero gradient in exact arithmetic, so Adam turns the float residue of its gradient
    into steps of size lr, in one process as in two; its batch norm's running mean follows
    it. Neither changes an output (the batch norm subtracts it)."""
    keys = set()
    for prefix, module in model.named_modules():
        children = list(module.named_children())
        for (name, layer), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(bn, _BatchNorm) and getattr(layer, "bias", None) is not None:
                keys |= {".".join(filter(None, [prefix, name, "bias"])),
                         ".".join(filter(None, [prefix, bn_name, "running_mean"]))}
    return keys


def trained(model_name: str, path) -> GANModel:
    model = create_model(model_name, **TINY[model_name])
    model.load_state_dict({k.removeprefix("model."): v for k, v in read_checkpoint(path)[0].items()
                           if k.startswith("model.")})
    return model


@torch.no_grad()
def outputs(model: GANModel) -> dict[str, torch.Tensor]:
    """G's images for fixed z and D's outputs for them, in training and in eval mode."""
    z = torch.randn(16, model.generator.latent.z_dim, generator=torch.Generator().manual_seed(0))
    discriminator = getattr(model, "discriminator", None) or model.critic
    result = {}
    for mode in ("train", "eval"):
        model.train(mode == "train")
        images = model.generator(z)
        result |= {f"G {mode}": images, f"D {mode}": discriminator(images)}
    return result


def assert_same_training(model: str, reference, path) -> None:
    """The checkpoints at ``reference`` and ``path`` hold the same weights and buffers (all
    but :func:`noise_keys`) and their networks give the same outputs (see TOLERANCE)."""
    a, b = trained(model, reference), trained(model, path)
    noise = noise_keys(a)
    weights = {k: d for k, d in relative_differences(a.state_dict(), b.state_dict()).items() if k not in noise}
    assert max(weights.values()) < TOLERANCE, max(weights.items(), key=lambda kv: kv[1])
    same_outputs = relative_differences(outputs(a), outputs(b))
    assert max(same_outputs["G train"], same_outputs["D train"]) < TOLERANCE, same_outputs
    assert max(same_outputs["G eval"], same_outputs["D eval"]) < EVAL_TOLERANCE, same_outputs


@pytest.mark.parametrize("model", sorted(TINY))
def test_two_processes_of_32_train_like_one_of_64(runs, model):
    root, one, _ = runs
    path_two = root / f"{model}-2" / "checkpoint.safetensors"
    assert_same_training(model, one[model].checkpoint, path_two)
    two, ref = read_checkpoint(path_two), read_checkpoint(one[model].checkpoint)
    train_meta = two[1]["train"]
    assert (train_meta["batch_size"], train_meta["processes"], train_meta["batch_size_per_process"]) == (64, 2, 32)
    assert train_meta["batch_norm"] == "whole batch (SyncBatchNorm)"
    assert two[1]["ctx"]["real_batches_drawn"] == ref[1]["ctx"]["real_batches_drawn"]  # same stream
    assert torch.equal(two[0]["rng.ctx"], ref[0]["rng.ctx"])  # the latent generator in step
    # every process ends with the same weights and buffers (spectral-norm vectors included)
    from safetensors.torch import load_file

    mine, other = (load_file(root / f"{model}-2-process{r}.safetensors") for r in (0, 1))
    assert all(torch.equal(mine[k], other[k]) for k in mine)


def test_processes_stay_identical_after_data_dependent_initialisation(runs):
    """GAN sets G's output bias from its first batch, in each process from its own rows:
    process 0's weights are broadcast after the first step."""
    from safetensors.torch import load_file

    root, _, _ = runs
    mine, other = (load_file(root / f"gan-2-process{r}.safetensors") for r in (0, 1))
    assert all(torch.equal(mine[k], other[k]) for k in mine)


def test_per_process_batch_norm_is_not_the_whole_batch(runs):
    """Without sync_bn each process normalises its 32 images: the weights move away from the
    1 x 64 run's by far more than the tolerance (the check above could fail)."""
    root, one, _ = runs
    per_process = read_checkpoint(root / "dcgan-2-per-process" / "checkpoint.safetensors")
    assert max(relative_differences(read_checkpoint(one["dcgan"].checkpoint)[0], per_process[0]).values()) \
        > 100 * TOLERANCE
    assert per_process[1]["train"]["batch_norm"] == "per process"


def test_two_processes_resume_a_one_process_checkpoint(runs):
    root, one, _ = runs
    path = root / "resumed" / "checkpoint.safetensors"
    resumed = read_checkpoint(path)
    assert resumed[1]["step"] == STEPS and resumed[1]["train"]["processes"] == 2
    assert_same_training("wgan-gp", one["wgan-gp"].checkpoint, path)
    steps = [json.loads(line)["step"] for line in (root / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # process 0 alone logs, once per step


def test_a_killed_process_stops_the_run_with_a_clear_error_and_an_intact_checkpoint(runs):
    root, _, exitcodes = runs
    out = root / "killed"
    assert exitcodes == [0, -signal.SIGKILL]  # process 0 did not wait for the dead one
    message = (root / "report.txt").read_text()
    assert message.startswith("PeerFailed: process 0 of 2: another process of the run stopped (")
    assert f"the last checkpoint, {out / 'checkpoint.safetensors'} at step 2, is intact" in message
    assert message.endswith("run the same command again with --resume") and "\n" not in message
    assert read_checkpoint(out / "checkpoint.safetensors")[1]["step"] == 2
    resumed = train(TrainOptions(**options("dcgan", out, steps=4, batch_size=64, resume=True)))  # in 1 process
    assert read_checkpoint(resumed.checkpoint)[1]["step"] == 4


def test_processes_see_the_rows_of_the_one_process_batches():
    from ganbench.data import training_data

    data = training_data("digits", "train", resolution=8, channels=1)
    start = data.steps_per_epoch(64) - 1  # across an epoch boundary
    whole = data.batches(64, seed=3, start_step=start)
    halves = [rank_batches(data, Shard(r, 2), 32, seed=3, start_step=start) for r in (0, 1)]
    for _ in range(2):
        images, labels = next(whole)
        parts = [next(h) for h in halves]
        assert torch.equal(torch.cat([p[0] for p in parts]), images)
        assert torch.equal(torch.cat([p[1] for p in parts]), labels)


def test_processes_draw_the_rows_of_the_one_process_noise():
    latent = LatentSpec(z_dim=5, num_classes=10)
    one = TrainContext(seed=7)
    two = [DistributedTrainContext("cpu", shard=Shard(r, 2), seed=7) for r in (0, 1)]
    z, labels = one.latents(latent, 6)
    eps, noise = one.rand(6), one.randn(6, 2)
    halves = [(ctx.latents(latent, 3), ctx.rand(3), ctx.randn(3, 2)) for ctx in two]
    assert torch.equal(torch.cat([h[0][0] for h in halves]), z)
    assert torch.equal(torch.cat([h[0][1] for h in halves]), labels)
    assert torch.equal(torch.cat([h[1] for h in halves]), eps)
    assert torch.equal(torch.cat([h[2] for h in halves]), noise)
    assert torch.equal(two[0].generator.get_state(), one.generator.get_state())  # streams stay in step


@pytest.mark.slow
def test_torchrun_cli_kill_ends_the_job(tmp_path):
    """The real launcher: ``torchrun --no-python ganbench train``; SIGKILL of process 1
    ends the job with torchrun's report naming it, and the checkpoint resumes."""
    out = tmp_path / "run"
    sets = [a for k, v in TINY["dcgan"].items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--no-python", "ganbench",
           "train", "dcgan", "-d", "digits", "-b", "32", "--steps", "100000", "--checkpoint-every", "2",
           "--sample-every", "0", "-q", "--sync-bn", "--out", str(out), *sets]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.json").is_file():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.1)
        os.kill(_process_with_local_rank(proc.pid, 1), signal.SIGKILL)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert "ChildFailedError" in output and "Signal 9 (SIGKILL)" in output, output[-3000:]
    step = read_checkpoint(out / "checkpoint.safetensors")[1]["step"]
    shutil.copytree(out, tmp_path / "copy")
    resumed = train(TrainOptions(**options("dcgan", tmp_path / "copy", steps=step + 1, batch_size=64,
                                           resume=True)))
    assert read_checkpoint(resumed.checkpoint)[1]["step"] == step + 1


def _process_with_local_rank(parent: int, local_rank: int) -> int:
    """The pid of torchrun's worker with LOCAL_RANK ``local_rank`` (a descendant of ``parent``)."""
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            if f"LOCAL_RANK={local_rank}".encode() in environ and _descends_from(pid, parent):
                return pid
        except OSError:  # gone, or not ours to read
            continue
    raise AssertionError("no torchrun worker found")


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])  # the parent's pid
    return False
