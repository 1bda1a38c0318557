"""How much room do the short-run learning tests have on another CPU?

``tests/test_models.py::test_short_run_learns_mnist`` trains each model's tiny config
for its ``test_steps`` with seed 0 and one torch thread, and asserts lenet-FID below
0.7 x the untrained FID (and, for class-conditional models, conditioned-class accuracy
above 0.3). Short GAN runs are chaotic: another CPU takes other float kernels (AVX2 vs
AVX-512, oneDNN or not), and the run lands somewhere else. This script reruns each
test under variations that stand in for another machine:

* seeds 0..S-1 with one thread (seed 0 is the test itself),
* seed 0 with two threads (other reduction orders),
* seed 0 with ``torch.backends.mkldnn`` disabled (other convolution kernels),

and prints, per model, the worst margin: the share of the threshold left, e.g. 0.25
means the worst run's FID was 25 % below 0.7 x untrained (for accuracy: 25 % above 0.3).
The suite's rule: every model's worst margin >= 0.15.

Results go to a JSON-lines file as they come (``--log``), so a killed run restarts where
it stopped; ``--table`` reprints the table from the log alone.

    python bench/learning_margins.py --jobs 2 --log bench/results/learning_margins.jsonl \
        --out bench/results/learning_margins.md
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import datetime
import hashlib
import json
import multiprocessing
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REQUIRED_MARGIN = 0.15
DEFAULT_LOG = Path("bench/results/learning_margins.jsonl")


def variants(seeds: int) -> list[dict]:
    """The test itself (seed 0), the float-path variants, then the other seeds."""
    out = [{"variant": "seed 0", "seed": 0, "threads": 1, "mkldnn": True},
           {"variant": "no mkldnn", "seed": 0, "threads": 1, "mkldnn": False},
           {"variant": "2 threads", "seed": 0, "threads": 2, "mkldnn": True}]
    return out + [{"variant": f"seed {s}", "seed": s, "threads": 1, "mkldnn": True} for s in range(1, seeds)]


def run_one(name: str, variant: dict, log: Path = DEFAULT_LOG) -> dict:
    """One learning test under one variant, in a fresh process (or its row from ``log``
    when another instance of this script has run it meanwhile)."""
    import torch

    for row in current_rows(read_log(log)):
        if (row["model"], row["variant"]) == (name, variant["variant"]):
            return row

    from ganbench.testing import mnist_lenet_reference, short_run_learning

    torch.set_num_threads(variant["threads"])
    torch.backends.mkldnn.enabled = variant["mkldnn"]
    start = time.perf_counter()
    outcome = short_run_learning(name, mnist_lenet_reference(), seed=variant["seed"])
    return {"model": name, **variant, "steps": outcome.steps, "tiny": tiny_config(name), "code": code_key(name),
            "fid_before": outcome.fid_before, "fid_after": outcome.fid_after, "accuracy": outcome.accuracy,
            "fid_margin": outcome.fid_margin, "accuracy_margin": outcome.accuracy_margin,
            "margin": outcome.margin, "seconds": time.perf_counter() - start}


def learning_models() -> list[str]:
    from ganbench.models.base import model_info
    from ganbench.registry import models

    tasks = ("unconditional", "class-conditional", "representation learning")
    return [n for n in models.names() if model_info(n).task in tasks]


def tiny_config(name: str) -> dict:
    from ganbench.models.base import model_info

    return json.loads(json.dumps(model_info(name).tiny))  # as the log stores it (tuples -> lists)


def code_key(name: str, read=lambda path: Path(path).read_text()) -> str:
    """A short hash of the model code a learning run executes: the model's file and the
    ganbench.models files it imports, without docstrings, import lines and the
    ``@register_model(...)`` declaration (recipes, departures and descriptions do not change
    training; the tiny config and test_steps are compared on their own). ``read(path)``
    gives a file's text (another commit's, for old rows). The harness is not hashed."""
    from ganbench.models.base import model_info
    from ganbench.registry import models

    module = sys.modules[models.get(name).__module__]
    todo, seen, digest = [Path(module.__file__).relative_to(Path.cwd()).as_posix()], set(), hashlib.sha256()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(read(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and ast.get_docstring(node) is not None:
                node.body = node.body[1:]
            if isinstance(node, ast.FunctionDef):
                node.decorator_list = [d for d in node.decorator_list if "register_model" not in ast.dump(d)]
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganbench.models."):
                leaf = node.module.rsplit(".", 1)[1]
                if leaf != "base":
                    todo.append(f"models/{leaf}.py")
        # import lists change with declarations (TrainingRecipe); what they bring in is hashed through its file
        tree.body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
        digest.update(ast.dump(tree).encode())
    digest.update(json.dumps(model_info(name).defaults_for("mnist"), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def current_rows(rows: list[dict]) -> list[dict]:
    """The rows measured with each model's current code (:func:`code_key`), ``tiny``
    config and ``test_steps`` (a changed or retuned model's older rows are stale)."""
    from ganbench.models.base import model_info

    keys: dict[str, str] = {}
    return [r for r in rows if r["steps"] == model_info(r["model"]).test_steps
            and r.get("tiny") == tiny_config(r["model"])
            and r.get("code") == keys.setdefault(r["model"], code_key(r["model"]))]


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a kill
            continue
    return rows


def cpu_description() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    model = re.search(r"Model name:\s*(.+)", text)
    flags = set(re.search(r"Flags:\s*(.+)", text).group(1).split()) if "Flags:" in text else set()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model.group(1).strip() if model else 'unknown CPU'} ({', '.join(simd) or 'no avx2'})"


