"""``ganbench eval``, ``ganbench metrics``, ``ganbench extractors``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ganbench.atomic import atomic_write_text
from ganbench.cli.options import (batch_size_option, device_option, force_option, one_line_warnings, parse_assignments,
                                  seed_option)
from ganbench.errors import GanbenchError, write_problem


@click.command("eval")
@click.option("--metric", "-m", "metrics", multiple=True, required=True,
              help="Metric to compute (repeat for several; `ganbench metrics` lists them).")
@click.option("--input", "-i", "input_", required=True,
              help="What to evaluate: folder, .npz/.npy, dataset:split, checkpoint, registered generator.")
@click.option("--reference", "-r", default=None,
              help="Real data: folder, .npz/.npy or dataset:split (e.g. mnist:test).")
@click.option("--source", default=None,
              help="Images an image-conditioned generator (pix2pix, GPEN...) translates: a paired dataset "
                   "split (default: the test split of its training dataset) or a folder/.npz.")
@click.option("--num-samples", "-n", type=click.IntRange(min=1), default=None,
              help="Samples from a generator (default 10000) or the first N images of a finite input.")
@click.option("--num-reference", type=click.IntRange(min=1), default=None, help="Use the first N reference images.")
@click.option("--extractor", default="inception-v3-compat", show_default=True,
              help="Feature extractor (`ganbench extractors` lists them).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Weights file of the extractor (else $GANBENCH_WEIGHTS_DIR, torch hub cache, download).")
@click.option("--extra-weights", multiple=True, metavar="NAME=PATH",
              help="Weights of another extractor or a perceptual metric, e.g. vgg16=vgg16.pth or ppl=vgg16.pth.")
@click.option("--option", "-o", "metric_options", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Metric option, e.g. kid.subset_size=100 or isc.splits=10.")
@batch_size_option
@device_option
@seed_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the rows as JSON.")
@force_option
@click.option("--name", "model_name", default=None,
              help="Model name recorded in the results (default: from the input).")
@click.option("--no-record", is_flag=True, help="Do not append the results to the results store.")
@click.option("--no-cache", is_flag=True, help="Recompute features even if cached.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--bootstrap", "replicates", type=int, default=None, metavar="B",
              help="Replicates of each feature-based metric's confidence interval (centred half-sample "
                   "bootstrap on the features in memory; 0: none)  [default: 100]")
@click.option("--ci", "level", type=float, default=None, metavar="LEVEL",
              help="Level of the confidence interval, e.g. 0.9  [default: 0.95]")
@click.option("--save-features", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Also keep the features in a new .safetensors archive (for `ganbench compare` later).")
@click.option("--curve", is_flag=True,
              help="Also print fid-inf's / isc-inf's score at each subset size N beside their fitted line.")
@click.option("--precision", type=click.Choice(("float32", "bf16")), default="float32", show_default=True,
              help="Arithmetic of the feature extractors: float32 with TF32 off (the standard protocol) or bf16 "
                   "(autocast: faster on GPUs; recorded in the protocol as non-standard, ranked apart).")
@click.option("--cross-check", is_flag=True,
              help="Then recompute fid/isc/kid/pr/pr-vgg16 with torch-fidelity on the same images and weights, "
                   "print both and exit 1 if any differs by more than 1e-3 relative (inception-v3-compat only; "
                   "isc and kid draw with rng=torch-fidelity).")
def eval_cmd(metrics, input_, reference, source, num_samples, num_reference, extractor, weights, extra_weights,
             metric_options, batch_size, device, seed, json_path, force, model_name, no_record, no_cache, quiet,
             replicates, level, save_features, precision, curve, cross_check):
    """Evaluate images or a generator with one or more metrics in one pass.

    \b
    Examples:
      ganbench eval -m fid -m isc -m kid -i samples/ -r mnist:test --extractor lenet-mnist
      ganbench eval -m fid -i runs/dcgan/checkpoint.safetensors -r cifar10:train -n 50000
      ganbench eval -m pr-vgg16 -i fake.npz -r real.npz --extra-weights vgg16=vgg16-397923af.pth
      ganbench eval -m fid -i runs/pix2pix/checkpoint.safetensors -r mnist:test --extractor lenet-mnist
      ganbench eval -m fid -m kid -i samples/ -r cifar10:test --cross-check
      ganbench eval -m fid -i runs/dcgan/checkpoint.safetensors -r cifar10:train -n 50000 --precision bf16
    """
    from ganbench.evaluation import default_device, evaluate
    from ganbench.features import distributed, join_process_group

    if curve and not {"fid-inf", "isc-inf"} & set(metrics):
        raise GanbenchError("--curve prints the points of the fit of fid-inf or isc-inf: add -m fid-inf or -m isc-inf")
    if json_path:
        _check_output(Path(json_path), force)
    options = _metric_options(metric_options)
    if cross_check:
        from ganbench.crosscheck import cross_check_options

        options = cross_check_options(list(metrics), extractor, options)
    extra_weights = parse_assignments(extra_weights, "--extra-weights")
    device = device or default_device()
    join_process_group(device)  # under torchrun: every rank takes a shard of the feature pass
    with one_line_warnings():
        result = evaluate(
            input_, reference, metrics, extractor=extractor, weights=weights,
            extra_weights=extra_weights, num_samples=num_samples,
            num_reference=num_reference, options=options, batch_size=batch_size, device=device, seed=seed,
            use_cache=not no_cache, progress=not quiet, record=False, model_name=model_name, source=source,
            save_features=save_features, precision=precision, **_interval_settings(replicates, level))
    if distributed()[0] != 0:
        return
    # the result is shown and written before the store, which may fail (then: Error, exit 2)
    click.echo(format_table(result.rows))
    if curve:
        _print_curve(result.rows)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    try:
        if json_path:
            _write_json(Path(json_path), result.rows)
    finally:
        if not no_record:
            result.record()
    if cross_check:
        _cross_check(result, input_, reference, list(metrics), options=options, weights=weights,
                     extra_weights=extra_weights, num_samples=num_samples, num_reference=num_reference,
                     batch_size=batch_size, device=device, seed=seed, source=source)


def _interval_settings(replicates: int | None, level: float | None) -> dict[str, float]:
    """evaluate()'s bootstrap/ci keywords for the options given (its defaults otherwise)."""
    out: dict[str, float] = {}
    if replicates is not None:
        out["bootstrap"] = replicates
    if level is not None:
        out["ci"] = level
    return out


