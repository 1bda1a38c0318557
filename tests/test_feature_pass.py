"""The one feature pass (ganbench.features): prefetching, device placement and precision.

The pass reads the next batch in a background thread while the extractors work on the
current one; on the CPU it must give, bit for bit and in the same order, what a plain loop
over the same batches gives. A source that fails mid-pass fails the pass with its own
error, the thread joined. TF32 is off during the pass and the global flags come back.

Measured tolerances (this machine, digits:train, lenet-mnist, CPU oneDNN bf16): a bf16 pass
is within 4.9e-3 of the largest float32 value (tested at 1e-2). The seeded Inception
(whose weights cancel a lot in float32, see test_extractors.py) is within 0.097 in norm of
its float32 features in bf16 (unfused CPU path; tested on CUDA at 0.2); its float32 CUDA
features must match the CPU ones to 1e-4 of the largest value (TF32 would miss that).
"""
from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganbench.errors import GanbenchError, InputError, UnknownNameError
from ganbench.evaluation import evaluate
from ganbench.features import PRECISIONS, PREFETCH_THREAD, _run_pass, extract, tf32_off
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.metrics.base import FeatureExtractor
from ganbench.registry import feature_extractors
from ganbench.sources import FolderSource, GeneratorSource, TensorSource, resolve_source

pytestmark = pytest.mark.usefixtures("one_thread")
INCEPTION_FEATURES = ("logits", "pool")
LENET_FEATURES = ("logits", "pool")
BF16_LENET_TOLERANCE = 1e-2  # of max |float32 feature|; measured 4.9e-3 (CPU), expected alike on CUDA
BF16_INCEPTION_NORM_TOLERANCE = 0.2  # ||bf16 - float32|| / ||float32||, seeded weights; measured 0.097 (CPU)


class DigitGenerator(GenerativeModel):
    """28 x 28 grey images: tanh of a fixed linear map of z."""

    def __init__(self):
        super().__init__()
        self.latent = LatentSpec(z_dim=8, channels=1, image_size=28)
        self.register_buffer("w", torch.randn(8, 28 * 28, generator=torch.Generator().manual_seed(1)))

    def generate(self, z, labels=None):
        return torch.tanh(z @ self.w).view(-1, 1, 28, 28)


class FailingSource(TensorSource):
    """Images that cannot be read from index ``fail_at`` on."""

    def __init__(self, images, fail_at: int):
        super().__init__(images, "failing")
        self.fail_at = fail_at

    def images(self, start, stop):
        if stop > self.fail_at:
            raise GanbenchError(f"image {self.fail_at} is truncated")
        return super().images(start, stop)


class FlagSpy(FeatureExtractor):
    """Records the TF32 switches it sees in every forward."""

    name = "flag-spy"

    def __init__(self, read_flags):
        super().__init__()
        self.read_flags, self.seen = read_flags, set()

    def forward(self, images, features=None):
        self.seen.add(self.read_flags())
        return {"pool": images.float().flatten(1)[:, :4]}


