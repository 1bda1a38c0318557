"""The report of a study: Markdown, two figures and the trials as CSV.

:func:`write_report` writes into one folder

* ``report.md``: the command that ran the study, its protocol and search spaces, a summary
  per model, the best score as a function of the number of hyperparameter draws (Lucic et
  al. 2018, "Are GANs Created Equal?"; exact, :func:`~ganbench.study.statistics.min_over_budget`)
  and a permutation test of every pair of models, Holm-adjusted, with one plain sentence each;
* ``distribution.png``: the values of every "ok" run per model (box plots), with the runs
  that diverged or failed counted under each box;
* ``budget.png``: the best-of-k curves of every model on one axis (mean and central band);
* ``trials.csv``: the trials as given, sorted by model, draw and seed.

Figures are built on :class:`matplotlib.figure.Figure` (Agg, no pyplot state). Every file
is written atomically, and nothing is overwritten unless ``force``.
"""
from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ganbench.errors import GanbenchError
from ganbench.leaderboards.plots import save_figure
from ganbench.leaderboards.render import csv_cell, markdown_escape, markdown_table, write_output
from ganbench.search_space import describe, from_json
from ganbench.study import LEARNED_FRACTION
from ganbench.study.statistics import (
    draw_scores,
    min_over_budget,
    pairwise_comparisons,
    summary_table,
)

REPORT_FILES = ("report.md", "distribution.png", "budget.png", "trials.csv")
BUDGET_KS = (1, 2, 5)  # the budget table's columns, besides k = n (all draws)
N_PERMUTATIONS = 10000
LEVEL = 0.95  # the budget bands' central probability
REQUIRED = ("name", "command", "models", "higher_is_better", "untrained")


@dataclass(frozen=True)
class Analysis:
    """Everything the sections show, computed once."""

    trials: pd.DataFrame  # sorted by model, draw, seed
    models: list[str]  # protocol order, models without runs left out
    scores: pd.DataFrame  # statistics.draw_scores
    summary: pd.DataFrame  # statistics.summary_table, in model order
    curves: dict[str, pd.DataFrame]  # model -> statistics.min_over_budget
    comparisons: pd.DataFrame  # statistics.pairwise_comparisons of the best draws
    higher_is_better: bool
    metric: str


def write_report(trials: pd.DataFrame, protocol: Mapping[str, Any], out_dir: str | os.PathLike, *,
                 force: bool = False, storage: str | None = None) -> list[Path]:
    """Write report.md, distribution.png, budget.png and trials.csv into ``out_dir`` (see the
    module doc) and return their paths; refuses to overwrite any of them unless ``force``.
    ``storage``: the ``--storage`` the study lives in, for the commands the report shows."""
    out = Path(out_dir)
    paths = [out / name for name in REPORT_FILES]
    if not force:
        for path in paths:
            if path.exists():
                raise GanbenchError(f"{path} already exists; pass --force to overwrite it")
    analysis = analyse(trials, protocol)
    write_output(paths[3], trials_csv(analysis.trials), force=force)
    save_figure(distribution_figure(analysis), paths[1], force=force)
    save_figure(budget_figure(analysis), paths[2], force=force)
    # last: a report.md is complete
    write_output(paths[0], render_markdown(analysis, protocol, out, storage), force=force)
    return paths


def analyse(trials: pd.DataFrame, protocol: Mapping[str, Any]) -> Analysis:
    missing = [key for key in REQUIRED if key not in protocol]
    if missing:
        raise GanbenchError(f"the study's protocol lacks {', '.join(missing)}")
    if trials.empty:
        raise GanbenchError(f"study {protocol['name']!r} has no runs yet: nothing to report")
    higher = bool(protocol["higher_is_better"])
    ordered = trials.sort_values(["model", "draw", "seed"], kind="stable").reset_index(drop=True)
    present = set(ordered["model"])
    models = [m for m in protocol["models"] if m in present] + sorted(present - set(protocol["models"]))
    scores = draw_scores(ordered, protocol["untrained"], higher)
    by_model = {m: scores.loc[scores["model"] == m, "score"].to_numpy() for m in models}
    summary = summary_table(ordered, scores, higher).set_index("model").loc[models].reset_index()
    return Analysis(
        trials=ordered, models=models, scores=scores, summary=summary,
        curves={m: min_over_budget(by_model[m], higher, LEVEL) for m in models},
        comparisons=pairwise_comparisons(by_model, higher, "best", N_PERMUTATIONS),
        higher_is_better=higher, metric=str(protocol.get("metric", "score")),
    )


