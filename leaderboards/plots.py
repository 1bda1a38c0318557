"""Figures: a metric against training step from training logs, and precision/recall of models.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so plotting
never touches matplotlib's global backend or state. :func:`save_figure` writes
atomically and refuses to overwrite unless asked.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from ganbench.errors import GanbenchError, UnknownNameError
from ganbench.leaderboards.board import aggregate
from ganbench.leaderboards.render import write_output

PR_KEYS = ("precision", "recall")


# --------------------------------------------------------------------------- training curves
def read_training_log(path: str | os.PathLike) -> pd.DataFrame:
    """A training log as a frame: JSON lines (one object per line) or CSV (``.csv``/``.tsv``).

    Nested objects are flattened with dots (``{"metrics": {"fid": 3}}`` -> ``metrics.fid``).
    A truncated last line (a log still being written) is ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise GanbenchError(f"training log {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GanbenchError(f"cannot read training log {path}: {str(exc).splitlines()[0]}") from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    records = []
    for pos, (lineno, line) in enumerate(numbered):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if pos == len(numbered) - 1:  # being written right now
                break
            raise GanbenchError(f"{path}:{lineno}: not a JSON line; expected JSON lines or a .csv file") from None
        if not isinstance(obj, dict):
            raise GanbenchError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return pd.json_normalize(records) if records else pd.DataFrame()


def _resolve(df: pd.DataFrame, name: str) -> str | None:
    """The column for ``name``: exact, else the one nested column ending in ``.name``."""
    if name in df.columns:
        return name
    nested = [c for c in df.columns if str(c).endswith("." + name)]
    return nested[0] if len(nested) == 1 else None


def _labels(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{p.parent.name}/{p.stem}" if p.parent.name else str(p) for p in paths]


def plot_curve(logs: Sequence[str | os.PathLike], metrics: Sequence[str], *, step_key: str = "step",
               logy: bool = False) -> Figure:
    """One panel per metric, one line per log: metric value against training step."""
    if not logs:
        raise GanbenchError("give at least one training log")
    if not metrics:
        raise GanbenchError("give at least one metric to plot")
    paths = [Path(p) for p in logs]
    frames = [read_training_log(p) for p in paths]
    for path, df in zip(paths, frames):
        if _resolve(df, step_key) is None:
            raise GanbenchError(f"training log {path} has no {step_key!r} column; columns: "
                                f"{', '.join(map(str, df.columns)) or '(none)'}")
    for m in metrics:
        if all(_resolve(df, m) is None for df in frames):
            known = {str(c) for df in frames for c in df.columns} - {step_key}
            raise UnknownNameError("metric", m, known)

    fig = Figure(figsize=(6.4, 2.8 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, m in zip(axes, metrics):
        for label, df in zip(_labels(paths), frames):
            col, step = _resolve(df, m), _resolve(df, step_key)
            if col is None:
                continue
            pts = pd.DataFrame({"step": pd.to_numeric(df[step], errors="coerce"),
                                "value": pd.to_numeric(df[col], errors="coerce")}).dropna().sort_values("step")
            if not pts.empty:
                ax.plot(pts["step"], pts["value"], marker="o" if len(pts) < 30 else None, ms=3, label=label)
        ax.set_ylabel(m)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(paths) > 1:
            ax.legend(fontsize="small")
    axes[-1].set_xlabel(step_key)
    return fig


# --------------------------------------------------------------------------- precision / recall
def plot_pr(results: pd.DataFrame, *, protocol: str | Sequence[str] | None = None,
            by_checkpoint: bool = False) -> Figure:
    """Precision (y) against recall (x), one point per model (mean over runs, std bars).

    Only one protocol is drawn: when precision/recall were measured under several,
    GanbenchError lists them and asks for ``protocol``.
    """
    if results.empty:
        raise GanbenchError("no results to plot")
    have = set(results["key"])
    if not set(PR_KEYS) <= have:
        raise GanbenchError(f"no precision/recall results in the selection (keys present: {', '.join(sorted(have))}); "
                            "evaluate with --metric pr first")
    long = aggregate(results, list(PR_KEYS), by_checkpoint=by_checkpoint, protocol=protocol)
    groups = long.groupby(["dataset", "protocol_id"], sort=False)
    complete = [(k, g) for k, g in groups if set(g["key"]) >= set(PR_KEYS)]
    if not complete:
        raise GanbenchError("precision and recall were never measured under the same protocol")
    if len(complete) > 1:
        listing = ", ".join(f"{d} {pid}" for (d, pid), _ in complete)
        raise GanbenchError(f"precision/recall were measured under {len(complete)} protocols ({listing}); "
                            "numbers from different protocols are not comparable: choose one with --protocol")
    (dataset, pid), g = complete[0]
    wide = g.pivot(index="entity", columns="key", values=["mean", "std"])
    names = g.drop_duplicates("entity").set_index("entity")
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    for entity, row in wide.iterrows():
        label = str(names.loc[entity, "model"])
        if by_checkpoint and pd.notna(names.loc[entity, "step"]):
            label += f"@{int(names.loc[entity, 'step'])}"
        r, p = row[("mean", "recall")], row[("mean", "precision")]
        if pd.isna(r) or pd.isna(p):
            continue
        rs, ps = row[("std", "recall")], row[("std", "precision")]
        ax.errorbar(r, p, xerr=None if pd.isna(rs) else rs, yerr=None if pd.isna(ps) else ps,
                    fmt="o", capsize=2)
        ax.annotate(label, (r, p), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{dataset} · protocol {pid}", fontsize="medium")
    ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Figure, out: str | os.PathLike, *, force: bool = False, dpi: int = 150) -> Path:
    """Save ``fig`` to ``out`` atomically (format from the suffix: png, pdf, svg...)."""
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".") or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise UnknownNameError("figure format", fmt, supported)
    if out.exists() and not force:
        raise GanbenchError(f"{out} already exists; pass --force to overwrite it")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return write_output(out, buf.getvalue(), force=force)
