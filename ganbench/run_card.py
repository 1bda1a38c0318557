"""The run card: ``README.md`` in a training run folder, rewritten at every checkpoint.

It says what the folder holds in words a reader can check: the model and its paper, the
command that reproduces the run, the hyperparameters (and which depart from the paper's
defaults for the dataset), the data, steps, whole batch, wall time, device, the last sample
grid, and the evaluations recorded for the run: ``eval.jsonl`` (periodic evaluations) and
the results-store rows whose ``source`` points into the folder, with their protocol id.

:func:`render_run_card` is a pure function of :class:`RunFacts`; :func:`write_run_card`
gathers the facts from the folder (``run.json``, ``eval.jsonl``, ``samples/``, the store)
and writes the card atomically. Every user-supplied string is Markdown-escaped; commands
sit in code fences longer than any backtick run inside them.
"""
from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ganbench.atomic import atomic_write_text
from ganbench.errors import GanbenchError, first_line

CARD_NAME = "README.md"
MAX_STORE_ROWS = 50  # the newest rows shown; the store keeps them all


@dataclass(frozen=True)
class RunFacts:
    """What a run card shows (plain values, so rendering needs nothing else)."""

    model: str  # registered model name
    paper: str  # paper title
    year: int | None
    authors: str | None
    arxiv: str | None  # arXiv id
    reference_code: str | None  # the code the implementation follows
    known_departures: tuple[tuple[str, str], ...]  # (what, why): the implementation's, registered with the model
    command: str  # shell command (or Python code) that reproduces the run
    command_language: str  # "bash" or "python"
    hyperparameters: tuple[tuple[str, Any, Any], ...]  # (name, this run's value, the paper's default)
    paper_recipe: str  # the paper's batch size / EMA for the dataset, in words
    dataset: str
    data: dict[str, Any]  # the dataset's registry metadata (description, image_size, channels, num_classes)
    step: int  # step of the checkpoint this card was written with
    steps: int  # steps the run was asked for
    started_at_step: int  # where this invocation started (> 0: resumed)
    whole_batch: int  # real images per D update over all processes
    processes: int
    real_images: int  # real images the discriminator saw
    wall_time_s: float  # this invocation's, from started_at_step
    device: str
    precision: str
    ganbench_version: str
    sample_grid: str | None = None  # path of the last grid, relative to the folder
    evaluations: tuple[dict[str, Any], ...] = ()  # eval.jsonl records
    results: tuple[dict[str, Any], ...] = ()  # results-store rows whose source points into the folder
    results_note: str | None = None  # why store rows may be missing (unreadable store, rows left out)


def write_run_card(folder: str | Path, *, step: int, seconds: float, real_images: int) -> Path:
    """Write ``folder/README.md`` from the folder's ``run.json`` and logs at checkpoint ``step``."""
    folder = Path(folder)
    card = folder / CARD_NAME
    atomic_write_text(card, render_run_card(gather_facts(folder, step=step, seconds=seconds,
                                                         real_images=real_images)))
    return card


def gather_facts(folder: Path, *, step: int, seconds: float, real_images: int) -> RunFacts:
    """The facts of the run in ``folder`` (its ``run.json`` must exist) at checkpoint ``step``."""
    from ganbench.data import dataset_info, parse_name
    from ganbench.models.base import model_info

    run = json.loads((folder / "run.json").read_text())
    options, training, config = run["options"], run["training"], run["config"]
    info, data = model_info(options["model"]), dataset_info(options["dataset"])
    key = parse_name(options["dataset"]).key
    paper_config = paper_defaults(options["model"], key, data)
    paper_recipe = info.recipe_for(key)
    whole_batch = int(training["batch_size"])
    rows = [(name, value, paper_config.get(name)) for name, value in config.items()]
    rows += [("batch size (whole)", whole_batch, paper_recipe.batch_size),
             ("generator EMA", training.get("ema"), paper_recipe.ema_decay(whole_batch)),
             ("EMA start (steps)", training.get("ema_start"), paper_recipe.ema_start)]
    results, note = store_rows_for(folder)
    command, language = _reproducing_command(run)
    return RunFacts(
        model=options["model"], paper=info.paper, year=info.year, authors=info.authors, arxiv=info.arxiv,
        reference_code=info.reference_code, known_departures=tuple(info.departures), command=command,
        command_language=language, hyperparameters=tuple(rows), paper_recipe=paper_recipe.describe(),
        dataset=options["dataset"], data=data, step=step, steps=int(options["steps"]),
        started_at_step=int(run.get("started_at_step", 0)), whole_batch=whole_batch,
        processes=int(training.get("processes", 1)), real_images=real_images, wall_time_s=seconds,
        device=str(run.get("device", training.get("device"))), precision=str(training.get("precision")),
        ganbench_version=str(run.get("ganbench_version")), sample_grid=last_sample_grid(folder, step),
        evaluations=tuple(read_jsonl(folder / "eval.jsonl")), results=tuple(results), results_note=note)


