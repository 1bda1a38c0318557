"""Where a training run's losses, evaluations and sample grids go besides ``metrics.jsonl``:
TensorBoard (``out/tensorboard``, the default, when installed), Weights & Biases
(``logger="wandb"``: with sample grids and the run's config), or nowhere (``"none"``).
Each logger has ``scalars(prefix, values, step)``, ``image(tag, grid, step)`` and ``close(completed)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ganbench.errors import GanbenchError, first_line

LOGGERS = ("tensorboard", "wandb", "none")


def tensorboard_writer(out: Path | None):
    """A TensorBoard writer logging to ``out/tensorboard`` when the ``tensorboard`` package is
    installed (metrics.jsonl is always written); None otherwise."""
    if out is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _add_scalars(writer, prefix: str, values: dict[str, Any], step: int) -> None:
    if writer is None:
        return
    for key, value in values.items():
        if _is_number(value):
            writer.add_scalar(f"{prefix}/{key}", value, step)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_logger(kind: str) -> None:
    """A known logger whose package is installed (before anything is built or written)."""
    import importlib.util

    from ganbench.errors import UnknownNameError

    if kind not in LOGGERS:
        raise UnknownNameError("logger", kind, LOGGERS)
    if kind == "wandb" and importlib.util.find_spec("wandb") is None:
        raise GanbenchError("--logger wandb needs the wandb package: pip install 'ganbench[wandb]'")


def open_logger(kind: str, out: Path | None, config: dict[str, Any], *, quiet: bool):
    """Where losses and evaluations go besides metrics.jsonl: TensorBoard (the default, when
    installed), Weights & Biases (``config``: the run's record), or nowhere; nowhere without
    a run folder (process 0 alone has one)."""
    if out is None or kind == "none":
        return _TensorBoardLogger(None)
    if kind == "wandb":
        return _WandbLogger(out, config, quiet=quiet)
    return _TensorBoardLogger(tensorboard_writer(out))


class _TensorBoardLogger:
    """Scalars to ``out/tensorboard`` (a None writer logs nothing)."""

    def __init__(self, writer):
        self.writer = writer

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        _add_scalars(self.writer, prefix, values, step)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass  # TensorBoard gets scalars only, as before W&B logging existed

    def close(self, completed: bool = True) -> None:
        if self.writer is not None:
            self.writer.close()


class _WandbLogger:
    """Weights & Biases: losses and evaluations as history (``train/...``, ``eval/...``), sample
    grids as images, the run's record as its config; local files under ``out/wandb``
    (``WANDB_MODE=offline`` keeps everything there; ``wandb sync`` uploads it later)."""

    def __init__(self, out: Path, config: dict[str, Any], *, quiet: bool):
        import wandb

        self.wandb = wandb
        try:  # create_new: a caller's own active run is neither returned nor finished
            self.run = wandb.init(dir=str(out), name=out.name, config=json.loads(json.dumps(config, default=str)),
                                  reinit="create_new", settings=wandb.Settings(silent=quiet))
        except wandb.errors.Error as exc:
            raise GanbenchError(f"--logger wandb: {first_line(exc)} (WANDB_MODE=offline logs without "
                                f"an account, to OUT/wandb)") from None

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        numbers = {f"{prefix}/{key}": value for key, value in values.items() if _is_number(value)}
        if numbers:
            self.run.log(numbers, step=step)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pixels = grid.permute(1, 2, 0).numpy()
        self.run.log({tag: self.wandb.Image(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)}, step=step)

    def close(self, completed: bool = True) -> None:
        self.run.finish(exit_code=0 if completed else 1)  # W&B shows a run that raised as failed
