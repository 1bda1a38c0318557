"""Third-party generators: register (TorchScript, state dict, safetensors, ONNX), evaluate by
name, list, unregister; the pickle refusal; every validation failure; a corrupt registry file.

The generators are tiny linear nets on 8x8 images and evaluation uses the TinyExtractor of
test_evaluation, so the whole file runs in seconds."""
from __future__ import annotations

import argparse
import json
import os
import pickle
import textwrap
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganbench import thirdparty
from ganbench.cli import main
from ganbench.errors import GanbenchError, InputError, MissingFileError
from ganbench.evaluation import evaluate
from ganbench.registry import registered_generators
from ganbench.weights import sha256_file
from test_evaluation import TINY, random_images, tiny  # noqa: F401  (tiny is a fixture)

FACTORIES = textwrap.dedent('''
    """Small generators for test_thirdparty (imported through --factory)."""
    import functools
    import torch
    from torch import nn


    class SmallGenerator(nn.Module):
        """z (N, 8) [+ labels] -> tanh images (N, 3, 8, 8); ``mode`` breaks it on purpose."""

        def __init__(self, z_dim=8, size=8, channels=3, num_classes=0, mode="ok"):
            super().__init__()
            self.fc = nn.Linear(z_dim, channels * size * size)
            self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
            self.shape, self.mode = (channels, size, size), mode

        def forward(self, z, labels=None):
            if self.embed is not None:
                z = z + self.embed(labels)
            x = torch.tanh(self.fc(z))
            if self.mode == "flat":
                return x
            x = x.view(-1, *self.shape)
            if self.mode == "half-batch":
                return x[: len(x) // 2]
            if self.mode == "nan":
                return x * float("nan")
            if self.mode == "inf":
                return x + float("inf")
            if self.mode == "loud":
                return 2 * x
            if self.mode == "uint8":
                return ((x + 1) * 127.5).round().to(torch.uint8)
            return x


    def build():
        return SmallGenerator()


    def build_conditional():
        return SmallGenerator(num_classes=3)


    def build_broken():
        raise ValueError("no such generator")


    build_flat = functools.partial(SmallGenerator, mode="flat")
    build_half_batch = functools.partial(SmallGenerator, mode="half-batch")
    build_nan = functools.partial(SmallGenerator, mode="nan")
    build_inf = functools.partial(SmallGenerator, mode="inf")
    build_loud = functools.partial(SmallGenerator, mode="loud")
    build_uint8 = functools.partial(SmallGenerator, mode="uint8")
''')
MODULE = "ganbench_tp_factories"


class Evil:
    """Unpickling this creates ``path`` (a stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture(scope="session")
def factory_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("factories")
    (root / f"{MODULE}.py").write_text(FACTORIES)
    return root


@pytest.fixture
def gens(factory_dir, monkeypatch):
    """The factories module, importable."""
    monkeypatch.syspath_prepend(str(factory_dir))
    import importlib

    return importlib.import_module(MODULE)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private GANBENCH_HOME per test, with the registered-generators registry following it."""
    monkeypatch.setenv("GANBENCH_HOME", str(tmp_path / "home"))
    thirdparty.refresh()
    yield tmp_path / "home"
    registered_generators.sync(thirdparty.ORIGIN, {})  # no registration outlives its home


def small(gens, seed=0, **kwargs):
    torch.manual_seed(seed)
    return gens.SmallGenerator(**kwargs).eval()


def save_torchscript(module, path, *example):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation / tracer warnings
        torch.jit.trace(module, example or (torch.randn(2, 8),)).save(str(path))
    return path


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(output):
    lines = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def registry_text(home):
    path = home / thirdparty.REGISTRY_FILE
    return path.read_text() if path.exists() else None