def trials_csv(trials: pd.DataFrame) -> str:
    """The trials as CSV; text cells that a spreadsheet would evaluate are quoted."""
    text = [c for c in trials.columns if not pd.api.types.is_numeric_dtype(trials[c])]
    return trials.assign(**{c: trials[c].map(csv_cell) for c in text}).to_csv(index=False, lineterminator="\n")


# --------------------------------------------------------------------------- Markdown
def render_markdown(analysis: Analysis, protocol: Mapping[str, Any], out_dir: Path,
                    storage: str | None = None) -> str:
    sections = [title_section(protocol, out_dir, storage), incomplete_section(analysis.trials, protocol),
                protocol_section(analysis, protocol), summary_section(analysis), distribution_section(analysis),
                budget_section(analysis), comparisons_section(analysis)]
    return "\n\n".join(s for s in sections if s) + "\n"


def title_section(protocol: Mapping[str, Any], out_dir: Path, storage: str | None = None) -> str:
    """The commands that declare, run and report the study, as given."""
    name = str(protocol["name"])
    where = f" --storage {shlex.quote(storage)}" if storage else ""
    commands = [str(protocol["command"]), f"ganbench study run {shlex.quote(name)}{where}",
                f"ganbench study report {shlex.quote(name)} --out {shlex.quote(str(out_dir))}{where}"]
    return (f"# Study {markdown_escape(name)}\n\n"
            f"{_code_block(chr(10).join(commands))}\n\n"
            f"Written by ganbench: do not edit by hand; regenerate with the last command.")


def incomplete_section(trials: pd.DataFrame, protocol: Mapping[str, Any]) -> str:
    """A note when fewer runs than models x (draws + 1) x seeds are in; "" otherwise."""
    draws, seeds = int(protocol.get("trials", 0)) + 1, _seed_count(protocol)
    expected = len(protocol["models"]) * draws * seeds
    if len(trials) >= expected:
        return ""
    per_model = trials["model"].value_counts()
    short = [f"{markdown_escape(m)} {int(per_model.get(m, 0))}/{draws * seeds}" for m in protocol["models"]
             if per_model.get(m, 0) < draws * seeds]
    return (f"> **Incomplete study:** {len(trials)} of {expected} runs ({len(protocol['models'])} models x "
            f"{draws} draws x {seeds} seeds); runs per model: {', '.join(short)}. "
            f"The numbers below use the runs present.")


def protocol_section(analysis: Analysis, protocol: Mapping[str, Any]) -> str:
    p = {key: markdown_escape(value) for key, value in protocol.items() if isinstance(value, (str, int, float))}
    get = p.get
    trials = analysis.trials
    lines = [
        f"- dataset: {get('dataset', '?')}, split: {get('split', '?')}",
        f"- features: {get('extractor', '?')}, {_count(protocol.get('num_samples'))} generated samples per evaluation",
        f"- metric: {get('metric', '?')} ({_direction(analysis.higher_is_better)})",
        f"- training: {_count(protocol.get('steps'))} generator steps, batch {get('batch_size', '?')}; "
        f"{_count(trials['images'].median())} real images seen per run (median)",
        f"- seeds: {_seed_text(protocol)}",
        f"- draws per model: 1 default configuration ({_default_words(get('scale', '?'))}) + "
        f"{get('trials', '?')} random draws (sampler: {get('sampler', '?')}, "
        f"study seed {get('study_seed', '?')}, scale {get('scale', '?')})",
        f"- budget: {len(trials)} runs, {_hours(trials['seconds'].sum())} of training and evaluation "
        f"(sum over runs), {_count(trials['images'].sum())} images in all",
        f"- versions: {_versions(protocol.get('versions'))}",
        "- search spaces:",
    ]
    lines += [f"  - {markdown_escape(m)}: {_space_text(protocol.get('search_spaces', {}).get(m))}"
              for m in protocol["models"]]
    return "## Protocol\n\n" + "\n".join(lines)


