"""Image-conditioned models (pix2pix, CycleGAN, GPEN), their MNIST-derived paired datasets
and the evaluation seam that translates a source split in the one feature pass.

Learning tests: a short run of each ``tiny`` model on real MNIST-derived data must clearly
improve the lenet-mnist FID of its translations of the test sources (vs. real MNIST test
digits), the L1 error to the ground truth, and for CycleGAN the cycle reconstruction error.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import ConditionalImageGenerator
from ganbench.images import uint8_to_float
from ganbench.models.base import create_model, model_info

N_EVAL = 1000  # test images translated by the learning tests


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


@pytest.fixture(scope="module")
def lenet_reference(data_dir):
    from ganbench.data import load_images
    from ganbench.metrics.lenet import lenet_mnist

    extractor = lenet_mnist()
    real, _ = load_images("mnist", "test", limit=N_EVAL)
    return extractor, extractor(real)["pool"]


@pytest.fixture(scope="module")
def eval_sources():
    """{spec: TranslationSource of its first N_EVAL test images}, built once per spec."""
    return {}


def translation_scores(generator: ConditionalImageGenerator, spec: str, reference, cache: dict) -> dict[str, float]:
    """lenet-mnist FID of the translations of the first N_EVAL test sources, and their L1/PSNR
    to the ground truth."""
    from ganbench.metrics.fid import fid_from_features
    from ganbench.sources import TranslationSource
    from ganbench.translation import paired_errors

    extractor, real = reference
    if spec not in cache:
        source = cache[spec] = TranslationSource(generator, spec)
        source.sources, source.targets = source.sources[:N_EVAL], source.targets[:N_EVAL]
    source = cache[spec]
    source.model = generator.eval()
    out = source.translate(0, N_EVAL)
    return {"fid": fid_from_features(extractor(out)["pool"], real), **paired_errors(out, source.targets)}


def untrained(name: str, dataset: str):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, dataset=dataset, overrides=model_info(name).tiny).generator


# ---------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------
def test_paired_datasets_are_aligned_and_deterministic(data_dir):
    from ganbench.data import open_split, training_data
    from ganbench.translation import PairedSplit, sobel_edges

    edges = open_split("mnist-edges", "test")
    mnist = open_split("mnist", "test")
    assert isinstance(edges, PairedSplit) and torch.equal(edges.images, mnist.images)
    assert torch.equal(edges.sources, sobel_edges(mnist.images))
    assert set(edges.sources.unique().tolist()) == {0, 255} and 0.1 < edges.sources.float().mean() / 255 < 0.4
    degraded = open_split("mnist-degraded", "test")
    assert torch.equal(degraded.sources, open_split("mnist-degraded", "test").sources)  # seeded
    diff = (degraded.sources.float() - degraded.images.float()).abs().mean(dim=(1, 2, 3))
    assert (diff > 0).all() and diff.std() > 1  # every image degraded, by differing amounts
    # training batches carry the aligned sources; the unpaired set draws them independently
    paired = training_data("mnist-edges", "test", resolution=28)
    idx = paired.batch_indices(3, 16, seed=0)
    src = paired.extra_batch(3, 16, seed=0)["source"]
    assert src.shape == (16, 1, 28, 28) and torch.equal(src, uint8_to_float(edges.sources[idx]))
    unpaired = training_data("mnist-edges-unpaired", "train")
    idx = unpaired.batch_indices(3, 16, seed=0)
    shuffled = unpaired.extra_batch(3, 16, seed=0)["source"]
    assert shuffled.shape == (16, 1, 28, 28) and -1 <= shuffled.min() and shuffled.max() <= 1
    assert not torch.equal(shuffled, uint8_to_float(unpaired.split.sources[idx]))
    assert open_split("mnist-edges-unpaired", "test").paired  # test pairs kept for scoring
    assert training_data("mnist", "test").extra_batch(0, 4, 0) == {}


# ---------------------------------------------------------------------------------------
# The seam
# ---------------------------------------------------------------------------------------
def test_generate_without_source_is_a_clear_error():
    generator = untrained("pix2pix", "mnist-edges")
    with pytest.raises(InputError, match="--source"):
        generator.generate(torch.zeros(2, 1))


def test_missing_or_wrong_source_is_a_clear_error(data_dir):
    from ganbench.evaluation import evaluate

    generator = untrained("pix2pix", "mnist-edges")
    assert generator.source_dataset is None
    with pytest.raises(InputError, match="pass a source"):
        evaluate(generator, "mnist:test", ["fid"], extractor="lenet-mnist", progress=False)
    with pytest.raises(GanbenchError, match="no source images.*mnist-edges"):
        evaluate(generator, "mnist:test", ["fid"], extractor="lenet-mnist", source="mnist:test", progress=False)
    with pytest.raises(GanbenchError, match="Did you mean 'mnist-edges'"):
        evaluate(generator, "mnist:test", ["fid"], extractor="lenet-mnist", source="mnist-edgse:test",
                 progress=False)
    with pytest.raises(InputError, match="only for image-conditioned"):
        evaluate("mnist:test", "mnist:test", ["fid"], extractor="lenet-mnist", source="mnist-edges", progress=False)


def test_translation_checkpoint_evaluates_through_api_and_cli(data_dir, tmp_path):
    from ganbench.cli import main
    from ganbench.evaluation import evaluate
    from ganbench.training import train

    run = train("pix2pix", "mnist-edges", steps=3, batch_size=8, overrides=model_info("pix2pix").tiny,
                out=str(tmp_path / "run"), progress=False)
    assert (tmp_path / "run" / "samples" / "step-0000003.png").is_file()
    kw = dict(metrics=["fid"], extractor="lenet-mnist", num_samples=200, num_reference=500, progress=False)
    result = evaluate(str(run.checkpoint), "mnist:test", batch_size=64, **kw)
    protocol = json.loads(result.rows[0]["protocol"])
    assert protocol["source"] == "mnist-edges:test" and protocol["num_samples"] == 200
    assert result.rows[0]["model"] == "pix2pix" and result.value("fid") > 0
    # translations depend only on their source: the batch size does not change the number
    assert evaluate(str(run.checkpoint), "mnist:test", batch_size=50, **kw).value("fid") == pytest.approx(
        result.value("fid"), rel=1e-6)
    other = evaluate(str(run.checkpoint), "mnist:test", source="mnist-degraded", **kw)
    assert json.loads(other.rows[0]["protocol"])["source"] == "mnist-degraded:test"
    assert other.rows[0]["protocol_id"] != result.rows[0]["protocol_id"]

    cli = CliRunner().invoke(main, ["eval", "-m", "fid", "-i", str(run.checkpoint), "-r", "mnist:test",
                                    "--extractor", "lenet-mnist", "-n", "200", "--num-reference", "500", "-q",
                                    "--json", str(tmp_path / "rows.json")])
    assert cli.exit_code == 0, cli.output
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert json.loads(rows[0]["protocol"])["source"] == "mnist-edges:test"
    assert rows[0]["value"] == pytest.approx(result.value("fid"), rel=1e-6)
    bad = CliRunner().invoke(main, ["eval", "-m", "fid", "-i", str(run.checkpoint), "-r", "mnist:test",
                                    "--extractor", "lenet-mnist", "--source", "mnist:test", "-q"])
    assert bad.exit_code != 0 and "no source images" in bad.output


# ---------------------------------------------------------------------------------------
# Pieces of the papers
# ---------------------------------------------------------------------------------------
def test_cyclegan_history_buffer_and_lr_schedule():
    from ganbench.models.cyclegan import ImageHistory, linear_decay_lr

    assert linear_decay_lr(0, 2e-4, 100, 100) == linear_decay_lr(99, 2e-4, 100, 100) == 2e-4
    assert linear_decay_lr(150, 2e-4, 100, 100) == pytest.approx(1e-4)
    assert linear_decay_lr(250, 2e-4, 100, 100) == 0.0
    history = ImageHistory(3, 1, 2)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(3.0)[:, None, None, None].expand(3, 1, 2, 2)
    assert torch.equal(history.query(first, g), first) and int(history.count) == 3  # filling: returned as is
    new = (10 + torch.arange(200.0))[:, None, None, None].expand(200, 1, 2, 2)
    out = history.query(new, g)
    from_history = (out[:, 0, 0, 0] != new[:, 0, 0, 0]).sum().item()
    assert 70 < from_history < 130  # about half come from the history
    assert set(out[:, 0, 0, 0].tolist()) <= {0.0, 1.0, 2.0, *new[:, 0, 0, 0].tolist()}
    assert int(history.count) == 3 and not torch.equal(history.images, first)  # swapped in

def test_gpen_prior_stage_and_feature_matching():
    from ganbench.models.base import Batch, TrainContext
    from ganbench.models.gpen import feature_matching_loss

    a = [torch.ones(2, 3), torch.zeros(2, 4)]
    assert feature_matching_loss(a, a) == 0 and feature_matching_loss(a, [torch.zeros(2, 3), a[1]]) == 1
    model = create_model("gpen", **{**model_info("gpen").tiny, "prior_steps": 1})
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    prior = model.train_step(Batch(images), 0, TrainContext("cpu"))  # no source needed for the prior
    assert prior["loss_content"] == 0 and prior["loss_fm"] == 0
    with pytest.raises(GanbenchError, match="mnist-degraded"):
        model.train_step(Batch(images), 1, TrainContext("cpu"))
    embedded = model.train_step(Batch(images, extra={"source": images}), 1, TrainContext("cpu"))
    assert embedded["loss_content"] > 0 and embedded["loss_fm"] > 0


# ---------------------------------------------------------------------------------------
# Learning on real MNIST-derived data
# ---------------------------------------------------------------------------------------
LEARNING = [  # model, training dataset, evaluation source, batch size (steps: the model's test_steps)
    ("pix2pix", "mnist-edges", "mnist-edges:test", 32),
    ("cyclegan", "mnist-edges-unpaired", "mnist-edges-unpaired:test", 16),
    ("gpen", "mnist-degraded", "mnist-degraded:test", 16),
]


@pytest.mark.parametrize("name,dataset,source,batch_size", LEARNING)
def test_short_run_learns(name, dataset, source, batch_size, lenet_reference, eval_sources):
    from ganbench.training import train

    steps = model_info(name).test_steps
    before = translation_scores(untrained(name, dataset), source, lenet_reference, eval_sources)
    # the raw generator: a paper recipe's EMA (GPEN's half-life of 10k images) barely moves in a short run
    result = train(name, dataset, steps=steps, batch_size=batch_size, ema=0.0, overrides=model_info(name).tiny,
                   progress=False)
    after = translation_scores(result.generator, source, lenet_reference, eval_sources)
    print(f"{name}: FID {before['fid']:.1f} -> {after['fid']:.1f}, L1 {before['l1']:.3f} -> {after['l1']:.3f}, "
          f"PSNR {before['psnr']:.1f} -> {after['psnr']:.1f} dB after {steps} steps")
    assert before["fid"] > 500, "the untrained model should be far from MNIST"
    assert after["fid"] < 0.5 * before["fid"]
    assert after["l1"] < 0.6 * before["l1"]
    if name == "cyclegan":  # the cycle F(G(x)) reconstructs the source
        x = uint8_to_float(eval_sources[source].sources[:200])
        model = result.model.eval()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            fresh = create_model(name, dataset=dataset, overrides=model_info(name).tiny).eval()
        with torch.no_grad():
            err_before = (fresh.generator_back(fresh.generator(x)) - x).abs().mean().item()
            err_after = (model.generator_back(model.generator(x)) - x).abs().mean().item()
        print(f"cyclegan: cycle L1 {err_before:.3f} -> {err_after:.3f}")
        assert err_after < 0.5 * err_before



# ---------------------------------------------------------------------------------------
# Paired metrics (l1, psnr): each translation against its own ground truth
# ---------------------------------------------------------------------------------------
def test_paired_metric_maths_on_hand_computed_values():
    from ganbench.metrics.paired import PSNR_MAX_DB, mean_absolute_error, psnr_per_image

    target = torch.full((2, 1, 4, 4), 100, dtype=torch.uint8)
    offset = target + torch.tensor([51, 0], dtype=torch.uint8)[:, None, None, None]  # image 0 off by 51 = 0.2
    # L1 in [0, 1] units: image 0 is off by 0.2 everywhere, image 1 is exact -> mean 0.1
    assert mean_absolute_error(offset, target) == pytest.approx(0.1, abs=1e-12)
    # PSNR of a constant offset d (peak 1): -10 log10(d^2) = -20 log10(0.2) = 13.979 dB; exact copy -> the cap
    psnr = psnr_per_image(offset, target)
    assert psnr[0].item() == pytest.approx(-20 * math.log10(0.2), abs=1e-9)
    assert psnr[1].item() == PSNR_MAX_DB == 100.0
    # per image, then averaged (not the PSNR of the pooled MSE): half the pixels of one image off by 255
    half = target.clone()
    half[0, :, :2] = 255  # off by 155 on 8 of 16 pixels: MSE (155/255)^2 / 2
    expected = -10 * math.log10((155 / 255) ** 2 / 2)
    assert psnr_per_image(half, target)[0].item() == pytest.approx(expected, abs=1e-9)
    assert psnr_per_image(half, target, max_db=5.0)[0].item() == 5.0
    # identity: L1 0, PSNR at the cap; symmetric; 1 vs 3 replicated channels give the same numbers
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert mean_absolute_error(images, images) == 0.0 and (psnr_per_image(images, images) == 100.0).all()
    other = images.flip(0)
    assert mean_absolute_error(images, other) == mean_absolute_error(other, images) > 0
    rgb, other_rgb = images.expand(-1, 3, -1, -1), other.expand(-1, 3, -1, -1)
    assert torch.allclose(psnr_per_image(rgb, other_rgb), psnr_per_image(images, other), rtol=1e-12, atol=0)
    assert mean_absolute_error(rgb, other_rgb) == pytest.approx(mean_absolute_error(images, other), rel=1e-12)
    with pytest.raises(InputError, match="same shape"):
        mean_absolute_error(images, images[:2])
    with pytest.raises(InputError, match="uint8"):
        psnr_per_image(images.float(), images.float())


def test_paired_metrics_without_targets_are_a_clear_error(data_dir, tmp_path):
    import numpy as np

    from ganbench.evaluation import evaluate

    generator = untrained("pix2pix", "mnist-edges").eval()
    with pytest.raises(InputError, match="l1 compares each output with its ground truth.*image-conditioned"):
        evaluate("mnist:test", None, ["l1"], num_samples=10, progress=False)
    sources = tmp_path / "edges.npz"
    np.savez(sources, images=np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(InputError, match=r"psnr compares each translation .* source '.*edges.npz' has none"):
        evaluate(generator, None, ["psnr"], source=str(sources), progress=False)
    with pytest.raises(GanbenchError, match="'l1' has no option"):
        evaluate(generator, None, ["l1"], source="mnist-edges:test", options={"l1": {"pixel_range": "[-1, 1]"}},
                 progress=False)


def test_paired_metrics_land_in_the_results_store_in_the_one_pass(data_dir, tmp_path, monkeypatch):
    from ganbench.cli import main
    from ganbench.leaderboards import open_store
    from ganbench.leaderboards.board import build_leaderboards
    from ganbench.sources import TranslationSource
    from ganbench.training import train

    monkeypatch.setenv("GANBENCH_RESULTS", str(tmp_path / "results.sqlite"))  # only this test's rows
    run = train("pix2pix", "mnist-edges", steps=3, batch_size=8, overrides=model_info("pix2pix").tiny,
                out=str(tmp_path / "run"), progress=False)
    calls = []
    translate = TranslationSource.translate
    monkeypatch.setattr(TranslationSource, "translate", lambda self, a, b: calls.append(b - a) or translate(self, a, b))
    cli = CliRunner().invoke(main, ["eval", "-m", "l1", "-m", "psnr", "-m", "fid", "-i", str(run.checkpoint),
                                    "-r", "mnist:test", "--source", "mnist-edges:test", "--extractor", "lenet-mnist",
                                    "-n", "200", "--num-reference", "500", "-q"])
    assert cli.exit_code == 0, cli.output
    assert sum(calls) == 200, "one translation pass feeds the features and the paired metrics"

    rows = open_store().load()
    by_key = {r["key"]: r for _, r in rows.iterrows()}
    assert set(by_key) == {"l1", "psnr", "fid"}
    l1, psnr = by_key["l1"], by_key["psnr"]
    assert not l1["higher_is_better"] and psnr["higher_is_better"]
    assert (l1["dataset"], l1["split"], l1["extractor"]) == ("mnist-edges", "test", "pixels")
    assert by_key["fid"]["dataset"] == "mnist"  # feature metrics keep their reference's dataset
    protocol = json.loads(psnr["protocol"])
    assert protocol["source"] == protocol["targets"] == "mnist-edges:test" and protocol["num_samples"] == 200
    assert protocol["options"] == {"max_db": 100.0, "pixel_range": "[0, 1]", "peak": 1.0, "average": "per image"}
    assert protocol["reference"] is None and protocol["input_size"] == 32  # the model's resolution

    # the stored numbers are the pure functions of the checkpoint's translations and their targets
    from ganbench.checkpoints import load_generator
    from ganbench.translation import paired_errors

    source = TranslationSource(load_generator(run.checkpoint)[0], "mnist-edges:test")
    expected = paired_errors(source.translate(0, 200), source.targets[:200])
    assert l1["value"] == pytest.approx(expected["l1"], rel=1e-12) and 0 < l1["value"] < 1
    assert psnr["value"] == pytest.approx(expected["psnr"], rel=1e-12) and 0 < psnr["value"] < 100

    # another source split is another protocol, never ranked with the first; l1 ranks lowest first
    cli = CliRunner().invoke(main, ["eval", "-m", "l1", "-i", str(run.checkpoint), "--source", "mnist-degraded",
                                    "-n", "200", "-q"])
    assert cli.exit_code == 0, cli.output
    rows = open_store().load(metric="l1")
    assert sorted(rows["dataset"]) == ["mnist-degraded", "mnist-edges"] and rows["protocol_id"].nunique() == 2
    boards = build_leaderboards(open_store().load(dataset="mnist-edges"))
    assert len(boards) == 1 and {c.key for c in boards[0].columns} == {"l1", "psnr"}
    assert {c.key: c.higher_is_better for c in boards[0].columns} == {"l1": False, "psnr": True}
