"""``ganbench models`` (list / show) and ``ganbench datasets``."""
from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import json
import re

import click

from ganbench.errors import GanbenchError


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def field_comments(cls: type) -> dict[str, str]:
    """The ``# comment`` after each field of a config dataclass (its documentation)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+)\s*:[^=\n]*=[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            comments[m.group(1)] = m.group(2).strip()
    return comments


def _model_records(pattern: str | None) -> list[dict]:
    from ganbench.models.base import model_info
    from ganbench.registry import models

    records = []
    for entry in models.entries():
        if pattern and not fnmatch.fnmatch(entry.name, pattern):
            continue
        info = model_info(entry.name)
        records.append({"kind": "model", "name": entry.name, "paper": info.paper, "year": info.year,
                        "task": info.task, "arxiv": info.arxiv, "datasets": list(info.defaults),
                        "origin": entry.origin, "third_party": entry.origin != "builtin"})
    return records


def _registered_records(pattern: str | None) -> list[dict]:
    """Generators registered with `ganbench register`; a broken registry file is a warning here."""
    from ganbench.thirdparty import ORIGIN, list_registered

    try:
        rows = list_registered()
    except GanbenchError as exc:
        click.echo(f"warning: registered generators not listed: {exc}", err=True)
        return []
    return [{"kind": "registered generator", "origin": ORIGIN, **row} for row in rows
            if not pattern or fnmatch.fnmatch(row["name"], pattern)]


def _print_models(records: list[dict]) -> None:
    rows = [[f"{r['name']} *" if r["third_party"] else r["name"], _short(r["paper"], 48), str(r["year"]),
             r["task"], ", ".join(r["datasets"]) or "-"] for r in records]
    click.echo(_table(rows, ["model", "paper", "year", "task", "datasets with paper defaults"]))
    if any(r["third_party"] for r in records):
        click.echo("\n* third-party (installed plug-in)")


def _print_registered(records: list[dict]) -> None:
    from ganbench.thirdparty import describe, registry_path

    rows = [[r["name"], r["format"], r["dataset"] or "-", describe(r), r["path"]] for r in records]
    click.echo(f"Registered generators (third-party checkpoints, `ganbench register`; in {registry_path()}):")
    click.echo(_table(rows, ["name", "format", "dataset", "generates", "checkpoint"]))


@click.group("models", invoke_without_command=True)
@click.option("--filter", "pattern", default=None, metavar="PATTERN", help="Shell-style name filter, e.g. '*gan*'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def models_cmd(ctx, pattern, as_json):
    """List the registered models (`ganbench models show NAME` for one), then the
    third-party generators registered with `ganbench register`.

    \b
    Examples:
      ganbench models
      ganbench models --filter '*dc*'
      ganbench models show dcgan
    """
    if ctx.invoked_subcommand is not None:
        return
    models, registered = _model_records(pattern), _registered_records(pattern)
    if as_json:
        click.echo(json.dumps(models + registered, indent=1))
    elif not models and not registered:
        click.echo("no models match" if pattern else "no models registered")
    else:
        if models:
            _print_models(models)
        if models and registered:
            click.echo()
        if registered:
            _print_registered(registered)


@models_cmd.command("show")
@click.argument("name")
@click.option("--dataset", "-d", default=None, help="Show the hyperparameters resolved for this dataset.")
def show_cmd(name, dataset):
    """Paper, task and hyperparameters (with their paper defaults) of one model."""
    from ganbench.models.base import aliases, config_fields, model_info, resolve_config
    from ganbench.registry import models

    info = model_info(name)
    entry = models.entry(name)
    click.echo(f"{name}: {info.paper} ({info.year})")
    if info.authors:
        click.echo(f"  authors:   {info.authors}")
    if info.arxiv:
        click.echo(f"  arXiv:     https://arxiv.org/abs/{info.arxiv}")
    click.echo(f"  task:      {info.task}")
    if info.description:
        click.echo(f"  about:     {info.description}")
    if info.reference_code:
        click.echo(f"  follows:   {info.reference_code}")
    click.echo(f"  origin:    {entry.origin}")
    if dataset:
        from ganbench.data import dataset_info, parse_name

        config = resolve_config(name, parse_name(dataset).key, data=dataset_info(dataset))
        defaults = dataclasses.asdict(config)
        title = f"hyperparameters for {dataset} (--set NAME=VALUE)"
    else:
        defaults = {f.name: f.default for f in dataclasses.fields(info.config)}
        title = "hyperparameters (--set NAME=VALUE)"
    comments = field_comments(info.config)
    hints = config_fields(info.config)
    rows = [[k, getattr(hints[k], "__name__", str(hints[k])), repr(v), comments.get(k, "")]
            for k, v in defaults.items()]
    click.echo(f"\n{title}:")
    click.echo(_table(rows, ["name", "type", "default", "meaning"]))
    accepted = aliases(info.config)
    if accepted:
        click.echo("aliases: " + "; ".join(f"{a}=X sets {' and '.join(t)}" for a, t in accepted.items()))
    if info.defaults:
        click.echo("\npaper defaults per dataset (applied over the above):")
        for ds, values in info.defaults.items():
            click.echo(f"  {ds}: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    _print_recipes(info, dataset)
    _print_search_space(info, defaults)
    _print_departures(info)


def _print_recipes(info, dataset: str | None) -> None:
    """The paper's training recipe per dataset (what `ganbench train` uses unless overridden)."""
    click.echo("\ntraining recipe (--batch-size, --ema, --ema-start override it; --amp opts into "
               "mixed precision):")
    if dataset:
        from ganbench.data import parse_name

        click.echo(f"  {dataset}: {info.recipe_for(parse_name(dataset).key).describe()}")
        return
    for ds, recipe in info.recipes.items():
        click.echo(f"  {ds}: {recipe.describe()}")
    if "default" not in info.recipes:
        click.echo(f"  {'other datasets' if info.recipes else 'every dataset'}: "
                   f"{info.recipe_for(None).describe()}")