def summary_section(analysis: Analysis) -> str:
    headers = ["model", "runs", "draws", "best draw", "median draw", "mean ± std (ok runs)", "diverged", "failed",
               "did not learn", "best draw's params", "compute", "images"]
    rows = [[r.model, str(r.runs), str(r.draws), _num(r.best), _num(r.median), _mean_std(r.mean, r.std),
             _share(r.diverged), _share(r.failed), _share(r.not_learned), _params(r.best_params),
             _hours(r.seconds), _count(r.images)] for r in analysis.summary.itertuples(index=False)]
    return (f"## Summary\n\nA draw's score is the mean {markdown_escape(analysis.metric)} over its seeds, a run that "
            "diverged or failed counting as the model's untrained generator (it learned nothing). "
            f"\"Did not learn\": ok runs that did not beat {LEARNED_FRACTION} x the untrained generator's value "
            "(its mirror for higher-is-better metrics).\n\n"
            + markdown_table(headers, rows, ["l"] + ["r"] * 8 + ["l", "r", "r"]))


def distribution_section(analysis: Analysis) -> str:
    return (f"## Distribution of scores\n\n![{markdown_escape(analysis.metric)} of every ok run per model]"
            "(distribution.png)\n\nEvery run that ended ok, all draws and seeds together; runs that diverged "
            "or failed are counted under each box.")


def budget_rows(analysis: Analysis) -> list[list[str]]:
    """Per model: n draws, then ``mean [low, high]`` at k = 1, 2, 5 and n ("" where k > n)."""
    rows = []
    for model in analysis.models:
        curve = analysis.curves[model].set_index("k")
        n = len(curve)
        cells = [_interval(curve.loc[k]) if k <= n else "" for k in BUDGET_KS]
        rows.append([model, str(n), *cells, _interval(curve.loc[n])])
    return rows


def budget_section(analysis: Analysis) -> str:
    best = "lowest" if not analysis.higher_is_better else "highest"
    headers = ["model", "draws n", *[f"k = {k}" for k in BUDGET_KS], "k = n"]
    return (f"## Best score against the budget\n\n![best {markdown_escape(analysis.metric)} among k draws]"
            f"(budget.png)\n\nThe {best} draw score among k hyperparameter draws taken without replacement: "
            f"mean [{LEVEL:.0%} interval], exact over all k-subsets of the draws (Lucic et al. 2018's "
            "minimum FID against the budget, computed there by resampling).\n\n"
            + markdown_table(headers, budget_rows(analysis), ["l"] + ["r"] * (len(headers) - 1)))


def comparisons_section(analysis: Analysis) -> str:
    table = analysis.comparisons
    if table.empty:
        return "## Pairwise comparisons\n\nOne model: nothing to compare."
    headers = ["A", "B", "best draw A", "best draw B", "A - B", "p", "Holm p", "verdict"]
    rows = [[r.a, r.b, _num(r.a_value), _num(r.b_value), _num(r.difference), _p(r.p), _p(r.p_holm),
             _verdict_text(r.verdict, r.a, r.b)] for r in table.itertuples(index=False)]
    return (f"## Pairwise comparisons at the full budget\n\nPermutation test on the draw scores, "
            f"{N_PERMUTATIONS:,} permutations, statistic = best draw; Holm-adjusted over the {len(table)} "
            f"pair{'s' if len(table) != 1 else ''}; verdicts at 5%.\n\n"
            + markdown_table(headers, rows, ["l", "l"] + ["r"] * 5 + ["l"]) + "\n\n"
            + "\n".join(conclusion(r, analysis.metric) for r in table.itertuples(index=False)))


def conclusion(row: Any, metric: str) -> str:
    """One plain sentence for a compared pair (a row of pairwise_comparisons)."""
    a, b = markdown_escape(row.a), markdown_escape(row.b)
    numbers = (f"best draw {_num(row.a_value)} vs {_num(row.b_value)} {markdown_escape(metric)}, "
               f"Holm-adjusted p = {_p(row.p_holm)}")
    if row.verdict == "A better":
        return f"- {a} is better than {b} ({numbers})."
    if row.verdict == "B better":
        return f"- {b} is better than {a} ({numbers})."
    return f"- {a} and {b} cannot be told apart with these draws ({numbers})."


