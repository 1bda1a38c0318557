"""Leaderboards: aggregation against hand-computed values, protocol separation, every
output format parsed back, atomic --out, and the CLI commands."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.leaderboards import build_leaderboards, make_protocol, open_store, render_leaderboards
from ganbench.leaderboards.board import aggregate
from ganbench.leaderboards.render import FORMATS, render_results, write_output

HIGHER = {"isc": True, "precision": True, "recall": True}
METRIC_OF = {"precision": "pr", "recall": "pr"}


def r(model, key, value, run, *, n=10000, extractor="inception-v3-fid", weights="6726825d" * 8, standard=True,
      version=1, ckpt=None, step=None, dataset="mnist:test", protocol=None, reference=None):
    """One result row; the protocol follows the arguments unless given."""
    metric = METRIC_OF.get(key, key)
    proto, pid = make_protocol(extractor=extractor, weights_sha256=weights, resize="tf1", num_samples=n,
                               reference=reference or dataset, num_reference=10000, metric=metric,
                               metric_version=version)
    if protocol is not None:
        proto, pid = protocol, protocol
    return dict(run_id=run, timestamp="2024-05-01T12:00:00+00:00", model=model, checkpoint_sha256=ckpt, step=step,
                third_party=False, dataset=dataset, split="test", metric=metric, key=key, value=float(value), std=None,
                higher_is_better=HIGHER.get(key, False), num_samples=n, num_reference=10000, extractor=extractor,
                weights_sha256=weights, weights_standard=standard, protocol=proto, protocol_id=pid, seed=0,
                ganbench_version="0.1.0", git_commit=None, torch_version="2.3.0", device="cpu", wall_time_s=1.0,
                source=model, tags="{}")


def stored(tmp_path, rows, name="r.sqlite"):
    store = open_store(tmp_path / name)
    store.append(rows)
    return store


# Hand-made: fid (lower is better) and isc (higher is better) for three models.
#   A: fid runs 10, 12, 14 -> mean 12, std 2;   isc runs 9, 10 -> 9.5, std sqrt(0.5)
#   B: fid runs 11, 11     -> mean 11, std 0;   isc run 8      -> 8, std NaN
#   C: fid run with two rows 19 and 21 (averaged within the run first) -> 20, one run
#      isc 7
# rank by fid: B 1, A 2, C 3; by isc: A 1, B 2, C 3.
HAND = [r("A", "fid", 10, "a1"), r("A", "fid", 12, "a2"), r("A", "fid", 14, "a3"),
        r("A", "isc", 9, "a1"), r("A", "isc", 10, "a2"),
        r("B", "fid", 11, "b1"), r("B", "fid", 11, "b2"), r("B", "isc", 8, "b1"),
        r("C", "fid", 19, "c1"), r("C", "fid", 21, "c1"), r("C", "isc", 7, "c1")]


@pytest.fixture
def hand(tmp_path):
    return stored(tmp_path, HAND).load()


def by_model(board):
    return board.frame.set_index("model")


def test_aggregation_matches_hand_computation(hand):
    (board,) = build_leaderboards(hand)
    f = by_model(board)
    assert board.primary == "fid" and [c.name for c in board.columns] == ["fid", "isc"]
    assert f["fid"].to_dict() == {"B": 11.0, "A": 12.0, "C": 20.0}
    assert f.loc["A", "fid_std"] == pytest.approx(2.0) and f.loc["B", "fid_std"] == 0.0
    assert math.isnan(f.loc["C", "fid_std"]) and f.loc["C", "fid_n"] == 1
    assert f.loc["A", "isc"] == pytest.approx(9.5) and f.loc["A", "isc_std"] == pytest.approx(math.sqrt(0.5))
    assert f["runs"].to_dict() == {"A": 3, "B": 2, "C": 1}
    assert board.frame["model"].tolist() == ["B", "A", "C"] and board.frame["rank"].tolist() == [1, 2, 3]


def test_study_runs_stay_out_of_leaderboards(tmp_path):
    study_run = {**r("A", "fid", 500, "s1"), "tags": json.dumps({"draw": 3, "study": "s"}, sort_keys=True)}
    board = build_leaderboards(stored(tmp_path, [*HAND, study_run]).load(), ["fid"])[0]
    assert by_model(board).loc["A", "fid"] == pytest.approx(12.0)  # the hand mean, without the study's 500
    with pytest.raises(GanbenchError, match="study report"):
        build_leaderboards(stored(tmp_path, [study_run], "only.sqlite").load(), ["fid"])


def test_rank_follows_direction_of_the_primary_metric(hand):
    (board,) = build_leaderboards(hand, primary="isc")
    assert board.frame["model"].tolist() == ["A", "B", "C"] and board.frame["rank"].tolist() == [1, 2, 3]
    (board,) = build_leaderboards(hand, ["isc", "fid"])  # the first requested metric ranks
    assert board.primary == "isc" and [c.name for c in board.columns] == ["isc", "fid"]
    with pytest.raises(GanbenchError, match="unknown metric 'fdi'.*Did you mean 'fid'"):
        build_leaderboards(hand, ["fdi"])


def test_ties_share_the_better_rank_and_missing_values_rank_last(tmp_path):
    df = stored(tmp_path, HAND + [r("D", "fid", 11, "d1"), r("E", "isc", 99, "e1")]).load()
    (board,) = build_leaderboards(df)
    assert list(zip(board.frame["model"], board.frame["rank"].astype("object"))) == \
        [("B", 1), ("D", 1), ("A", 3), ("C", 4), ("E", pd.NA)]


def test_by_checkpoint_gives_one_row_per_checkpoint(tmp_path):
    rows = [r("A", "fid", 30, "r1", ckpt="aa" * 32, step=1000), r("A", "fid", 20, "r2", ckpt="bb" * 32, step=2000),
            r("A", "fid", 22, "r3", ckpt="bb" * 32, step=2000), r("B", "fid", 25, "r4")]
    df = stored(tmp_path, rows).load()
    (board,) = build_leaderboards(df, by_checkpoint=True)
    f = board.frame
    assert f[["model", "step", "fid", "runs"]].astype("object").values.tolist() == \
        [["A", 2000, 21.0, 2], ["B", pd.NA, 25.0, 1], ["A", 1000, 30.0, 1]]
    (per_model,) = build_leaderboards(df)
    assert by_model(per_model).loc["A", "fid"] == pytest.approx((30 + 20 + 22) / 3)


# --------------------------------------------------------------------------- protocols
def test_different_sample_counts_are_never_averaged_together(tmp_path):
    rows = HAND + [r("A", "fid", 5, "a9", n=50000), r("B", "fid", 6, "b9", n=50000)]
    df = stored(tmp_path, rows).load()
    boards = build_leaderboards(df)
    assert len(boards) == 2
    small, large = boards
    assert [c.name for c in small.columns] == ["fid@10k", "isc"] and [c.name for c in large.columns] == ["fid@50k"]
    assert by_model(small).loc["A", "fid@10k"] == 12.0 and by_model(large)["fid@50k"].to_dict() == {"A": 5.0, "B": 6.0}
    assert "10,000 generated samples" in small.title and "50,000 generated samples" in large.title
    assert large.frame["rank"].tolist() == [1, 2]
    with pytest.raises(GanbenchError, match="need 2 tables.*50,000 generated samples"):
        build_leaderboards(df, single=True)
    (only,) = build_leaderboards(df, protocol=large.protocol_ids[0][:6], single=True)
    assert only.protocol_ids == large.protocol_ids


def test_non_standard_weights_get_their_own_table(tmp_path):
    rows = HAND + [r("A", "fid", 1.0, "x1", weights="00" * 32, standard=False)]
    boards = build_leaderboards(stored(tmp_path, rows).load())
    assert len(boards) == 2
    odd = next(b for b in boards if "NON-STANDARD" in b.title)
    assert "sha256 00000000" in odd.title and odd.frame["model"].tolist() == ["A"]
    normal = next(b for b in boards if b is not odd)
    assert [c.name for c in odd.columns] == ["fid@00000000"]
    assert [c.name for c in normal.columns] == ["fid@6726825d", "isc"]
    assert by_model(normal).loc["A", "fid@6726825d"] == 12.0 and "standard weights (sha256 6726825d)" in normal.title


def test_metric_version_change_splits_the_column_not_the_table(tmp_path):
    rows = [r("A", "fid", 10, "a1"), r("A", "fid", 99, "a2", version=2), r("B", "fid", 11, "b1", version=2)]
    (board,) = build_leaderboards(stored(tmp_path, rows).load())
    assert [c.name for c in board.columns] == ["fid@v1", "fid@v2"]
    f = by_model(board)
    assert f.loc["A", "fid@v1"] == 10 and f.loc["A", "fid@v2"] == 99 and math.isnan(f.loc["B", "fid@v1"])


def test_opaque_protocols_are_only_grouped_when_identical(tmp_path):
    rows = [r("A", "fid", 10, "a1", protocol="legacy-1"), r("B", "fid", 11, "b1", protocol="legacy-2"),
            r("C", "fid", 12, "c1", protocol="legacy-1")]
    boards = build_leaderboards(stored(tmp_path, rows).load())
    assert sorted(b.frame["model"].tolist() for b in boards) == [["A", "C"], ["B"]]
    assert {c.name for b in boards for c in b.columns} == {"fid@legacy-1", "fid@legacy-2"}


def test_runner_protocols_share_a_table_per_setting(tmp_path):
    """Protocols shaped like ganbench.evaluation's: FID, KID (other options) and IS (no
    reference) of one setting share a table; precision/recall on VGG16 get their own."""
    import hashlib

    def row(model, metric, key, value, run, extractor="inception-v3-fid", reference="mnist", options=None):
        protocol = {"metric": metric, "metric_version": 1, "options": options or {}, "extractor": extractor,
                    "weights_sha256": "ab" * 32, "input_size": 299, "resize": "tf1-bilinear", "num_samples": 1000,
                    "reference": reference, "reference_content": "c0ffee" if reference else None,
                    "num_reference": 1000 if reference else None}
        text = json.dumps(protocol, sort_keys=True, default=str)
        out = r(model, key, value, run, extractor=extractor, protocol=text)
        out.update(protocol_id=hashlib.sha256(text.encode()).hexdigest()[:12], metric=metric, dataset="mnist",
                   num_reference=protocol["num_reference"])
        return out

    rows = []
    for model, run, fid in [("A", "a1", 30.0), ("B", "b1", 20.0)]:
        rows += [row(model, "fid", "fid", fid, run), row(model, "kid", "kid", fid / 1000, run, options={"subsets": 10}),
                 row(model, "isc", "isc", 3.0, run, reference=None),
                 row(model, "pr", "precision", 0.5, run, extractor="vgg16"),
                 row(model, "pr", "recall", 0.5, run, extractor="vgg16")]
    boards = build_leaderboards(stored(tmp_path, rows).load())
    assert [[c.name for c in b.columns] for b in boards] == [["fid", "kid", "isc"], ["precision", "recall"]]
    assert boards[0].frame["model"].tolist() == ["B", "A"] and "1,000 reference images" in boards[0].title


def test_aggregate_long_form(hand):
    long = aggregate(hand, ["fid"])
    assert set(long["key"]) == {"fid"}
    assert long.set_index("model")["mean"].to_dict() == {"A": 12.0, "B": 11.0, "C": 20.0}


# --------------------------------------------------------------------------- formats
@pytest.fixture
def boards(tmp_path):
    rows = HAND + [r("my_gan|v2 & co", "fid", 13, "m1"), r("A", "fid", 5, "a9", n=50000),
                   r("A", "precision", 0.7, "a1", extractor="vgg16"), r("A", "recall", 0.4, "a1", extractor="vgg16")]
    return build_leaderboards(stored(tmp_path, rows).load())


def test_csv_parses_back(boards):
    df = pd.read_csv(io.StringIO(render_leaderboards(boards, "csv")))
    assert len(df) == sum(len(b.frame) for b in boards)
    a = df[(df["model"] == "A") & df["fid@10k"].notna()].iloc[0]
    assert a["fid@10k"] == 12.0 and a["fid@10k_std"] == pytest.approx(2.0) and a["runs"] == 3
    assert set(df["num_samples"]) == {10000, 50000} and {"extractor", "protocol_ids", "rank"} <= set(df.columns)
    assert df.loc[df["fid@50k"].notna(), "model"].tolist() == ["A"]


_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def test_markdown_tables_are_well_formed(boards):
    text = render_leaderboards(boards, "md")
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    tables += [current] if current else []
    assert len(tables) == len(boards) == text.count("### ")
    for table, board in zip(tables, boards):
        widths = {len(_CELL_SPLIT.split(line)) - 2 for line in table}
        assert widths == {3 + len(board.columns)}, table
        assert re.fullmatch(r"\|(:?-+:?\|)+", table[1])
        assert len(table) == 2 + len(board.frame)
    assert "my\\_gan" not in text and "my_gan\\|v2 &amp; co" in text
    assert "**11.00 ± 0.00**" in text  # best fid, bold


def test_latex_is_well_formed(boards, tmp_path):
    text = render_leaderboards(boards, "latex")
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == len(boards)
    for block, board in zip(text.split(r"\begin{tabular}")[1:], boards):
        spec = re.match(r"\{([lrc]+)\}", block).group(1)
        body = block.split(r"\end{tabular}")[0]
        rows = [line for line in body.splitlines() if line.rstrip().endswith(r"\\")]
        assert len(spec) == 3 + len(board.columns) and len(rows) == 1 + len(board.frame)
        for row in rows:
            assert len(re.findall(r"(?<!\\)&", row)) == len(spec) - 1, row
    assert r"my\_gan\textbar{}v2 \& co" in text and r"$\pm$" in text and r"\textbf{11.00}" in text
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert r"\toprule" in render_leaderboards(boards, "latex", booktabs=True)
    if shutil.which("pdflatex"):
        doc = tmp_path / "t.tex"
        doc.write_text("\\documentclass{article}\\usepackage[utf8]{inputenc}\\begin{document}\n"
                       + text + "\n\\end{document}\n")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                       check=True, capture_output=True, timeout=120)


class _TableShape(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rows = [], []

    def handle_starttag(self, tag, attrs):
        if tag in ("meta",):
            return
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            self.rows[-1] += 1

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"


def test_html_is_well_formed(boards):
    text = render_leaderboards(boards, "html")
    parser = _TableShape()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    widths = [3 + len(b.columns) for b in boards for _ in range(1 + len(b.frame))]
    assert parser.rows == widths
    assert "my_gan|v2 &amp; co" in text and text.count("<table>") == len(boards)


def test_format_names_are_checked(boards):
    with pytest.raises(GanbenchError, match="unknown format 'xls'"):
        render_leaderboards(boards, "xls")
    assert set(FORMATS) == {"csv", "md", "latex", "html"}


def test_write_output_is_atomic_and_refuses_overwrite(tmp_path):
    out = tmp_path / "sub" / "board.md"
    write_output(out, "one")
    with pytest.raises(GanbenchError, match="already exists; pass --force"):
        write_output(out, "two")
    assert out.read_text() == "one"
    write_output(out, "three", force=True)
    assert out.read_text() == "three" and sorted(p.name for p in out.parent.iterdir()) == ["board.md"]


def test_render_results(hand):
    md = render_results(hand, "md")
    assert md.count("\n") == 2 + len(hand) and "| timestamp | run_id | model |" in md
    assert len(pd.read_csv(io.StringIO(render_results(hand, "csv")))) == len(hand)


# --------------------------------------------------------------------------- hostile names
# Names come from users and plug-ins: each format must keep them inert (no markup, no
# links, no formulas) and keep one table row per line.
HOSTILE_MODELS = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "[click](JavaScript:alert(1))",
                  "two\n\nlines | & \\ $x_1$ 100%", '=HYPERLINK("http://evil","x")', "+1+cmd", "-2+3",
                  "@SUM(A1)", "\tTAB", "\rCR"]
HOSTILE_REFERENCE = "<b>ref</b>\n\n[x](javascript:void(0))"
HOSTILE_DATASET = "evil<script>x</script>\n\n# data"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile_results(tmp_path):
    rows = [r(m, "fid", 10 + i, f"h{i}") for i, m in enumerate(HOSTILE_MODELS)]
    rows += [r("A", "fid", 11, "a1", reference=HOSTILE_REFERENCE),  # a column named after the reference
             r("A", "loglik", -1.5, "a1"), r("A", "=1+1", -2.25, "a1"),  # negative numbers; a formula key
             r(HOSTILE_MODELS[0], "fid", 3, "d1", dataset=HOSTILE_DATASET)]  # in a table title
    return stored(tmp_path, rows).load()


@pytest.fixture
def hostile(hostile_results):
    boards = build_leaderboards(hostile_results)
    assert any(HOSTILE_REFERENCE in c.name for b in boards for c in b.columns)
    return boards


def test_markdown_neutralises_html_links_and_newlines(hostile, hostile_results):
    for text in (render_leaderboards(hostile, "md"), render_results(hostile_results, "md")):
        assert not re.search(r"<(script|img|b)\b", text) and "&lt;script&gt;" in text
        assert not re.search(r"javascript:", text, re.IGNORECASE)
        assert not re.search(r"(?<!\\)[\[\]]", text), "unescaped link brackets"
        assert "\r" not in text
    text = render_leaderboards(hostile, "md")
    assert text.count("### ") == len(hostile)
    for board, block in zip(hostile, text.split("### ")[1:]):
        _title, after_title, _note, after_note, *table = block.rstrip("\n").split("\n")
        assert after_title == after_note == "", block  # title and note on one line each
        assert all(line.startswith("|") for line in table) and len(table) == 2 + len(board.frame), block
        assert {len(_CELL_SPLIT.split(line)) for line in table} == {5 + len(board.columns)}, table
    assert "\\[click\\](JavaScript&#58;alert(1))" in text and "two  lines \\| &amp; \\\\ $x_1$ 100%" in text


def test_latex_keeps_every_row_on_one_line(hostile):
    text = render_leaderboards(hostile, "latex")
    for block, board in zip(text.split(r"\begin{tabular}")[1:], hostile):
        body = block.split(r"\end{tabular}")[0].splitlines()[1:]
        rows = [line for line in body if line.endswith(r"\\")]
        assert len(rows) == 1 + len(board.frame) and len(body) == len(rows) + 3, body  # + three rules
        assert all(len(re.findall(r"(?<!\\)&", row)) == 2 + len(board.columns) for row in rows), rows
    for line in text.splitlines():  # comments included: a newline in a title would end one
        assert line == "" or re.match(r"%|\\|\d* & |Rank & ", line), line
    assert "two  lines \\textbar{} \\& \\textbackslash{} \\$x\\_1\\$ 100\\%" in text
    assert "\\textless{}script\\textgreater{}" in text and "<" not in text


def test_csv_neutralises_formulas_in_text_cells_only(hostile, hostile_results):
    for text in (render_leaderboards(hostile, "csv"), render_results(hostile_results, "csv")):
        header, *records = list(csv.reader(io.StringIO(text)))
        for cell in header + [c for rec in records for c in rec]:
            assert not cell.startswith(FORMULA_START) or re.fullmatch(r"-\d+(\.\d+)?", cell), repr(cell)
        models = {rec[header.index("model")] for rec in records}
        assert {"'=HYPERLINK(\"http://evil\",\"x\")", "'+1+cmd", "'-2+3", "'@SUM(A1)", "'\tTAB", "'\nCR"} <= models
    df = pd.read_csv(io.StringIO(render_leaderboards(hostile, "csv")))
    assert "'=1+1" in df.columns and df["'=1+1"].dropna().tolist() == [-2.25]
    assert df["loglik"].dropna().tolist() == [-1.5]  # numbers are never touched


def test_html_escapes_hostile_names(hostile):
    text = render_leaderboards(hostile, "html")
    parser = _TableShape()
    parser.feed(text)
    parser.close()
    assert parser.stack == [] and parser.rows == [3 + len(b.columns) for b in hostile for _ in range(1 + len(b.frame))]
    assert not re.search(r"<(script|img|b)\b", text) and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text


@pytest.mark.parametrize("fmt, inert", [
    ("md", lambda text: "<script" not in text and "javascript:" not in text.lower()),
    ("latex", lambda text: "<script" not in text and "\n\n# data" not in text),
    ("html", lambda text: "<script" not in text and "<img" not in text),
    ("csv", lambda text: "\n=" not in text and ",=" not in text and "'=HYPERLINK" in text),
])
def test_cli_leaderboard_with_hostile_names(hostile_results, tmp_path, fmt, inert):
    store = stored(tmp_path, [], name="copy.sqlite")
    store.append(hostile_results.to_dict("records"))
    res = run("leaderboard", "--store", store.location, "--format", fmt)
    assert res.exit_code == 0 and inert(res.stdout), res.output


# --------------------------------------------------------------------------- CLI
def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture
def store_path(tmp_path):
    rows = HAND + [r("A", "fid", 5, "a9", n=50000),
                   r("A", "precision", 0.7, "a1", extractor="vgg16"), r("A", "recall", 0.4, "a1", extractor="vgg16"),
                   r("B", "precision", 0.6, "b1", extractor="vgg16"), r("B", "recall", 0.5, "b1", extractor="vgg16")]
    return stored(tmp_path, rows).location


def test_cli_leaderboard(store_path, tmp_path):
    res = run("leaderboard", "--dataset", "mnist", "--store", store_path)
    assert res.exit_code == 0, res.output
    assert res.stdout.count("### ") == 3 and "| 1 | B | **11.00 ± 0.00**" in res.stdout
    res = run("leaderboard", "--dataset", "mnist", "--metric", "isc", "--format", "csv", "--store", store_path)
    df = pd.read_csv(io.StringIO(res.stdout))
    assert df["model"].tolist() == ["A", "B", "C"] and df["isc"].tolist() == [9.5, 8.0, 7.0]

    out = tmp_path / "board.tex"
    assert run("leaderboard", "--store", store_path, "--out", out).exit_code == 0
    assert r"\begin{tabular}" in out.read_text()  # format from the suffix
    res = run("leaderboard", "--store", store_path, "--out", out)
    assert res.exit_code != 0 and "already exists; pass --force" in res.output
    assert run("leaderboard", "--store", store_path, "--out", out, "--format", "html", "--force").exit_code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_cli_leaderboard_errors(store_path, tmp_path):
    res = run("leaderboard", "--store", store_path, "--metric", "fid", "--single-table")
    assert res.exit_code == 2 and "need 2 tables" in res.output and len(res.output.strip().splitlines()) == 1
    res = run("leaderboard", "--store", store_path, "--dataset", "cifar10")
    assert res.exit_code == 2 and "no results match dataset='cifar10'" in res.output and "mnist:test" in res.output
    res = run("leaderboard", "--store", tmp_path / "none.sqlite")
    assert res.exit_code == 2 and "no results store at" in res.output
    assert not (tmp_path / "none.sqlite").exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    res = run("results", "--store", bad)
    assert res.exit_code == 2 and "not an SQLite database" in res.output
    res = run("leaderboard", "--store", store_path, "--metric", "fdi")
    assert res.exit_code == 2 and "Did you mean 'fid'" in res.output
    res = run("leaderboard", "--store", store_path, "--out", tmp_path / "board.txt")
    assert res.exit_code == 2 and "pass --format" in res.output


def test_cli_results(store_path):
    res = run("results", "--store", store_path, "--model", "C", "--format", "csv")
    df = pd.read_csv(io.StringIO(res.stdout))
    assert res.exit_code == 0 and df["value"].tolist() == [19.0, 21.0, 7.0] and "protocol" in df.columns
    res = run("results", "--store", store_path, "--dataset", "mnist", "--metric", "pr", "--last", "2")
    assert res.exit_code == 0 and res.stdout.count("\n") == 4 and "| recall |" in res.stdout


def test_cli_plot_curve(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("\n".join(json.dumps(d) for d in [
        {"step": 0, "loss_g": 1.0}, {"step": 100, "fid": 80.0, "loss_g": 0.8}, {"step": 200, "fid": 40.0}]) + "\n{\"st")
    csv = tmp_path / "other.csv"
    csv.write_text("step,fid\n100,90\n200,60\n")
    out = tmp_path / "fid.png"
    res = run("plot", "curve", "--log", log, "--log", csv, "--metric", "fid", "--metric", "loss_g", "--out", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run("plot", "curve", "--log", log, "--metric", "fdi", "--out", tmp_path / "x.png")
    assert res.exit_code == 2 and "Did you mean 'fid'" in res.output
    res = run("plot", "curve", "--log", log, "--metric", "fid", "--out", out)
    assert res.exit_code == 2 and "already exists" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    res = run("plot", "curve", "--log", bad, "--metric", "fid", "--out", tmp_path / "y.png")
    assert res.exit_code == 2 and "bad.jsonl:2: not a JSON line" in res.output


def test_cli_plot_pr(store_path, tmp_path):
    out = tmp_path / "pr.svg"
    res = run("plot", "pr", "--dataset", "mnist", "--store", store_path, "--out", out)
    assert res.exit_code == 0, res.output
    assert "<svg" in out.read_text()
    res = run("plot", "pr", "--dataset", "mnist", "--model", "C", "--store", store_path, "--out", tmp_path / "c.png")
    assert res.exit_code == 2 and "no precision/recall results" in res.output


def test_plot_pr_refuses_mixed_protocols(tmp_path):
    from ganbench.leaderboards.plots import plot_pr

    rows = [r("A", "precision", 0.7, "a1", extractor="vgg16"), r("A", "recall", 0.4, "a1", extractor="vgg16"),
            r("B", "precision", 0.6, "b1", extractor="vgg16", n=50000),
            r("B", "recall", 0.5, "b1", extractor="vgg16", n=50000)]
    df = stored(tmp_path, rows).load()
    with pytest.raises(GanbenchError, match="2 protocols.*--protocol"):
        plot_pr(df)
    pid = df["protocol_id"].iloc[0]
    fig = plot_pr(df, protocol=pid)
    assert [t.get_text() for t in fig.axes[0].texts] == ["A"]


def test_reproduce_uses_the_paper_recipe_at_paper_scale_and_one_budget_at_tiny_scale():
    import argparse

    from ganbench.leaderboards.reproduce import recipe_words, run_recipe

    def args(scale, batch_size=None, ema=None):
        return argparse.Namespace(scale=scale, batch_size=batch_size, ema=ema)

    assert run_recipe(args("paper")) == (None, None)  # train() then takes each model's TrainingRecipe
    assert run_recipe(args("tiny")) == (64, 0.0)
    assert run_recipe(args("paper", batch_size=32, ema=0.999)) == (32, 0.999)
    assert recipe_words(args("paper")) == "each model's paper batch size, each model's paper EMA generator " \
                                          "where it has one, float32"
    assert recipe_words(args("tiny")) == "batch 64, raw generators, float32"


def test_a_single_run_shows_its_interval_and_several_runs_their_spread(tmp_path):
    rows = [{**r("A", "fid", 2.31, "a1"), "ci_low": 2.25, "ci_high": 2.38},
            {**r("B", "fid", 3.0, "b1"), "ci_low": 2.9, "ci_high": 3.1},
            {**r("B", "fid", 4.0, "b2"), "ci_low": 3.9, "ci_high": 4.1}]
    boards = build_leaderboards(stored(tmp_path, rows).load(), ["fid"])
    md = render_leaderboards(boards, "md").replace("\\[", "[").replace("\\]", "]")  # escaped brackets render as [ ]
    assert "| 1 | A | **2.310 [2.250, 2.380]** | 1 |" in md
    assert "| 2 | B | 3.500 ± 0.707 | 2 |" in md  # two runs: mean ± std, not one run's interval
    assert "\\textbf{2.310} [2.250, 2.380]" in render_leaderboards(boards, "latex")
    frame = boards[0].frame.set_index("model")
    assert frame.loc["A", "fid_ci_low"] == 2.25 and math.isnan(frame.loc["B", "fid_ci_low"])