# ---- the formats, end to end -----------------------------------------------------------
def test_torchscript_register_eval_list_unregister_cli(gens, tiny, tmp_path, home):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    np.save(tmp_path / "real.npy", random_images(32, size=8, seed=3))
    code, out = cli("register", "ts-gen", "--torchscript", ts, "--z-dim", "8", "--output-range", "-1,1",
                    "--dataset", "digits")
    assert code == 0, out
    assert "Registered 'ts-gen'" in out and "torchscript" in out

    stored = json.loads(registry_text(home))["generators"]["ts-gen"]
    assert stored["path"] == str(ts.resolve()) and os.path.isabs(stored["path"])
    assert stored["sha256"] == sha256_file(ts)
    assert stored["latent"]["z_dim"] == 8 and stored["latent"]["image_size"] == 8  # filled from the probe
    assert stored["dataset"] == "digits" and stored["trust_pickle"] is False
    assert not [p for p in home.iterdir() if p.name != thirdparty.REGISTRY_FILE]  # no temp files left

    [row] = thirdparty.list_registered()
    assert row["name"] == "ts-gen" and row["third_party"] is True and row["format"] == "torchscript"
    assert row["z_dim"] == 8 and row["dataset"] == "digits" and row["checkpoint_sha256"] == sha256_file(ts)
    assert "ts-gen" in registered_generators and registered_generators.metadata("ts-gen")["third_party"] is True

    out_json = tmp_path / "rows.json"
    code, out = cli("eval", "-q", "--no-record", "-m", "fid", "-i", "ts-gen", "-r", tmp_path / "real.npy",
                    "-n", "32", "--extractor", TINY, "--json", out_json)
    assert code == 0, out
    rows = json.loads(out_json.read_text())
    assert rows and all(r["third_party"] is True and r["checkpoint_sha256"] == sha256_file(ts)
                        and r["model"] == "ts-gen" for r in rows)

    code, out = cli("unregister", "ts-gen")
    assert code == 0 and "Unregistered 'ts-gen'" in out
    assert thirdparty.list_registered() == [] and "ts-gen" not in registered_generators
    assert ts.exists()  # the checkpoint itself is kept
    code, out = cli("unregister", "ts-gen")
    assert code != 0 and "unknown registered generator 'ts-gen'" in one_line_error(out)


def test_state_dict_pth_via_factory_conditional(gens, tiny, tmp_path):
    weights = tmp_path / "cond.pth"
    torch.save(small(gens, num_classes=3).state_dict(), weights)
    row = thirdparty.register_checkpoint("cond-gen", factory=f"{MODULE}:build_conditional", weights=weights,
                                         z_dim=8, num_classes=3, dataset="digits")
    assert row["format"] == "factory" and row["num_classes"] == 3 and row["factory"] == f"{MODULE}:build_conditional"
    model, meta = registered_generators.get("cond-gen")(device="cpu")
    assert meta == {**meta, "model": "cond-gen", "third_party": True, "dataset": "digits",
                    "checkpoint_sha256": sha256_file(weights)}
    # the loaded weights are the saved ones: same images as the original module
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    assert torch.allclose(model.generate(z, y), small(gens, num_classes=3)(z, y))
    result = evaluate("cond-gen", random_images(24, size=8), ["fid"], extractor=TINY, num_samples=24,
                      progress=False, use_cache=False)
    assert all(r["third_party"] and r["checkpoint_sha256"] == sha256_file(weights) for r in result.rows)
    assert np.isfinite(result.value("fid"))


def test_safetensors_and_nested_pth_via_factory(gens, tiny, tmp_path):
    from safetensors.torch import save_file

    module = small(gens, seed=1)
    save_file(module.state_dict(), str(tmp_path / "g.safetensors"))
    thirdparty.register_checkpoint("st-gen", factory=f"{MODULE}:build", weights=tmp_path / "g.safetensors", z_dim=8)
    # a training checkpoint {"G": ..., "D": ...}, DataParallel "module." prefixes included
    torch.save({"G": {f"module.{k}": v for k, v in module.state_dict().items()}, "D": {"w": torch.zeros(1)}},
               tmp_path / "ckpt.pth")
    with pytest.raises(GanbenchError, match="--weights-key"):
        thirdparty.register_checkpoint("nested", factory=f"{MODULE}:build", weights=tmp_path / "ckpt.pth", z_dim=8)
    thirdparty.register_checkpoint("nested", factory=f"{MODULE}:build", weights=tmp_path / "ckpt.pth",
                                   weights_key="G", z_dim=8)
    a = evaluate("st-gen", None, ["isc"], extractor=TINY, num_samples=16, options={"isc": {"splits": 2}},
                 progress=False, use_cache=False)
    b = evaluate("nested", None, ["isc"], extractor=TINY, num_samples=16, options={"isc": {"splits": 2}},
                 progress=False, use_cache=False)
    assert a.value("isc") == pytest.approx(b.value("isc"), rel=1e-6)  # same weights, same seed
    assert {r["name"] for r in thirdparty.list_registered()} == {"st-gen", "nested"}