# --------------------------------------------------------------------------- figures
def distribution_figure(analysis: Analysis) -> Figure:
    """Box plots of every ok run's value per model, the individual runs as dots."""
    fig = Figure(figsize=(max(4.0, 1.3 * len(analysis.models) + 1.5), 4.2), layout="constrained")
    ax = fig.subplots()
    trials = analysis.trials
    values = [trials.loc[(trials["model"] == m) & (trials["outcome"] == "ok"), "value"].to_numpy()
              for m in analysis.models]
    positions = np.arange(1, len(values) + 1)
    ax.boxplot([v if len(v) else [math.nan] for v in values], positions=positions, widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0)  # a fixed spread: the same report twice is the same figure
    for x, v in zip(positions, values):
        ax.plot(x + jitter.uniform(-0.15, 0.15, len(v)), v, "o", ms=3, alpha=0.5, color="C0")
    ax.set_xticks(positions, [_tick_label(trials[trials["model"] == m], m) for m in analysis.models],
                  fontsize="small")
    ax.set_ylabel(f"{analysis.metric} ({_direction(analysis.higher_is_better)})")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _tick_label(runs: pd.DataFrame, model: str) -> str:
    counts = runs["outcome"].value_counts()
    notes = [f"{int(counts.get(o, 0))} {o}" for o in ("ok", "diverged", "failed") if counts.get(o, 0)]
    return f"{model}\n" + ", ".join(notes or ["no runs"])


def budget_figure(analysis: Analysis) -> Figure:
    """Best-of-k curves: mean line and central band per model, x = draws k."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, model in enumerate(analysis.models):
        curve = analysis.curves[model]
        ax.plot(curve["k"], curve["mean"], marker="o" if len(curve) < 20 else None, ms=3, color=f"C{i}",
                label=model)
        ax.fill_between(curve["k"], curve["low"], curve["high"], color=f"C{i}", alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("hyperparameter draws k")
    best = "highest" if analysis.higher_is_better else "lowest"
    ax.set_ylabel(f"{best} {analysis.metric} among k draws")
    ax.set_title(f"mean and central {LEVEL:.0%} over all k-subsets of the draws", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- cells
def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _interval(row: pd.Series) -> str:
    return f"{_num(row['mean'])} [{_num(row['low'])}, {_num(row['high'])}]"


def _mean_std(mean: float, std: float) -> str:
    return _num(mean) if math.isnan(std) else f"{_num(mean)} ± {_num(std)}"


def _share(x: float) -> str:
    return "" if math.isnan(x) else f"{100 * x:.3g}%"


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}"


def _count(x: Any) -> str:
    return "?" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{int(x):,}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _direction(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def _params(params: Any) -> str:
    try:
        values = json.loads(params) if isinstance(params, str) else params
    except json.JSONDecodeError:
        return str(params)
    if not values:
        return "default configuration"
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _verdict_text(verdict: str, a: str, b: str) -> str:
    return {"A better": f"{a} better", "B better": f"{b} better"}.get(verdict, verdict)


def _seed_count(protocol: Mapping[str, Any]) -> int:
    seeds = protocol.get("seeds", 1)
    return len(seeds) if isinstance(seeds, Sequence) and not isinstance(seeds, str) else int(seeds)


def _seed_text(protocol: Mapping[str, Any]) -> str:
    seeds = protocol.get("seeds", 1)
    if isinstance(seeds, Sequence) and not isinstance(seeds, str):
        return f"{', '.join(map(str, seeds))} ({len(seeds)} per draw)"
    return f"{int(seeds)} per draw"


def _versions(versions: Any) -> str:
    if isinstance(versions, Mapping):
        return markdown_escape(", ".join(f"{k} {v}" for k, v in versions.items())) or "?"
    return markdown_escape(versions) if versions else "?"


def _space_text(space_json: Mapping[str, Any] | None) -> str:
    if not space_json:
        return "no search space (default configuration only)"
    return markdown_escape("; ".join(f"{name}: {describe(value)}" for name, value in from_json(space_json).items()))


def _code_block(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def _default_words(scale: str) -> str:
    return {"tiny": "the model's small test configuration with its paper's losses",
            "paper": "the paper's hyperparameters"}.get(scale, f"scale {scale}")
