"""The feature extractors agree with torch-fidelity's on the same weights and images.

The official weights are not available offline, so both sides load the same seeded
files (``ganbench.testing``), which have the official keys and shapes.

Tolerances: the TF1 resize is bit-exact. Features agree to 2e-4 of the largest
reference value (observed: ~3e-5 for Inception, whose seeded weights cancel a lot in
float32, ~3e-6 for VGG16); ganbench's Inception is as close to a float64 torch-fidelity
run as torch-fidelity's own float32 run is.
"""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from ganbench.errors import GanbenchError, InputError, MissingFileError
from ganbench.metrics.inception import InceptionV3Compat, resize_bilinear_tf1
from ganbench.metrics.vgg16 import VGG16Features, vgg16_official_shapes
from ganbench.registry import feature_extractors
from ganbench.weights import CATALOG, sha256_file

RTOL = 2e-4  # of max |reference|


def _images(n: int, size: int | tuple[int, int], seed: int) -> torch.Tensor:
    """Smooth random colour images plus noise: more like pictures than pure noise."""
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    noise = torch.randn(n, 3, h, w, generator=g) * 20
    return (smooth + noise).clamp(0, 255).round().to(torch.uint8)


def _close(ours: torch.Tensor, ref: torch.Tensor, rtol: float = RTOL) -> float:
    err = ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()
    assert ours.shape == ref.shape and ours.dtype == torch.float32
    assert err <= rtol, f"relative error {err:.2e} > {rtol:.0e}"
    return err


# -- fixtures (module-scoped: building the networks costs seconds) -----------------------
@pytest.fixture(scope="module")
def inception(inception_weights):
    return feature_extractors.get("inception-v3-compat")(weights=str(inception_weights))


@pytest.fixture(scope="module")
def fidelity_inception(inception_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased", "logits"],
                                       feature_extractor_weights_path=str(inception_weights))


@pytest.fixture(scope="module")
def vgg16(vgg16_weights):
    return feature_extractors.get("vgg16")(weights=str(vgg16_weights))


# -- registry -------------------------------------------------------------------------------
def test_builtin_extractors_are_registered():
    assert {"inception-v3-compat", "vgg16"} <= set(feature_extractors.names())
    provides = feature_extractors.metadata("inception-v3-compat")["provides"]
    assert provides == ("pool", "logits", "logits_biased", "spatial")
    assert feature_extractors.metadata("vgg16")["provides"] == ("fc2", "fc2_relu")


# -- resize ---------------------------------------------------------------------------------
@pytest.mark.parametrize("in_size,out_size", [
    (28, 299), (32, 299), (64, 299), (299, 299), (500, 299), ((20, 37), (299, 224)), ((64, 64), (224, 224)),
])
def test_resize_is_bit_exact_with_torch_fidelity(in_size, out_size):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    images = _images(2, in_size, seed=1)
    out_hw = (out_size, out_size) if isinstance(out_size, int) else out_size
    ref = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=out_hw, align_corners=False)
    assert torch.equal(resize_bilinear_tf1(images, out_size if isinstance(out_size, int) else out_hw), ref)
    channels_last = resize_bilinear_tf1(images, out_hw, channels_last=True)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last, ref)


# -- Inception ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [28, 32, 64, 299])
def test_inception_matches_torch_fidelity(inception, fidelity_inception, size):
    images = _images(2, size, seed=size)
    ours = inception(images)
    with torch.no_grad():
        pool, logits_unbiased, logits = fidelity_inception(images)
    assert set(ours) == {"pool", "logits", "logits_biased", "spatial"}
    _close(ours["pool"], pool)
    _close(ours["logits"], logits_unbiased)
    _close(ours["logits_biased"], logits)