def _print_search_space(info, defaults: dict) -> None:
    """The ranges a study draws each searched hyperparameter from, beside the value the
    model takes without a search (``defaults``: for the dataset shown, if any)."""
    from ganbench.search_space import describe

    click.echo("\nsearch space (what a hyperparameter study draws from; its draw 0 keeps the defaults):")
    if not info.search_space:
        click.echo("  none declared")
    for name, value in info.search_space.items():
        click.echo(f"  {name}: {describe(value)} (default {defaults[name]!r})")


def _print_departures(info) -> None:
    click.echo("\nknown departures from the paper:")
    if not info.departures:
        click.echo("  none listed")
    for what, why in info.departures:
        click.echo(f"  - {what}\n      why: {why}")


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def datasets_cmd(as_json):
    """List the datasets `ganbench train --dataset` and `eval --reference NAME:SPLIT` accept.

    \b
    Data live in $GANBENCH_DATA_DIR (torchvision layout); datasets marked * are
    third-party plug-ins.
    """
    from ganbench.registry import datasets

    rows, records = [], []
    for entry in datasets.entries():
        meta = entry.metadata
        name = f"{entry.name}:PATH" if meta.get("takes_path") else entry.name
        size = meta.get("image_size")
        records.append({"name": name, "origin": entry.origin, **{k: v for k, v in meta.items()}})
        rows.append([name + (" *" if entry.origin != "builtin" else ""),
                     str(meta.get("channels", "?")) if not meta.get("takes_path") else "any",
                     str(meta.get("num_classes") or "-"), f"{size}x{size}" if size else "any",
                     meta.get("description", "")])
    if as_json:
        click.echo(json.dumps(records, indent=1))
        return
    click.echo(_table(rows, ["dataset", "channels", "classes", "native size", "description"]))
    click.echo("\nsplits: train, test (e.g. --reference mnist:test)")
