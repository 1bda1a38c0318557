"""The one training loop, shared by every model.

It never looks at a model's name: the difference between GANs lives in each model's
``train_step`` (see :mod:`ganbench.models.base`). Per step, the loop

1. takes the seeded batch for that step (:meth:`ganbench.data.TrainingData.batches`),
2. calls ``model.train_step(batch, step, ctx)``,
3. updates the optional EMA copy of the generator,
4. every ``log_every`` steps appends the losses to ``metrics.jsonl`` and the progress bar,
5. every ``sample_every`` steps writes ``samples/step-NNNNNNN.png`` from fixed noise,
6. every ``eval_every`` steps calls the ``evaluate`` callback (results in ``eval.jsonl``),
7. every ``checkpoint_every`` steps and at the end writes ``checkpoint.safetensors`` and the
   run card ``README.md`` (:mod:`ganbench.run_card`).

Losses and evaluations also go to TensorBoard (``out/tensorboard``, when installed) or to
Weights & Biases (``logger="wandb"``: with sample grids and the run's config too).

A model whose paper makes several D updates per G update draws a fresh real batch for
each (:meth:`TrainContext.next_real_batch`) from the same seeded stream; the count drawn
is checkpointed.

The recipe: batch size and generator EMA default to the model's paper recipe for the
dataset (:class:`~ganbench.models.base.TrainingRecipe`); ``batch_size`` / ``ema`` override
it (``ema=0``: the raw generator). Runs compute in float32 on every device (TF32 off on
CUDA); ``amp=True`` opts into mixed precision and channels_last on CUDA. What was used
is recorded in ``run.json`` and in every checkpoint (``train``).

Reproducibility: model init, data order, latents and the global RNG are all derived from
``seed`` inside a fork of the global RNG (the caller's RNG is untouched); everything is
checkpointed, so on CPU the same command gives the same checkpoint, and a resumed run
ends with the same weights as an uninterrupted one.

Several processes (``torchrun --nproc_per_node K --no-python ganbench train ...``, after the
caller joined the process group): every process runs this loop on ``batch_size`` rows of
each whole batch of K x ``batch_size``, gradients averaged before each update
(:mod:`ganbench.distributed`); process 0 alone writes files and shows progress; the
checkpoint records the whole batch, so ``--resume`` works in any number of processes.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import ganbench
from ganbench import run_card
from ganbench.train_loggers import check_logger, open_logger
from ganbench.atomic import atomic_path, atomic_write_text, remove_stale_temps
from ganbench.checkpoints import (CHECKPOINT_NAME, checkpoint_meta, collect_state, read_checkpoint, restore_state,
                                  save_checkpoint)
from ganbench.data import dataset_info, parse_name, training_data
from ganbench.distributed import (PeerFailed, agreed, broadcast_, convert_sync_batchnorm, current_shard,
                                  from_rank0, is_peer_failure, mean_over_processes, module_state, process_device,
                                  rank_batches, train_context)
from ganbench.errors import GanbenchError, first_line, write_problem
from ganbench.generative import ConditionalImageGenerator, GenerativeModel, sample_latents
from ganbench.images import float_to_uint8
from ganbench.models.base import (Batch, GANModel, TrainContext, create_model, eval_mode, model_info,
                                  resolve_config)

# evaluate(generator, step) -> {metric: value}; the generator is in eval mode.
EvaluateFn = Callable[[GenerativeModel, int], dict[str, Any]]

NUM_FIXED_SAMPLES = 64


@dataclass(frozen=True)
class TrainOptions:
    """Everything that defines a training run (``ganbench train`` maps 1:1 onto it)."""

    model: str  # registered model name
    dataset: str = "digits"  # dataset name (``ganbench datasets``)
    steps: int = 1000  # generator steps (train_step calls) in total
    batch_size: int | None = None  # real images per D update; None: the model's paper recipe
    seed: int = 0  # seeds init, data order, latents
    device: str = "cpu"  # "cpu", "cuda", "cuda:1"
    out: str | None = None  # run folder; None writes nothing (tests, benchmarks)
    overrides: dict[str, Any] = field(default_factory=dict)  # hyperparameters (--set k=v)
    resume: bool = False  # continue from out/checkpoint.safetensors
    ema: float | None = None  # generator EMA decay (e.g. 0.999); None: the recipe's; 0: raw G
    ema_start: int | None = None  # steps during which the EMA copies G; None: the recipe's
    amp: bool = False  # opt-in mixed precision + channels_last on CUDA (ignored on CPU)
    log_every: int = 10  # steps between metrics.jsonl lines / progress updates
    sample_every: int = 500  # steps between sample grids (0: only at the end)
    checkpoint_every: int = 1000  # steps between checkpoints (always one at the end)
    eval_every: int = 0  # steps between evaluate() calls (0: never)
    num_workers: int = 0  # data-loading processes for file-backed datasets
    progress: bool = True  # tqdm progress bar
    sync_bn: bool = False  # several processes: batch norm over the whole batch (SyncBatchNorm), not each process's
    logger: str = "tensorboard"  # also log to: "tensorboard" (out/tensorboard, when installed), "wandb", "none"


@dataclass
class TrainResult:
    model: GANModel
    generator: GenerativeModel  # the EMA generator when the run keeps one
    step: int
    losses: dict[str, float]
    out: Path | None
    checkpoint: Path | None
    seconds: float
    real_images: int = 0  # real images the discriminator saw (batches drawn x whole batch), resumed runs included


class TrainingDiverged(GanbenchError):
    """The losses became NaN or infinite."""


# keys a resumed run must share with its checkpoint (the later ones only when recorded)
_RESUME_KEYS = ("dataset", "batch_size", "seed", "ema")
_RESUME_KEYS_IF_RECORDED = ("ema_start", "precision")
# logs holding one {"step": N, ...} record a line; a resumed run rewrites those after its start
_LOGS = ("metrics.jsonl", "eval.jsonl")


def train(model: str | TrainOptions | None = None, dataset: str | None = None, *,
          evaluate: EvaluateFn | None = None, command: Sequence[str] | None = None, **kwargs: Any) -> TrainResult:
    """Train a registered model; see :class:`TrainOptions` (given whole or as keywords).

    Args:
        evaluate: optional ``evaluate(generator, step) -> {metric: value}`` called every
            ``eval_every`` steps (e.g. a closure over :func:`ganbench.evaluation.evaluate`).
        command: the command line that started the run (``ganbench train`` passes it), recorded
            in ``run.json`` and shown on the run card; None: the card shows the Python call.

    Example::

        train("dcgan", "mnist", steps=2000, out="runs/dcgan", ema=0.999)
    """
    if isinstance(model, TrainOptions):
        if dataset is not None or kwargs:
            raise TypeError("pass either TrainOptions or keywords, not both")
        options = model
    else:
        if model is not None:
            kwargs["model"] = model
        if dataset is not None:
            kwargs["dataset"] = dataset
        unknown = sorted(set(kwargs) - set(TrainOptions.__dataclass_fields__))
        if unknown:
            raise GanbenchError(f"unknown training option(s) {', '.join(unknown)}; valid: "
                                f"{', '.join(TrainOptions.__dataclass_fields__)}")
        options = TrainOptions(**kwargs)
    return _Run(options, evaluate, command).run()


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device when this machine can run on it (cpu, cuda, cuda:N, mps);
    a one-line GanbenchError otherwise. The one device check of training and the CLI."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise GanbenchError(f"bad device {str(device)!r}: use cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanbenchError(f"device {str(device)!r} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise GanbenchError(f"device {str(device)!r} requested but there are only "
                            f"{torch.cuda.device_count()} CUDA devices (cuda:0 is the first)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GanbenchError(f"device {str(device)!r} requested but MPS is not available; use --device cpu")
    return dev


def describe_device(device: torch.device) -> str:
    """``cpu``, ``mps`` or ``cuda:0 (NVIDIA H200)``: what run.json and the run card record."""
    if device.type != "cuda":
        return str(device)
    index = torch.cuda.current_device() if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def prepare_run_dir(out: Path, resume: bool) -> bool:
    """Create ``out`` and remove temp files of killed runs in it; refuse a non-empty
    folder unless resuming. Returns True if a checkpoint exists."""
    if out.exists() and not out.is_dir():
        raise GanbenchError(f"--out {str(out)!r} is a file, not a folder")
    for folder in (out, out / "samples"):
        remove_stale_temps(folder)
    if out.is_dir() and any(out.iterdir()) and not resume:
        raise GanbenchError(f"run folder {str(out)!r} exists and is not empty; pass --resume to "
                            f"continue it, or choose another --out (results are never overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanbenchError(f"cannot create run folder {str(out)!r}: {write_problem(out, exc)}") from None
    return (out / CHECKPOINT_NAME).is_file()


class _Run:
    def __init__(self, options: TrainOptions, evaluate: EvaluateFn | None, command: Sequence[str] | None = None):
        o = options
        if o.steps < 1 or (o.batch_size is not None and o.batch_size < 1):
            raise GanbenchError("--steps and --batch-size must be at least 1")
        if o.ema is not None and not 0.0 <= o.ema < 1.0:
            raise GanbenchError(f"--ema must lie in [0, 1) (e.g. 0.999; 0: no EMA), got {o.ema}")
        if o.ema_start is not None and o.ema_start < 0:
            raise GanbenchError(f"--ema-start must be >= 0, got {o.ema_start}")
        for name in ("log_every", "sample_every", "checkpoint_every", "eval_every"):
            if getattr(o, name) < 0:
                raise GanbenchError(f"{name} must be >= 0")
        check_logger(o.logger)
        self.o, self.evaluate, self.command = o, evaluate, None if command is None else list(command)
        self.device = o.device  # the device in words (describe_device), set by run()
        self.shard = current_shard()  # this process's place among torchrun's (Shard() in one process)
        # files are written by process 0 only
        self.out = Path(o.out).expanduser() if o.out is not None and self.shard.rank == 0 else None
        self.saved_step: int | None = None  # the step of the last checkpoint in out (written or resumed)
        self.recipe: RunRecipe | None = None  # the run's batch size and EMA, set by run()
        self.precision = "float32"  # what the run computes in, set by run()

    def _resolve_recipe(self, dataset_key: str) -> "RunRecipe":
        """The model's paper recipe for the dataset with the options' overrides applied;
        under torchrun ``batch_size`` is per process, and the paper's batch is split."""
        o, paper = self.o, model_info(self.o.model).recipe_for(dataset_key)
        processes = self.shard.world_size
        if o.batch_size is None and paper.batch_size % processes:
            raise GanbenchError(f"the paper's batch of {paper.batch_size} does not split over {processes} "
                                f"processes; pass --batch-size (images per process)")
        batch_size = o.batch_size or paper.batch_size // processes
        ema = paper.ema_decay(batch_size * processes) if o.ema is None else (o.ema or None)
        ema_start = (paper.ema_start if o.ema_start is None else o.ema_start) if ema else 0
        return RunRecipe(batch_size, ema, ema_start, paper.describe(), processes)

    # -- setup ----------------------------------------------------------------------
    def run(self) -> TrainResult:
        o = self.o
        with agreed(self.shard, "start the run"):  # under torchrun an error in one process stops all
            device = resolve_device(o.device)
            if self.shard.distributed:
                device = process_device(device)
            data_name = parse_name(o.dataset)
            if data_name.split:
                raise GanbenchError(f"train on a dataset name, not a split: {o.dataset!r} -> "
                                    f"{str(data_name)!r} (training uses the train split)")
            info = dataset_info(o.dataset)
            config = resolve_config(o.model, data_name.key, o.overrides, data=info)
            resume_from = None
            if self.out is not None:
                if prepare_run_dir(self.out, o.resume) and o.resume:
                    resume_from = self.out / CHECKPOINT_NAME
                elif o.resume:
                    print(f"ganbench: no checkpoint in {self.out}; starting from step 0")
            data = training_data(o.dataset, "train", resolution=config.image_size, channels=config.channels)
            self.recipe = self._resolve_recipe(data_name.key)
        self.device = describe_device(device)
        if o.progress and self.shard.rank == 0:
            print(f"ganbench: training {o.model} on {self.device}")

        rng_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices), _float32_unless_amp(device, o.amp):
            with agreed(self.shard, "build the model"):
                torch.manual_seed(o.seed)
                model, ema, ctx = self._build(config, device)
            start = self._resume(resume_from, model, ema, ctx, config)
            self.saved_step = start if resume_from is not None else None
            if self.out is not None:
                for name in _LOGS:
                    trim_log(self.out / name, start)
            # before run.json: a logger that refuses to start (no W&B login) leaves a new folder empty
            logger = open_logger(o.logger, self.out, self._run_record(config, start), quiet=not o.progress)
            if self.out is not None:
                self._write_run_json(config, start)
            return self._loop(model, ema, ctx, data, start, config, logger)

    def _build(self, config, device: torch.device) -> tuple[GANModel, torch.nn.Module | None, TrainContext]:
        """The model on ``device``, the EMA copy of its generator (or None) and the context
        its ``train_step`` gets; the caller has seeded the global RNG."""
        o = self.o
        model = create_model(o.model, config)
        if isinstance(model.generator, ConditionalImageGenerator):
            model.generator.source_dataset = o.dataset  # what evaluation translates by default
        ctx = train_context(device, self.shard, seed=o.seed + 1, amp=o.amp, channels_last=o.amp)
        self.precision = ctx.precision
        model.to(device)
        if ctx.channels_last:
            model.to(memory_format=torch.channels_last)
        if o.sync_bn and self.shard.distributed:
            convert_sync_batchnorm(model, device)
        ema = None
        if self.recipe.ema is not None:
            ema = copy.deepcopy(model.generator).requires_grad_(False)
        return model, ema, ctx

    def _resume(self, path: Path | None, model, ema, ctx, config) -> int:
        """Restore the checkpoint at ``path`` (None: a fresh run); return the step to start
        at. Under torchrun process 0 reads it and every process restores the same state."""
        if not self.shard.distributed:
            return 0 if path is None else self._restore(path, model, ema, ctx, config)
        payload = from_rank0(self.shard, lambda: None if path is None else self._read_resumable(path, config))
        start = 0
        if payload is not None:
            tensors, meta, start = payload
            restore_state(model, ema, ctx, tensors, meta)
        broadcast_(module_state(model, ema), self.shard)  # process 0's weights everywhere, as DDP starts
        return start

    def _restore(self, path: Path, model, ema, ctx, config) -> int:
        tensors, meta, step = self._read_resumable(path, config)
        restore_state(model, ema, ctx, tensors, meta)
        return step

    def _read_resumable(self, path: Path, config) -> tuple[dict[str, torch.Tensor], dict[str, Any], int]:
        """The checkpoint's tensors, metadata and step, when this run may continue it."""
        tensors, meta = read_checkpoint(path)
        train_meta = meta.get("train", {})
        mine = self._train_meta()
        diffs = [f"{k}: {train_meta.get(k)!r} -> {mine[k]!r}" for k in _RESUME_KEYS
                 if train_meta.get(k) != mine[k]]
        diffs += [f"{k}: {train_meta[k]!r} -> {mine[k]!r}" for k in _RESUME_KEYS_IF_RECORDED
                  if k in train_meta and train_meta[k] != mine[k]]
        if meta.get("model") != self.o.model:
            diffs.insert(0, f"model: {meta.get('model')!r} -> {self.o.model!r}")
        saved_config = meta.get("config", {})
        diffs += [f"{k}: {saved_config.get(k)!r} -> {v!r}" for k, v in config.to_dict().items()
                  if saved_config.get(k) != v]
        if diffs:
            raise GanbenchError(f"cannot resume {str(path)!r} with different settings ({'; '.join(diffs)})")
        step = int(meta["step"])
        if step > self.o.steps:
            raise GanbenchError(f"the checkpoint is at step {step}, beyond --steps {self.o.steps}")
        return tensors, meta, step

    def _train_meta(self) -> dict[str, Any]:
        o = self.o
        r = self.recipe
        meta = {"dataset": o.dataset, "batch_size": r.whole_batch_size, "seed": o.seed, "ema": r.ema,
                "ema_start": r.ema_start, "generator": "ema" if r.ema else "raw", "steps": o.steps,
                "amp": o.amp, "precision": self.precision, "device": o.device, "paper_recipe": r.paper}
        if r.processes > 1:  # batch_size is the whole batch: the one a resume in any world size must keep
            meta.update(processes=r.processes, batch_size_per_process=r.batch_size,
                        batch_norm="whole batch (SyncBatchNorm)" if o.sync_bn else "per process")
        return meta

    def _write_run_json(self, config, start: int) -> None:
        atomic_write_text(self.out / "run.json", json.dumps(self._run_record(config, start), indent=1,
                                                            default=str) + "\n")

    def _run_record(self, config, start: int) -> dict[str, Any]:
        """run.json: the options, recipe, config, device and command of this invocation."""
        return {"ganbench_version": ganbench.__version__, "torch_version": torch.__version__,
                "options": asdict(self.o), "training": self._train_meta(), "config": config.to_dict(),
                "started_at_step": start, "device": self.device, "command": self.command}

    # -- the loop -------------------------------------------------------------------
    def _loop(self, model: GANModel, ema, ctx: TrainContext, data, start: int, config, logger) -> TrainResult:
        o, out = self.o, self.out
        fixed = self._fixed_inputs(model.generator, data)
        batches = self._attach_real_batches(ctx, data, start)
        bar = _progress(o.progress and self.shard.rank == 0, o.steps, start, f"{o.model} {o.dataset}")
        clock = _Clock()
        losses: dict[str, float] = {}
        checkpoint = out / CHECKPOINT_NAME if out is not None and start == o.steps else None  # resumed at its end
        completed = False
        try:
            for step in range(start, o.steps):
                raw = self._step(model, ema, ctx, step, first=step == start)
                done = step + 1
                last = done == o.steps
                bar.update(1)
                clock.steps_since_log += 1
                if _due(o.log_every, done, last):
                    losses = self._log_losses(raw, ctx, done, clock, bar, logger)
                self._sample_and_evaluate(ema if ema is not None else model.generator, fixed, ctx, done, last, logger)
                if out is not None and _due(o.checkpoint_every, done, last):
                    checkpoint = self._save(model, ema, ctx, config, done)
                    run_card.write_run_card(out, step=done, seconds=clock.seconds(),
                                            real_images=ctx.real_batches_drawn * self.recipe.whole_batch_size)
            if self.shard.distributed:
                torch.distributed.barrier()  # every process returns once the last checkpoint is written
            completed = True
        except RuntimeError as exc:
            if self.shard.distributed and is_peer_failure(exc):
                raise PeerFailed(self._peer_failure_message(exc)) from None
            raise
        finally:
            bar.close()
            logger.close(completed)
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        generator = ema if ema is not None else model.generator
        return TrainResult(model, generator, o.steps, losses, out, checkpoint, clock.seconds(),
                           ctx.real_batches_drawn * self.recipe.whole_batch_size)

    def _fixed_inputs(self, generator: GenerativeModel, data) -> "_FixedInputs":
        """What every sample grid of the run shows: fixed latents (labels cycling through
        the classes) or, for image-conditioned models, fixed training sources."""
        latent = generator.latent
        z, labels = sample_latents(latent, NUM_FIXED_SAMPLES, torch.Generator().manual_seed(self.o.seed + 1_000_003))
        if latent.num_classes:
            labels = torch.arange(NUM_FIXED_SAMPLES) % latent.num_classes
        source = None
        if isinstance(generator, ConditionalImageGenerator):
            source = data.extra_batch(0, min(NUM_FIXED_SAMPLES, len(data)), self.o.seed).get("source")
        return _FixedInputs(z, labels, source)

    def _attach_real_batches(self, ctx: TrainContext, data, start: int):
        """Give ``ctx`` the seeded stream of real batches from where the run stands (this
        process's rows of each whole batch); return the stream, for closing."""
        o, shard, labelled = self.o, self.shard, data.num_classes > 0
        if shard.distributed:
            batches = rank_batches(data, shard, self.recipe.batch_size, o.seed, ctx.real_batches_drawn,
                                   o.num_workers)
        else:
            batches = data.batches(self.recipe.batch_size, o.seed, start_step=ctx.real_batches_drawn,
                                   num_workers=o.num_workers)

        def draw() -> Batch:  # the next real batch of the stream; ctx counts them
            index = ctx.real_batches_drawn
            images, labels = next(batches)
            extra = {k: ctx.images(shard.rows(v).to(ctx.device))  # paired datasets: {"source": ...}
                     for k, v in data.extra_batch(index, self.recipe.whole_batch_size, o.seed).items()}
            return Batch(ctx.images(images.to(device=ctx.device, non_blocking=True)),
                         labels.to(ctx.device, non_blocking=True) if labelled else None, extra)

        ctx._draw = draw  # noqa: SLF001 -- the harness owns the context's data stream
        return batches

    def _step(self, model: GANModel, ema, ctx: TrainContext, step: int, first: bool) -> dict[str, Any]:
        """One training step of the model, the processes' states agreed, the EMA updated."""
        batch = ctx.next_real_batch()
        model.train()
        raw = model.train_step(batch, step, ctx)
        # process 0's buffers (batch-norm statistics), as DDP; after the first step its weights
        # too: GAN and CGAN set G's output bias from the first batch, each process from its own
        broadcast_(module_state(model) if first else list(model.buffers()), self.shard)
        if ema is not None:
            _ema_update(ema, model.generator, self.recipe.ema if step >= self.recipe.ema_start else 0.0)
        return raw

    def _log_losses(self, raw, ctx: TrainContext, done: int, clock: "_Clock", bar, logger) -> dict[str, float]:
        """The whole batch's losses at step ``done``, to the bar, ``metrics.jsonl`` and the logger."""
        losses = mean_over_processes(raw, self.shard, ctx.device)
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDiverged(f"{self.o.model} diverged at step {done}: losses {losses}")
        rate = clock.rate_since_log()
        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        if self.out is not None:
            _append_jsonl(self.out / "metrics.jsonl", {"step": done, **losses, "it_s": round(rate, 3),
                                                       "time": round(clock.seconds(), 3)})
            logger.scalars("train", {**losses, "it_s": rate}, done)
        return losses

    def _sample_and_evaluate(self, generator: GenerativeModel, fixed: "_FixedInputs", ctx: TrainContext,
                             done: int, last: bool, logger) -> None:
        o, out = self.o, self.out
        can_draw = fixed.source is not None or not isinstance(generator, ConditionalImageGenerator)
        if out is not None and can_draw and _due(o.sample_every, done, last):
            grid = self._write_samples(generator, fixed.z, fixed.labels, ctx, done, fixed.source)
            logger.image("samples", grid, done)
        if self.evaluate is not None and o.eval_every and _due(o.eval_every, done, last):
            results = self._run_evaluate(generator, done)
            if out is not None:
                _append_jsonl(out / "eval.jsonl", {"step": done, **results})
                logger.scalars("eval", results, done)

    def _peer_failure_message(self, exc: BaseException) -> str:
        where = f"process {self.shard.rank} of {self.shard.world_size}"
        if self.o.out is None:
            saved = "the run writes no checkpoints"
        elif self.out is None:
            saved = "process 0 keeps the last checkpoint"
        elif self.saved_step is None:
            saved = "no checkpoint was written yet"
        else:
            saved = f"the last checkpoint, {self.out / CHECKPOINT_NAME} at step {self.saved_step}, is intact"
        return (f"{where}: another process of the run stopped ({first_line(exc)}); {saved}: "
                f"run the same command again with --resume")

    def _save(self, model, ema, ctx, config, step: int) -> Path:
        tensors, extra = collect_state(model, ema, ctx)
        meta = checkpoint_meta(model=self.o.model, config=config.to_dict(), step=step,
                               dataset=self.o.dataset, seed=self.o.seed, latent=model.generator.latent,
                               extra={"train": self._train_meta(), **extra})
        path = self.out / CHECKPOINT_NAME
        save_checkpoint(path, tensors, meta)
        self.saved_step = step
        return path

    @torch.no_grad()
    def _write_samples(self, generator: GenerativeModel, z, labels, ctx: TrainContext, step: int,
                       source: torch.Tensor | None = None) -> torch.Tensor:
        """Write ``samples/step-N.png`` and return the uint8 (C, H, W) grid."""
        with eval_mode(generator):
            with ctx.autocast():
                if isinstance(generator, ConditionalImageGenerator):
                    images = generator.translate(ctx.images(source.to(ctx.device)))
                else:
                    images = generator.generate(z.to(ctx.device), None if labels is None else labels.to(ctx.device))
        grid = make_grid_uint8(float_to_uint8(images.float().cpu(), generator.latent.output_range))
        path = self.out / "samples" / f"step-{step:07d}.png"
        path.parent.mkdir(exist_ok=True)
        save_png(grid, path)
        return grid

    def _run_evaluate(self, generator: GenerativeModel, step: int) -> dict[str, Any]:
        devices = [self.o.device] if torch.device(self.o.device).type == "cuda" else []
        with eval_mode(generator):
            with torch.random.fork_rng(devices=devices):  # evaluation must not perturb training
                return dict(self.evaluate(generator, step))


