"""`ganbench metrics` and `ganbench extractors`: every registered metric with its description,
direction and feature space; every extractor with the weights file its factory really resolves
(file, sha256, URL, where to put it offline). Plus the Metric metadata they read: directions,
an ideal value instead of one, and the names the runner passes that are no options."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.metrics.base import Metric, extractor_weights, keyword_defaults, register_extractor
from ganbench.registry import feature_extractors, metrics
from ganbench.weights import WeightsFile


def listing(command: str) -> dict[str, list[str]]:
    """{name: its lines} of a two-lines-per-entry listing."""
    result = CliRunner().invoke(main, [command])
    assert result.exit_code == 0, result.output
    blocks: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if line[:1].strip():
            blocks[line.split()[0]] = [line]
        else:
            blocks[list(blocks)[-1]].append(line.strip())
    return blocks


@pytest.fixture(scope="module")
def metric_lines():
    return listing("metrics")


@pytest.fixture(scope="module")
def extractor_lines():
    return listing("extractors")


# -- ganbench metrics ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", metrics.names())
def test_every_metric_is_listed_with_its_description_and_each_outputs_direction(metric_lines, name):
    metric = metrics.get(name)
    assert metric.description, f"{name} has no description"
    first, second = metric_lines[name]
    assert first.split(None, 1)[1] == metric.description
    for key in [*metric.higher_is_better, *metric.ideal]:
        assert key in second.split("; reads:")[0] and metric.direction(key) in second


@pytest.mark.parametrize("name, direction, reads", [
    ("fid", "lower is better (fid)", "reads: pool of --extractor (default inception-v3-compat) vs a reference"),
    ("pr", "higher is better (precision, recall, f_score)", "reads: pool of --extractor"),
    ("isc", "higher is better (isc)", "reads: logits of --extractor (default inception-v3-compat); options"),
    ("ct", "ideal 0 (ct)", "reads: pool of --extractor"),
    ("pr-vgg16", "higher is better", "reads: fc2_relu of vgg16 vs a reference"),
    ("sfid", "lower is better (sfid)", "reads: spatial of inception-v3-compat vs a reference"),
    ("intra-fid", "lower is better", "with class labels vs a reference"),
    ("cas", "higher is better (cas, cas_real)", "reads: labelled pixels vs a reference"),
    ("l1", "lower is better (l1)", "reads: pixels vs paired targets;"),
    ("ppl", "lower is better (ppl)", "reads: generator;"),
    ("fd", "lower is better (fd)", "options: feature=pool"),
])
def test_metric_lines_say_direction_and_feature_space(metric_lines, name, direction, reads):
    second = metric_lines[name][1]
    assert second.startswith(direction) and reads in second


# -- directions ------------------------------------------------------------------------------
def test_ct_is_best_at_zero_not_higher_or_lower(metric_lines):
    assert "is better" not in metric_lines["ct"][1]
    ct = metrics.get("ct")
    assert ct.ideal == {"ct": 0.0} and "ct" not in ct.higher_is_better
    assert ct.direction("ct") == "ideal 0" and metrics.metadata("ct")["ideal"] == {"ct": 0.0}
    assert metrics.get("fid").direction("fid") == "lower is better"
    assert metrics.get("isc").direction("isc") == "higher is better" and metrics.get("isc").direction("x") == ""


def compute(fake, real, *, generator=None, k: int = 3):
    return {"score": 0.0}


def test_a_key_cannot_have_an_ideal_and_a_direction():
    with pytest.raises(GanbenchError, match="cannot both have an ideal value"):
        Metric("both", compute, ("pool",), {"score": True}, ideal={"score": 0.0}, defaults={"k": 3})
    with pytest.raises(GanbenchError, match="feature_option 'feature' is not one of its options"):
        Metric("choice", compute, ("pool",), {"score": True}, feature_option="feature", defaults={"k": 3})


def test_the_names_the_runner_passes_are_not_options():
    def takes_everything(fake, real, *, generator=None, device="cpu", labels=None, inputs=None,
                         features_of=None, reference_labels=None, k: int = 3):
        return {"score": 0.0}

    defaults = keyword_defaults(takes_everything)
    assert defaults == {"k": 3}
    metric = Metric("runner-args", takes_everything, ("pool",), {"score": True}, defaults=defaults)
    for name in ("inputs", "features_of", "reference_labels"):
        with pytest.raises(GanbenchError, match=name):
            metric.read_options({name: "1"})


# -- ganbench extractors -----------------------------------------------------------------------
class Resolved(Exception):
    """Raised by a stand-in resolve_weights with the spec the factory asked for."""


def resolved_by_factory(name: str, monkeypatch) -> WeightsFile | None:
    """The WeightsFile the factory of ``name`` hands to resolve_weights (None: it builds without
    calling it), whether it calls it itself or through weights.build_from_weights."""
    import ganbench.weights

    def stop(spec, path=None, **_):
        raise Resolved(spec)

    factory = feature_extractors.get(name)
    monkeypatch.setattr(ganbench.weights, "resolve_weights", stop)
    if "resolve_weights" in factory.__globals__:
        monkeypatch.setitem(factory.__globals__, "resolve_weights", stop)
    try:
        factory(weights=None, device="cpu")
    except Resolved as asked:
        return asked.args[0]
    return None


@pytest.mark.parametrize("name", feature_extractors.names())
def test_every_extractor_lists_the_file_its_factory_resolves(extractor_lines, name, monkeypatch):
    spec = resolved_by_factory(name, monkeypatch)
    assert extractor_weights(name) == spec
    first, weights = extractor_lines[name]
    assert first.split()[:3] == [name, "provides", ",".join(feature_extractors.metadata(name)["provides"])]
    if spec is None:
        assert weights.startswith("weights: no file declared")
        return
    assert weights.startswith(f"weights: {spec.filename}, ") and f"from {spec.url};" in weights
    assert f"$GANBENCH_WEIGHTS_DIR/{spec.filename}" in weights and "--weights PATH" in weights
    digest = "sha256 unknown" if spec.sha256 == "unknown" else f"sha256 {spec.sha256}"
    assert digest in weights


def test_the_standard_files_are_listed_for_the_official_extractors(extractor_lines):
    from ganbench.weights import CATALOG

    inception = CATALOG["inception-v3-fid"]
    assert extractor_weights("inception-v3-compat") == inception
    assert inception.sha256 in extractor_lines["inception-v3-compat"][1]
    for name in ("vgg16", "swav-resnet50", "dinov2-vit-l14", "clip-vit-l14-336"):
        assert extractor_weights(name) is not None, name
    assert extractor_weights("lenet-mnist") is None  # shipped inside the package


def test_a_plug_in_lists_the_weights_it_declares_and_none_otherwise():
    declared = WeightsFile("tiny", "tiny.pth", "https://example.org/tiny.pth", "ab" * 32, "test")

    def build(weights=None, device="cpu"):
        raise AssertionError("listing builds nothing")

    feature_extractors.entry("vgg16")  # the built-ins are in before these are added
    register_extractor("test-declared", provides=("pool",), weights=declared)(build)
    register_extractor("test-undeclared", provides=("pool",))(build)
    try:
        assert extractor_weights("test-declared") == declared
        assert extractor_weights("test-undeclared") is None
        out = listing("extractors")
        assert out["test-declared"][1].startswith("weights: tiny.pth, sha256 " + "ab" * 32)
        assert out["test-undeclared"][1].startswith("weights: no file declared")
    finally:
        feature_extractors.unregister("test-declared")
        feature_extractors.unregister("test-undeclared")
