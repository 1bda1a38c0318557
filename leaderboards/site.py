"""The HTML leaderboard: one self-contained page, one section per protocol.

``ganbench leaderboard --format html --out site/`` writes ``site/index.html``, a single file
that needs nothing else: the style and the few lines of the sort script are inline, and every
image (sample thumbnails, plots, study figures) is a base64 ``data:`` URI inside the page, so
the folder can be moved, archived or attached as it is. A Content-Security-Policy meta tag
lets the page load nothing from anywhere and run no script but its own sort script (by hash).

Per protocol (one :class:`~ganbench.leaderboards.board.Leaderboard`): the table (columns
sortable by a click; cells ``mean ± std`` over runs or ``mean [low, high]`` for a single
run's interval; best values bold), a sample thumbnail per model whose run folder is known,
then the figures: precision against recall (:func:`~ganbench.leaderboards.plots.plot_pr`)
and each shown run's training losses from its ``metrics.jsonl``
(:func:`~ganbench.leaderboards.plots.plot_curve`). With ``studies``, the figures of every
study report (``ganbench study report``) found in that folder follow.

A row's run folder comes from the results store: ``source`` of an evaluated ganbench
checkpoint is the checkpoint file inside its run folder (``runs/x/checkpoint.safetensors``);
relative sources are resolved against the current directory. The thumbnail is the run's
sample grid at the evaluated step when there is one, else its latest.

Every user-supplied string (model and dataset names, titles, paths) goes through
``html.escape``, attributes included; numbers are formatted here.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ganbench.errors import GanbenchError
from ganbench.leaderboards.board import Leaderboard, MetricColumn
from ganbench.leaderboards.render import _Cells, _note, write_output

PAGE = "index.html"
THUMB_MAX_PX = 320  # larger sample grids are downscaled before they are embedded
CURVE_KEYS = ("loss_d", "loss_g")  # the training losses drawn first; other loss* keys fill up to two
STUDY_FIGURES = ("distribution.png", "budget.png")  # of ganbench.study.report.REPORT_FILES
_GRID_NAME = re.compile(r"step-(\d+)\.png")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1240px;
color:#1d2330;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.1em;margin:2em 0 .3em;border-top:2px solid #d7dbe3;
padding-top:.8em}p.note,p.meta{color:#5a6272;margin:.2em 0 .6em}nav li{margin:.15em 0}
table{border-collapse:collapse;margin:.6em 0 1.2em}th,td{padding:.3em .65em;border-bottom:1px solid #e2e5eb;
vertical-align:middle}thead th{background:#f3f5f8;border-bottom:2px solid #c9ced8;white-space:nowrap}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}tbody tr:hover{background:#f7f9fc}
th button{font:inherit;font-weight:600;border:0;background:none;cursor:pointer;padding:0;color:inherit}
th[aria-sort=ascending] button::after{content:" \\25B4"}th[aria-sort=descending] button::after{content:" \\25BE"}
span.sd{color:#5a6272}span.ci{display:block;font-size:.82em;color:#5a6272}
td.thumb{padding:.15em .4em}td.thumb img{width:52px;height:52px;display:block;border:1px solid #d7dbe3;
transition:transform .12s;transform-origin:left center;background:#fff}
td.thumb img:hover{transform:scale(4.5);position:relative;z-index:5;box-shadow:0 4px 18px #0004}
div.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}figure{margin:0}
div.figs img{max-width:600px}
div.curves{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1em}
h3{font-size:1em;margin:1.2em 0 .3em}figure img{max-width:100%;border:1px solid #e2e5eb}
figcaption{font-size:.85em;color:#5a6272;max-width:480px;overflow-wrap:anywhere}
"""

