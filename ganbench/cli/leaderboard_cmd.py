"""``ganbench leaderboard``, ``ganbench results`` and ``ganbench plot``: reading the results store."""
from __future__ import annotations

from pathlib import Path

import click

from ganbench.errors import GanbenchError

# -- options, each defined once and stacked on the commands that take it
store_option = click.option(
    "--store", metavar="PATH_OR_URL", default=None,
    help="Results store: an SQLite path or a database URL (default: $GANBENCH_RESULTS, "
         "else the user data folder).")
dataset_option = click.option(
    "--dataset", metavar="NAME", default=None,
    help='Reference dataset; "mnist" matches "mnist" and every "mnist:<split>".')
models_option = click.option("--model", "models", metavar="NAME", multiple=True, help="Only this model (repeatable).")
protocol_option = click.option(
    "--protocol", "protocols", metavar="ID", multiple=True,
    help="Only results whose protocol id starts with ID (repeatable).")
by_checkpoint_option = click.option(
    "--by-checkpoint", is_flag=True, help="One row per model and checkpoint instead of per model.")
out_option = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="Write to FILE (atomically) instead of standard output.")
force_option = click.option("--force", is_flag=True, help="Overwrite --out if it exists.")


def _load(store: str | None, **filters):
    from ganbench.leaderboards.store import open_store

    results = open_store(store)
    df = results.load(**filters)
    if df.empty:
        if not results.exists():
            raise GanbenchError(f"no results store at {results.location}; evaluate something first "
                                "(ganbench eval ...) or pass --store")
        everything = results.load()
        if everything.empty:
            raise GanbenchError(f"the results store {results.location} is empty")
        asked = ", ".join(f"{k}={v!r}" for k, v in filters.items() if v not in (None, [], ()))
        datasets = ", ".join(sorted(everything["dataset"].astype(str).unique()))
        raise GanbenchError(f"no results match {asked} in {results.location} (datasets present: {datasets})")
    return df


def _emit(text: str | bytes, out: Path | None, force: bool) -> None:
    from ganbench.leaderboards.render import write_output

    if out is None:
        click.echo(text, nl=False)
    else:
        write_output(out, text, force=force)
        click.echo(f"wrote {out}", err=True)


def _pick_format(fmt: str | None, out: Path | None, allowed: tuple[str, ...]) -> str:
    from ganbench.leaderboards.render import format_for_path

    if fmt is None and out is not None:
        fmt = format_for_path(out)
        if fmt not in allowed:
            raise GanbenchError(f"cannot tell the format from {out.name!r}; pass --format ({'|'.join(allowed)})")
    return fmt or "md"


@click.command("leaderboard")
@dataset_option
@click.option("--metric", "metrics", metavar="NAME", multiple=True,
              help="Metric name or output key to show, in column order (repeatable; default: all).")
@models_option
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "latex", "html"]), default=None,
              help="Output format (default: from the --out suffix, else md).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write to FILE (atomically) instead of standard output. With --format html, a FOLDER "
                   "(no suffix, or an existing folder) gets the report site: FOLDER/index.html.")
@force_option
@click.option("--studies", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="HTML site: add the figures of every study report (ganbench study report) under this folder.")
@click.option("--from-csv", "from_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Render a leaderboard CSV (as --format csv writes, e.g. leaderboards/mnist.csv) instead of "
                   "reading the results store.")
@by_checkpoint_option
@store_option
@protocol_option
@click.option("--sort-by", metavar="KEY", default=None,
              help="Rank by this key (default: the first --metric, else fid, else the first column).")
@click.option("--single-table", is_flag=True,
              help="Fail, with the reason, unless everything fits one comparable table.")
@click.option("--digits", type=click.IntRange(1, 10), default=4, show_default=True,
              help="Significant digits of the largest value in each column.")
@click.option("--booktabs", is_flag=True, help="LaTeX: booktabs rules instead of \\hline.")
def leaderboard_cmd(dataset, metrics, models, fmt, out, force, studies, from_csv, by_checkpoint, store, protocols,
                    sort_by, single_table, digits, booktabs):
    """Rank models on stored results, one table per comparable protocol.

    Numbers measured under different protocols (extractor, weights, sample count,
    reference, metric version...) are never averaged or ranked together: each table
    is headed by its protocol, and a metric seen under several protocols gets one
    column per protocol (fid@10k, fid@50k). Cells are mean ± std over runs.

    With --format html and a folder as --out, the report site: one self-contained page
    (FOLDER/index.html, images inline, nothing fetched) with a section per protocol,
    sortable columns, a sample thumbnail per model whose run folder is known, and the
    plots (precision/recall, training losses; study figures with --studies).

    \b
    Examples:
      ganbench leaderboard --dataset mnist
      ganbench leaderboard --dataset mnist --metric fid --metric isc --format latex --out table.tex
      ganbench leaderboard --dataset fashion_mnist --by-checkpoint --format csv
      ganbench leaderboard --dataset mnist --format html --out site/ --studies studies/
      ganbench leaderboard --from-csv leaderboards/mnist.csv --format html --out site/
    """
    from ganbench.leaderboards.board import build_leaderboards
    from ganbench.leaderboards.render import render_leaderboards

    site = out is not None and fmt == "html" and (out.is_dir() or not out.suffix)
    if studies is not None and not site:
        raise GanbenchError("--studies goes into the HTML site: pass --format html --out FOLDER")
    fmt = fmt if site else _pick_format(fmt, out, ("csv", "md", "latex", "html"))
    if from_csv is not None:
        boards, df, source = _boards_from_csv(from_csv, dataset, metrics, models, store, protocols, by_checkpoint,
                                              sort_by, single_table)
    else:
        df = _load(store, dataset=dataset, model=list(models) or None)
        boards = build_leaderboards(df, list(metrics) or None, by_checkpoint=by_checkpoint, primary=sort_by,
                                    protocol=list(protocols) or None, single=single_table)
        source = f"the results store {_store_location(store)}"
    if site:
        _write_site(boards, df, out, force=force, studies=studies, source=source, digits=digits)
    else:
        _emit(render_leaderboards(boards, fmt, digits=digits, booktabs=booktabs), out, force)


