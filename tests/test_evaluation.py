"""The evaluation runner: inputs, one pass for all metrics, the feature cache, sharding,
and one-line errors on bad input. A tiny deterministic extractor keeps these fast; the
agreement with torch-fidelity on the real Inception lives in test_agreement.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.errors import GanbenchError, InputError, UnknownNameError
from ganbench.evaluation import evaluate
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.leaderboards import make_protocol
from ganbench.registry import feature_extractors
from ganbench.sources import FolderSource, GeneratorSource, TensorSource, resolve_source
from ganbench.metrics.base import FeatureExtractor

TINY = "tiny-test"


class TinyExtractor(FeatureExtractor):
    """A fixed random projection of 8x8-pooled images; counts its forward calls."""

    name = TINY
    provides = ("pool", "logits")
    input_size = 8
    resize = "adaptive-avg"
    weights_sha256 = "0" * 64
    calls = 0

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(3 * 64, 16, generator=gen) / 8)
        self.register_buffer("cls", torch.randn(16, 10, generator=gen))

    def forward(self, images, features=None):
        TinyExtractor.calls += 1
        x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 8).flatten(1)
        pool = x @ self.proj
        return {"pool": pool, "logits": pool @ self.cls}


@pytest.fixture
def tiny():
    feature_extractors.register(TINY, lambda weights=None, device="cpu": TinyExtractor().to(device),
                                provides=("pool", "logits"), overwrite=True)
    TinyExtractor.calls = 0
    yield TinyExtractor
    feature_extractors.unregister(TINY)


def random_images(n, size=16, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


class NoiseGenerator(GenerativeModel):
    """Images = tanh of a fixed linear map of z (a real function of its latent)."""

    def __init__(self, z_dim=8, size=16, scale=1.0, num_classes=0):
        super().__init__()
        self.latent = LatentSpec(z_dim=z_dim, num_classes=num_classes, channels=3, image_size=size)
        gen = torch.Generator().manual_seed(1)
        self.register_buffer("w", torch.randn(z_dim, 3 * size * size, generator=gen) * scale)
        self.size = size

    def generate(self, z, labels=None):
        return torch.tanh(z @ self.w).view(-1, 3, self.size, self.size)


SMALL = {"kid": {"subset_size": 10, "subsets": 5}, "isc": {"splits": 2}}
PROBE = 1  # the forward of one image per evaluation that sizes the features for the memory check


def test_one_pass_feeds_every_metric(tiny):
    fake, real = random_images(40, seed=1), random_images(50, seed=2)
    result = evaluate(fake, real, ["fid", "kid", "isc", "pr", "dc"], extractor=TINY, batch_size=16,
                      options=SMALL, progress=False, use_cache=False)
    # 40 images in batches of 16 -> 3 forwards, 50 -> 4: one extraction per batch for all metrics
    assert tiny.calls == PROBE + 3 + 4
    keys = set(result.values)
    assert {"fid", "kid", "isc", "precision", "recall", "density", "coverage"} <= keys
    assert result.std("kid") is not None and result.std("isc") is not None
    assert all(r["num_samples"] == 40 and r["num_reference"] in (50, None) for r in result.rows)
    assert not result.standard


def test_results_are_independent_of_batch_size(tiny):
    fake, real = random_images(30, seed=3), random_images(30, seed=4)
    a = evaluate(fake, real, ["fid", "pr"], extractor=TINY, batch_size=7, progress=False, use_cache=False)
    b = evaluate(fake, real, ["fid", "pr"], extractor=TINY, batch_size=30, progress=False, use_cache=False)
    assert a.value("fid") == pytest.approx(b.value("fid"), rel=1e-6)
    assert a.value("precision") == b.value("precision")


def test_reference_features_are_cached_and_corruption_is_detected(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE_DIR", str(tmp_path / "cache"))
    real = random_images(32, seed=5)
    first = evaluate(random_images(16, seed=6), real, ["fid"], extractor=TINY, batch_size=16, progress=False)
    assert tiny.calls == PROBE + 1 + 2
    # a second model against the same reference: the reference is not extracted again
    tiny.calls = 0
    second = evaluate(random_images(16, seed=7), real, ["fid"], extractor=TINY, batch_size=16, progress=False)
    assert tiny.calls == PROBE + 1
    files = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(files) == 3  # two inputs and the reference, each once
    # truncate every cache file: the numbers must be recomputed, identical, with a warning
    for f in files:
        f.write_bytes(f.read_bytes()[:100])
    tiny.calls = 0
    with pytest.warns(UserWarning, match="feature cache"):
        again = evaluate(random_images(16, seed=7), real, ["fid"], extractor=TINY, batch_size=16, progress=False)
    assert tiny.calls == PROBE + 1 + 2
    assert again.value("fid") == pytest.approx(second.value("fid"), rel=1e-9)
    assert first.value("fid") != second.value("fid")
    # a bit flipped inside the tensor data is caught by the checksum
    f = next(iter((tmp_path / "cache").glob("*.safetensors")))
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checksum"):
        evaluate(random_images(16, seed=7), real, ["fid"], extractor=TINY, batch_size=16, progress=False)


def test_generator_latents_do_not_depend_on_batching():
    gen = NoiseGenerator()
    src = GeneratorSource(gen, 2500, seed=3)
    whole = torch.cat([src.images(i, min(i + 700, 2500)) for i in range(0, 2500, 700)])
    again = torch.cat([src.images(i, min(i + 64, 2500)) for i in range(0, 2500, 64)])
    assert torch.equal(whole, again)
    other_seed = GeneratorSource(gen, 100, seed=4).images(0, 100)
    assert not torch.equal(whole[:100], other_seed)
    assert whole.dtype == torch.uint8 and whole.shape == (2500, 3, 16, 16)


def test_generator_input_is_evaluated(tiny):
    real = random_images(64, seed=8)
    near = evaluate(NoiseGenerator(scale=1.0), real, ["fid"], extractor=TINY, num_samples=64, progress=False)
    assert near.rows[0]["num_samples"] == 64
    # the same FID from scratch: the generator's seeded images, the extractor, then numpy and scipy
    fake = GeneratorSource(NoiseGenerator(scale=1.0), 64, seed=near.rows[0]["seed"]).images(0, 64)
    a, b = (TinyExtractor()(x)["pool"].double().numpy() for x in (fake, torch.from_numpy(real).permute(0, 3, 1, 2)))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert near.value("fid") == pytest.approx(expected, rel=1e-6)


def test_folder_input_equals_array_input(tiny, tmp_path):
    images = random_images(12, seed=9)
    gray = random_images(12, seed=10, channels=1)[..., 0]
    (tmp_path / "rgb" / "sub").mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / "rgb" / ("sub" if i % 2 else "") / f"{i:03d}.png")
    (tmp_path / "gray").mkdir()
    for i, img in enumerate(gray):
        Image.fromarray(img, mode="L").save(tmp_path / "gray" / f"{i:03d}.png")
    folder = FolderSource(tmp_path / "rgb")
    assert len(folder) == 12
    order = [int(p.stem) for p in folder.files]
    assert torch.equal(folder.images(0, 12), TensorSource(images[order], "x").images(0, 12))
    # grayscale is expanded to 3 equal channels, as PIL's convert("RGB") in torch-fidelity
    g = FolderSource(tmp_path / "gray").images(0, 12)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 0], torch.from_numpy(gray))


def test_npz_nchw_and_nhwc_are_the_same(tmp_path):
    nhwc = random_images(5, seed=11)
    np.savez(tmp_path / "a.npz", images=nhwc)
    np.save(tmp_path / "b.npy", nhwc.transpose(0, 3, 1, 2))
    a = resolve_source(str(tmp_path / "a.npz")).images(0, 5)
    b = resolve_source(str(tmp_path / "b.npy")).images(0, 5)
    assert torch.equal(a, b)


# ---- bad input: one line, non-zero exit ------------------------------------------------
def run_cli(*args):
    result = CliRunner().invoke(main, ["eval", "--no-record", "-q", *args])
    return result.exit_code, result.output


def _bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    for i, img in enumerate(random_images(3, 16)):
        Image.fromarray(img).save(tmp_path / "broken" / f"{i}.png")
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(random_images(1, 16)[0]).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(random_images(1, 20)[0]).save(tmp_path / "mixed" / "b.png")
    nan = random_images(4).astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "range.npy", random_images(4).astype(np.float32) * 2)
    np.save(tmp_path / "ok.npy", random_images(20, seed=1))
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["-m", "fid", "-i", "{t}/missing", "-r", "{t}/ok.npy"], "does not exist"),
    (["-m", "fid", "-i", "{t}/empty", "-r", "{t}/ok.npy"], "no images"),
    (["-m", "fid", "-i", "{t}/broken", "-r", "{t}/ok.npy"], "cannot read image"),
    (["-m", "fid", "-i", "{t}/mixed", "-r", "{t}/ok.npy"], "mixed sizes"),
    (["-m", "fid", "-i", "{t}/nan.npy", "-r", "{t}/ok.npy"], "NaN"),
    (["-m", "fid", "-i", "{t}/range.npy", "-r", "{t}/ok.npy"], "out of range"),
    (["-m", "fidd", "-i", "{t}/ok.npy", "-r", "{t}/ok.npy"], "Did you mean 'fid'"),
    (["-m", "kid", "-i", "{t}/ok.npy", "-r", "{t}/ok.npy"], "needs at least 1000 samples"),
    (["-m", "pr", "-i", "{t}/ok.npy", "-r", "{t}/ok.npy", "-n", "3"], "needs at least 4 samples"),
    (["-m", "fid", "-i", "{t}/ok.npy"], "need(s) a reference"),
    (["-m", "kid", "-i", "{t}/ok.npy", "-r", "{t}/ok.npy", "-o", "kid.subset=5"], "no option 'subset'"),
    (["-m", "fid", "-i", "{t}/ok.npy", "-r", "{t}/ok.npy", "--extractor", "incepton"], "Did you mean"),
])
def test_bad_input_gives_one_line_error(tmp_path, tiny, args, message):
    t = _bad_inputs(tmp_path)
    args = [a.format(t=t) for a in args]
    if "--extractor" not in args:
        args += ["--extractor", TINY]
    code, output = run_cli(*args)
    assert code != 0, output
    assert message in output, output
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, output


def test_cli_prints_table_and_json(tmp_path, tiny):
    np.save(tmp_path / "a.npy", random_images(20, seed=1))
    np.save(tmp_path / "b.npy", random_images(20, seed=2))
    out_json = tmp_path / "out.json"
    code, output = run_cli("-m", "fid", "-m", "isc", "-o", "isc.splits=2", "-i", f"{tmp_path}/a.npy",
                           "-r", f"{tmp_path}/b.npy", "--extractor", TINY, "--json", str(out_json))
    assert code == 0, output
    assert "fid" in output and "non-standard" in output and TINY in output
    rows = json.loads(out_json.read_text())
    assert {r["key"] for r in rows} == {"fid", "isc"}
    # results are never silently overwritten
    code, output = run_cli("-m", "fid", "-i", f"{tmp_path}/a.npy", "-r", f"{tmp_path}/b.npy",
                           "--extractor", TINY, "--json", str(out_json))
    assert code != 0 and "--force" in output


DIST_SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np, torch
    sys.path.insert(0, {tests!r})
    from test_evaluation import TinyExtractor, NoiseGenerator, TINY, random_images
    from ganbench.registry import feature_extractors
    from ganbench.evaluation import evaluate
    from ganbench.features import join_process_group
    join_process_group("cpu")  # a no-op without torchrun
    feature_extractors.register(TINY, lambda weights=None, device="cpu": TinyExtractor(), provides=("pool", "logits"))
    r = evaluate(NoiseGenerator(), random_images(45, seed=2), ["fid", "pr", "isc"], extractor=TINY,
                 num_samples=45, batch_size=8, progress=False, use_cache=False, options={{"isc": {{"splits": 3}}}})
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        json.dump(r.values, open(sys.argv[1], "w"))
""")