def test_onnx(gens, tiny, tmp_path, require_extra):
    require_extra("onnx", "onnxruntime", extra="onnx")
    module = small(gens)
    path = tmp_path / "gen.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 8),), str(path), input_names=["z"], output_names=["images"],
                          dynamic_axes={"z": {0: "n"}, "images": {0: "n"}}, dynamo=False)
    code, out = cli("register", "onnx-gen", "--onnx", path, "--z-dim", "8")
    assert code == 0, out
    model, meta = registered_generators.get("onnx-gen")()
    z = torch.randn(3, 8)
    assert torch.allclose(model.generate(z), module(z), atol=1e-5)
    assert meta["format"] == "onnx" and meta["checkpoint_sha256"] == sha256_file(path)
    result = evaluate("onnx-gen", random_images(16, size=8), ["fid"], extractor=TINY, num_samples=16,
                      progress=False, use_cache=False)
    assert result.rows[0]["third_party"] is True
    # a one-input ONNX file declared class-conditional
    with pytest.raises(GanbenchError, match="takes 1 input"):
        thirdparty.register_checkpoint("onnx-cond", onnx=path, z_dim=8, num_classes=3)


def test_onnx_without_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails
    (tmp_path / "gen.onnx").write_bytes(b"\x08\x07")
    code, out = cli("register", "onnx-gen", "--onnx", tmp_path / "gen.onnx", "--z-dim", "8")
    assert code != 0 and "pip install 'ganbench[onnx]'" in one_line_error(out)
    assert thirdparty.list_registered() == []


def test_uint8_generators_declare_0_255(gens, tmp_path):
    torch.save(small(gens).state_dict(), tmp_path / "g.pth")
    with pytest.raises(InputError, match="uint8"):
        thirdparty.register_checkpoint("u8", factory=f"{MODULE}:build_uint8", weights=tmp_path / "g.pth", z_dim=8)
    row = thirdparty.register_checkpoint("u8", factory=f"{MODULE}:build_uint8", weights=tmp_path / "g.pth",
                                         z_dim=8, output_range="0,255")
    assert row["output_range"] == [0.0, 255.0]


# ---- safety ------------------------------------------------------------------------------
def test_malicious_pickle_is_refused_and_never_unpickled(gens, tmp_path, home):
    marker = tmp_path / "pwned"
    torch.save({"fc.weight": torch.zeros(192, 8), "fc.bias": torch.zeros(192), "x": Evil(str(marker))},
               tmp_path / "evil.pth")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"x": Evil(str(marker))}))
    attempts = [
        ("--factory", f"{MODULE}:build", "--weights", tmp_path / "evil.pth"),
        ("--torchscript", tmp_path / "evil.pth"),
        ("--factory", f"{MODULE}:build", "--weights", tmp_path / "evil.pkl"),
        ("--torchscript", tmp_path / "evil.pkl"),
    ]
    for attempt in attempts:
        code, out = cli("register", "evil", *attempt, "--z-dim", "8")
        assert code != 0
        line = one_line_error(out)
        assert "--trust-pickle" in line and "arbitrary code" in line, line
        assert not marker.exists()
    assert "io.open" in one_line_error(cli("register", "evil", *attempts[0], "--z-dim", "8")[1])  # names what's inside
    assert registry_text(home) is None and thirdparty.list_registered() == []
    assert not marker.exists()


