"""Plug-ins: the example package in examples/ganbench-example-plugin registers a model, a
metric, a dataset and a feature extractor through entry points, and each shows up in its
registry -- and works -- exactly like a built-in.

The default tests install the package without touching the environment: a temporary
``.dist-info`` folder whose ``entry_points.txt`` is generated from the package's own
pyproject.toml is put on ``sys.path`` beside its sources, which is all
``importlib.metadata`` looks at. The slow test really installs it with pip (into a
temporary target folder) and checks it from a fresh interpreter."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.evaluation import evaluate
from ganbench.registry import PluginError, datasets, feature_extractors, metrics, models

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (ganbench[test])
    import tomli as tomllib

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "ganbench-example-plugin"
DIST = "ganbench-example-plugin"
GROUPS = {  # entry-point group -> registry
    "ganbench.models": models,
    "ganbench.metrics": metrics,
    "ganbench.datasets": datasets,
    "ganbench.feature_extractors": feature_extractors,
}


def declared_entry_points() -> dict[str, dict[str, str]]:
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    return project["entry-points"]


def test_the_example_declares_one_of_each_kind():
    declared = declared_entry_points()
    assert set(declared) == set(GROUPS)
    assert all(len(entries) == 1 for entries in declared.values())
    assert (PLUGIN / "README.md").is_file()


def fake_install(root: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> None:
    """A ``.dist-info`` folder under ``root`` declaring ``entry_points`` (put ``root`` on sys.path)."""
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{ep} = {target}\n" for ep, target in entries.items()) + "\n"
        for group, entries in entry_points.items()))


def rescan(monkeypatch) -> None:
    """Make every plug-in registry scan entry points again at its next query; restored after
    the test. Call it before putting a plug-in on sys.path, or the registry kept after the
    test would hold the plug-in."""
    for registry in GROUPS.values():
        registry.names()  # built-ins first, as in a normal process
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))  # a private copy
        monkeypatch.setattr(registry, "_populated", False)


def forget_modules(package: str) -> None:
    for module in [m for m in sys.modules if m.split(".")[0] == package]:
        del sys.modules[module]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The example plug-in 'installed' for this test; the registries re-scan entry points."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    rescan(monkeypatch)
    fake_install(tmp_path, project["name"], project["version"], project["entry-points"])
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield declared_entry_points()
    forget_modules("ganbench_example_plugin")


def test_each_plugin_appears_in_its_registry_like_a_builtin(plugin):
    builtin_metadata = {  # what the built-in registration decorators record
        "ganbench.models": {"info"},
        "ganbench.metrics": {"higher_is_better", "description"},
        "ganbench.datasets": {"description", "channels", "num_classes", "image_size", "takes_path", "source"},
        "ganbench.feature_extractors": {"provides", "description"},
    }
    for group, entries in plugin.items():
        registry = GROUPS[group]
        [(name, target)] = entries.items()
        assert name in registry.names(), (group, registry.names())
        assert registry.entry(name).origin == f"entry-point:{DIST}"
        # metadata recorded by the same decorator a built-in uses, once the module is imported
        assert builtin_metadata[group] <= set(registry.metadata(name)), (group, registry.metadata(name))
        obj = registry.get(name)
        module, _, attr = target.partition(":")
        assert obj is getattr(sys.modules[module], attr)


def test_plugin_modules_load_lazily(plugin):
    assert "example-mean-distance" in metrics.names()
    assert "ganbench_example_plugin.metric" not in sys.modules  # listed, not imported
    metrics.get("example-mean-distance")
    assert "ganbench_example_plugin.metric" in sys.modules
    assert "ganbench_example_plugin.toy_gan" not in sys.modules  # other kinds untouched


def test_plugin_dataset_extractor_and_metric_work_through_evaluate(plugin):
    from ganbench.data import dataset_info, load_images

    images, labels = load_images("example-shapes:test")
    assert images.shape == (256, 3, 16, 16) and images.dtype == torch.uint8 and set(labels.tolist()) == {0, 1}
    assert dataset_info("example-shapes")["num_classes"] == 2
    same = evaluate("example-shapes:test", "example-shapes:test", ["example-mean-distance", "fid"],
                    extractor="example-pixels", progress=False, use_cache=False)
    other = evaluate("example-shapes:train", "example-shapes:test", ["example-mean-distance"],
                     extractor="example-pixels", progress=False, use_cache=False)
    assert same.value("mean_distance") == pytest.approx(0.0, abs=1e-9)
    assert other.value("mean_distance") > 0
    row = other.rows[0]
    assert row["extractor"] == "example-pixels" and row["higher_is_better"] is False


def test_plugin_model_builds_trains_and_is_evaluated(plugin):
    from ganbench.data import load_images
    from ganbench.models import create_model, model_info
    from ganbench.models.base import Batch, TrainContext

    assert model_info("example-toy-gan").task == "unconditional"
    model = create_model("example-toy-gan", dataset="example-shapes")
    assert model.latent.image_size == 16 and model.latent.channels == 3
    images, _ = load_images("example-shapes:train", limit=32)
    batch = Batch(images.float() / 127.5 - 1)
    losses = model.train_step(batch, 0, TrainContext(seed=0))
    assert set(losses) == {"loss_d", "loss_g"} and all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    result = evaluate(model.generator, "example-shapes:test", ["example-mean-distance"], extractor="example-pixels",
                      num_samples=64, progress=False, use_cache=False)
    assert result.value("mean_distance") > 0


def test_plugins_are_listed_by_the_cli(plugin):
    runner = CliRunner()
    out = runner.invoke(main, ["metrics"]).output
    assert "example-mean-distance" in out
    out = runner.invoke(main, ["extractors"]).output
    assert "example-pixels" in out and "pool" in out


# ---- a plug-in whose module raises on import ------------------------------------------
BROKEN_DIST = "ganbench-broken-plugin"
BROKEN = {  # CLI listing -> (entry-point group, name of the broken entry)
    "models": ("ganbench.models", "broken-gan"),
    "metrics": ("ganbench.metrics", "broken-metric"),
    "extractors": ("ganbench.feature_extractors", "broken-extractor"),
    "datasets": ("ganbench.datasets", "broken-shapes"),
}


@pytest.fixture
def broken_plugin(plugin, tmp_path, monkeypatch):
    """Besides the example plug-in, one whose module raises on import, in every group."""
    root = tmp_path / "broken"
    (root / "ganbench_broken_plugin").mkdir(parents=True)
    (root / "ganbench_broken_plugin" / "__init__.py").write_text('raise RuntimeError("boom: no GPU here")\n')
    rescan(monkeypatch)
    fake_install(root, BROKEN_DIST, "0.1.0",
                 {group: {name: "ganbench_broken_plugin:build"} for group, name in BROKEN.values()})
    monkeypatch.syspath_prepend(str(root))
    yield
    forget_modules("ganbench_broken_plugin")


def broken_message(name: str) -> str:
    return f"plug-in {name} (package {BROKEN_DIST}) failed to load: RuntimeError: boom: no GPU here"


@pytest.mark.parametrize("command", sorted(BROKEN))
def test_a_broken_plugin_is_skipped_with_one_warning(broken_plugin, command):
    group, name = BROKEN[command]
    res = CliRunner().invoke(main, [command])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == [f"warning: {broken_message(name)}; skipped"]
    [good] = declared_entry_points()[group]  # the working plug-in and the built-ins are listed
    assert good in res.stdout and name not in res.stdout and "Traceback" not in res.output
    assert len(res.stdout.splitlines()) > 2


@pytest.mark.parametrize("command", sorted(BROKEN))
def test_a_broken_plugin_used_by_name_is_a_one_line_error(broken_plugin, command):
    group, name = BROKEN[command]
    with pytest.raises(PluginError, match=re.escape(broken_message(name))):
        GROUPS[group].get(name)
    assert name in GROUPS[group].names()  # still known by name, so the cause can be given


def test_the_cli_names_the_cause_of_a_broken_plugin(broken_plugin, tmp_path):
    for args in (["models", "show", "broken-gan"], ["train", "broken-gan", "--dataset", "digits", "--steps", "1",
                                                      "--out", str(tmp_path / "run")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        assert res.stderr.splitlines() == [f"Error: {broken_message('broken-gan')}"], res.output


@pytest.mark.slow
def test_pip_installed_plugin_in_a_fresh_process(tmp_path):
    """A real install (wheel built by pip into a temporary target; the environment is untouched)."""
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, timeout=300)
    script = (
        "from ganbench import registry as r\n"
        "print(r.models.entry('example-toy-gan').origin, r.metrics.get('example-mean-distance').name,\n"
        "      sorted(r.datasets.metadata('example-shapes')), r.feature_extractors.get('example-pixels')().provides)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"entry-point:{DIST} example-mean-distance" in proc.stdout and "('pool',)" in proc.stdout