def test_torchrun_two_processes_equal_one(tmp_path):
    script = tmp_path / "dist_eval.py"
    script.write_text(DIST_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "one.json")], check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                    str(script), str(tmp_path / "two.json")], check=True, env=env, timeout=300,
                   capture_output=True)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert one.keys() == two.keys()
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-9), key


def test_generator_with_wrong_output_is_refused(tiny):
    class Wrong(NoiseGenerator):
        def generate(self, z, labels=None):
            return super().generate(z)[:, :1]

    class Nan(NoiseGenerator):
        def generate(self, z, labels=None):
            return super().generate(z) * float("nan")

    class OutOfRange(NoiseGenerator):
        def generate(self, z, labels=None):
            return super().generate(z) * 3

    for gen, message in ((Wrong(), "channels"), (Nan(), "NaN"), (OutOfRange(), "outside the declared")):
        with pytest.raises(InputError, match=message):
            evaluate(gen, random_images(20), ["fid"], extractor=TINY, num_samples=20, progress=False)


def test_unknown_input_name_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'mnist"):
        resolve_source("mnsit:test")


# ---- what cannot be written never costs the result ----------------------------------------
def test_unwritable_feature_cache_warns_and_the_evaluation_completes(tiny, tmp_path, monkeypatch):
    fake, real = random_images(16, seed=1), random_images(16, seed=2)
    expected = evaluate(fake, real, ["fid"], extractor=TINY, progress=False, use_cache=False).value("fid")
    (tmp_path / "file").write_text("a file where the cache folder's parent should be")
    monkeypatch.setenv("GANBENCH_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.warns(UserWarning, match=r"cannot write feature cache .*file is a file, not a folder"):
        result = evaluate(fake, real, ["fid"], extractor=TINY, progress=False)
    assert result.value("fid") == expected
    # a full or read-only disk (simulated: root ignores permissions) while the file is written
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("GANBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.warns(UserWarning, match="No space left on device"):
        assert evaluate(fake, real, ["fid"], extractor=TINY, progress=False).value("fid") == expected
    assert list((tmp_path / "cache").iterdir()) == []  # no temp file left behind


def test_stale_feature_cache_temp_files_are_removed(tiny, tmp_path, monkeypatch):
    import socket
    import time

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("GANBENCH_CACHE_DIR", str(cache))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    host, me = socket.gethostname(), os.getpid()
    names = {
        "dead": f".a.safetensors.tmp{int(dead.stdout)}-abc_12@{host}",  # its writer was killed
        "old": f".b.safetensors.tmp{me}-xyz@other-host",  # written over an hour ago
        "fresh": f".c.safetensors.tmp{me}-live@{host}",  # a writer at work now
        "far": ".d.safetensors.tmp1-far@other-host",  # another machine's live writer
        "foreign": "notes.tmp",  # not ours
    }
    for name in names.values():
        (cache / name).write_bytes(b"partial")
    hour_ago = time.time() - 3700
    for key in ("old", "foreign"):
        os.utime(cache / names[key], (hour_ago, hour_ago))
    evaluate(random_images(8, seed=1), random_images(8, seed=2), ["fid"], extractor=TINY, progress=False)
    left = {p.name for p in cache.iterdir() if not p.name.endswith(".safetensors")}
    assert left == {names["fresh"], names["far"], names["foreign"]}


def test_store_that_cannot_be_written_keeps_the_result(tiny, tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", random_images(20, seed=1))
    (tmp_path / "file").write_text("a file where the store's folder should be")
    monkeypatch.setenv("GANBENCH_RESULTS", str(tmp_path / "file" / "results.sqlite"))
    result = CliRunner().invoke(main, ["eval", "-q", "-m", "fid", "-i", f"{tmp_path}/a.npy", "-r", f"{tmp_path}/a.npy",
                                       "--extractor", TINY, "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 2, result.output
    assert "non-standard" in result.output  # the table was printed ...
    rows = json.loads((tmp_path / "out.json").read_text())
    assert rows[0]["key"] == "fid"  # ... and the JSON written
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "cannot write results store" in errors[0] and "is a file, not a folder" in errors[0]
    assert "Traceback" not in result.output
    # the Python API: the error carries the result
    with pytest.raises(GanbenchError, match="cannot write results store") as info:
        evaluate(f"{tmp_path}/a.npy", f"{tmp_path}/a.npy", ["fid"], extractor=TINY, progress=False, record=True)
    assert info.value.result.value("fid") == rows[0]["value"]


def test_json_output_uses_its_own_temp_file(tiny, tmp_path):
    np.save(tmp_path / "a.npy", random_images(20, seed=1))
    (tmp_path / "out.tmp").write_text("someone else's file")
    code, output = run_cli("-m", "fid", "-i", f"{tmp_path}/a.npy", "-r", f"{tmp_path}/a.npy", "--extractor", TINY,
                           "--json", str(tmp_path / "out.json"))
    assert code == 0, output
    assert (tmp_path / "out.tmp").read_text() == "someone else's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "out.json", "out.tmp"]


@pytest.mark.parametrize("where, message", [("missing/out.json", "does not exist"),
                                            ("file/out.json", "is a file, not a folder"),
                                            ("folder", "is a directory")])  # click's own check
def test_json_path_is_checked_before_computing(tiny, tmp_path, where, message):
    np.save(tmp_path / "a.npy", random_images(20, seed=1))
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    code, output = run_cli("-m", "fid", "-i", f"{tmp_path}/a.npy", "-r", f"{tmp_path}/a.npy", "--extractor", TINY,
                           "--json", str(tmp_path / where))
    assert code != 0 and message in output, output
    assert tiny.calls == 0  # nothing was computed
    assert "Traceback" not in output and len([ln for ln in output.splitlines() if ln.startswith("Error")]) == 1


def test_samples_beyond_memory_fail_up_front(tiny):
    class Counted(NoiseGenerator):
        calls = 0

        def generate(self, z, labels=None):
            Counted.calls += 1
            return super().generate(z, labels)

    with pytest.raises(InputError, match=r"needs ~[\d,.]+ GiB of memory, have [\d,.]+ GiB"):
        evaluate(Counted(), random_images(20), ["fid"], extractor=TINY, num_samples=10**12, progress=False)
    assert tiny.calls == PROBE and Counted.calls == 0  # sized from a blank image: nothing generated


def test_rows_carry_the_results_store_protocol_and_run_id(tiny):
    result = evaluate(random_images(20, seed=1), random_images(20, seed=2), ["fid", "isc"], extractor=TINY,
                      options={"isc": {"splits": "2"}}, progress=False, use_cache=False)
    assert len({r["run_id"] for r in result.rows}) == 1 and re.fullmatch("[0-9a-f]{32}", result.rows[0]["run_id"])
    for row in result.rows:
        protocol = json.loads(row["protocol"])
        assert make_protocol(**protocol) == (row["protocol"], row["protocol_id"])  # the store's canonical form
    isc = next(r for r in result.rows if r["key"] == "isc")
    assert json.loads(isc["protocol"])["options"] == {"splits": 2, "shuffle": True, "rng": "generator", "seed": 2020}


def test_evaluate_uses_a_process_group_but_never_starts_one(tiny, monkeypatch):
    """Under torchrun the caller joins the group (the CLI: features.join_process_group)."""
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; no MASTER_ADDR: joining would fail
    result = evaluate(random_images(10), random_images(10, seed=1), ["fid"], extractor=TINY, progress=False,
                      use_cache=False)
    assert not torch.distributed.is_initialized() and result.value("fid") >= 0