@dataclass(frozen=True)
class _FixedInputs:
    """The inputs of every sample grid of a run."""

    z: torch.Tensor
    labels: torch.Tensor | None
    source: torch.Tensor | None  # image-conditioned models translate these training sources


@dataclass
class _Clock:
    """Wall time of a run, and the step rate since the last log line."""

    start: float = field(default_factory=time.perf_counter)
    last_log: float = field(default_factory=time.perf_counter)
    steps_since_log: int = 0

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def rate_since_log(self) -> float:
        now = time.perf_counter()
        rate = self.steps_since_log / max(now - self.last_log, 1e-9)
        self.last_log, self.steps_since_log = now, 0
        return rate


def _due(every: int | None, done: int, last: bool) -> bool:
    """Whether a periodic action (every ``every`` steps, and at the last step) falls at step ``done``."""
    return bool(every and done % every == 0) or last


@dataclass(frozen=True)
class RunRecipe:
    """The batch size and generator EMA one run uses (the paper's unless overridden)."""

    batch_size: int  # real images per D update in each process
    ema: float | None  # per-step decay; None: the raw generator is sampled and evaluated
    ema_start: int  # steps during which the EMA copies G
    paper: str  # the model's paper recipe for the dataset, in words
    processes: int = 1  # torchrun's world size

    @property
    def whole_batch_size(self) -> int:
        """Real images per D update over all processes."""
        return self.batch_size * self.processes


