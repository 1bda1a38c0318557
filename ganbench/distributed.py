"""Training on several processes: ``torchrun --nproc_per_node K --no-python ganbench train ...``.

The one training loop (:mod:`ganbench.training`) runs in every process; this module holds
what makes K processes x batch B train like one process x batch K*B:

* **Data**: step ``s`` takes the seeded batch of K*B images that one process would take
  (:meth:`ganbench.data.TrainingData.batch_indices`) and process ``r`` keeps its rows
  ``r*B .. (r+1)*B`` (:func:`rank_batches`).
* **Noise**: ``ctx.generator`` is seeded alike in every process and every process draws the
  whole batch's latents (``ctx.latents`` / ``ctx.rand`` / ``ctx.randn``) and keeps its rows
  (:class:`DistributedTrainContext`), so the generator's stream stays in step everywhere and
  equals the one-process stream.
* **Gradients**: averaged over the processes between backward and step, for every
  optimizer's parameters (:meth:`DistributedTrainContext.reduce_gradients`); every process
  then makes the same update and the weights stay identical.
* **Buffers**: after every step process 0's buffers (batch-norm running statistics,
  spectral-norm vectors, ...) are broadcast, as DistributedDataParallel's
  ``broadcast_buffers``, and after a run's first step its parameters too (data-dependent
  initialisation); what a checkpoint of process 0 holds is every process's state.

Why not :class:`torch.nn.parallel.DistributedDataParallel`: models call their networks as
plain attributes (``self.discriminator(x)``, ``self.generator.latent``), run several
forwards per backward, update G with D frozen (``frozen(D)``: parameters that stop
requiring grad mid-run) and take gradient penalties with ``torch.autograd.grad(...,
create_graph=True)``, which DDP's reducer does not see (its documentation: DDP does not
work with ``autograd.grad``). Averaging the gradients after each backward is what DDP
computes, without its overlap of communication and backward, and it is correct for every
update a model makes, double backward included: the penalty is ordinary autograd inside
each process, and only the finished gradients are averaged.

Batch norm: by default each process normalises with its own B images' statistics
(DistributedDataParallel's default); ``sync_bn`` makes them the whole batch's
(:func:`convert_sync_batchnorm`: torch's :class:`~torch.nn.SyncBatchNorm` on CUDA,
:class:`CPUSyncBatchNorm` on the CPU, which torch's refuses).

Every collective is entered by every process in the same order; setup errors are agreed
(:func:`agreed`, :func:`from_rank0`) so that no process waits for a collective the others
will never join.
"""
from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganbench.errors import GanbenchError, first_line
from ganbench.models.base import TrainContext


class PeerFailed(GanbenchError):
    """Another process of a multi-process run failed or stopped."""


@dataclass(frozen=True)
class Shard:
    """This process's place in the run: ``rank`` of ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """This process's rows of a whole-batch tensor (``x`` itself in one process)."""
        if not self.distributed:
            return x
        n = len(x) // self.world_size
        return x[self.rank * n:(self.rank + 1) * n]


def current_shard() -> Shard:
    """The shard of the process group in use; ``Shard()`` without one."""
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def process_device(device: torch.device) -> torch.device:
    """The device of this process: ``cuda`` without an index becomes ``cuda:LOCAL_RANK``
    (torchrun's local rank), and CUDA's current device is set to it (NCCL and the object
    collectives use the current device). Other than CPU and CUDA is refused."""
    from ganbench.training import resolve_device

    if device.type not in ("cpu", "cuda"):
        raise GanbenchError(f"several processes train on cpu (gloo) or cuda (nccl), not {device.type}")
    if device.type == "cuda":
        if device.index is None:
            device = resolve_device(f"cuda:{int(os.environ.get('LOCAL_RANK', torch.cuda.current_device()))}")
        torch.cuda.set_device(device)
    return device


# ---------------------------------------------------------------------------------------
# Collectives on groups of tensors
# ---------------------------------------------------------------------------------------
def _by_kind(tensors: Iterable[torch.Tensor]) -> dict[tuple, list[torch.Tensor]]:
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    return groups


def _flat_collective(tensors: Iterable[torch.Tensor], collective: Callable[[torch.Tensor], None]) -> None:
    """``collective`` on one flat copy per dtype and device (one call, not one per tensor),
    written back into ``tensors``."""
    for group in _by_kind(tensors).values():
        flat = torch.cat([t.reshape(-1) for t in group])
        collective(flat)
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].view(t.shape))
            offset += t.numel()


@torch.no_grad()
def average_(tensors: Iterable[torch.Tensor], shard: Shard) -> None:
    """Replace every tensor by its mean over the processes (in place)."""
    def mean(flat: torch.Tensor) -> None:
        dist.all_reduce(flat)  # a sum: gloo has no average
        flat.div_(shard.world_size)

    if shard.distributed:
        _flat_collective(tensors, mean)


@torch.no_grad()
def broadcast_(tensors: Iterable[torch.Tensor], shard: Shard) -> None:
    """Replace every tensor by process 0's (in place)."""
    if shard.distributed:
        _flat_collective(tensors, lambda flat: dist.broadcast(flat, 0))


