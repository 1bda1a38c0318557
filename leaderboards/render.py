"""Leaderboards and raw results as CSV, GitHub Markdown, LaTeX or HTML, and atomic output.

Every table is preceded by its protocol (:attr:`Leaderboard.title`), so a number is
never shown without what it was measured under. Cells read ``mean ± std`` (std over
runs, shown when there are two runs or more); the best value of each column is bold.
CSV is for machines: one row per (table, entity), the protocol in columns, full
precision, ``<column>``/``<column>_std``/``<column>_n`` per metric. HTML pages, and the
report site with samples and plots, are built by :mod:`ganbench.leaderboards.site`.

Names (models, datasets, references, extractors, metric columns) come from users and
plug-ins, so every one is escaped for its format: :func:`markdown_escape` (no HTML, no
links, one line), :func:`latex_escape` (one line), ``html.escape`` and :func:`csv_cell`
(no spreadsheet formulas).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from ganbench.atomic import atomic_write_bytes
from ganbench.errors import GanbenchError, UnknownNameError
from ganbench.leaderboards.board import Leaderboard

FORMATS = ("csv", "md", "latex", "html")
SUFFIXES = {".csv": "csv", ".md": "md", ".markdown": "md", ".tex": "latex", ".html": "html", ".htm": "html"}
RESULTS_FORMATS = ("csv", "md")
# raw-results columns shown by the Markdown listing (CSV has them all)
RESULTS_SUMMARY = ("timestamp", "run_id", "model", "step", "dataset", "metric", "key", "value", "std",
                   "num_samples", "extractor", "weights_standard", "protocol_id", "seed")


def format_for_path(path: str | os.PathLike) -> str | None:
    """The format an output file's suffix implies (``.tex`` -> latex), or None."""
    return SUFFIXES.get(Path(path).suffix.lower())


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    if fmt not in allowed:
        raise UnknownNameError("format", fmt, allowed)
    return fmt