@contextlib.contextmanager
def _float32_unless_amp(device: torch.device, amp: bool):
    """float32 means float32: TF32 matmuls and convolutions off on CUDA (they are on by
    default for cuDNN convolutions) unless the run opted into mixed precision."""
    if device.type != "cuda" or amp:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def make_grid_uint8(images: torch.Tensor, nrow: int = 8, pad: int = 2) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (C, H', W') grid image, rows of ``nrow``."""
    n, c, h, w = images.shape
    nrow = min(nrow, n)
    rows = math.ceil(n / nrow)
    grid = torch.zeros(c, rows * (h + pad) + pad, nrow * (w + pad) + pad, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a uint8 (C, H, W) image atomically."""
    from PIL import Image

    arr = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")


def trim_log(path: Path, step: int) -> None:
    """Keep the records of a JSON-lines log up to ``step`` (the run continuing from ``step``
    writes the later ones again) and drop lines that are not records, such as one cut by a kill."""
    if not path.is_file():
        return
    lines = path.read_text(errors="replace").splitlines()
    atomic_write_text(path, "".join(f"{line}\n" for line in lines if 0 <= _record_step(line) <= step))


def _record_step(line: str) -> float:
    """The step of a log line, or -1 when the line is not a record."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return -1
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else -1


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _progress(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True, smoothing=0.1)


class _NoBar:
    def update(self, n): pass
    def set_postfix(self, *a, **k): pass
    def close(self): pass
