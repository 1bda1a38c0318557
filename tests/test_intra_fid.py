"""intra-fid: the mean of per-class FIDs. Against FIDs of a hand split computed one by one
with the existing fid function; invariant to the order of the rows; one-line errors for
missing or short classes; and on LeNet features of the digits, a conditional 'generator'
that draws the class it is asked for scores far better than one that ignores its label,
while their plain FIDs are alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganbench.errors import InputError
from ganbench.evaluation import build_extractors, evaluate, extract_features, make_plan, resolve_inputs
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.metrics.fid import fid_from_features
from ganbench.metrics.intra_fid import compute, intra_fid, per_class_fid
from ganbench.registry import metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def labelled_features(per_class, d, seed, shift=0.0):
    """(features (N, D) float32, labels (N,)): class c around c * (1, ..., 1) + shift, rows shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(per_class)), per_class)
    x = rng.normal(0.0, 1.0, (len(labels), d)) + labels[:, None] + shift
    order = rng.permutation(len(labels))
    return torch.tensor(x[order], dtype=torch.float32), torch.tensor(labels[order])


def hand_split_mean_fid(fake, labels, real, reference_labels):
    fake, real = fake.numpy(), real.numpy()
    labels, reference_labels = labels.numpy(), reference_labels.numpy()
    fids = [fid_from_features(fake[labels == c], real[reference_labels == c]) for c in (0, 1, 2)]
    return float(np.mean(fids)), fids


def test_equals_the_mean_of_per_class_fids_of_a_hand_split():
    fake, labels = labelled_features([12, 9, 15], 4, seed=0, shift=0.3)
    real, reference_labels = labelled_features([10, 14, 8], 4, seed=1)
    expected, fids = hand_split_mean_fid(fake, labels, real, reference_labels)
    assert intra_fid(fake, labels, real, reference_labels) == pytest.approx(expected, rel=1e-12)
    assert list(per_class_fid(fake, labels, real, reference_labels).values()) == pytest.approx(fids, rel=1e-12)
    assert expected != pytest.approx(fid_from_features(fake, real), rel=0.1)  # not the FID of the whole sets
    out = compute({"pool": fake}, {"pool": real}, labels=labels, reference_labels=reference_labels)
    assert out == {"intra_fid": pytest.approx(expected, rel=1e-12)}


def test_row_order_does_not_matter():
    fake, labels = labelled_features([6, 7, 5], 3, seed=2)
    real, reference_labels = labelled_features([8, 6, 6], 3, seed=3)
    order = torch.randperm(len(fake), generator=torch.Generator().manual_seed(0))
    assert intra_fid(fake[order], labels[order], real, reference_labels) == pytest.approx(
        intra_fid(fake, labels, real, reference_labels), rel=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(labels=None), "needs labelled inputs"),
    (dict(reference_labels=None), "needs the reference's labels"),
    (dict(labels=torch.tensor([0, 1, 2])), "3 input labels for 18 input samples"),
    (dict(reference_labels=torch.tensor([0, 0, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])),
     "class 2 has 5 generated and 0 reference samples"),
])
def test_bad_labels_are_one_line_errors(change, message):
    fake, labels = labelled_features([6, 7, 5], 3, seed=4)
    real, reference_labels = labelled_features([8, 6, 6], 3, seed=5)
    given = {"labels": labels, "reference_labels": reference_labels, **change}
    with pytest.raises(InputError, match=message):
        compute({"pool": fake}, {"pool": real}, **given)


class DigitBank(GenerativeModel):
    """A 'generator' drawing real 8x8 digits: of the requested class, or (ignore_labels) of the
    class z picks."""

    def __init__(self, images, labels, ignore_labels=False):
        super().__init__()
        self.latent = LatentSpec(z_dim=4, num_classes=10, channels=1, image_size=8, output_range=(0.0, 255.0))
        self.by_class = [torch.as_tensor(images[labels == k]) for k in range(10)]
        self.ignore_labels = ignore_labels

    def generate(self, z, labels=None):
        pick = (z[:, 0].abs() * 1000).long()
        if self.ignore_labels:
            labels = pick % 10
        return torch.stack([self.by_class[int(y)][int(i) % len(self.by_class[int(y)])]
                            for y, i in zip(labels, pick)]).float()


def intra_fid_of(generator, num_samples=400):
    """intra-fid of ``generator`` against digits:test on lenet-mnist, through the runner's plan,
    inputs and one feature pass; the labels are the sources' own (the generator's conditioning,
    the split's classes). Also the plain FID of the same features and the hand-split mean."""
    plan = make_plan(["intra-fid"], None, "lenet-mnist")
    inputs = resolve_inputs(plan, generator, "digits:test", num_samples=num_samples, num_reference=None, seed=0,
                            device="cpu", source=None)
    modules = build_extractors(plan, extractor="lenet-mnist", weights=None, extra_weights={}, device="cpu")
    features = extract_features(plan, inputs, modules, batch_size=128, device="cpu", use_cache=False,
                                progress=False)
    fake, real = features.fake["lenet-mnist"], features.real["lenet-mnist"]
    labels, reference_labels = inputs.fake.class_labels(), inputs.real.class_labels()
    value = metrics.get("intra-fid").compute(fake, real, generator=torch.Generator(), labels=labels,
                                             reference_labels=reference_labels)["intra_fid"]
    by_hand = np.mean([fid_from_features(fake["pool"][labels == c], real["pool"][reference_labels == c])
                       for c in range(10)])
    return value, fid_from_features(fake["pool"], real["pool"]), by_hand