def test_trust_pickle_loads_pickles_and_is_recorded(gens, tiny, tmp_path, home):
    module = small(gens, seed=2)
    torch.save(module, tmp_path / "whole.pth")  # a pickled nn.Module, not TorchScript
    code, out = cli("register", "whole", "--torchscript", tmp_path / "whole.pth", "--z-dim", "8")
    assert code != 0 and "--trust-pickle" in one_line_error(out)
    code, out = cli("register", "whole", "--torchscript", tmp_path / "whole.pth", "--z-dim", "8", "--trust-pickle")
    assert code == 0, out
    assert "unpickles" in out  # a warning that stays visible
    # a checkpoint with an argparse.Namespace (not loadable with weights_only) through a factory
    torch.save({"G": module.state_dict(), "args": argparse.Namespace(lr=1e-3)}, tmp_path / "ns.pth")
    with pytest.raises(GanbenchError, match="argparse.Namespace"):
        thirdparty.register_checkpoint("ns", factory=f"{MODULE}:build", weights=tmp_path / "ns.pth",
                                       weights_key="G", z_dim=8)
    thirdparty.register_checkpoint("ns", factory=f"{MODULE}:build", weights=tmp_path / "ns.pth",
                                   weights_key="G", z_dim=8, trust_pickle=True)
    rows = {r["name"]: r for r in thirdparty.list_registered()}
    assert rows["whole"]["format"] == "pickle" and rows["whole"]["trust_pickle"] is True
    assert rows["ns"]["format"] == "factory" and rows["ns"]["trust_pickle"] is True
    z = torch.randn(4, 8)
    for name in ("whole", "ns"):
        model, _ = registered_generators.get(name)()
        assert torch.allclose(model.generate(z), module(z))


def test_state_dict_given_as_torchscript_points_to_factory(gens, tmp_path):
    torch.save(small(gens).state_dict(), tmp_path / "sd.pth")
    with pytest.raises(GanbenchError, match="is a state dict, not TorchScript.*--factory"):
        thirdparty.register_checkpoint("sd", torchscript=tmp_path / "sd.pth", z_dim=8)


def test_changed_or_missing_checkpoint_is_refused(gens, tiny, tmp_path):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    thirdparty.register_checkpoint("ts-gen", torchscript=ts, z_dim=8)
    save_torchscript(small(gens, seed=5), ts)  # replaced by other weights
    code, out = cli("eval", "-q", "--no-record", "-m", "isc", "-i", "ts-gen", "-n", "8", "--extractor", TINY)
    assert code != 0 and "changed since it was registered" in one_line_error(out)
    ts.unlink()
    with pytest.raises(MissingFileError, match="does not exist"):
        registered_generators.get("ts-gen")()


# ---- validation at registration ----------------------------------------------------------
@pytest.mark.parametrize("factory, options, message", [
    ("build_flat", {}, r"returned shape \(4, 192\), expected \(4, C, H, W\)"),
    ("build_half_batch", {}, r"returned shape \(2, 3, 8, 8\), expected \(4, C, H, W\)"),
    ("build", {"channels": 1}, "returned 3 channels, declared 1"),
    ("build", {"image_size": 16}, r"returned \(8, 8\) images, declared 16x16"),
    ("build_nan", {}, "NaN/Inf"),
    ("build_inf", {}, "NaN/Inf"),
    ("build_loud", {}, "outside the declared output range"),
    ("build", {"output_range": "0,1"}, "outside the declared output range"),
    ("build", {"z_dim": 12}, "failed on 4 latents of size 12.*--z-dim"),
    ("build_conditional", {}, "failed on 4 latents of size 8"),  # labels needed but not declared
    ("build_broken", {}, "factory .* failed: ValueError: no such generator"),
])
def test_validation_failures_register_nothing(gens, tmp_path, home, factory, options, message):
    torch.save(small(gens, num_classes=3 if factory == "build_conditional" else 0).state_dict(), tmp_path / "g.pth")
    kwargs = {"z_dim": 8, **options}
    with pytest.raises(GanbenchError, match=message) as info:
        thirdparty.register_checkpoint("bad", factory=f"{MODULE}:{factory}", weights=tmp_path / "g.pth", **kwargs)
    assert "\n" not in str(info.value)
    assert registry_text(home) is None and "bad" not in registered_generators