def _boards_from_csv(path: Path, *store_options):
    """The leaderboards of a leaderboard CSV, refusing the options that select from a store."""
    from ganbench.leaderboards.site import boards_from_csv

    if any(store_options):
        raise GanbenchError("--from-csv renders the file as it is: it takes none of --dataset, --metric, --model, "
                            "--store, --protocol, --by-checkpoint, --sort-by, --single-table")
    return boards_from_csv(path), None, str(path)


def _store_location(store: str | None) -> str:
    from ganbench.leaderboards.store import open_store

    return str(open_store(store).location)


def _write_site(boards, results, out: Path, *, force: bool, studies: Path | None, source: str, digits: int) -> None:
    from ganbench.leaderboards.site import find_study_reports, render_page, write_site

    reports = find_study_reports(studies) if studies is not None else ()
    page = render_page(boards, results, studies=reports, source=source, digits=digits, sortable=True)
    click.echo(f"wrote {write_site(out, page, force=force)}", err=True)


@click.command("results")
@dataset_option
@models_option
@click.option("--metric", "metrics", metavar="NAME", multiple=True, help="Only this metric (repeatable).")
@click.option("--run-id", "run_ids", metavar="ID", multiple=True, help="Only this run (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "md"]), default=None,
              help="Output format (default: from the --out suffix, else md).")
@click.option("--all-columns", is_flag=True, help="Markdown: every column, not a summary.")
@click.option("--last", type=click.IntRange(min=1), default=None, help="Only the N most recent rows.")
@out_option
@force_option
@store_option
def results_cmd(dataset, models, metrics, run_ids, fmt, all_columns, last, out, force, store):
    """List stored result rows with their provenance (CSV has every column).

    \b
    Examples:
      ganbench results --dataset mnist --model dcgan
      ganbench results --format csv --out all-results.csv
    """
    from ganbench.leaderboards.render import render_results
    from ganbench.leaderboards.store import COLUMNS

    fmt = _pick_format(fmt, out, ("csv", "md"))
    df = _load(store, dataset=dataset, model=list(models) or None, metric=list(metrics) or None,
               run_id=list(run_ids) or None)
    if last is not None:
        df = df.tail(last)
    columns = list(COLUMNS) if all_columns else None
    _emit(render_results(df, fmt, columns=columns), out, force)


@click.group("plot")
def plot_cmd():
    """Figures: training curves from logs, precision/recall of models."""


@plot_cmd.command("curve")
@click.option("--log", "logs", type=click.Path(dir_okay=False, path_type=Path), multiple=True, required=True,
              help="Training log: JSON lines with a step key and metric keys, or a CSV (repeatable: one line each).")
@click.option("--metric", "metrics", metavar="NAME", multiple=True, required=True,
              help="Metric to plot (repeatable: one panel each).")
@click.option("--step-key", default="step", show_default=True, help="The x-axis key in the log.")
@click.option("--logy", is_flag=True, help="Logarithmic y axis.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Figure file; the suffix picks the format (png, pdf, svg).")
@force_option
def plot_curve_cmd(logs, metrics, step_key, logy, out, force):
    """Plot a metric against training step.

    \b
    Examples:
      ganbench plot curve --log runs/dcgan/metrics.jsonl --metric fid --out fid.png
      ganbench plot curve --log a/metrics.jsonl --log b/metrics.jsonl --metric fid --metric loss_g --out cmp.pdf
    """
    from ganbench.leaderboards.plots import plot_curve, save_figure

    save_figure(plot_curve(logs, metrics, step_key=step_key, logy=logy), out, force=force)
    click.echo(f"wrote {out}", err=True)


@plot_cmd.command("pr")
@dataset_option
@models_option
@protocol_option
@by_checkpoint_option
@store_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Figure file; the suffix picks the format (png, pdf, svg).")
@force_option
def plot_pr_cmd(dataset, models, protocols, by_checkpoint, store, out, force):
    """Scatter models by precision and recall (mean over runs, std bars).

    \b
    Examples:
      ganbench plot pr --dataset mnist --out pr.png
    """
    from ganbench.leaderboards.plots import plot_pr, save_figure

    df = _load(store, dataset=dataset, model=list(models) or None)
    save_figure(plot_pr(df, protocol=list(protocols) or None, by_checkpoint=by_checkpoint), out, force=force)
    click.echo(f"wrote {out}", err=True)