def table(rows: list[dict]) -> str:
    import torch

    by_model: dict[str, list[dict]] = {}
    for r in {(r["model"], r["variant"]): r for r in rows}.values():  # one row per run
        # the margin from its parts: rows logged in session 5 also counted an untrained-FID floor
        r = {**r, "margin": min(m for m in (r["fid_margin"], r["accuracy_margin"]) if m is not None)}
        by_model.setdefault(r["model"], []).append(r)
    lines = [f"# Learning-test margins ({datetime.date.today().isoformat()})", "",
             f"CPU: {cpu_description()}; torch {torch.__version__}; Python {platform.python_version()}.",
             f"Required worst-case margin: {REQUIRED_MARGIN:.2f} (share of the threshold left).", "",
             "| model | steps | runs | FID untrained | FID after (worst) | worst FID margin | "
             "worst accuracy (margin) | worst variant | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model in sorted(by_model):
        runs = by_model[model]
        worst = min(runs, key=lambda r: r["margin"])
        fid_worst = min(runs, key=lambda r: r["fid_margin"])
        acc_runs = [r for r in runs if r["accuracy"] is not None]
        acc = min(acc_runs, key=lambda r: r["accuracy"]) if acc_runs else None
        acc_text = f"{acc['accuracy']:.3f} ({acc['accuracy_margin']:+.2f})" if acc else "-"
        verdict = "ok" if worst["margin"] >= REQUIRED_MARGIN else ("THIN" if worst["margin"] > 0 else "FAILS")
        lines.append(f"| {model} | {worst['steps']} | {len(runs)} | {fid_worst['fid_before']:.0f} | "
                     f"{fid_worst['fid_after']:.0f} | {fid_worst['fid_margin']:+.2f} | {acc_text} | "
                     f"{worst['variant']} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="models to run (default: every learning-tested model)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per model (seed 0 is the test)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one process each)")
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    parser.add_argument("--rerun", action="store_true", help="rerun the listed models even if logged")
    parser.add_argument("--table", action="store_true", help="only print the table from the log")
    args = parser.parse_args(argv)

    args.log.parent.mkdir(parents=True, exist_ok=True)
    names = args.models or learning_models()
    if args.rerun and args.log.is_file():  # keep other models' rows, drop these
        kept = [r for r in read_log(args.log) if r["model"] not in names]
        args.log.write_text("".join(json.dumps(r) + "\n" for r in kept))
    if not args.table:
        done = {(r["model"], r["variant"]) for r in current_rows(read_log(args.log))}
        # variant-major: a partial run already covers every model once, then widens
        todo = [(n, v) for v in variants(args.seeds) for n in names if (n, v["variant"]) not in done]
        print(f"{len(todo)} runs to do ({len(done)} logged)", flush=True)
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(args.jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = {pool.submit(run_one, n, v, args.log): (n, v["variant"]) for n, v in todo}
            for i, future in enumerate(cf.as_completed(futures), 1):
                try:
                    row = future.result()
                except Exception as exc:  # noqa: BLE001 -- any failure of one run is reported; a rerun tries it again
                    print(f"[{i}/{len(todo)}] {futures[future]} failed: {type(exc).__name__}: {exc}", flush=True)
                    continue
                if row not in read_log(args.log):
                    with args.log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                print(f"[{i}/{len(todo)}] {row['model']:10s} {row['variant']:10s} FID {row['fid_before']:.0f} -> "
                      f"{row['fid_after']:.0f} acc {row['accuracy']} margin {row['margin']:+.2f} "
                      f"({row['seconds']:.0f} s)", flush=True)
    rows = [r for r in current_rows(read_log(args.log)) if r["model"] in names]
    text = table(rows)
    print(text)
    if args.out:
        command = f"python bench/learning_margins.py {' '.join(argv or sys.argv[1:])}"
        args.out.write_text(f"<!-- {command}; the runs: python bench/learning_margins.py --jobs 2 "
                            f"(log {args.log}, resumable) -->\n{text}\n")
    return 0 if all(r["margin"] > 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