def test_validation_failure_through_the_cli(gens, tmp_path, home):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    code, out = cli("register", "bad", "--torchscript", ts, "--z-dim", "9")
    assert code != 0
    assert "size 9" in one_line_error(out) and "mat1 and mat2" in out  # the TorchScript error, not its preamble
    assert registry_text(home) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "w.pth"}, "--factory needs --weights|exactly one"),
    ({}, "exactly one of --torchscript"),
    ({"torchscript": "gen.pt", "onnx": "gen.onnx"}, "exactly one of"),
    ({"factory": f"{MODULE}:build"}, "--factory needs --weights"),
    ({"torchscript": "gen.pt", "weights": "w.pth"}, "--weights goes with --factory"),
    ({"torchscript": "missing.pt"}, "does not exist"),
    ({"factory": f"{MODULE}:nothing", "weights": "w.pth"}, "has no attribute 'nothing'"),
    ({"factory": "no_such_module_xyz:build", "weights": "w.pth"}, "cannot import 'no_such_module_xyz'"),
    ({"factory": f"{MODULE}:build_conditional", "weights": "w.pth"}, "do not fit .*missing keys embed.weight"),
    ({"torchscript": "gen.pt", "dataset": "mnits"}, "Did you mean 'mnist'"),
    ({"torchscript": "gen.pt", "output_range": "0,2"}, "output range must be one of"),
    ({"torchscript": "gen.pt", "channels": 2}, "channels must be 1 or 3"),
])
def test_bad_arguments(gens, tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    save_torchscript(small(gens), tmp_path / "gen.pt")
    torch.save(small(gens).state_dict(), tmp_path / "w.pth")
    with pytest.raises(GanbenchError, match=message):
        thirdparty.register_checkpoint("x", **{"z_dim": 8, **kwargs})


def test_names_must_not_clash(gens, tmp_path):
    from ganbench.registry import models

    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    for name, message in [("digits", "name of a dataset"), ("a/b", "bad name"), ("-x", "bad name")]:
        with pytest.raises(GanbenchError, match=message):
            thirdparty.register_checkpoint(name, torchscript=ts, z_dim=8)
    assert "dcgan" in models.names()
    with pytest.raises(GanbenchError, match="name of a model"):
        thirdparty.register_checkpoint("dcgan", torchscript=ts, z_dim=8)
    thirdparty.register_checkpoint("mine", torchscript=ts, z_dim=8)
    code, out = cli("register", "mine", "--torchscript", ts, "--z-dim", "8")
    assert code != 0 and "--force" in one_line_error(out)
    code, out = cli("register", "mine", "--torchscript", ts, "--z-dim", "8", "--force", "--dataset", "digits")
    assert code == 0, out
    assert [r["dataset"] for r in thirdparty.list_registered()] == ["digits"]


# ---- where registered generators are listed ----------------------------------------------
def test_models_lists_registered_generators_in_their_own_section(gens, tmp_path):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    thirdparty.register_checkpoint("ts-gen", torchscript=ts, z_dim=8, dataset="digits")
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and res.stderr == "", res.output
    models_part, sep, registered = res.stdout.partition("Registered generators (third-party checkpoints")
    assert sep and "ts-gen" not in models_part and "dcgan" in models_part
    assert str(thirdparty.registry_path()) in registered.splitlines()[0]  # where they are stored
    [row] = [line for line in registered.splitlines() if line.startswith("ts-gen")]
    assert row.split()[:3] == ["ts-gen", "torchscript", "digits"] and str(ts.resolve()) in row

    res = CliRunner().invoke(main, ["models", "--filter", "ts-*"])
    assert res.exit_code == 0 and "ts-gen" in res.stdout and "dcgan" not in res.stdout, res.output
    records = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    [rec] = [r for r in records if r["name"] == "ts-gen"]
    assert rec["third_party"] is True and rec["kind"] == "registered generator" and rec["path"] == str(ts.resolve())
    assert {r["kind"] for r in records} == {"model", "registered generator"}


def test_models_without_registrations_has_no_such_section():
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and "dcgan" in res.stdout and "Registered generators" not in res.stdout


def test_a_corrupt_registry_file_does_not_break_the_model_listing(home):
    home.mkdir(parents=True)
    (home / thirdparty.REGISTRY_FILE).write_text("{oops")
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and "dcgan" in res.stdout, res.output
    [line] = res.stderr.splitlines()
    assert line.startswith("warning: registered generators not listed: invalid registry file") and "JSON" in line


def test_register_help_says_where_registered_generators_are_listed():
    res = CliRunner().invoke(main, ["register", "--help"])
    text = " ".join(res.stdout.split())
    assert res.exit_code == 0
    assert "`ganbench models` lists it under Registered generators" in text
    assert thirdparty.REGISTRY_FILE in text and "GANBENCH_HOME" in text


# ---- the registry file ---------------------------------------------------------------------
DROP = object()  # a field removed from the record


def _valid_record(path):
    return {"format": "torchscript", "path": str(path), "sha256": "0" * 64, "latent": {"z_dim": 8}}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[]", "expected an object"),
    ('{"format_version": 1}', "expected an object"),
    ('{"generators": {}}', "format_version"),
    ({"g": {"sha256": DROP}}, "'sha256' is missing"),
    ({"g": {"sha256": "abc"}}, "not 64 lowercase hex"),
    ({"g": {"format": "exe"}}, "format 'exe'"),
    ({"g": {"path": "rel.pt"}}, "is not absolute"),
    ({"g": {"latent": {"z_dim": -1}}}, "z_dim must be an integer >= 1"),
    ({"g": {"latent": {"z_dim": 8, "colour": 1}}}, "unknown latent field"),
    ({"g": {"format": "pickle"}}, "needs 'trust_pickle': true"),
    ({"g": {"trust_pickle": "yes"}}, "'trust_pickle' must be true or false"),
    ({"g": {"format": "factory"}}, "'factory' must be given"),
    ({"bad name": {}}, "bad generator name"),
])
def test_corrupt_or_invalid_registry_file_is_reported_and_kept(gens, tmp_path, home, content, message):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    if isinstance(content, dict):  # a valid record with some fields broken by hand
        records = {name: {k: v for k, v in {**_valid_record(tmp_path / "x.pt"), **fields}.items() if v is not DROP}
                   for name, fields in content.items()}
        content = json.dumps({"format_version": 1, "generators": records})
    home.mkdir(parents=True)
    path = home / thirdparty.REGISTRY_FILE
    path.write_text(content)
    for args in (["register", "new", "--torchscript", ts, "--z-dim", "8"], ["unregister", "g"]):
        code, out = cli(*args)
        assert code != 0
        line = one_line_error(out)
        assert str(path) in line and message in line, line
    with pytest.raises(GanbenchError, match=message):
        thirdparty.refresh()  # what a fresh process does on its first query
    with pytest.raises(GanbenchError, match=message):
        thirdparty.list_registered()
    assert path.read_text() == content  # never replaced
    assert [p.name for p in home.iterdir()] == [thirdparty.REGISTRY_FILE]


@pytest.mark.slow
def test_a_fresh_process_reports_a_corrupt_file(tmp_path):
    """`ganbench eval -i NAME` in a new process: the first query of the registered generators."""
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    (home / thirdparty.REGISTRY_FILE).write_text("{oops")
    env = {**os.environ, "GANBENCH_HOME": str(home)}
    code = ("import ganbench.thirdparty; print('imported')\n"  # importing reads nothing
            "from ganbench.registry import registered_generators; 'x' in registered_generators")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout == "imported\n"
    assert proc.returncode != 0 and "invalid registry file" in proc.stderr and "not valid JSON" in proc.stderr


def test_registry_follows_the_file(gens, tmp_path, home, monkeypatch):
    ts = save_torchscript(small(gens), tmp_path / "gen.pt")
    thirdparty.register_checkpoint("a", torchscript=ts, z_dim=8)
    assert "a" in registered_generators and registered_generators.entry("a").origin == "user"
    monkeypatch.setenv("GANBENCH_HOME", str(tmp_path / "other"))
    thirdparty.refresh()
    assert "a" not in registered_generators
    monkeypatch.setenv("GANBENCH_HOME", str(home))
    thirdparty.refresh()
    assert "a" in registered_generators