def _metric_options(items: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``("kid.subsets=5",)`` -> ``{"kid": {"subsets": "5"}}`` (read as types by the evaluation)."""
    options: dict[str, dict[str, str]] = {}
    for key, value in parse_assignments(items, "--option").items():
        metric, sep, opt = key.partition(".")
        if not sep:
            raise click.BadParameter(f"expected METRIC.KEY=VALUE, got {key!r}", param_hint="--option")
        options.setdefault(metric, {})[opt] = value
    return options


def _print_curve(rows) -> None:
    """fid-inf / isc-inf: the score at each subset size N (keys ``fid_n<N>``), one line each,
    beside the fitted line ``score_inf + slope / N`` that is extrapolated to N = infinity."""
    for score in ("fid", "isc"):
        values = {r["key"]: r["value"] for r in rows if r["metric"] == f"{score}-inf"}
        if not values:
            continue
        intercept, slope = values[f"{score}_inf"], values[f"{score}_inf_slope"]
        click.echo(f"{score}-inf curve: {score} at N samples, fit {intercept:.6g} + {slope:.6g} / N")
        for key, value in values.items():
            n = key.removeprefix(f"{score}_n")
            if n.isdigit():
                click.echo(f"  N={n:<8} {score}={value:<12.6g} fit={intercept + slope / int(n):.6g}")


def _cross_check(result, *args, **kwargs) -> None:
    """Print torch-fidelity's numbers beside ours; exit 1 when one disagrees."""
    from ganbench.crosscheck import cross_check, format_agreements

    agreements = cross_check(result, *args, **kwargs)
    click.echo(format_agreements(agreements))
    if not all(a.agrees for a in agreements):
        click.echo("cross-check failed: ganbench and torch-fidelity differ by more than 1e-3 relative", err=True)
        click.get_current_context().exit(1)


def _check_output(path: Path, force: bool) -> None:
    """Refuse an output file that could not be written, before any computation."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    folder = path.absolute().parent
    problem = write_problem(path) or (None if folder.is_dir() else f"folder {folder} does not exist")
    if problem:
        raise GanbenchError(f"--json {path}: {problem}")


def _write_json(path: Path, rows) -> None:
    """Atomically, through a temp file of our own beside it (never another file's name)."""
    try:
        atomic_write_text(path, json.dumps(rows, indent=2, default=str))
    except OSError as exc:
        raise GanbenchError(f"cannot write --json {path}: {write_problem(path, exc)}") from None


def _interval_text(row) -> str:
    """``95% [2.25, 2.38]`` from a row's interval and its protocol's level; "" without one."""
    if row.get("ci_low") is None:
        return ""
    level = json.loads(row["protocol"]).get("interval", {}).get("level")
    return f"{level:.0%} [{row['ci_low']:.6g}, {row['ci_high']:.6g}]"


def format_table(rows) -> str:
    """A readable table of result rows."""
    header = ("metric", "value", "interval", "std", "n", "extractor", "weights")
    lines = [header]
    for r in rows:
        weights = "standard" if r["weights_standard"] else "non-standard"
        if r["weights_sha256"]:
            weights += f" ({r['weights_sha256'][:8]})"
        std = "" if r["std"] is None else f"{r['std']:.6g}"
        lines.append((r["key"], f"{r['value']:.6g}", _interval_text(r), std, str(r["num_samples"]), r["extractor"],
                      weights))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


@click.command("metrics")
def metrics_cmd():
    """List the available metrics: what each computes, which way it ranks, what it reads.

    \b
    Each metric takes two lines:
      NAME  description
            direction of each output; reads: its feature space; options
    """
    from ganbench.registry import metrics

    for entry in metrics.entries():
        m = entry.load()
        click.echo(f"{entry.name:16s} {m.description or '-'}")
        options = ", ".join(f"{k}={v}" for k, v in m.defaults.items()) or "-"
        click.echo(f"{'':16s} {directions(m)}; reads: {feature_space(m)}; options: {options}")


def directions(metric) -> str:
    """``"lower is better (fid)"``; outputs sharing a direction are listed together."""
    by_direction: dict[str, list[str]] = {}
    for key in [*metric.higher_is_better, *metric.ideal]:
        by_direction.setdefault(metric.direction(key), []).append(key)
    return "; ".join(f"{d} ({', '.join(keys)})" for d, keys in by_direction.items()) or "no ranked output"


def feature_space(metric) -> str:
    """What a metric reads: features of an extractor, the generator itself, or pixels."""
    from ganbench.evaluation import DEFAULT_EXTRACTOR

    if metric.needs_generator:
        space = "generator"
    elif metric.needs_targets:
        space = "pixels vs paired targets"
    elif not metric.features:
        space = "labelled pixels" if metric.needs_labels else "pixels"
    else:
        which = metric.extractor or f"--extractor (default {DEFAULT_EXTRACTOR})"
        space = f"{','.join(metric.features_for(metric.defaults))} of {which}"
        if metric.needs_labels:
            space += " with class labels"
    return space + (" vs a reference" if metric.needs_reference else "")


@click.command("extractors")
def extractors_cmd():
    """List the feature extractors and where their standard weights come from.

    \b
    Each extractor takes two lines:
      NAME  features it provides  description
            weights: file, sha256, URL, and where to put the file for offline use
    """
    from ganbench.metrics.base import extractor_weights
    from ganbench.registry import feature_extractors

    for entry in feature_extractors.entries():
        provides = ",".join(entry.metadata.get("provides", ()))
        click.echo(f"{entry.name:22s} provides {provides}  {entry.metadata.get('description', '')}".rstrip())
        click.echo(f"{'':22s} weights: {weights_text(extractor_weights(entry.name))}")


def weights_text(spec) -> str:
    """Where a standard weights file comes from and where ganbench looks for it offline
    (:func:`ganbench.weights.resolve_weights`' order)."""
    from ganbench.weights import hub_checkpoint_dir

    if spec is None:
        return "no file declared (shipped with it, built in, or a plug-in that names none); --weights PATH loads one"
    if spec.sha256 == "unknown":
        digest = "sha256 unknown (not published: never 'standard')"
    elif len(spec.sha256) < 64:
        digest = f"sha256 starts {spec.sha256} (all that is published)"
    else:
        digest = f"sha256 {spec.sha256}"
    return (f"{spec.filename}, {digest}, from {spec.url}; offline: --weights PATH, "
            f"$GANBENCH_WEIGHTS_DIR/{spec.filename} or {hub_checkpoint_dir() / spec.filename}")
