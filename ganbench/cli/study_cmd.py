"""``ganbench study``: declare, run, follow and report a study (:mod:`ganbench.study`)."""
from __future__ import annotations

import os
import shlex
import sys

import click

from ganbench.cli.options import device_option, force_option

storage_option = click.option(
    "--storage", default=None, metavar="URL|PATH",
    help="Optuna storage: an SQLAlchemy URL (sqlite:///f.db, postgresql://...) or an SQLite file "
         "[default: $GANBENCH_HOME/studies.sqlite].")


@click.group("study")
def study_cmd():
    """Are GANs created equal? Budgeted hyperparameter search over seeds, with conclusions.

    \b
      ganbench study create mnist6 --models gan,lsgan,wgan,wgan-gp,began,vae --dataset mnist \\
          --trials 10 --seeds 2 --steps 1500
      ganbench study run mnist6 --workers 2      # again, here or elsewhere: picks up what is left
      ganbench study status mnist6
      ganbench study report mnist6 --out studies/mnist6
    """


@study_cmd.command("create")
@click.argument("name")
@click.option("--models", required=True, help="Comma-separated registered models.")
@click.option("--dataset", default="mnist", show_default=True, help="Training dataset (evaluated on its test split).")
@click.option("--trials", type=int, default=20, show_default=True,
              help="Hyperparameter draws per model besides draw 0 (the default configuration).")
@click.option("--seeds", type=int, default=2, show_default=True, help="Training seeds per draw.")
@click.option("--steps", type=int, default=2000, show_default=True, help="Generator steps per run.")
@click.option("--metric", default="fid", show_default=True, help="The metric the study compares (fid, kid, isc...).")
@click.option("--extractor", default=None, help="Feature extractor [default: the dataset's classifier, lenet-*].")
@click.option("--num-samples", "-n", type=int, default=2000, show_default=True,
              help="Generated and test images per evaluation.")
@click.option("--sampler", type=click.Choice(["random", "grid", "tpe"]), default="random", show_default=True,
              help="random: the study protocol (draws fixed at creation); grid; tpe (adaptive).")
@click.option("--scale", type=click.Choice(["tiny", "paper"]), default="tiny", show_default=True,
              help="tiny: each model's small configuration, batch 64, raw G; paper: the paper's recipe.")
@click.option("--batch-size", type=int, default=None, help="Real images per D update [default: 64 / the recipe's].")
@click.option("--space", "spaces", multiple=True, metavar="[MODEL.]NAME=RANGE",
              help="Override a search range: lr=1e-5..1e-2:log, n_critic=1..5:int, beta1=0..1, x=a,b, x=VALUE.")
@click.option("--study-seed", type=int, default=0, show_default=True, help="Seeds the hyperparameter draws.")
@storage_option
def create_cmd(name, models, dataset, trials, seeds, steps, metric, extractor, num_samples, sampler, scale,
               batch_size, spaces, study_seed, storage):
    """Declare study NAME: per model, draw 0 plus TRIALS random draws, each over SEEDS seeds."""
    from ganbench.search_space import parse_range
    from ganbench.study.engine import StudySettings, create_study, open_storage

    settings = StudySettings(name, tuple(m.strip() for m in models.split(",") if m.strip()), dataset, metric,
                             extractor, num_samples, steps, seeds, trials, sampler, scale, batch_size, study_seed,
                             tuple(parse_range(item) for item in spaces))
    command = "ganbench study create " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["study", "create"]
                                                    else [name])
    protocol, created = create_study(settings, open_storage(storage), command=command)
    runs = len(protocol["models"]) * (protocol["trials"] + 1) * len(protocol["seeds"])
    verb = "created" if created else "exists with this protocol; nothing changed:"
    click.echo(f"study {name} {verb} {len(protocol['models'])} models x {protocol['trials'] + 1} draws x "
               f"{len(protocol['seeds'])} seeds = {runs} runs of {protocol['steps']} steps")


@study_cmd.command("run")
@click.argument("name")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine (each takes its own trials).")
@click.option("--runs", default="runs/studies", show_default=True, help="Where run folders go.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=60, show_default=True,
              help="Seconds between heartbeats; a trial silent for 3 of them is retried.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads per worker [default: cores / workers].")
@click.option("--retry-failed", is_flag=True,
              help="First queue again the draws whose retries all failed (once their cause is fixed).")
@device_option
@storage_option
def run_cmd(name, workers, runs, heartbeat, threads, retry_failed, device, storage):
    """Run the waiting trials of NAME until none is left; start it again (here or on
    another machine with the same --storage) to add workers or to resume."""
    from ganbench.study.engine import load_protocol, open_storage, retry_failed as queue_failed_again

    store = open_storage(storage, heartbeat=heartbeat)
    protocol = load_protocol(store, name)  # unknown study: one line, before any work
    if retry_failed:
        click.echo(f"study {name}: {queue_failed_again(store, protocol)} failed draws queued again")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    jobs = dict(name=name, location=storage, runs=runs, device=device or "cpu", heartbeat=heartbeat, threads=threads)
    if workers == 1:
        done = worker_main(**jobs)
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            done = sum(pool.starmap(_worker_star, [(jobs,)] * workers))
    click.echo(f"study {name}: {done} trials run by this command")


def _worker_star(jobs: dict) -> int:
    return worker_main(**jobs)


def worker_main(name, location, runs, device, heartbeat, threads) -> int:
    import torch

    from ganbench.study.worker import run_worker

    torch.set_num_threads(threads)
    pid = os.getpid()
    return run_worker(name, location, runs=runs, device=device, heartbeat=heartbeat,
                      log=lambda line: click.echo(f"[worker {pid}] {line}"))


@study_cmd.command("status")
@click.argument("name")
@storage_option
def status_cmd(name, storage):
    """Progress of NAME per model: draws done, running, waiting, failed."""
    from ganbench.study.engine import load_protocol, open_storage, status_frame

    store = open_storage(storage)
    protocol = load_protocol(store, name)
    table = status_frame(store, protocol)
    click.echo(f"study {name}: {protocol['dataset']}, {protocol['metric']} ({protocol['extractor']}, "
               f"n={protocol['num_samples']}), {protocol['steps']} steps, {len(protocol['seeds'])} seeds per draw")
    click.echo(table.to_string(index=False))


@study_cmd.command("report")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for report.md, plots, CSV.")
@force_option
@storage_option
def report_cmd(name, out, force, storage):
    """Write NAME's report: distributions, best score against the budget, pairwise tests."""
    from ganbench.study.engine import load_protocol, open_storage, trial_frame
    from ganbench.study.report import write_report

    store = open_storage(storage)
    protocol = load_protocol(store, name)
    for path in write_report(trial_frame(store, protocol), protocol, out, force=force, storage=storage):
        click.echo(f"wrote {path}")
