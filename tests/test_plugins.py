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
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganbench import registries
from ganbench.cli import main
from ganbench.evaluation import evaluate

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "ganbench-example-plugin"
DIST = "ganbench-example-plugin"
GROUPS = {  # entry-point group -> registry
    "ganbench.models": registries.models,
    "ganbench.metrics": registries.metrics,
    "ganbench.datasets": registries.datasets,
    "ganbench.feature_extractors": registries.feature_extractors,
}


def declared_entry_points() -> dict[str, dict[str, str]]:
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    return project["entry-points"]


def test_the_example_declares_one_of_each_kind():
    declared = declared_entry_points()
    assert set(declared) == set(GROUPS)
    assert all(len(entries) == 1 for entries in declared.values())
    assert (PLUGIN / "README.md").is_file()


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The example plug-in 'installed' for this test; the registries re-scan entry points."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    dist_info = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items()) + "\n"
        for group, entries in project["entry-points"].items()))
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))
    for registry in GROUPS.values():
        registry.names()  # built-ins first, as in a normal process
        # a private copy of the entries, scanned again; both restored after the test
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_populated", False)
    yield declared_entry_points()
    for module in [m for m in sys.modules if m.split(".")[0] == "ganbench_example_plugin"]:
        del sys.modules[module]


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
    assert "example-mean-distance" in registries.metrics.names()
    assert "ganbench_example_plugin.metric" not in sys.modules  # listed, not imported
    registries.metrics.get("example-mean-distance")
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


@pytest.mark.slow
def test_pip_installed_plugin_in_a_fresh_process(tmp_path):
    """A real install (wheel built by pip into a temporary target; the environment is untouched)."""
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, timeout=300)
    script = (
        "from ganbench import registries as r\n"
        "print(r.models.entry('example-toy-gan').origin, r.metrics.get('example-mean-distance').name,\n"
        "      sorted(r.datasets.metadata('example-shapes')), r.feature_extractors.get('example-pixels')().provides)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"entry-point:{DIST} example-mean-distance" in proc.stdout and "('pool',)" in proc.stdout