def plain_loop(source, module, features, batch_size: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The oracle: every batch through the extractor, one after the other, on this thread."""
    outs = [module(source.images(start, min(start + batch_size, len(source))).to(device), features)
            for start in range(0, len(source), batch_size)]
    return {f: torch.cat([out[f].float().cpu() for out in outs]) for f in features}


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).abs().max() / reference.double().abs().max()).item()


def norm_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).norm() / reference.double().norm()).item()


def pass_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]


@pytest.fixture(scope="module")
def lenet():
    return feature_extractors.get("lenet-mnist")()


@pytest.fixture(scope="module")
def inception(inception_weights):
    return feature_extractors.get("inception-v3-compat")(weights=str(inception_weights))


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """The first 45 digits of digits:train as PNG files."""
    folder = tmp_path_factory.mktemp("digits")
    images = resolve_source("digits:train").images(0, 45)
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def tf32_flags():
    """The global flags as they were, put back after the test."""
    saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cudnn.allow_tf32 = saved[1]


def make_source(kind: str, n: int, folder):
    if kind == "generator":
        return GeneratorSource(DigitGenerator(), n, seed=1)
    source = FolderSource(folder)
    source.files = source.files[:n]
    return source


# -- the prefetching pass equals a plain loop -------------------------------------------------------
@pytest.mark.parametrize("kind", ["generator", "files"])
@pytest.mark.parametrize("which, n, batch_size", [("lenet", 45, 7), ("lenet", 45, 16), ("inception", 5, 2)])
def test_prefetching_pass_equals_a_plain_loop(kind, which, n, batch_size, digit_folder, request):
    module = request.getfixturevalue(which)
    features = LENET_FEATURES if which == "lenet" else INCEPTION_FEATURES
    source = make_source(kind, n, digit_folder)
    expected = plain_loop(source, module, features, batch_size)
    got = extract(source, {which: (module, features)}, batch_size=batch_size, use_cache=False, progress=False,
                  keep_images=True)
    for f in features:
        assert got.features[which][f].shape[0] == n
        assert torch.equal(got.features[which][f], expected[f]), f
    assert torch.equal(got.images, source.images(0, n))
    order = [b for b, _, _ in _run_pass(source, {which: (module, features)}, batch_size=batch_size,
                                        device=torch.device("cpu"), progress=False, label="", keep_images=False)]
    assert order == list(range((n + batch_size - 1) // batch_size))


def test_the_next_batch_is_read_while_the_extractor_works_on_this_one():
    asked: list[int] = []  # batch indices the source was asked for, in order

    class Recording(TensorSource):
        def images(self, start, stop):
            asked.append(start // 10)
            return super().images(start, stop)

    class Waits(FeatureExtractor):
        """Waits (up to 10 s) for the source to be asked for the next batch, then notes what it was asked."""

        def __init__(self):
            super().__init__()
            self.seen: list[list[int]] = []

        def forward(self, images, features=None):
            batch = len(self.seen)
            deadline = time.monotonic() + 10
            while batch + 1 < 4 and batch + 1 not in asked and time.monotonic() < deadline:
                time.sleep(0.001)
            self.seen.append(list(asked))
            return {"pool": images.float().flatten(1)[:, :2]}

    extractor = Waits()
    extract(Recording(torch.zeros(35, 3, 2, 2, dtype=torch.uint8), "zeros"), {"w": (extractor, ("pool",))},
            batch_size=10, use_cache=False, progress=False)
    assert extractor.seen == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3]]  # one batch ahead, never two


def test_a_source_failing_mid_pass_fails_it_with_its_own_error(lenet):
    source = FailingSource(resolve_source("digits:train").images(0, 40), fail_at=25)
    caught: list[BaseException] = []

    def run():
        try:
            extract(source, {"lenet-mnist": (lenet, ("pool",))}, batch_size=8, use_cache=False, progress=False)
        except BaseException as exc:  # noqa: BLE001  (whatever it is, the test looks at it)
            caught.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the pass hangs after its source failed"
    assert len(caught) == 1 and type(caught[0]) is GanbenchError
    assert str(caught[0]) == "image 25 is truncated"
    assert pass_threads() == []


def test_an_extractor_failing_mid_pass_leaves_no_thread_behind():
    calls = []

    class Breaks(FeatureExtractor):
        def forward(self, images, features=None):
            calls.append(len(images))
            if len(calls) == 2:
                raise InputError("extractor broke")
            return {"pool": images.float().flatten(1)}

    source = GeneratorSource(DigitGenerator(), 50, seed=2)
    with pytest.raises(InputError, match="^extractor broke$"):
        extract(source, {"x": (Breaks(), ("pool",))}, batch_size=10, use_cache=False, progress=False)
    assert calls == [10, 10] and pass_threads() == []


# -- TF32 and precision -------------------------------------------------------------------------------
def test_tf32_is_off_during_the_pass_and_the_flags_come_back(tf32_flags):
    torch.set_float32_matmul_precision("medium")
    torch.backends.cudnn.allow_tf32 = True
    spy = FlagSpy(lambda: (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32))
    source = TensorSource(torch.zeros(6, 3, 4, 4, dtype=torch.uint8), "zeros")
    extract(source, {"spy": (spy, ("pool",))}, batch_size=4, use_cache=False, progress=False)
    assert spy.seen == {("highest", False)}
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("medium", True)
    with pytest.raises(GanbenchError):
        extract(FailingSource(torch.zeros(6, 3, 4, 4, dtype=torch.uint8), fail_at=5), {"spy": (spy, ("pool",))},
                batch_size=4, use_cache=False, progress=False)
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32) == ("medium", True)


@pytest.mark.skipif(not hasattr(torch.backends.cudnn.conv, "fp32_precision"), reason="torch < 2.9")
def test_flags_set_through_the_per_backend_api_are_switched_and_restored_through_it():
    switches = (torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn)
    saved = [s.fp32_precision for s in switches]
    try:
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cudnn.rnn.fp32_precision = "tf32", "ieee"
        with pytest.raises(RuntimeError):  # the legacy switch cannot be read in this state
            _ = torch.backends.cudnn.allow_tf32
        before = [s.fp32_precision for s in switches]
        spy = FlagSpy(lambda: tuple(s.fp32_precision for s in switches))
        extract(TensorSource(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "zeros"), {"spy": (spy, ("pool",))},
                use_cache=False, progress=False)
        assert spy.seen == {("ieee", "ieee", "ieee")}
        assert [s.fp32_precision for s in switches] == before
    finally:
        for switch, value in zip(switches, saved):
            switch.fp32_precision = value


def test_bf16_pass_on_the_cpu_is_close_to_float32(lenet):
    source = resolve_source("digits:train")
    extractors = {"lenet-mnist": (lenet, LENET_FEATURES)}
    exact = extract(source, extractors, batch_size=200, use_cache=True, progress=False).features["lenet-mnist"]
    bf16 = extract(source, extractors, batch_size=200, use_cache=True, progress=False,
                   precision="bf16").features["lenet-mnist"]
    for f in LENET_FEATURES:
        assert bf16[f].dtype == torch.float32
        # above 0: autocast ran (and the float32 features just cached were not served instead)
        assert 0 < relative_error(bf16[f], exact[f]) <= BF16_LENET_TOLERANCE


def test_bf16_rows_carry_their_precision_and_rank_apart():
    from ganbench.leaderboards.board import build_leaderboards
    import pandas as pd

    common = dict(metrics=["fid"], extractor="lenet-mnist", device="cpu", progress=False, bootstrap=0)
    exact = evaluate("digits:train", "digits:test", **common)
    bf16 = evaluate("digits:train", "digits:test", precision="bf16", **common)
    (row32,), (row16,) = exact.rows, bf16.rows
    protocol32, protocol16 = json.loads(row32["protocol"]), json.loads(row16["protocol"])
    assert "precision" not in protocol32  # float32 protocol ids are those recorded before the option existed
    assert protocol16.pop("precision") == "bf16" and protocol16.pop("tf32") is False
    assert protocol16.pop("precision_standard") is False
    assert protocol16 == protocol32 and row16["protocol_id"] != row32["protocol_id"]
    assert row16["weights_standard"] == row32["weights_standard"]  # a fact about the weights
    assert any("bf16" in w for w in bf16.warnings) and not any("bf16" in w for w in exact.warnings)
    assert bf16.value("fid") == pytest.approx(exact.value("fid"), rel=0.02)
    board, = build_leaderboards(pd.DataFrame(exact.rows + bf16.rows))
    columns = {c.protocol_id: c.name for c in board.columns}
    assert sorted(columns.values()) == ["fid@bf16", "fid@float32"]


def test_precision_is_checked_before_any_image_is_read(tmp_path):
    with pytest.raises(UnknownNameError, match="precision 'fp16'.*bf16, float32"):
        evaluate("no-such-folder/", "digits:test", metrics=["fid"], extractor="lenet-mnist", precision="fp16")
    with pytest.raises(InputError, match="float32"):
        evaluate("digits:train", "digits:test", metrics=["fid"], extractor="lenet-mnist", progress=False,
                 precision="bf16", save_features=tmp_path / "bf16.safetensors")


def test_cli_precision_option(tmp_path):
    from ganbench.cli import main
    from ganbench.cli.eval_cmd import eval_cmd

    option = next(p for p in eval_cmd.params if p.name == "precision")
    assert tuple(option.type.choices) == PRECISIONS and option.default == "float32"
    out = tmp_path / "rows.json"
    args = ["eval", "-m", "fid", "-i", "digits:train", "-r", "digits:test", "--extractor", "lenet-mnist",
            "--device", "cpu", "--bootstrap", "0", "--no-record", "-q"]
    result = CliRunner().invoke(main, [*args, "--precision", "bf16", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(json.loads(out.read_text())[0]["protocol"])["precision"] == "bf16"
    assert "bf16 feature pass" in result.output
    bad = CliRunner().invoke(main, [*args, "--precision", "fp16"])
    assert bad.exit_code == 2 and "fp16" in bad.output


# -- on CUDA --------------------------------------------------------------------------------------------
def images_like_pictures(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g) * 255, size=(size, size),
                                             mode="bilinear", align_corners=False)
    return (coarse + torch.randn(n, 3, size, size, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


def cuda_pass(build, images: torch.Tensor, features, precision: str = "float32", **build_args):
    module = build(device="cuda", **build_args)
    got = extract(TensorSource(images, "pictures"), {"x": (module, features)}, batch_size=4, device="cuda",
                  use_cache=False, progress=False, precision=precision).features["x"]
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in got.values())
    return got


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pass_equals_the_cpu_pass(inception_weights, inception):
    images = images_like_pictures(10, 64, seed=3)
    cpu = extract(TensorSource(images, "pictures"), {"x": (inception, INCEPTION_FEATURES)}, batch_size=4,
                  use_cache=False, progress=False).features["x"]
    gpu = cuda_pass(feature_extractors.get("inception-v3-compat"), images, INCEPTION_FEATURES,
                    weights=str(inception_weights))
    for f in INCEPTION_FEATURES:
        assert relative_error(gpu[f], cpu[f]) <= 1e-4, f


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pass_of_a_generator_on_the_gpu_equals_a_plain_loop(lenet):
    source = GeneratorSource(DigitGenerator().cuda(), 45, seed=1, device="cuda")
    module = feature_extractors.get("lenet-mnist")(device="cuda")
    with tf32_off():
        expected = plain_loop(source, module, LENET_FEATURES, 16, device="cuda")
    got = extract(source, {"x": (module, LENET_FEATURES)}, batch_size=16, device="cuda", use_cache=False,
                  progress=False, keep_images=True)
    assert torch.equal(got.images, source.images(0, 45))
    for f in LENET_FEATURES:
        assert relative_error(got.features["x"][f], expected[f]) <= 1e-6, f


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_cuda_pass_is_close_to_float32(inception_weights, inception, lenet):
    digits = resolve_source("digits:train").images(0, 200)
    exact = plain_loop(TensorSource(digits, "digits"), lenet, LENET_FEATURES, 200)
    bf16 = cuda_pass(feature_extractors.get("lenet-mnist"), digits, LENET_FEATURES, precision="bf16")
    for f in LENET_FEATURES:
        assert 0 < relative_error(bf16[f], exact[f]) <= BF16_LENET_TOLERANCE, f
    images = images_like_pictures(8, 64, seed=4)
    exact = plain_loop(TensorSource(images, "pictures"), inception, INCEPTION_FEATURES, 8)
    bf16 = cuda_pass(feature_extractors.get("inception-v3-compat"), images, INCEPTION_FEATURES, precision="bf16",
                     weights=str(inception_weights))
    for f in INCEPTION_FEATURES:
        assert 0 < norm_error(bf16[f], exact[f]) <= BF16_INCEPTION_NORM_TOLERANCE, f
