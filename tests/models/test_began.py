"""What makes BEGAN itself: the equilibrium k_t (checkpointed), M_global and the linear output."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import create_model

from helpers import run_steps


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


BEGAN_TINY = {"image_size": 16, "n_channels": 8, "h_dim": 8, "z_dim": 8}


def test_began_k_follows_the_equilibrium_rule_and_m_global_is_logged():
    torch.manual_seed(0)
    model = create_model("began", **BEGAN_TINY, lambda_k=0.05, gamma=0.7)
    k = 0.0
    for log in run_steps(model, 5, 16):
        balance = 0.7 * log["loss_real"] - log["loss_g"]
        k = min(max(k + 0.05 * balance, 0.0), 1.0)
        assert log["k"] == pytest.approx(k, abs=1e-6)
        assert log["m_global"] == pytest.approx(log["loss_real"] + abs(balance), rel=1e-5)
    assert model.k.item() == pytest.approx(k, abs=1e-6)
    assert "k" in model.state_dict()  # a buffer: checkpointed


def test_began_resume_restores_k(tmp_path):
    from ganbench.training import train

    opts = dict(dataset="digits", batch_size=16, seed=3, progress=False, log_every=1,
                overrides={**BEGAN_TINY, "lambda_k": 0.05})
    whole = train("began", steps=4, **opts)
    train("began", steps=2, out=str(tmp_path / "run"), **opts)
    resumed = train("began", steps=4, out=str(tmp_path / "run"), resume=True, **opts)
    assert whole.model.k.item() > 0.0  # k moved, so restoring it matters
    assert resumed.model.k.item() == whole.model.k.item()
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_began_linear_output_trains_raw_and_samples_clamped():
    """``g_output="linear"`` (the paper's G): D is trained on G's raw output, which may leave
    [-1, 1]; sampled images are clamped to ganbench's range. ``"tanh"`` squashes both."""
    torch.manual_seed(0)
    model = create_model("began", **BEGAN_TINY, g_output="linear")
    g = model.generator
    with torch.no_grad():
        for p in g.decoder.net[-1].parameters():
            p.mul_(50.0)  # make the raw output overshoot
        z = torch.rand(8, g.latent.z_dim) * 2 - 1
        raw, sampled = g.forward_train(z), g.generate(z)
    assert raw.abs().max() > 1.0
    assert sampled.min() >= -1.0 and sampled.max() <= 1.0
    torch.testing.assert_close(sampled, raw.clamp(-1, 1))
    tanh_model = create_model("began", **BEGAN_TINY, g_output="tanh")
    with torch.no_grad():
        torch.testing.assert_close(tanh_model.generator.forward_train(z),
                                   torch.tanh(tanh_model.generator.decoder(z)))
    with pytest.raises(Exception, match="g_output"):
        create_model("began", **BEGAN_TINY, g_output="sigmoid")
