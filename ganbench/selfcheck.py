"""Does the evaluation give the same number however it is run? (``ganbench selfcheck``)

Users keep finding that a metric moves with the batch size or the precision it was computed
at (torchmetrics#1620, torch-fidelity#43). A number is only worth reporting if it does not.
The self-check evaluates a small sample several ways and fails loudly when any metric
moves by more than ``tolerance`` (relative):

* at two batch sizes (the default and an odd one, so the last batch is ragged),
* on CUDA, also on the CPU (another float path: cuDNN algorithms, TF32, kernel order);
  the issue's "float64 on CUDA" would need every extractor to run in float64, which the
  Inception port does not; the CPU float32 path is the independent second opinion here.

Features are recomputed (no cache) and no interval is drawn: only the pass is compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ganbench.evaluation import evaluate

DEFAULT_TOLERANCE = 1e-3  # relative; float32 reduction order alone moves FID by ~1e-6


@dataclass(frozen=True)
class Check:
    key: str
    baseline: float
    other: float
    setting: str  # what differs from the baseline, e.g. "batch size 7"

    @property
    def relative(self) -> float:
        return abs(self.other - self.baseline) / max(abs(self.baseline), 1e-12)


@dataclass(frozen=True)
class SelfCheck:
    checks: tuple[Check, ...]
    tolerance: float

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.relative <= self.tolerance]

    def summary(self) -> str:
        lines = []
        for c in self.checks:
            verdict = "ok" if c.relative <= self.tolerance else f"MOVED beyond {self.tolerance:g}"
            lines.append(f"{c.key:16s} {c.baseline:.8g} -> {c.other:.8g} with {c.setting}: "
                         f"relative change {c.relative:.2e}  {verdict}")
        return "\n".join(lines)


def selfcheck(input: Any, reference: Any = None, metrics: Iterable[str] = ("fid",), *, num_samples: int = 500,
              num_reference: int | None = 500, batch_size: int = 64, other_batch_size: int = 7,
              device: str = "cpu", tolerance: float = DEFAULT_TOLERANCE, **evaluate_options: Any) -> SelfCheck:
    """Evaluate ``input`` at ``batch_size``, at ``other_batch_size`` and (on CUDA) on the
    CPU; compare every output key. ``evaluate_options`` go to every evaluation (extractor,
    weights, options, seed...)."""
    common = dict(evaluate_options, num_samples=num_samples, num_reference=num_reference, use_cache=False,
                  progress=False, record=False, bootstrap=0)
    metrics = list(metrics)
    baseline = evaluate(input, reference, metrics, batch_size=batch_size, device=device, **common).values
    runs = {f"batch size {other_batch_size}": dict(batch_size=other_batch_size, device=device)}
    if device.startswith("cuda"):
        runs["the CPU"] = dict(batch_size=batch_size, device="cpu")
    checks = []
    for setting, how in runs.items():
        other = evaluate(input, reference, metrics, **how, **common).values
        checks += [Check(key, baseline[key], other[key], setting) for key in baseline]
    return SelfCheck(tuple(checks), tolerance)
