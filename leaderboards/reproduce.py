"""Reproduce ganbench's own leaderboards: train every registered model over several seeds,
evaluate each run, and render ``leaderboards/<dataset>.md`` and ``.csv``.

    python -m ganbench.leaderboards.reproduce --dataset mnist --steps 500 --seeds 0 1 --scale tiny
    python -m ganbench.leaderboards.reproduce --dataset fashion-mnist --scale paper --steps 20000 --device cuda

Each run is the one training loop (``ganbench.training.train``) with the model's paper
defaults for the dataset and its paper training recipe (``--scale paper``: batch size and
generator EMA of :class:`~ganbench.models.base.TrainingRecipe`, float32), or its small
test configuration (``--scale tiny``: the same losses and architecture, narrower; what a
2-core CPU can train in minutes), all models at one budget: batch 64, raw generators (an
EMA of a few hundred steps is mostly its initialisation). ``--batch-size`` / ``--ema``
override either. Each trained generator is evaluated on the dataset's test split with
the dataset's LeNet classifier as feature extractor (``lenet-mnist`` / ``lenet-fashion``,
shipped with ganbench; the official Inception weights are not usable offline and mean
little on 28 px digits), with FID, KID, IS and precision/recall in one pass. Rows go to a
results store inside ``--runs`` (with their full provenance), and the leaderboard is
rendered from that store, one table per protocol, mean ± std over seeds.

The script is restartable: a run whose evaluation is recorded (``eval.done`` in its
folder) is skipped, a run with a partial checkpoint resumes. The rendered files start with
the exact command and settings, so every number can be traced to a run; do not edit them
by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

EXTRACTORS = {"mnist": "lenet-mnist", "fashion-mnist": "lenet-fashion", "digits": "lenet-mnist"}
LEARNABLE_TASKS = ("unconditional", "class-conditional", "representation learning")  # sampled from a prior
HERE = Path(__file__).resolve().parent


def default_models() -> list[str]:
    from ganbench.models import list_models, model_info

    return [name for name in list_models() if model_info(name).task in LEARNABLE_TASKS
            and model_info(name).config.__module__.startswith("ganbench.")]


def run_one(model: str, seed: int, args: argparse.Namespace, store: str) -> None:
    from ganbench.evaluation import evaluate
    from ganbench.models import model_info
    from ganbench.training import train

    run_dir = Path(args.runs) / args.dataset / f"{model}-seed{seed}"
    if (run_dir / "eval.done").is_file():
        print(f"{model} seed {seed}: already evaluated, skipped")
        return
    overrides = dict(model_info(model).tiny) if args.scale == "tiny" else {}
    batch_size, ema = run_recipe(args)
    t0 = time.perf_counter()
    result = train(model, args.dataset, steps=args.steps, batch_size=batch_size, ema=ema, seed=seed,
                   device=args.device, out=str(run_dir), resume=True, overrides=overrides,
                   sample_every=0, checkpoint_every=max(args.steps // 4, 1), progress=not args.quiet)
    t_train = time.perf_counter() - t0
    evaluation = evaluate(str(run_dir / "checkpoint.safetensors"), f"{args.dataset}:test",
                          ["fid", "kid", "isc", "pr"], extractor=EXTRACTORS[args.dataset],
                          num_samples=args.num_samples, num_reference=args.num_samples, seed=seed,
                          device=args.device, progress=False, record=True, model_name=model,
                          options={"kid": {"subset_size": min(1000, args.num_samples)}},
                          tags={"scale": args.scale, "train_steps": args.steps, "train_seed": seed},
                          bootstrap=args.bootstrap)
    values = evaluation.values
    (run_dir / "eval.done").write_text(json.dumps({"store": store, **values}) + "\n")
    print(f"{model} seed {seed}: {result.step} steps in {t_train:.0f} s; "
          + ", ".join(f"{k} {v:.4g}" for k, v in values.items()), flush=True)


def run_recipe(args: argparse.Namespace) -> tuple[int | None, float | None]:
    """(batch size, EMA) for train(): None takes the model's paper recipe (``--scale
    paper``); ``--scale tiny`` runs every model at batch 64 with its raw generator."""
    tiny = args.scale == "tiny"
    batch_size = args.batch_size if args.batch_size is not None else (64 if tiny else None)
    ema = args.ema if args.ema is not None else (0.0 if tiny else None)
    return batch_size, ema


def recipe_words(args: argparse.Namespace) -> str:
    batch_size, ema = run_recipe(args)
    batch = f"batch {batch_size}" if batch_size else "each model's paper batch size"
    generator = ("each model's paper EMA generator where it has one" if ema is None else
                 "raw generators" if ema == 0 else f"generator EMA {ema:g}")
    return f"{batch}, {generator}, float32"


def render(args: argparse.Namespace, store: str, command: str) -> None:
    from ganbench.leaderboards.board import build_leaderboards
    from ganbench.leaderboards.render import render_leaderboards, write_output
    from ganbench.leaderboards.store import open_store

    rows = open_store(store).load(dataset=args.dataset, model=args.models or None)
    if rows.empty:
        raise SystemExit(f"no results for {args.dataset} in {store}")
    metrics = ["fid", "kid", "isc", "precision", "recall"]
    boards = build_leaderboards(rows, metrics)
    name = args.dataset.replace("-", "_")
    header = (f"# ganbench leaderboard: {args.dataset}\n\n"
              f"Produced by `{command}` ({args.scale} configurations, {args.steps} training steps, "
              f"{recipe_words(args)}, seeds {', '.join(map(str, args.seeds))}, device {args.device}; evaluated "
              f"on {args.num_samples} generated vs {args.num_samples} `{args.dataset}:test` images with "
              f"`{EXTRACTORS[args.dataset]}` features). Short CPU runs: these numbers compare the "
              f"implementations under one small budget, they are not the papers' results. "
              f"Regenerate with the command above; do not edit by hand.\n\n")
    out_dir = Path(args.out_dir)
    write_output(out_dir / f"{name}.md", header + render_leaderboards(boards, "md"), force=True)
    write_output(out_dir / f"{name}.csv", render_leaderboards(boards, "csv"), force=True)
    print(f"wrote {out_dir / (name + '.md')} and {out_dir / (name + '.csv')}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(EXTRACTORS), default="mnist")
    p.add_argument("--models", nargs="*", default=None, help="default: every built-in image model")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 64 at --scale tiny, each model's paper batch at --scale paper")
    p.add_argument("--ema", type=float, default=None,
                   help="generator EMA decay (0: raw G); default: raw at --scale tiny, the paper's at --scale paper")
    p.add_argument("--scale", choices=["tiny", "paper"], default="tiny")
    p.add_argument("--bootstrap", type=int, default=0,
                   help="interval replicates per evaluation (default 0: a board averages seeds and shows mean ± std "
                        "over them, not one run's interval)")
    p.add_argument("--num-samples", type=int, default=2000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--runs", default="runs/leaderboards", help="run folders and the results store")
    p.add_argument("--out-dir", default=str(HERE), help="where the .md/.csv go (default: this folder)")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    command = "python -m ganbench.leaderboards.reproduce " + shlex.join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--render-only")
    store = str(Path(args.runs) / args.dataset / "results.sqlite")
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GANBENCH_CACHE_DIR", str(Path(args.runs) / "cache"))
    os.environ["GANBENCH_RESULTS"] = store
    if not args.render_only:
        models = args.models or default_models()
        print(f"{len(models)} models x {len(args.seeds)} seeds: {', '.join(models)}")
        for model in models:
            for seed in args.seeds:
                try:
                    run_one(model, seed, args, store)
                except Exception as exc:  # noqa: BLE001 -- one failing model must not lose the others' runs
                    print(f"{model} seed {seed}: FAILED: {exc}", flush=True)
    render(args, store, command)


if __name__ == "__main__":
    main()
