"""What makes RaGAN itself: the relativistic losses (RSGAN, RaSGAN, RaLSGAN), checked against
the paper's formulas."""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.errors import GanbenchError

from helpers import random_batch, repeating_context, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def _sig(t: float) -> float:
    return 1 / (1 + math.exp(-t))


def _mean(xs) -> float:
    return sum(xs) / len(xs)


C_REAL, C_FAKE = [2.0, 0.5, -1.0], [1.0, -0.5, 0.25]


def _expected(variant: str) -> tuple[float, float]:
    """The paper's formulas, computed by hand in Python floats."""
    log = math.log
    if variant == "rsgan":
        ld = _mean([-log(_sig(r - f)) for r, f in zip(C_REAL, C_FAKE)])
        lg = _mean([-log(_sig(f - r)) for r, f in zip(C_REAL, C_FAKE)])
        return ld, lg
    mr, mf = _mean(C_REAL), _mean(C_FAKE)
    if variant == "rasgan":
        ld = _mean([-log(_sig(r - mf)) for r in C_REAL]) + _mean([-log(1 - _sig(f - mr)) for f in C_FAKE])
        lg = _mean([-log(_sig(f - mr)) for f in C_FAKE]) + _mean([-log(1 - _sig(r - mf)) for r in C_REAL])
        return ld, lg
    ld = _mean([(r - mf - 1) ** 2 for r in C_REAL]) + _mean([(f - mr + 1) ** 2 for f in C_FAKE])
    lg = _mean([(f - mr - 1) ** 2 for f in C_FAKE]) + _mean([(r - mf + 1) ** 2 for r in C_REAL])
    return ld, lg


@pytest.mark.parametrize("variant", ["rsgan", "rasgan", "ralsgan"])
def test_ragan_losses_on_hand_made_logits(variant):
    from ganbench.models.ragan import relativistic_losses

    loss_d, loss_g = relativistic_losses(torch.tensor(C_REAL, dtype=torch.float64),
                                         torch.tensor(C_FAKE, dtype=torch.float64), variant)
    exp_d, exp_g = _expected(variant)
    assert loss_d.item() == pytest.approx(exp_d, rel=1e-12)
    assert loss_g.item() == pytest.approx(exp_g, rel=1e-12)
    model = tiny_16px("ragan", variant=variant)
    losses = model.train_step(random_batch(), 0, repeating_context(random_batch()))
    assert all(math.isfinite(float(v)) for v in losses.values())


def test_ragan_rejects_unknown_variant():
    with pytest.raises(GanbenchError, match="rsgan, rasgan, ralsgan"):
        tiny_16px("ragan", variant="wgan")