# --------------------------------------------------------------------------- cells
def decimals(values: Sequence[float], digits: int = 4) -> int:
    """Decimal places giving ``digits`` significant digits to the largest finite value."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 2
    return min(8, max(0, digits - 1 - math.floor(math.log10(max(finite)))))


def _num(v: float, d: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{d}f}"


def _value_text(mean: str, std: str, interval: str, plus_minus: str) -> str:
    """A cell: ``2.31 [2.25, 2.38]`` (one run's confidence interval), ``2.31 ± 0.05``
    (several runs' std) or the value alone."""
    if interval and mean:
        return f"{mean} {interval}"
    return f"{mean} {plus_minus} {std}" if std and mean else mean


class _Cells:
    """The display form of one leaderboard, shared by the text formats."""

    def __init__(self, board: Leaderboard, digits: int):
        f = board.frame
        self.headers: list[str] = ["Rank", "Model"]
        self.align: list[str] = ["r", "l"]
        if board.by_checkpoint:
            self.headers += ["Checkpoint", "Step"]
            self.align += ["l", "r"]
        self.metric_headers = [(c.name, c.arrow) for c in board.columns]
        self.first_metric = len(self.headers)
        # (mean text, std text, best, "[low, high]" text of a single run's interval or "")
        text: list[list[str]] = []
        for i in range(len(f)):
            rank = f["rank"].iloc[i]
            row = ["" if pd.isna(rank) else str(int(rank)), str(f["model"].iloc[i])]
            if board.by_checkpoint:
                sha, step = f["checkpoint_sha256"].iloc[i], f["step"].iloc[i]
                row += ["" if pd.isna(sha) else str(sha)[:12], "" if pd.isna(step) else str(int(step))]
            text.append(row)
        self.cells: list[list[tuple[str, str, bool, str]]] = [[] for _ in range(len(f))]
        for c in board.columns:
            means = f[c.name].to_numpy(dtype="float64")
            stds = f[f"{c.name}_std"].to_numpy(dtype="float64")
            d = decimals(list(means), digits)
            badness = c.badness(pd.Series(means)).to_numpy(dtype="float64")  # the best cell is the least bad
            finite = [b for b in badness if not math.isnan(b)]
            best = min(finite) if len(finite) > 1 else None
            lows, highs = (f.get(f"{c.name}_{side}", pd.Series([math.nan] * len(f))).to_numpy(dtype="float64")
                           for side in ("ci_low", "ci_high"))
            for i, (m, s) in enumerate(zip(means, stds)):
                interval = "" if math.isnan(lows[i]) else f"[{_num(lows[i], d)}, {_num(highs[i], d)}]"
                self.cells[i].append((_num(m, d), _num(s, d), best is not None and badness[i] == best, interval))
        self.text = text
        self.runs = [str(int(r)) for r in f["runs"]]

    def header_count(self) -> int:
        return len(self.headers) + len(self.metric_headers) + 1


def _note(board: Leaderboard) -> str:
    p = board.primary_column
    direction = (f"closest to {p.ideal:g} is best" if p.ideal is not None
                 else "higher is better" if p.higher_is_better else "lower is better")
    return f"Ranked by {p.name} ({direction}); mean ± std over runs."


# --------------------------------------------------------------------------- escaping
# One function per format, applied to every user-supplied string (model, dataset, reference,
# extractor and metric names, titles, notes, headers): names come from users and plug-ins.
# HTML uses html.escape.
_MD_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]"}
_SCRIPT_SCHEME = re.compile(r"(javascript|vbscript)(\s*):", re.IGNORECASE)
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_ARROWS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$"}  # else "→0": best at 0
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets evaluate (OWASP CSV injection)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _one_line(s: object) -> str:
    return " ".join(str(s).splitlines())


def markdown_escape(s: object) -> str:
    """Inert Markdown text on one line: no HTML, no links, no table breaks."""
    text = "".join(_MD_SPECIAL.get(ch, ch) for ch in _one_line(s))
    return _SCRIPT_SCHEME.sub(r"\1\2&#58;", text)


def latex_escape(s: object) -> str:
    """LaTeX text on one line (a newline would end a comment; a blank line breaks a tabular)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in _one_line(s))


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not evaluate: text starting with = + - @ tab or CR gets a
    leading quote (OWASP); numbers, and text that is just a number, are left alone."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")  # csv leaves a bare CR unquoted: the row would split


def _csv(df: pd.DataFrame) -> str:
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    safe = df.assign(**{c: df[c].map(csv_cell) for c in text})
    safe.columns = [csv_cell(c) for c in df.columns]
    return safe.to_csv(index=False, lineterminator="\n")


# --------------------------------------------------------------------------- formats
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table; ``align`` holds "l" or "r" per column."""
    align = align or ["l"] * len(headers)
    lines = ["| " + " | ".join(markdown_escape(h) for h in headers) + " |",
             "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"]
    lines += ["| " + " | ".join(markdown_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _render_md(boards: Sequence[Leaderboard], digits: int, bold_best: bool) -> str:
    out = []
    for board in boards:
        cells = _Cells(board, digits)
        headers = cells.headers + [f"{n} {arrow}" for n, arrow in cells.metric_headers] + ["Runs"]
        align = cells.align + ["r"] * (len(cells.metric_headers) + 1)
        rows = []
        for text, metrics, runs in zip(cells.text, cells.cells, cells.runs):
            shown = []
            for mean, std, best, interval in metrics:
                v = _value_text(mean, std, interval, "±")
                shown.append(f"**{v}**" if best and bold_best and v else (v or "–"))
            rows.append(text + shown + [runs])
        out.append(f"### {markdown_escape(board.title)}\n\n{markdown_escape(_note(board))}\n\n"
                   f"{markdown_table(headers, rows, align)}\n")
    return "\n".join(out)


def _render_latex(boards: Sequence[Leaderboard], digits: int, bold_best: bool, booktabs: bool) -> str:
    top, mid, bottom = (r"\toprule", r"\midrule", r"\bottomrule") if booktabs else (r"\hline", r"\hline", r"\hline")
    out = []
    for board in boards:
        cells = _Cells(board, digits)
        n = cells.header_count()
        spec = "".join(cells.align) + "r" * (len(cells.metric_headers) + 1)
        headers = [latex_escape(h) for h in cells.headers] + \
            [latex_escape(name) + " " + _LATEX_ARROWS.get(arrow, f"$\\to${latex_escape(arrow[1:])}")
             for name, arrow in cells.metric_headers] + ["Runs"]
        lines = [f"% {latex_escape(board.title)}", f"% {latex_escape(_note(board).replace('±', '+-'))}",
                 f"\\begin{{tabular}}{{{spec}}}", top, " & ".join(headers) + r" \\", mid]
        for text, metrics, runs in zip(cells.text, cells.cells, cells.runs):
            row = [latex_escape(t) for t in text]
            for mean, std, best, interval in metrics:
                m = f"\\textbf{{{mean}}}" if best and bold_best and mean else mean
                row.append(_value_text(m, std, interval, "$\\pm$") or "--")
            row.append(runs)
            assert len(row) == n
            lines.append(" & ".join(row) + r" \\")
        lines += [bottom, r"\end{tabular}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def _render_html(boards: Sequence[Leaderboard], digits: int, bold_best: bool) -> str:
    from ganbench.leaderboards.site import render_page  # the site renders the page; it imports this module

    return render_page(boards, digits=digits, bold_best=bold_best)


def to_frame(boards: Sequence[Leaderboard]) -> pd.DataFrame:
    """All tables in one machine-readable frame (the CSV form), protocol in columns."""
    frames = []
    for board in boards:
        f = board.frame.copy()
        s = board.setting
        head = {"dataset": board.dataset, "extractor": s["extractor"], "weights_sha256": s["weights_sha256"],
                "weights_standard": s["weights_standard"], "num_samples": s["num_samples"],
                "num_reference": s["num_reference"], "protocol_ids": " ".join(board.protocol_ids),
                "ranked_by": board.primary}
        for i, (k, v) in enumerate(head.items()):
            f.insert(i, k, [v] * len(f))
        frames.append(f)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    counts = ["rank", "runs"] + [f"{c.name}_n" for b in boards for c in b.columns]
    return out.astype({c: "Int64" for c in counts})


def render_leaderboards(boards: Sequence[Leaderboard], fmt: str = "md", *, digits: int = 4, bold_best: bool = True,
           booktabs: bool = False) -> str:
    """Leaderboards as text in ``fmt`` (one of :data:`FORMATS`).

    ``digits``: significant digits of the largest value in each column. ``booktabs``:
    LaTeX rules from the booktabs package instead of ``\\hline``.
    """
    check_format(fmt)
    if fmt == "csv":
        return _csv(to_frame(boards))
    if fmt == "md":
        return _render_md(boards, digits, bold_best)
    if fmt == "latex":
        return _render_latex(boards, digits, bold_best, booktabs)
    return _render_html(boards, digits, bold_best)


def render_results(results: pd.DataFrame, fmt: str = "md", *, columns: Sequence[str] | None = None) -> str:
    """Raw result rows as CSV (all columns by default) or Markdown (a summary by default)."""
    check_format(fmt, RESULTS_FORMATS)
    if columns is None:
        columns = list(results.columns) if fmt == "csv" else [c for c in RESULTS_SUMMARY if c in results.columns]
    else:
        for c in columns:
            if c not in results.columns:
                raise UnknownNameError("column", c, results.columns)
    df = results[list(columns)]
    if fmt == "csv":
        return _csv(df)
    rows = []
    for rec in df.itertuples(index=False):
        row = []
        for name, v in zip(columns, rec):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                row.append("")
            elif name == "run_id":
                row.append(str(v)[:8])
            elif isinstance(v, float):
                row.append(f"{v:.6g}")
            else:
                row.append(str(v))
        rows.append(row)
    align = ["r" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else "l"
             for c in columns]
    return markdown_table(list(columns), rows, align) + "\n"


# --------------------------------------------------------------------------- output
def write_output(path: str | os.PathLike, data: str | bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename); readers never see half a file.

    An existing file is refused unless ``force``.
    """
    path = Path(path)
    if path.is_dir():
        raise GanbenchError(f"output {path} is a directory")
    if path.exists() and not force:
        raise GanbenchError(f"{path} already exists; pass --force to overwrite it")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, payload, overwrite=force)
    except FileExistsError:
        raise GanbenchError(f"{path} already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise GanbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
