"""What a second worker buys: the same small study run by 1 and by K worker processes.

Creates the same study twice (VAE and DCGAN on the embedded digits, ``--trials`` draws
each plus draw 0, one seed, ``--steps`` steps, 64 samples per evaluation) in fresh SQLite
storages, runs one with ``ganbench study run --workers 1`` and the other with
``--workers K`` (each worker ``cores / K`` torch threads), and prints both wall times and
the speedup. Both runs do the same work; a speedup near K needs K idle cores (on a busy
machine the ratio says little: the script prints the load average it started under).

    python bench/study_workers.py                  # 1 vs 2 workers
    python bench/study_workers.py --workers 4 --trials 7 --steps 300
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ganbench(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-c", "from ganbench.cli import main; main()", *args]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def timed_study(workers: int, args: argparse.Namespace, root: Path) -> float:
    env = {**os.environ, "GANBENCH_HOME": str(root / "home"), "GANBENCH_RESULTS": str(root / "results.sqlite")}
    storage = str(root / f"workers-{workers}.sqlite")
    ganbench("study", "create", "bench", "--models", "vae,dcgan", "--dataset", "digits", "--trials",
             str(args.trials), "--seeds", "1", "--steps", str(args.steps), "-n", "64", "--storage", storage, env=env)
    t0 = time.perf_counter()
    ganbench("study", "run", "bench", "--workers", str(workers), "--storage", storage,
             "--runs", str(root / f"runs-{workers}"), "--device", "cpu", env=env)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=5, help="random draws per model besides draw 0")
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    print(f"cores {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}; "
          f"2 models x {args.trials + 1} draws x 1 seed, {args.steps} steps each")
    with tempfile.TemporaryDirectory() as tmp:
        one = timed_study(1, args, Path(tmp))
        many = timed_study(args.workers, args, Path(tmp))
    print(f"1 worker: {one:.1f} s; {args.workers} workers: {many:.1f} s; speedup {one / many:.2f}x")


if __name__ == "__main__":
    main()