SORT_SCRIPT = """
document.querySelectorAll("section.board table").forEach(function (table) {
  var heads = table.tHead.rows[0].cells, body = table.tBodies[0];
  Array.prototype.forEach.call(heads, function (th, col) {
    var button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", function () {
      var now = th.getAttribute("aria-sort");
      var dir = now === "ascending" ? "descending" : now === "descending" ? "ascending" : th.dataset.first;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir);
      var sign = dir === "ascending" ? 1 : -1, numeric = th.dataset.type === "num";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        if (x === "" || y === "") return (x === "") - (y === "");  // missing values last either way
        return sign * (numeric ? x - y : x.localeCompare(y));
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- run folders
def shown_path(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the current folder) when inside it."""
    try:
        return str(path.relative_to(base or Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class RunView:
    """What the page shows of one row's training run."""

    folder: Path
    grid: Path | None  # the sample grid shown as thumbnail
    log: Path | None  # metrics.jsonl
    shown: str  # the folder as the page names it: relative to the base folder when inside it


def run_folder(source: object, base: Path | None = None) -> Path | None:
    """The training run folder a stored ``source`` points into (a checkpoint file inside it,
    or the folder itself), or None: a folder counts when it has ``samples/`` or ``metrics.jsonl``."""
    if not isinstance(source, str) or not source or "\n" in source:
        return None
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    try:
        folder = path.parent if path.is_file() else path
        if (folder / "samples").is_dir() or (folder / "metrics.jsonl").is_file():
            return folder
    except OSError:  # a name too long for a path, a folder we may not read
        return None
    return None


def sample_grid(folder: Path, step: int | None = None) -> Path | None:
    """The run's sample grid at ``step`` when there is one, else its latest (``samples/step-N.png``)."""
    grids = {int(m.group(1)): p for p in (folder / "samples").glob("step-*.png") if (m := _GRID_NAME.fullmatch(p.name))}
    if not grids:
        return None
    return grids.get(step) if step in grids else grids[max(grids)]


def _run_view(folder: Path, step: int | None, base: Path | None) -> RunView:
    log = folder / "metrics.jsonl"
    return RunView(folder, sample_grid(folder, step), log if log.is_file() else None, shown_path(folder, base))


def _rows_of(board: Leaderboard, results: pd.DataFrame) -> pd.DataFrame:
    """The raw rows behind ``board``: its dataset and protocols, studies left out."""
    rows = results[(results["dataset"].astype(str) == board.dataset) & results["protocol_id"].isin(board.protocol_ids)]
    if "tags" in rows:
        rows = rows[~rows["tags"].fillna("").astype(str).str.contains('"study": ', regex=False)]
    return rows


def _entity_mask(rows: pd.DataFrame, board: Leaderboard, i: int) -> pd.Series:
    f = board.frame
    mask = rows["model"].astype(str) == str(f["model"].iloc[i])
    if board.by_checkpoint:
        for col in ("checkpoint_sha256", "step"):
            value = f[col].iloc[i]
            mask &= rows[col].isna() if pd.isna(value) else (rows[col] == value)
    return mask


def run_views(board: Leaderboard, results: pd.DataFrame | None, base: Path | None = None) -> list[RunView | None]:
    """Per row of ``board.frame``: the most recently evaluated of its runs whose folder is
    known (one with a sample grid preferred), or None."""
    if results is None or results.empty or "source" not in results:
        return [None] * len(board.frame)
    rows = _rows_of(board, results).sort_values(["timestamp", "source"], ascending=False, kind="stable")
    views: list[RunView | None] = []
    for i in range(len(board.frame)):
        found = []
        for source, step in rows.loc[_entity_mask(rows, board, i), ["source", "step"]].drop_duplicates().itertuples(
                index=False):
            folder = run_folder(source, base)
            if folder is not None:
                found.append(_run_view(folder, None if pd.isna(step) else int(step), base))
        views.append(next((v for v in found if v.grid), found[0] if found else None))
    return views


def thumbnail_png(grid: Path) -> bytes | None:
    """The grid as PNG bytes for embedding, downscaled to :data:`THUMB_MAX_PX`; None when unreadable."""
    try:
        raw = grid.read_bytes()
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            if raw.startswith(_PNG_MAGIC) and max(image.size) <= THUMB_MAX_PX:
                return raw
            image.thumbnail((THUMB_MAX_PX, THUMB_MAX_PX), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            image.save(out, format="PNG")
            return out.getvalue()
    except (OSError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        return None


# --------------------------------------------------------------------------- figures
def _figure_png(fig, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _curve_keys(log: Path) -> list[str]:
    from ganbench.leaderboards.plots import read_training_log

    columns = [str(c) for c in read_training_log(log).columns]
    others = [c for c in columns if (c == "loss" or c.startswith("loss_")) and c not in CURVE_KEYS]
    return ([k for k in CURVE_KEYS if k in columns] + others)[:2]


def _curve(model: str, view: RunView) -> tuple[str, bytes] | None:
    """One run's training losses, or None when its log has none (or cannot be read)."""
    from ganbench.leaderboards.plots import plot_curve

    try:
        keys = _curve_keys(view.log)
        if not keys:
            return None
        fig = plot_curve([view.log], keys)
    except GanbenchError:
        return None
    fig.set_size_inches(4.2, 1.45 * len(keys) + 0.45)
    fig.suptitle(model, fontsize="medium")
    return f"{model}: {view.shown}/{view.log.name}", _figure_png(fig, 80)


def pr_figure(board: Leaderboard, results: pd.DataFrame) -> tuple[str, bytes] | None:
    """``(caption, png)`` of precision against recall for the board's models, None when not
    measured; a png of b"" when it cannot be drawn (the caption says why)."""
    from ganbench.leaderboards.plots import PR_KEYS, plot_pr

    rows = _rows_of(board, results)
    rows = rows[rows["model"].astype(str).isin(board.frame["model"].astype(str))]
    if not set(PR_KEYS) <= set(rows["key"]):
        return None
    try:
        fig = plot_pr(rows, by_checkpoint=board.by_checkpoint)
    except GanbenchError as exc:
        return f"No precision/recall plot: {exc}", b""
    return "Precision against recall: mean over runs, std bars", _figure_png(fig, 90)


def curve_figures(board: Leaderboard, views: Sequence[RunView | None]) -> list[tuple[str, bytes]]:
    """``(caption, png)`` of the training losses of every shown run, once per run."""
    figures, seen = [], set()
    for model, view in zip(board.frame["model"].astype(str), views):
        if view is None or view.log is None or view.log in seen:
            continue
        seen.add(view.log)
        curve = _curve(model, view)
        if curve is not None:
            figures.append(curve)
    return figures


# --------------------------------------------------------------------------- studies
@dataclass(frozen=True)
class StudyReport:
    """A study report folder (``ganbench study report NAME --out DIR``) and its figures."""

    folder: Path
    name: str
    figures: tuple[Path, ...]


def find_study_reports(folder: str | os.PathLike) -> list[StudyReport]:
    """Every study report under ``folder`` (the folder itself included): folders with a ``report.md``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GanbenchError(f"--studies {folder} is not a folder")
    reports = []
    for report in sorted(folder.rglob("report.md")):
        first = report.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
        name = first[len("# Study "):] if first.startswith("# Study ") else report.parent.name
        figures = tuple(report.parent / f for f in STUDY_FIGURES if (report.parent / f).is_file())
        reports.append(StudyReport(report.parent, name, figures))
    if not reports:
        raise GanbenchError(f"no study report (report.md) under {folder}; write one with "
                            "`ganbench study report NAME --out DIR`")
    return reports


# --------------------------------------------------------------------------- the page
esc = html.escape  # quote=True: safe inside double-quoted attributes too


def _attr_number(v: float) -> str:
    return "" if v is None or pd.isna(v) else repr(float(v))


def _header(board: Leaderboard, cells: _Cells, thumbs: bool, sortable: bool) -> str:
    """The header row: (label, align, sort type, first direction) per column."""
    heads = [("Rank", "r", "num", "ascending"), ("Model", "l", "text", "ascending")]
    if board.by_checkpoint:
        heads += [("Checkpoint", "l", "text", "ascending"), ("Step", "r", "num", "descending")]
    if thumbs:
        heads.append(("Samples", "l", None, None))
    for c, (name, arrow) in zip(board.columns, cells.metric_headers):
        heads.append((f"{name} {arrow}", "r", "num", "descending" if c.higher_is_better else "ascending"))
    heads.append(("Runs", "r", "num", "descending"))
    out = []
    for label, align, kind, first in heads:
        if not sortable or kind is None:
            out.append(f'<th class="{align}">{esc(label)}</th>')
            continue
        state = ' aria-sort="ascending"' if label == "Rank" else ""
        out.append(f'<th class="{align}" data-type="{kind}" data-first="{first}"{state}>'
                   f'<button type="button">{esc(label)}</button></th>')
    return "<tr>" + "".join(out) + "</tr>"


def _thumb_cell(model: str, view: RunView | None) -> str:
    png = thumbnail_png(view.grid) if view is not None and view.grid is not None else None
    if png is None:
        return '<td class="thumb"></td>'
    return (f'<td class="thumb"><img src="{_data_uri(png)}" alt="{esc("samples of " + model)}" '
            f'title="{esc(view.shown + "/samples/" + view.grid.name)}"></td>')


def _metric_cell(mean_value: float, cell: tuple[str, str, bool, str], bold_best: bool) -> str:
    mean, std, best, interval = cell
    if not mean:
        return '<td class="r" data-v="">–</td>'
    shown = f"<strong>{esc(mean)}</strong>" if best and bold_best else esc(mean)
    if interval:
        shown += f'<span class="ci">{esc(interval)}</span>'
    elif std:
        shown += f'<span class="sd"> ± {esc(std)}</span>'
    return f'<td class="r" data-v="{_attr_number(mean_value)}">{shown}</td>'


def _body_rows(board: Leaderboard, cells: _Cells, views: Sequence[RunView | None] | None, bold_best: bool) -> list[str]:
    f, rows = board.frame, []
    for i, (text, metrics, runs) in enumerate(zip(cells.text, cells.cells, cells.runs)):
        kinds = ["r", "l"] + (["l", "r"] if board.by_checkpoint else [])
        tds = [f'<td class="{a}" data-v="{esc(t)}">{esc(t)}</td>' for t, a in zip(text, kinds)]
        if views is not None:
            tds.append(_thumb_cell(text[1], views[i]))
        tds += [_metric_cell(f[c.name].iloc[i], cell, bold_best) for c, cell in zip(board.columns, metrics)]
        tds.append(f'<td class="r" data-v="{esc(runs)}">{esc(runs)}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return rows


def _table(board: Leaderboard, views: Sequence[RunView | None] | None, digits: int, bold_best: bool,
           sortable: bool) -> list[str]:
    cells = _Cells(board, digits)
    thumbs = views is not None and any(v is not None and v.grid is not None for v in views)
    return ["<table>", "<thead>", _header(board, cells, thumbs, sortable), "</thead>", "<tbody>",
            *_body_rows(board, cells, views if thumbs else None, bold_best), "</tbody>", "</table>"]


def _figures_block(figures: Sequence[tuple[str, bytes]], css: str = "figs") -> list[str]:
    out = [f'<div class="{css}">']
    for caption, png in figures:
        if not png:
            out.append(f'<p class="note">{esc(caption)}</p>')
            continue
        out.append(f'<figure><img src="{_data_uri(png)}" alt="{esc(caption)}">'
                   f"<figcaption>{esc(caption)}</figcaption></figure>")
    return out + ["</div>"]


def _plots(board: Leaderboard, results: pd.DataFrame, views: Sequence[RunView | None]) -> list[str]:
    out = []
    pr = pr_figure(board, results)
    if pr is not None:
        out += ["<h3>Precision and recall</h3>", *_figures_block([pr])]
    curves = curve_figures(board, views)
    if curves:
        out += ["<h3>Training losses</h3>",
                '<p class="note">One run per model: the one whose samples are shown (metrics.jsonl).</p>',
                *_figures_block(curves, "curves")]
    return out


def _board_section(i: int, board: Leaderboard, results: pd.DataFrame | None, base: Path | None, digits: int,
                   bold_best: bool, sortable: bool) -> list[str]:
    views = run_views(board, results, base) if results is not None else None
    return [f'<section class="board" id="board-{i}">', f"<h2>{esc(board.title)}</h2>",
            f'<p class="note">{esc(_note(board))}</p>', *_table(board, views, digits, bold_best, sortable),
            *(_plots(board, results, views) if results is not None else []), "</section>"]


def _study_section(i: int, report: StudyReport) -> list[str]:
    figures = [(f"{report.name}: {p.name}", p.read_bytes()) for p in report.figures]
    return [f'<section class="study" id="study-{i}">', f"<h2>Study {esc(report.name)}</h2>",
            f'<p class="note">Report: {esc(shown_path(report.folder / "report.md"))}</p>', *_figures_block(figures),
            "</section>"]


def _head(sortable: bool) -> list[str]:
    script = f"script-src {_csp_hash(SORT_SCRIPT)}; " if sortable else ""
    policy = (f"default-src 'none'; img-src data:; style-src {_csp_hash(STYLE)}; {script}"
              "base-uri 'none'; form-action 'none'")
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>ganbench leaderboard</title>", f"<style>{STYLE}</style>", "</head>"]


def _nav(boards: Sequence[Leaderboard], studies: Sequence[StudyReport]) -> list[str]:
    links = [f'<li><a href="#board-{i}">{esc(b.title)}</a></li>' for i, b in enumerate(boards, 1)]
    links += [f'<li><a href="#study-{i}">Study {esc(s.name)}</a></li>' for i, s in enumerate(studies, 1)]
    return ["<nav>", "<ul>", *links, "</ul>", "</nav>"] if len(links) > 1 else []


def render_page(boards: Sequence[Leaderboard], results: pd.DataFrame | None = None, *,
                studies: Sequence[StudyReport] = (), source: str | None = None, digits: int = 4,
                bold_best: bool = True, sortable: bool = False, base: Path | None = None) -> str:
    """The HTML page of ``boards``.

    ``results``: the raw rows the boards were built from; with them, each row gets its
    run's sample thumbnail and the board its figures. ``studies``: study reports whose
    figures follow the boards. ``source``: where the numbers come from, shown under the
    title. ``sortable``: add the sort script (a click on a header sorts by that column).
    ``base``: the folder relative run paths are resolved against (default: the current one).
    """
    count = f"{len(boards)} table{'s' if len(boards) != 1 else ''} (one per comparable protocol)"
    meta = count + (f"; from {source}" if source else "")
    parts = [*_head(sortable), "<body>", "<header>", "<h1>ganbench leaderboard</h1>",
             f'<p class="meta">{esc(meta)}</p>', "</header>", *_nav(boards, studies), "<main>"]
    for i, board in enumerate(boards, 1):
        parts += _board_section(i, board, results, base, digits, bold_best, sortable)
    for i, report in enumerate(studies, 1):
        parts += _study_section(i, report)
    parts.append("</main>")
    if sortable:
        parts.append(f"<script>{SORT_SCRIPT}</script>")
    return "\n".join(parts + ["</body>", "</html>", ""])


def write_site(out_dir: str | os.PathLike, page: str, *, force: bool = False) -> Path:
    """Write ``page`` as ``out_dir/index.html`` (atomically); an existing page is refused unless ``force``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GanbenchError(f"{out} is a file, not a folder for the site")
    return write_output(out / PAGE, page, force=force)


# --------------------------------------------------------------------------- CSV
_CSV_HEAD = ("dataset", "extractor", "weights_sha256", "weights_standard", "num_samples", "num_reference",
             "protocol_ids", "ranked_by", "rank", "model", "runs")


def _direction(key: str) -> tuple[str, bool]:
    """``(metric, higher_is_better)`` of an output key, from the installed metrics."""
    from ganbench.registry import metrics

    for entry in metrics.entries():
        directions = entry.metadata.get("higher_is_better") or {}
        if key in directions:
            return entry.name, bool(directions[key])
    raise GanbenchError(f"cannot tell whether higher {key!r} is better: no installed metric outputs it")


def _optional(v: object) -> object:
    return None if pd.isna(v) else v


def _csv_board(part: pd.DataFrame, names: Sequence[str], directions: dict[str, tuple[str, bool]]) -> Leaderboard:
    first = part.iloc[0]
    shown = [n for n in names if part[n].notna().any()]
    ids = tuple(str(first["protocol_ids"]).split())
    columns = [MetricColumn(n, n.split("@")[0], directions[n][0], ids[0] if len(ids) == 1 else "", directions[n][1])
               for n in shown]
    entity = ["model", "checkpoint_sha256", "step"] if "checkpoint_sha256" in part else ["model"]
    keep = ["rank", *entity, "runs"] + [f"{n}{s}" for n in shown for s in ("", "_std", "_n", "_ci_low", "_ci_high")
                                        if f"{n}{s}" in part]
    frame = part[keep].reset_index(drop=True).astype({"rank": "Int64", "runs": "int64"})
    setting = {"extractor": str(first["extractor"]), "weights_sha256": _optional(first["weights_sha256"]),
               "weights_standard": bool(first["weights_standard"]), "num_samples": int(first["num_samples"]),
               "num_reference": None if pd.isna(first["num_reference"]) else int(first["num_reference"])}
    return Leaderboard(str(first["dataset"]), setting, ids, columns, str(first["ranked_by"]), frame,
                       by_checkpoint=len(entity) > 1, entity_columns=tuple(entity))


def boards_from_csv(path: str | os.PathLike) -> list[Leaderboard]:
    """The leaderboards of a CSV written by ``ganbench leaderboard --format csv`` (such as the
    committed ``leaderboards/mnist.csv``), for rendering again. The CSV does not carry the
    metrics' directions: they come from the installed metrics."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"model": str, "dataset": str, "protocol_ids": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GanbenchError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in _CSV_HEAD if c not in df.columns]
    if missing or df.empty:
        raise GanbenchError(f"{path} is not a leaderboard CSV (ganbench leaderboard --format csv): "
                            + (f"no column {', '.join(missing)}" if missing else "no rows"))
    names = [c for c in df.columns if f"{c}_std" in df.columns and f"{c}_n" in df.columns]
    directions = {n: _direction(n.split("@")[0]) for n in names}
    groups = df.groupby(["dataset", "protocol_ids", "extractor", "num_samples"], sort=False, dropna=False)
    return [_csv_board(part, names, directions) for _, part in groups]