# -- rendering --------------------------------------------------------------------------------
def render_run_card(f: RunFacts) -> str:
    """The card's Markdown (GitHub flavour)."""
    sections = [_title(f), _model_section(f), _command_section(f), _hyperparameter_section(f),
                _data_section(f), _training_section(f), _samples_section(f), _evaluation_section(f)]
    return "\n\n".join(sections) + "\n"


def _title(f: RunFacts) -> str:
    return (f"# {esc(f.model)} on {esc(f.dataset)}\n\n"
            f"Trained with ganbench {esc(f.ganbench_version)}: checkpoint `checkpoint.safetensors` at step "
            f"{f.step} of {f.steps}. This card is rewritten at every checkpoint.")


def _model_section(f: RunFacts) -> str:
    paper = f"*{esc(f.paper)}*" + (f" ({f.year})" if f.year else "")
    if f.authors:
        paper += f", {esc(f.authors)}"
    if f.arxiv:
        paper += f", [arXiv:{esc(f.arxiv)}](https://arxiv.org/abs/{esc(f.arxiv)})"
    lines = ["## Model", "", f"**{esc(f.model)}**: {paper}."]
    if f.reference_code:
        lines.append(f"Follows the reference code {esc(f.reference_code)}.")
    if f.known_departures:
        lines += ["", "Known departures of the implementation from the paper:", ""]
        lines += [f"- {esc(what)}: {esc(why)}" for what, why in f.known_departures]
    return "\n".join(lines)


def _command_section(f: RunFacts) -> str:
    where = ("Run it in a new folder (change `--out`); on the CPU it gives the same checkpoint."
             if f.command_language == "bash" else "The run was started from Python; this call is its equivalent.")
    if f.started_at_step:
        where += f" This invocation resumed the run at step {f.started_at_step}; the command trains from step 0."
    return f"## Reproduce\n\n{where}\n\n{code_block(f.command, f.command_language)}"


def _hyperparameter_section(f: RunFacts) -> str:
    rows = [[name, _value(value), _value(paper), "yes" if value != paper else ""]
            for name, value, paper in f.hyperparameters]
    departing = [name for name, value, paper in f.hyperparameters if value != paper]
    summary = (f"Departing from the paper's defaults for {esc(f.dataset)}: {', '.join(esc(n) for n in departing)}."
               if departing else f"All at the paper's defaults for {esc(f.dataset)}.")
    return (f"## Hyperparameters\n\n{summary} The paper's recipe: {esc(f.paper_recipe)}.\n\n"
            + _table(["name", "this run", "paper default", "departs"], rows))


def _data_section(f: RunFacts) -> str:
    d = f.data
    shape = f"{d.get('image_size')}x{d.get('image_size')} px, {d.get('channels')} channel(s)"
    classes = f", {d['num_classes']} classes" if d.get("num_classes") else ""
    about = f": {esc(d['description'])}" if d.get("description") else ""
    return f"## Data\n\n{esc(f.dataset)} (training split){about}; {shape}{classes}."


def _training_section(f: RunFacts) -> str:
    per_process = f" ({f.processes} processes x {f.whole_batch // f.processes})" if f.processes > 1 else ""
    invocation = f"this invocation, from step {f.started_at_step}"
    rows = [["steps", f"{f.step} of {f.steps}"], ["whole batch", f"{f.whole_batch}{per_process}"],
            ["real images seen", f"{f.real_images:,}"], ["wall time", f"{_duration(f.wall_time_s)} ({invocation})"],
            ["device", f.device], ["precision", f.precision]]
    return "## Training\n\n" + _table(["", "this run"], rows)


def _samples_section(f: RunFacts) -> str:
    if f.sample_grid is None:
        return "## Samples\n\nNo sample grid yet."
    step = re.search(r"(\d+)", Path(f.sample_grid).stem)
    at = f" at step {int(step.group(1))}" if step else ""
    return f"## Samples\n\nFrom fixed noise{at}:\n\n![samples{at}]({_link(f.sample_grid)})"


def _evaluation_section(f: RunFacts) -> str:
    parts = ["## Evaluations"]
    if f.evaluations:
        keys = list(dict.fromkeys(k for record in f.evaluations for k in record if k != "step"))
        rows = [[str(r.get("step", ""))] + [_value(r.get(k, "")) for k in keys] for r in f.evaluations]
        parts.append("Periodic evaluations during training (`eval.jsonl`):\n\n" + _table(["step", *keys], rows))
    if f.results:
        rows = [[r.get("key") or r.get("metric"), _value(r.get("value")), _value(r.get("step")),
                 _value(r.get("num_samples")), _reference(r), r.get("protocol_id"), r.get("model"),
                 _tags(r.get("tags")), r.get("timestamp")] for r in f.results]
        parts.append("Results-store rows whose source is this folder or a file in it (numbers with the same "
                     "protocol id are comparable):\n\n"
                     + _table(["metric", "value", "step", "samples", "reference", "protocol id", "model", "tags",
                               "recorded"], rows))
    if f.results_note:
        parts.append(esc(f.results_note))
    if len(parts) == 1:
        parts.append("None recorded yet (`ganbench eval -i FOLDER` records one).")
    return "\n\n".join(parts)