def test_a_generator_that_ignores_its_labels_scores_worse_on_digits():
    from ganbench.data import load_images

    images, labels = load_images("digits", split="train")
    faithful, faithful_fid, by_hand = intra_fid_of(DigitBank(images, labels))
    ignoring, ignoring_fid, _ = intra_fid_of(DigitBank(images, labels, ignore_labels=True))
    assert faithful == pytest.approx(by_hand, rel=1e-12)
    assert ignoring > 5 * faithful  # measured: 101.3 vs 6.9
    assert ignoring_fid == pytest.approx(faithful_fid, rel=0.5)  # FID alone cannot tell them apart: 2.45 vs 2.59


def test_an_untrained_cgan_is_evaluated():
    from ganbench.api import create_model

    torch.manual_seed(0)
    generator = create_model("cgan", dataset="digits").generator.eval()
    value, fid, by_hand = intra_fid_of(generator, num_samples=300)
    assert value == pytest.approx(by_hand, rel=1e-12) and value > 50  # measured: 177 (FID 170)


def test_intra_fid_through_evaluate():
    from ganbench.data import load_images

    images, labels = load_images("digits", split="train")
    result = evaluate(DigitBank(images, labels), "digits:test", ["intra-fid"], extractor="lenet-mnist",
                      num_samples=400, device="cpu", progress=False, use_cache=False, bootstrap=0)
    assert result.value("intra_fid") == pytest.approx(intra_fid_of(DigitBank(images, labels))[0], rel=1e-12)


def digit_banks():
    from ganbench.data import load_images

    images, labels = load_images("digits", split="train")
    return DigitBank(images, labels), DigitBank(images, labels, ignore_labels=True)


def test_bootstrap_replicates_carry_each_sides_labels():
    from ganbench.metrics.bootstrap import generic_replicates, half_sample_indices

    fake, labels = labelled_features([20, 18, 22], 3, seed=6, shift=0.2)
    real, reference_labels = labelled_features([24, 20, 16], 3, seed=7)
    g = torch.Generator().manual_seed(0)
    fake_idx, real_idx = half_sample_indices(len(fake), 4, g), half_sample_indices(len(real), 4, g)
    got = generic_replicates(compute, {"pool": fake}, {"pool": real}, fake_idx, real_idx, g, labels=labels,
                             reference_labels=reference_labels)["intra_fid"]
    by_hand = [intra_fid(fake[f], labels[f], real[r], reference_labels[r]) for f, r in zip(fake_idx, real_idx)]
    assert got == pytest.approx(by_hand, rel=1e-12)


def test_intra_fid_interval_through_evaluate():
    faithful, _ = digit_banks()
    result = evaluate(faithful, "digits:test", ["intra-fid"], extractor="lenet-mnist", num_samples=400,
                      device="cpu", progress=False, use_cache=False, bootstrap=20)
    row = next(r for r in result.rows if r["key"] == "intra_fid")
    assert row["ci_low"] is not None and row["ci_low"] < row["value"] < row["ci_high"]


def test_compare_tells_a_faithful_conditional_generator_from_one_ignoring_its_labels(tmp_path):
    from ganbench.comparison import compare

    faithful, ignoring = digit_banks()
    settings = dict(metrics=["intra-fid"], extractor="lenet-mnist", num_samples=400, progress=False,
                    use_cache=False, bootstrap=20)
    evaluated = compare(faithful, ignoring, "digits:test", **settings)
    (_, difference, higher_is_better), = evaluated.differences
    assert difference.difference < 0 and difference.high < 0 and not higher_is_better  # measured: 6.9 - 101.3
    archives = [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    for generator, path in zip((faithful, ignoring), archives):
        evaluate(generator, "digits:test", ["intra-fid"], extractor="lenet-mnist", num_samples=400, device="cpu",
                 progress=False, use_cache=False, bootstrap=0, record=False, save_features=path)
    archived = compare(*archives, metrics=["intra-fid"], extractor="lenet-mnist", progress=False, bootstrap=20)
    assert archived.differences[0][1].difference == pytest.approx(difference.difference, rel=1e-9)


def test_an_unlabelled_reference_is_refused_before_the_feature_pass():
    from ganbench.data import load_images

    faithful, _ = digit_banks()
    unlabelled = torch.as_tensor(load_images("digits", split="test")[0])
    with pytest.raises(InputError, match="needs the class of every reference image"):
        evaluate(faithful, unlabelled, ["intra-fid"], extractor="lenet-mnist", num_samples=400, device="cpu",
                 progress=False, use_cache=False, bootstrap=0)
