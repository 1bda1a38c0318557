"""Time the leaderboard path on a realistic store: 50 models x 10 metrics x 5 seeds.

    python bench/leaderboard_render.py [--models 50] [--metrics 10] [--seeds 5]

Builds a temporary SQLite store (2,500 rows by default), then times loading it, building
the leaderboard and rendering every format. Target: load + build + all formats < 1 s.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from ganbench.leaderboards import build_leaderboards, make_protocol, open_store, render_leaderboards
from ganbench.leaderboards.render import FORMATS

KEYS = [("fid", "fid", False), ("kid", "kid", False), ("isc", "isc", True), ("precision", "pr", True),
        ("recall", "pr", True), ("density", "prdc", True), ("coverage", "prdc", True), ("ppl", "ppl", False),
        ("fd_dinov2", "fd_dinov2", False), ("lpips_diversity", "lpips", True)]


def make_rows(models: int, metrics: int, seeds: int) -> list[dict]:
    rng = random.Random(0)
    keys = [KEYS[i % len(KEYS)] if i < len(KEYS) else (f"m{i}", f"m{i}", bool(i % 2)) for i in range(metrics)]
    protocols = {metric: make_protocol(extractor="inception-v3-fid", weights_sha256="6726825d" * 8, resize="tf1",
                                       num_samples=10000, reference="mnist:test", num_reference=10000,
                                       metric=metric, metric_version=1) for _, metric, _ in keys}
    rows = []
    for m in range(models):
        for s in range(seeds):
            run = f"model{m:02d}-seed{s}"
            for key, metric, hib in keys:
                proto, pid = protocols[metric]
                rows.append(dict(
                    run_id=run, timestamp="2024-05-01T12:00:00+00:00", model=f"gan_{m:02d}",
                    checkpoint_sha256=f"{m:064x}", step=10000, third_party=False, dataset="mnist:test", split="test",
                    metric=metric, key=key, value=rng.uniform(1, 100) if not hib else rng.random(), std=None,
                    higher_is_better=hib, num_samples=10000, num_reference=10000, extractor="inception-v3-fid",
                    weights_sha256="6726825d" * 8, weights_standard=True, protocol=proto, protocol_id=pid, seed=s,
                    ganbench_version="0.1.0", git_commit=None, torch_version="2.3.0", device="cpu",
                    wall_time_s=1.0, source=f"gan_{m:02d}", tags="{}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "results.sqlite")
        rows = make_rows(args.models, args.metrics, args.seeds)
        t0 = time.perf_counter()
        store.append(rows)
        t_append = time.perf_counter() - t0

        timings = {}
        start = time.perf_counter()
        df = store.load(dataset="mnist")
        timings["load"] = time.perf_counter() - start
        t = time.perf_counter()
        boards = build_leaderboards(df)
        timings["build"] = time.perf_counter() - t
        for fmt in FORMATS:
            t = time.perf_counter()
            text = render_leaderboards(boards, fmt)
            timings[fmt] = time.perf_counter() - t
            assert text
        total = time.perf_counter() - start

    print(f"store: {len(rows)} rows ({args.models} models x {args.metrics} metrics x {args.seeds} seeds), "
          f"appended in one transaction in {t_append:.3f} s")
    print("  ".join(f"{k} {v * 1000:.1f} ms" for k, v in timings.items()))
    print(f"load + build + render all formats: {total:.3f} s (target < 1 s) -> {'OK' if total < 1 else 'SLOW'}")


if __name__ == "__main__":
    main()