# -- pieces -------------------------------------------------------------------------------------
def esc(text: object) -> str:
    """Inert one-line Markdown (no HTML, links or table breaks)."""
    from ganbench.leaderboards.render import markdown_escape

    return markdown_escape(text)


def code_block(text: str, language: str) -> str:
    """``text`` in a fence longer than any backtick run inside it (so it cannot close the fence)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from ganbench.leaderboards.render import markdown_table

    return markdown_table(headers, [["" if c is None else str(c) for c in row] for row in rows])


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if value is None:
        return "none"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _reference(row: dict[str, Any]) -> str:
    return f"{row.get('dataset')}:{row['split']}" if row.get("split") else str(row.get("dataset"))


def _tags(tags: Any) -> str:
    return "" if tags in (None, "{}") else str(tags)


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if hours else f"{m} min {s} s" if m else f"{seconds:.1f} s"


def _link(relative: str) -> str:
    return "/".join(part.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
                    for part in Path(relative).parts)


# -- the facts from the folder ------------------------------------------------------------------
def _reproducing_command(run: dict[str, Any]) -> tuple[str, str]:
    """(text, language): the CLI command recorded in ``run.json`` (``ganbench train`` records
    its argv there), else the Python call with the run's options."""
    processes = int(run["training"].get("processes", 1))
    argv = run.get("command")
    if argv:
        prefix = ["torchrun", "--nproc_per_node", str(processes), "--no-python"] if processes > 1 else []
        return shlex.join(prefix + list(argv)), "bash"
    return python_call(run["options"], processes), "python"


def python_call(options: dict[str, Any], processes: int = 1) -> str:
    """``train(TrainOptions(...))`` with the options that differ from TrainOptions' defaults."""
    from ganbench.training import TrainOptions

    defaults = TrainOptions(model=options["model"])
    given = {k: v for k, v in options.items() if k in TrainOptions.__dataclass_fields__
             and k not in ("resume", "progress") and v != getattr(defaults, k)}
    arguments = ",\n    ".join(f"{k}={v!r}" for k, v in {"model": options["model"], **given}.items())
    lines = ["from ganbench.training import TrainOptions, train", "",
             f"train(TrainOptions(\n    {arguments},\n))"]
    if options.get("eval_every"):
        lines.insert(2, "# eval_every also needs the evaluate= callback the run was given (not recorded)")
    if processes > 1:
        lines.insert(2, f"# in each of {processes} processes (torchrun), after joining the process group")
    return "\n".join(lines)


def paper_defaults(model: str, dataset_key: str, data: dict[str, Any]) -> dict[str, Any]:
    """The config the paper's defaults give for the dataset (what ``--set`` departs from). Where
    they alone are not a valid config (BigGAN's defaults on 8 px digits: the run had to override
    image_size), the values as registered, unchecked."""
    import dataclasses

    from ganbench.models.base import model_info, resolve_config

    try:
        return resolve_config(model, dataset_key, {}, data=data).to_dict()
    except GanbenchError:
        info = model_info(model)
        values = {f.name: f.default for f in dataclasses.fields(info.config)
                  if f.default is not dataclasses.MISSING}
        values.update({k: data[k] for k in ("image_size", "channels", "num_classes") if data.get(k) is not None})
        values.update(info.defaults_for(dataset_key))
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log (lines that are not records, such as one cut by a kill, skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def last_sample_grid(folder: Path, step: int) -> str | None:
    """``samples/step-N.png`` with the largest N <= ``step`` (relative to ``folder``), or None."""
    grids = []
    for path in (folder / "samples").glob("step-*.png"):
        digits = path.stem.removeprefix("step-")
        if digits.isdigit() and int(digits) <= step:
            grids.append((int(digits), path))
    return None if not grids else max(grids)[1].relative_to(folder).as_posix()


def store_rows_for(folder: Path) -> tuple[list[dict[str, Any]], str | None]:
    """(rows, note): the results-store rows whose source is ``folder`` or a path in it (relative
    sources resolved from the current directory), newest :data:`MAX_STORE_ROWS`; the note says
    why rows may be missing. The store is only read: a missing store is not created."""
    from ganbench.leaderboards.store import open_store

    try:
        store = open_store()
        frame = store.load() if store.exists() else None
    except (GanbenchError, OSError) as exc:
        return [], f"The results store could not be read ({first_line(exc)})."
    if frame is None or frame.empty:
        return [], None
    root = folder.resolve()
    inside = {s: points_into(s, root) for s in frame["source"].dropna().unique()}
    rows = frame[frame["source"].map(inside).fillna(False).astype(bool)]
    note = None
    if len(rows) > MAX_STORE_ROWS:
        note = f"The newest {MAX_STORE_ROWS} of {len(rows)} rows are shown; `ganbench results` lists them all."
        rows = rows.tail(MAX_STORE_ROWS)
    return rows.astype(object).where(rows.notna(), None).to_dict("records"), note


def points_into(source: str, folder: Path) -> bool:
    """Whether ``source`` names an existing path that is ``folder`` or lies inside it."""
    try:
        path = Path(source).expanduser().resolve()
        return path.exists() and (path == folder or folder in path.parents)
    except (OSError, RuntimeError, ValueError):
        return False