def test_inception_float32_error_is_torch_fidelitys_own(inception, fidelity_inception, inception_weights):
    """BN folding and merged convolutions add no error beyond float32 rounding."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity 0.4.0 maps "float64" to float32, so make the float64 reference by hand
    exact = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                        feature_extractor_weights_path=str(inception_weights)).double()
    exact.feature_extractor_internal_dtype = torch.float64
    images = _images(1, 32, seed=7)
    with torch.no_grad():
        ref64, = exact(images)
        ref32 = fidelity_inception(images)[0]
    theirs = ((ref32.double() - ref64).abs().max() / ref64.abs().max()).item()
    ours = ((inception(images, ("pool",))["pool"].double() - ref64).abs().max() / ref64.abs().max()).item()
    assert ours <= 3 * theirs + 1e-6


def test_inception_is_batch_size_independent(inception):
    images = _images(5, 32, seed=3)
    whole = inception(images)
    parts = [inception(images[:2]), inception(images[2:])]
    for name in whole:
        _close(torch.cat([p[name] for p in parts]), whole[name], rtol=1e-5)


def test_inception_computes_only_what_is_asked(inception):
    images = _images(2, 32, seed=4)
    pool_only = inception(images, ("pool",))
    assert set(pool_only) == {"pool"} and pool_only["pool"].shape == (2, 2048)
    logits = inception(images, ("logits_biased",))
    assert set(logits) == {"logits_biased"} and logits["logits_biased"].shape == (2, 1008)
    with pytest.raises(InputError, match="provides"):
        inception(images, ("2048",))
    pool_only["pool"] -= 1  # ordinary tensors (not inference tensors): in-place updates work


def test_inception_refuses_bad_images(inception):
    with pytest.raises(InputError, match="uint8"):
        inception(torch.rand(2, 3, 32, 32))
    with pytest.raises(InputError, match="uint8"):
        inception(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))


def test_inception_provenance_and_state(inception, inception_weights):
    assert inception.weights_sha256 == sha256_file(inception_weights)
    assert inception.weights_standard is False
    assert inception.describe() == {
        "extractor": "inception-v3-compat", "weights_sha256": sha256_file(inception_weights),
        "weights_standard": False, "input_size": 299, "resize": "tf1-bilinear"}
    assert not inception.training
    assert not any(p.requires_grad for p in inception.parameters())


def test_inception_without_onednn_fusion_agrees(inception, monkeypatch):
    """The portable path (F.conv2d + ReLU; GPUs, other backends) computes the same."""
    import ganbench.metrics.inception as module

    images = _images(2, 28, seed=6)
    fused = inception(images)
    monkeypatch.setattr(module, "_FUSED_CONV", False)
    plain = inception(images)
    for name in fused:
        _close(plain[name], fused[name], rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_inception_on_gpu_agrees_with_cpu(inception_weights):
    build = feature_extractors.get("inception-v3-compat")
    images = _images(4, 32, seed=8)
    cpu = build(weights=str(inception_weights))(images)
    gpu = build(weights=str(inception_weights), device="cuda")(images.cuda())
    for name in cpu:
        assert gpu[name].device.type == "cuda"
        _close(gpu[name].cpu(), cpu[name], rtol=5e-3)  # cuDNN may use TF32


def test_inception_copies_and_pickles(inception):
    images = _images(1, 28, seed=5)
    expected = inception(images, ("pool",))["pool"]
    clone = copy.deepcopy(inception)
    assert torch.equal(clone(images, ("pool",))["pool"], expected)
    assert torch.equal(pickle.loads(pickle.dumps(inception))(images, ("pool",))["pool"], expected)


def test_extractors_refuse_other_state_dicts(inception_weights):
    shapes = InceptionV3Compat.official_shapes()
    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}  # checked before any use
    with pytest.raises(GanbenchError, match="fc.weight.*expected"):
        InceptionV3Compat.from_state_dict({**meta, "fc.weight": torch.empty(1000, 2048, device="meta")})
    with pytest.raises(GanbenchError, match="missing 'Conv2d_1a_3x3.conv.weight'"):
        InceptionV3Compat.from_state_dict({k: v for k, v in meta.items() if k != "Conv2d_1a_3x3.conv.weight"})
    with pytest.raises(GanbenchError, match="unexpected 'extra.weight'"):
        InceptionV3Compat.from_state_dict({**meta, "extra.weight": torch.empty(1)})
    with pytest.raises(GanbenchError, match="VGG16"):
        VGG16Features.from_state_dict(meta)
    # nn.BatchNorm2d's counters, as in torch-fidelity's own state_dict(), are accepted
    state = torch.load(inception_weights, weights_only=True)
    state["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
    assert isinstance(InceptionV3Compat.from_state_dict(state), InceptionV3Compat)


# -- seeded weights -------------------------------------------------------------------------
def test_seeded_inception_weights_are_official_shaped_and_deterministic(inception_weights, tmp_path):
    from ganbench.testing import make_seeded_inception_weights

    state = torch.load(inception_weights, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == InceptionV3Compat.official_shapes()
    again = make_seeded_inception_weights(tmp_path / "again.pth", seed=0)
    assert sha256_file(again) == sha256_file(inception_weights)


def test_seeded_inception_features_are_informative(inception):
    """Features of different images differ and the Inception Score is clearly above 1."""
    images = _images(8, 32, seed=11)
    out = inception(images, ("pool", "logits"))
    pool = out["pool"].double()
    cv = (pool.std(0) / pool.mean(0).abs().clamp_min(1e-12)).mean().item()
    assert cv > 0.1
    probs = torch.softmax(out["logits"].double(), dim=1)
    kl = (probs * (probs.log() - probs.mean(0, keepdim=True).log())).sum(1)
    assert kl.mean().exp().item() > 1.1


def test_seeded_vgg16_weights_are_official_shaped(vgg16_weights):
    state = torch.load(vgg16_weights, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == vgg16_official_shapes()


# -- VGG16 ----------------------------------------------------------------------------------
def test_vgg16_matches_torch_fidelity(vgg16, vgg16_weights):
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    fidelity = FeatureExtractorVGG16("vgg16", ["fc2", "fc2_relu"], feature_extractor_weights_path=str(vgg16_weights))
    images = torch.cat([_images(1, 28, seed=1), _images(1, 28, seed=2)])
    ours = vgg16(images)
    with torch.no_grad():
        fc2, fc2_relu = fidelity(images)
    _close(ours["fc2"], fc2)
    _close(ours["fc2_relu"], fc2_relu)
    assert (ours["fc2_relu"] >= 0).all()
    # batch-size independence
    _close(vgg16(images[1:], ("fc2",))["fc2"], ours["fc2"][1:], rtol=1e-5)


def test_vgg16_provenance(vgg16, vgg16_weights):
    assert vgg16.weights_sha256 == sha256_file(vgg16_weights)
    assert vgg16.weights_standard is False
    assert vgg16.describe()["input_size"] == 224
    assert not any(p.requires_grad for p in vgg16.parameters())


# -- missing weights ------------------------------------------------------------------------
@pytest.mark.parametrize("name,key", [("inception-v3-compat", "inception-v3-fid"), ("vgg16", "vgg16")])
def test_missing_weights_name_the_file_and_hash(name, key, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # empty hub cache
    monkeypatch.delenv("GANBENCH_WEIGHTS_DIR", raising=False)
    spec = CATALOG[key]
    build = feature_extractors.get(name)
    with pytest.raises(MissingFileError) as info:
        build()
    assert spec.filename in str(info.value) and spec.sha256 in str(info.value)
    with pytest.raises(MissingFileError, match="does not exist"):
        build(weights=str(tmp_path / "nope.pth"))