def mean_over_processes(values: dict[str, Any], shard: Shard, device: torch.device) -> dict[str, float]:
    """``{name: float}`` of numbers or 0-d tensors, averaged over the processes (the logged
    losses of the whole batch)."""
    floats = {k: float(v) for k, v in values.items()}
    if not shard.distributed:
        return floats
    total = torch.tensor(list(floats.values()), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return dict(zip(floats, (total / shard.world_size).tolist()))


def module_state(*modules: nn.Module | None) -> list[torch.Tensor]:
    """Every parameter and buffer of ``modules`` (for :func:`broadcast_`)."""
    return [t for m in modules if m is not None for t in m.state_dict(keep_vars=True).values()
            if isinstance(t, torch.Tensor)]


# ---------------------------------------------------------------------------------------
# Agreeing on errors
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def agreed(shard: Shard, what: str) -> Iterator[None]:
    """Run the block in every process; when it raised in any, raise in all (a process's
    own error, or :class:`PeerFailed` naming the first process that failed), so no process
    goes on to a collective the others will never join. Holds no collective itself in one
    process. The block must not enter collectives."""
    if not shard.distributed:
        yield
        return
    error: Exception | None = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 -- reported to every process, then raised again
        error = exc
    messages: list[str | None] = [None] * shard.world_size
    dist.all_gather_object(messages, None if error is None else first_line(error))
    if error is not None:
        raise error
    for rank, message in enumerate(messages):
        if message is not None:
            raise PeerFailed(f"process {rank} of {shard.world_size} could not {what}: {message}")


def from_rank0(shard: Shard, fn: Callable[[], Any]) -> Any:
    """``fn()`` run by process 0 and its result given to every process (pickled over the
    process group: files need not be shared); its error is raised in every process."""
    if not shard.distributed:
        return fn()
    box: list[Any] = [None]
    error: Exception | None = None
    if shard.rank == 0:
        try:
            box[0] = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 -- reported to every process, then raised again
            error, box[0] = exc, ("error", first_line(exc))
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    status, value = box[0]
    if status == "error":
        raise PeerFailed(f"process 0 of {shard.world_size}: {value}")
    return value


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another process stopped (gloo:
    'Connection closed by peer'; NCCL: a DistBackendError)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(w in text for w in ("by peer", "remote worker", "NCCL"))


# ---------------------------------------------------------------------------------------
# Data and noise
# ---------------------------------------------------------------------------------------
def rank_batches(data, shard: Shard, batch_size: int, seed: int, start_step: int = 0,
                 num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This process's ``batch_size`` rows of each seeded batch of ``batch_size *
    world_size`` images from ``start_step`` on: the processes together see exactly the
    batches one process sees at the whole batch size (``data``: a
    :class:`ganbench.data.TrainingData`)."""
    whole = batch_size * shard.world_size

    def indices(step: int) -> torch.Tensor:
        return shard.rows(data.batch_indices(step, whole, seed))

    if data.split.in_memory or num_workers == 0:
        yield from (data.get_batch(indices(step)) for step in itertools.count(start_step))
    else:  # file-backed: worker processes decode this process's rows only
        sampler = (indices(step).tolist() for step in itertools.count(start_step))
        yield from torch.utils.data.DataLoader(data, batch_sampler=sampler, num_workers=num_workers,
                                               persistent_workers=True)


class DistributedTrainContext(TrainContext):
    """:class:`~ganbench.models.base.TrainContext` of one process of several: gradients
    averaged between backward and step; latents and per-sample noise drawn for the whole
    batch from the generator every process shares, this process keeping its rows."""

    def __init__(self, device: torch.device | str, *, shard: Shard, **kwargs: Any):
        super().__init__(device, **kwargs)
        self.shard = shard

    def reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        # every process computes the same graph, so the same parameters have gradients
        average_([p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None], self.shard)

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        return self.shard.rows(super().rand(n * self.shard.world_size, *shape))

    def randn(self, n: int, *shape: int) -> torch.Tensor:
        return self.shard.rows(super().randn(n * self.shard.world_size, *shape))

    def latents(self, latent, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, labels = super().latents(latent, n * self.shard.world_size)
        return self.shard.rows(z), None if labels is None else self.shard.rows(labels)


def train_context(device: torch.device, shard: Shard, **kwargs: Any) -> TrainContext:
    """The context a run's process gives ``train_step`` (the plain one in one process)."""
    if shard.distributed:
        return DistributedTrainContext(device, shard=shard, **kwargs)
    return TrainContext(device, **kwargs)


# ---------------------------------------------------------------------------------------
# Batch norm over the whole batch
# ---------------------------------------------------------------------------------------
class _AllReduceSum(torch.autograd.Function):
    """The sum over the processes, differentiable (its gradient is the sum of the
    processes' gradients), twice too."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad.contiguous())


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are the whole batch's over every process, for
    CPU tensors (torch's :class:`~torch.nn.SyncBatchNorm` takes only GPU ones).

    The per-channel sums (float64) are all-reduced by a differentiable sum whose backward
    sums the gradients over the processes: each process's input gradient is that
    of the sum of every process's loss, so the averaged parameter gradients equal one
    process's on the whole batch. Outside training, or in one process, it is
    :class:`~torch.nn.BatchNorm2d` (any input of 2 or more dimensions)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {input.dim()}-d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        c, dims = x.shape[1], [0, *range(2, x.dim())]
        xd = x.double()
        count = xd.new_full((1,), x.numel() // c)
        sums = _AllReduceSum.apply(torch.cat([xd.sum(dims), (xd * xd).sum(dims), count]))
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp_min(1))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = ((xd - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)).to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every batch-norm layer inside ``module`` (in place; the root itself is not
    replaced) by one normalising with the whole batch's statistics; the parameters are the
    same objects (the optimizers keep them) and the state-dict keys do not change."""
    cls = nn.SyncBatchNorm if device.type == "cuda" else CPUSyncBatchNorm
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, cls):
            module.add_module(name, _sync_copy(child, cls))
        else:
            convert_sync_batchnorm(child, device)
    return module


def _sync_copy(bn: _BatchNorm, cls: type) -> _BatchNorm:
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    new.running_mean, new.running_var = bn.running_mean, bn.running_var
    new.num_batches_tracked = bn.num_batches_tracked
    return new.train(bn.training)
