"""The HTML report site (ganbench.leaderboards.site): hostile names stay inert, one table per
protocol with its rows, intervals, thumbnails from run folders (and none without), plots,
study figures, the committed-CSV path and the CLI's refusal to overwrite. No browser here:
bench/browser_check.sh renders the page in headless Chromium."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.leaderboards import build_leaderboards, make_protocol, open_store, render_leaderboards
from ganbench.leaderboards.site import (SORT_SCRIPT, STUDY_FIGURES, THUMB_MAX_PX, boards_from_csv, render_page,
                                        write_site)

HIGHER = {"isc": True, "precision": True, "recall": True}
METRIC_OF = {"precision": "pr", "recall": "pr"}
HOSTILE = ["<script>alert(1)</script>", 'x" onmouseover="alert(2)', "a&b <i>c</i>"]


def row(model, key, value, run, *, n=2000, source=None, step=None, ckpt=None, **extra):
    metric = METRIC_OF.get(key, key)
    proto, pid = make_protocol(extractor="lenet-mnist", weights_sha256="9e" * 32, resize="bilinear", num_samples=n,
                               reference="mnist", num_reference=2000, metric=metric, metric_version=1)
    return dict(run_id=run, timestamp="2026-01-01T00:00:00+00:00", model=model, checkpoint_sha256=ckpt, step=step,
                third_party=False, dataset="mnist", split="test", metric=metric, key=key, value=float(value), std=None,
                higher_is_better=HIGHER.get(key, False), num_samples=n, num_reference=2000, extractor="lenet-mnist",
                weights_sha256="9e" * 32, weights_standard=True, protocol=proto, protocol_id=pid, seed=0,
                ganbench_version="0.1.0", git_commit=None, torch_version="2.3.0", device="cpu", wall_time_s=1.0,
                source=source or model, tags="{}", **extra)


def load(tmp_path, rows):
    store = open_store(tmp_path / "results.sqlite")
    store.append(rows)
    return store.load()


def grid_png(path: Path, size: int, shade: int) -> bytes:
    """A sample grid PNG of ``size`` px, its pixels ``shade`` (so each file is recognisable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("L", (size, size), shade).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def run_dir(root: Path, name: str, grids: dict[int, int], size: int = 64, losses: bool = True) -> Path:
    """A training run folder: checkpoint, samples/step-N.png per ``{step: shade}``, metrics.jsonl."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "checkpoint.safetensors").write_bytes(b"weights")
    for step, shade in grids.items():
        grid_png(folder / "samples" / f"step-{step:07d}.png", size, shade)
    if losses:
        lines = [json.dumps({"step": s, "loss_d": 1.0 / s, "loss_g": s / 100}) for s in (10, 20, 30)]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


class Page(HTMLParser):
    """The parts of a page the tests look at: scripts, event-handler attributes, meta CSP,
    and per section its tables' body rows (cells as text and attributes)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.csp = None
        self.sections: dict[str, list[list[list[dict]]]] = {}  # id -> tables -> rows -> cells
        self.images: list[dict] = []
        self._section = self._cell = None
        self._in_script = self._in_body = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.handlers += [(tag, k) for k in a if k.lower().startswith("on")]
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a["content"]
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = []
        elif tag == "table":
            self.sections[self._section].append([])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.sections[self._section][-1].append([])
        elif tag == "td" and self._in_body:
            self._cell = {"attrs": a, "text": "", "img": None}
            self.sections[self._section][-1][-1].append(self._cell)
        elif tag == "img":
            self.images.append(a)
            if self._cell is not None:
                self._cell["img"] = a

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._cell = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell["text"] += data

    def rows(self, section: str = "board-1") -> list[list[dict]]:
        (table,) = self.sections[section]
        return table


def data_uri_bytes(uri: str) -> bytes:
    head, _, payload = uri.partition(",")
    assert head == "data:image/png;base64"
    return base64.b64decode(payload)


# --------------------------------------------------------------------------- escaping
def test_hostile_names_and_paths_stay_text_and_only_the_sort_script_runs(tmp_path):
    folder = run_dir(tmp_path, '"><script>alert(3)</script>', {100: 50})
    rows = [row(m, "fid", 10 + i, f"r{i}") for i, m in enumerate(HOSTILE)]
    rows.append(row(HOSTILE[1] + "2", "fid", 5, "t", source=str(folder / "checkpoint.safetensors")))
    results = load(tmp_path, rows)
    text = render_page(build_leaderboards(results), results, sortable=True, base=tmp_path)
    page = Page(text)
    assert page.scripts == [SORT_SCRIPT] and page.handlers == []
    assert text.count("<script") == 1  # the hostile names' "<script" only as &lt;script
    models = [cells[1]["text"] for cells in page.rows()]
    assert sorted(models) == sorted(HOSTILE + [HOSTILE[1] + "2"])  # parsed back exactly: escaped, not cut
    (thumb,) = [cells[2]["img"] for cells in page.rows() if cells[2]["img"]]
    assert thumb["alt"] == "samples of " + HOSTILE[1] + "2"
    assert thumb["title"].endswith('"><script>alert(3)</script>/samples/step-0000100.png')
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{script_hash}'" in page.csp and "default-src 'none'" in page.csp


def test_the_plain_page_has_no_script_and_forbids_scripts(tmp_path):
    results = load(tmp_path, [row(HOSTILE[0], "fid", 3, "r")])
    text = render_leaderboards(build_leaderboards(results), "html")
    page = Page(text)
    assert page.scripts == [] and "<script" not in text and "script-src" not in page.csp
    assert page.rows()[0][1]["text"] == HOSTILE[0]


# --------------------------------------------------------------------------- tables
def test_one_table_per_protocol_with_its_rows_and_intervals(tmp_path):
    rows = [row("A", "fid", 2.31, "a1", ci_low=2.25, ci_high=2.38), row("B", "fid", 3.0, "b1"),
            row("B", "fid", 4.0, "b2"), row("C", "fid", 9.0, "c1"),
            row("A", "fid", 7.5, "a9", n=10000), row("C", "fid", 8.5, "c9", n=10000)]  # a second protocol
    results = load(tmp_path, rows)
    page = Page(render_page(build_leaderboards(results), results, sortable=True))
    boards = {k: v for k, v in page.sections.items() if k.startswith("board-")}
    assert len(boards) == 2 and all(len(tables) == 1 for tables in boards.values())
    by_count = sorted((len(page.rows(s)), [c[1]["text"] for c in page.rows(s)]) for s in boards)
    assert by_count == [(2, ["A", "C"]), (3, ["A", "B", "C"])]
    two_k = next(s for s in boards if len(page.rows(s)) == 3)
    a, b, _c = page.rows(two_k)
    assert a[2]["text"] == "2.310[2.250, 2.380]"  # one run: its interval, in its own span
    assert b[2]["text"] == "3.500 ± 0.707"  # two runs: mean ± std over runs
    assert float(b[2]["attrs"]["data-v"]) == 3.5 and [c["text"] for c in a][-1] == "1"


def test_sort_keys_are_full_precision_and_missing_values_are_empty(tmp_path):
    results = load(tmp_path, [row("A", "fid", 1 / 3, "a"), row("A", "isc", 2.0, "a"), row("B", "fid", 0.5, "b")])
    page = Page(render_page(build_leaderboards(results), results, sortable=True))
    a, b = page.rows()
    assert float(a[2]["attrs"]["data-v"]) == 1 / 3 and b[3]["attrs"]["data-v"] == "" and b[3]["text"] == "–"


# --------------------------------------------------------------------------- thumbnails and plots
def test_thumbnail_is_the_latest_grid_of_a_known_run_folder_and_absent_otherwise(tmp_path):
    folder = run_dir(tmp_path / "runs", "a-seed0", {100: 10, 200: 20})
    latest = (folder / "samples" / "step-0000200.png").read_bytes()
    big = run_dir(tmp_path / "runs", "c-seed0", {50: 30}, size=THUMB_MAX_PX * 2, losses=False)
    results = load(tmp_path, [row("A", "fid", 1, "a", source="runs/a-seed0/checkpoint.safetensors"),
                              row("B", "fid", 2, "b", source="runs/nowhere/checkpoint.safetensors"),
                              row("C", "fid", 3, "c", source=str(big))])  # the folder itself
    page = Page(render_page(build_leaderboards(results), results, base=tmp_path))
    a, b, c = page.rows()
    assert data_uri_bytes(a[2]["img"]["src"]) == latest and a[2]["img"]["title"].endswith("step-0000200.png")
    assert b[2]["img"] is None and b[2]["text"] == ""
    with Image.open(io.BytesIO(data_uri_bytes(c[2]["img"]["src"]))) as image:
        assert image.size == (THUMB_MAX_PX, THUMB_MAX_PX) and image.getpixel((5, 5)) == 30  # downscaled
    curves = [img for img in page.images if "metrics.jsonl" in img.get("alt", "")]
    assert [img["alt"] for img in curves] == ["A: runs/a-seed0/metrics.jsonl"]  # C has no log, B no folder


def test_by_checkpoint_shows_the_grid_of_the_evaluated_step(tmp_path):
    folder = run_dir(tmp_path, "a", {100: 10, 200: 20}, losses=False)
    src = str(folder / "checkpoint.safetensors")
    results = load(tmp_path, [row("A", "fid", 1, "a1", source=src, step=100, ckpt="aa" * 32),
                              row("A", "fid", 2, "a2", source=src, step=200, ckpt="bb" * 32)])
    page = Page(render_page(build_leaderboards(results, by_checkpoint=True), results))
    shown = {cells[3]["text"]: data_uri_bytes(cells[4]["img"]["src"]) for cells in page.rows()}
    assert shown == {s: (folder / "samples" / f"step-{int(s):07d}.png").read_bytes() for s in ("100", "200")}


def test_without_run_folders_there_is_no_samples_column(tmp_path):
    results = load(tmp_path, [row("A", "fid", 1, "a"), row("B", "fid", 2, "b")])
    text = render_page(build_leaderboards(results), results)
    assert "<img" not in text and ">Samples<" not in text and len(Page(text).rows()[0]) == 4


def test_precision_recall_scatter_when_measured(tmp_path):
    rows = [row(m, k, v, m) for m, p, r in (("A", 0.7, 0.4), ("B", 0.6, 0.5))
            for k, v in (("precision", p), ("recall", r), ("fid", 1 + p))]
    results = load(tmp_path, rows)
    page = Page(render_page(build_leaderboards(results), results))
    (scatter,) = [img for img in page.images if img["alt"].startswith("Precision against recall")]
    with Image.open(io.BytesIO(data_uri_bytes(scatter["src"]))) as image:
        assert image.width > 300 and len(image.getcolors(1 << 16) or ()) > 10


# --------------------------------------------------------------------------- studies
def test_study_figures_are_embedded_and_names_escaped(tmp_path):
    report = tmp_path / "studies" / "s1"
    report.mkdir(parents=True)
    (report / "report.md").write_text("# Study <b>mine</b>\n\nbody\n")
    figure = grid_png(report / STUDY_FIGURES[0], 40, 99)
    results = load(tmp_path, [row("A", "fid", 1, "a")])
    runner = CliRunner()
    res = runner.invoke(main, ["leaderboard", "--store", str(tmp_path / "results.sqlite"), "--format", "html",
                               "--out", str(tmp_path / "site"), "--studies", str(tmp_path / "studies")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "site" / "index.html").read_text()
    page = Page(text)
    assert "Study &lt;b&gt;mine&lt;/b&gt;" in text and "<b>" not in text
    assert [data_uri_bytes(img["src"]) for img in page.images] == [figure] and len(results) == 1
    res = runner.invoke(main, ["leaderboard", "--store", str(tmp_path / "results.sqlite"), "--format", "html",
                               "--out", str(tmp_path / "site2"), "--studies", str(tmp_path)])
    assert res.exit_code == 0, res.output  # report folders are found below the folder given
    res = runner.invoke(main, ["leaderboard", "--store", str(tmp_path / "results.sqlite"), "--format", "html",
                               "--out", str(tmp_path / "site3"), "--studies", str(tmp_path / "site")])
    assert res.exit_code == 2 and "no study report" in res.output


def test_study_figure_names_match_the_study_report():
    from ganbench.study.report import REPORT_FILES

    assert set(STUDY_FIGURES) <= set(REPORT_FILES)


# --------------------------------------------------------------------------- writing and the CLI
def test_cli_writes_a_site_and_refuses_to_overwrite_it_without_force(tmp_path):
    load(tmp_path, [row("A", "fid", 1, "a"), row("B", "fid", 2, "b")])
    args = ["leaderboard", "--store", str(tmp_path / "results.sqlite"), "--format", "html",
            "--out", str(tmp_path / "site")]
    runner = CliRunner()
    assert runner.invoke(main, args).exit_code == 0
    index = tmp_path / "site" / "index.html"
    index.write_text("mine")
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "already exists; pass --force" in res.output and index.read_text() == "mine"
    res = runner.invoke(main, args + ["--force"])
    assert res.exit_code == 0 and Page(index.read_text()).scripts == [SORT_SCRIPT]
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.html"]


def test_write_site_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "site").write_text("x")
    with pytest.raises(GanbenchError, match="is a file"):
        write_site(tmp_path / "site", "<html></html>")


def test_cli_studies_need_the_site(tmp_path):
    load(tmp_path, [row("A", "fid", 1, "a")])
    res = CliRunner().invoke(main, ["leaderboard", "--store", str(tmp_path / "results.sqlite"), "--format", "md",
                                    "--studies", str(tmp_path)])
    assert res.exit_code == 2 and "--format html --out FOLDER" in res.output


# --------------------------------------------------------------------------- the committed CSV
def test_boards_from_csv_render_as_the_boards_they_came_from(tmp_path):
    rows = [row("A", "fid", 10, "a1"), row("A", "fid", 12, "a2"), row("A", "isc", 3, "a1"), row("B", "fid", 11, "b"),
            row("B", "precision", 0.5, "b"), row("B", "recall", 0.25, "b"), row("C", "fid", 30, "c", n=10000)]
    boards = build_leaderboards(load(tmp_path, rows))
    (tmp_path / "board.csv").write_text(render_leaderboards(boards, "csv"))
    again = boards_from_csv(tmp_path / "board.csv")
    assert render_leaderboards(again, "md") == render_leaderboards(boards, "md")
    res = CliRunner().invoke(main, ["leaderboard", "--from-csv", str(tmp_path / "board.csv"), "--format", "html",
                                    "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    assert len(Page((tmp_path / "site" / "index.html").read_text()).sections) == 2
    res = CliRunner().invoke(main, ["leaderboard", "--from-csv", str(tmp_path / "board.csv"), "--dataset", "mnist"])
    assert res.exit_code == 2 and "renders the file as it is" in res.output


def test_boards_from_csv_refuses_other_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(GanbenchError, match="not a leaderboard CSV"):
        boards_from_csv(tmp_path / "x.csv")
