"""``ganbench train``: the one training loop from the command line."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click
from click.core import ParameterSource

from ganbench.cli import USER_ERROR
from ganbench.cli.options import device_option, one_line_warnings, seed_option
from ganbench.errors import GanbenchError


@click.command("train")
@click.argument("model")
@click.option("--dataset", "-d", default="digits", show_default=True,
              help="Training data (`ganbench datasets` lists them; folder:PATH, npz:PATH).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Generator steps (train_step calls) in total.")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=None,
              help="Real images per D update (per process under torchrun)  [default: the model's paper batch "
                   "for the dataset, split over the processes; `ganbench models show MODEL`]")
@seed_option
@device_option
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Run folder (checkpoint, samples, metrics.jsonl); must be new or empty unless --resume.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.safetensors.")
@click.option("--set", "-s", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a hyperparameter (repeatable; `ganbench models show MODEL` lists them).")
@click.option("--ema", type=float, default=None, metavar="BETA",
              help="Generator EMA decay (e.g. 0.999; 0: no EMA); samples/eval use the EMA generator  "
                   "[default: the paper recipe's]")
@click.option("--ema-start", type=click.IntRange(min=0), default=None, metavar="STEPS",
              help="Steps during which the EMA copies G  [default: the paper recipe's]")
@click.option("--sample-every", type=click.IntRange(min=0), default=500, show_default=True,
              help="Steps between sample grids (samples/step-N.png); 0: only at the end.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Steps between checkpoints (always one at the end).")
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Steps between metrics.jsonl lines.")
@click.option("--eval-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Steps between evaluations (0: never); see --eval-metric.")
@click.option("--eval-metric", "eval_metrics", multiple=True, default=("fid",), show_default=True,
              help="Metric computed every --eval-every steps (repeatable).")
@click.option("--eval-reference", default=None, help="Reference for evaluation (default: DATASET:test).")
@click.option("--eval-extractor", default=None,
              help="Extractor for evaluation (default: lenet-mnist / lenet-fashion for those datasets).")
@click.option("--eval-samples", type=click.IntRange(min=2), default=5000, show_default=True,
              help="Generated samples per evaluation.")
@click.option("--amp/--no-amp", default=False, show_default=True,
              help="Opt into mixed precision (bf16, else fp16) and channels_last on CUDA; the default is "
                   "float32 (TF32 off), the papers' precision. Recorded in the run and its checkpoints.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Data-loading processes for file-backed datasets (folders, CelebA).")
@click.option("--sync-bn", is_flag=True,
              help="Under torchrun: batch norm with the whole batch's statistics (SyncBatchNorm) instead of "
                   "each process's own; no effect in one process.")
@click.option("--logger", default="tensorboard", show_default=True, metavar="tensorboard|wandb|none",
              help="Also log losses and evaluations to TensorBoard (OUT/tensorboard, when installed) or to "
                   "Weights & Biases (with sample grids and the config; pip install 'ganbench[wandb]'; "
                   "WANDB_MODE=offline keeps it in OUT/wandb), or neither. metrics.jsonl is always written.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no device line.")
def train_cmd(model, dataset, steps, batch_size, seed, device, out, resume, overrides, ema, ema_start,
              sample_every, checkpoint_every, log_every, eval_every, eval_metrics, eval_reference,
              eval_extractor, eval_samples, amp, workers, sync_bn, logger, quiet):
    """Train MODEL on a dataset with the paper's hyperparameters (override with --set) and
    training recipe (batch size, generator EMA; override with --batch-size, --ema), in float32.

    Writes OUT/checkpoint.safetensors (+ .json) and the run card OUT/README.md (model, paper,
    the command, hyperparameters, samples, evaluations) every --checkpoint-every steps, sample
    grids from fixed noise, and OUT/metrics.jsonl. The same command and seed give the
    same checkpoint on CPU; --resume continues exactly where a run stopped.

    Under torchrun every process trains on --batch-size images of each step's whole
    batch (K x --batch-size, recorded) with gradients averaged; process 0 writes OUT.

    \b
    Examples:
      ganbench train dcgan --dataset mnist --steps 5000 --out runs/dcgan-mnist
      ganbench train dcgan --dataset mnist --steps 10000 --out runs/dcgan-mnist --resume
      ganbench train gan --dataset mnist --set optimizer=adam --set lr=2e-4 --out runs/gan
      ganbench train cgan --dataset fashion-mnist --ema 0.999 --eval-every 1000 --out runs/cgan
      WANDB_MODE=offline ganbench train dcgan -d mnist --logger wandb --out runs/dcgan-wandb
      torchrun --nproc_per_node 4 --no-python ganbench train dcgan -d mnist -b 32 --device cuda --out runs/d4
    """
    from ganbench.evaluation import default_device
    from ganbench.models.base import parse_overrides
    from ganbench.training import TrainOptions, train

    device = device or default_device()
    options = TrainOptions(
        model=model, dataset=dataset, steps=steps, batch_size=batch_size, seed=seed, device=device,
        out=out, overrides=parse_overrides(overrides), resume=resume, ema=ema, ema_start=ema_start, amp=amp,
        log_every=log_every, sample_every=sample_every, checkpoint_every=checkpoint_every,
        eval_every=eval_every, num_workers=workers, progress=not quiet, sync_bn=sync_bn, logger=logger)
    evaluate = None
    if eval_every:
        evaluate = _evaluator(model, dataset, eval_metrics, eval_reference, eval_extractor, eval_samples,
                              batch_size or 64, device, seed, out)
    command = command_line(click.get_current_context(), device)
    with one_line_warnings(), process_group(device) as rank:
        try:
            result = train(options, evaluate=evaluate, command=command)
        except GanbenchError:
            if rank == 0:
                raise  # printed once, by process 0; the others exit with the same status
            click.get_current_context().exit(USER_ERROR)
    if rank == 0:
        loss_text = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
        click.echo(f"{model}: {result.step} steps in {result.seconds:.0f} s ({loss_text}); "
                   f"checkpoint {result.checkpoint}")


def command_line(ctx: click.Context, device: str) -> list[str]:
    """The argv that reproduces this run: ``ganbench train MODEL`` and every option given on
    the command line, in the command's order, long names; ``--device`` always (its default
    depends on the machine); not ``--resume`` (the command trains from step 0)."""
    argv = ["ganbench", "train", ctx.params["model"]]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in ("device", "resume"):
            continue
        if ctx.get_parameter_source(param.name) in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            continue
        argv += _option_argv(param, ctx.params[param.name])
    return argv + ["--device", device]


def _option_argv(option: click.Option, value) -> list[str]:
    name = max(option.opts, key=len)  # --batch-size, not -b
    if option.is_flag and option.secondary_opts:
        return [name if value else max(option.secondary_opts, key=len)]
    if option.is_flag:
        return [name] if value else []
    values = value if option.multiple else [value]
    return [text for v in values for text in (name, repr(v) if isinstance(v, float) else str(v))]


@contextlib.contextmanager
def process_group(device: str):
    """Under torchrun: join the process group (gloo on CPU, nccl on CUDA), give this
    process's rank, and leave the group at the end (also after an error: a process whose
    peer died then exits cleanly). In one process: rank 0, nothing to join."""
    import torch.distributed as dist

    from ganbench.features import distributed, join_process_group

    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1 and ":" in device:
        raise GanbenchError(f"--device {device}: several processes on this machine would share one GPU; "
                            f"pass --device cuda (process k uses cuda:LOCAL_RANK)")
    joined_before = dist.is_available() and dist.is_initialized()
    join_process_group(device)
    try:
        yield distributed()[0]
    finally:
        if not joined_before and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _evaluator(model, dataset, metrics, reference, extractor, num_samples, batch_size, device, seed, out):
    """evaluate(generator, step) for the training loop, backed by ganbench.evaluation; every
    periodic evaluation also lands in the results store, as rows of MODEL at that step whose
    source is the run folder (so the run card lists them with their protocol)."""
    from ganbench.data import parse_name
    from ganbench.features import distributed

    key = parse_name(dataset).key
    source = str(Path(out).expanduser().resolve())
    if reference is None:
        reference = f"{dataset}:test" if parse_name(dataset).arg is None else dataset
    extractor = extractor or {"mnist": "lenet-mnist", "fashion-mnist": "lenet-fashion",
                              "digits": "lenet-mnist"}.get(key, "inception-v3-compat")

    def evaluate(generator, step):
        from ganbench.evaluation import evaluate as run

        from ganbench.leaderboards.store import open_store

        result = run(generator, reference, list(metrics), extractor=extractor, num_samples=num_samples,
                     batch_size=batch_size, device=device, seed=seed, progress=False, record=False,
                     model_name=model)
        if distributed()[0] == 0:  # every process takes part in the evaluation; one records it
            open_store().append([{**row, "step": step, "source": source} for row in result.rows])
        return dict(result.values)

    return evaluate
