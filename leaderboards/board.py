"""Leaderboards from stored results: pure pandas, no I/O.

Only comparable numbers share a column, and only one column ranks. Two values of one
metric output are comparable exactly when their ``protocol_id`` is equal; the metrics of
a run share the *setting* (:data:`~ganbench.leaderboards.store.SETTING_FIELDS` of the
protocol: extractor, weights sha256, input size, resize, number of samples), so

* a **table** holds the rows of one dataset and one setting (FID on 10k samples and FID
  on 50k, or on Inception and on VGG16, or with standard and other weights, land in
  different tables);
* a **column** holds one metric output under one ``protocol_id``; when an output appears
  under several protocols its columns are named ``key@label`` (``fid@10k``, ``fid@50k``,
  ``fid@v2``), so two protocols never share a column name anywhere in one output.

A protocol that is not a JSON object with an ``extractor`` field is its own setting: such
rows are never grouped with anything but identical protocols.

Per table: one row per model (or per model and checkpoint), per column the mean over runs
(values within one run are averaged first), the sample standard deviation over runs
(``ddof=1``; NaN with one run), the number of runs, and a rank by the primary column in
its own direction (``higher_is_better``; an output best at a value, such as C_T at 0, by the
distance to it: the ``ideal`` its protocol records), ties sharing the better rank.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from ganbench.errors import GanbenchError, UnknownNameError
from ganbench.leaderboards.store import SETTING_FIELDS, canonical_json

_SEP = "\x1f"  # joins entity parts into one grouping key
_LABEL_FIELDS = ("num_samples", "extractor", "weights_sha256", "reference", "num_reference",
                 "metric_version", "resize", "input_size", "precision")
# fields that follow from another one: labelled by it (bf16 rows also record tf32 and precision_standard)
_IMPLIED_BY = {"tf32": "precision", "precision_standard": "precision"}


@dataclass(frozen=True)
class MetricColumn:
    """One column of a leaderboard: one metric output under one protocol."""

    name: str  # column name: the output key, or "key@label" where the key has several protocols
    key: str  # metric output key ("fid", "precision")
    metric: str  # metric name ("fid", "pr")
    protocol_id: str
    higher_is_better: bool
    ideal: float | None = None  # best at this value, ranked by the distance to it (C_T: 0); None: directional

    @property
    def arrow(self) -> str:
        """The header mark of its direction: ``↑``, ``↓`` or ``→0``."""
        return f"→{self.ideal:g}" if self.ideal is not None else "↑" if self.higher_is_better else "↓"

    def badness(self, values: pd.Series) -> pd.Series:
        """What ranks ascending: the distance to the ideal, or the value in its direction."""
        if self.ideal is not None:
            return (values - self.ideal).abs()
        return -values if self.higher_is_better else values


@dataclass
class Leaderboard:
    """One table of comparable numbers.

    ``frame`` has the columns ``rank``, ``model`` (and ``checkpoint_sha256``, ``step``
    when built per checkpoint), ``runs``, then for each metric column ``<name>`` (mean),
    ``<name>_std`` and ``<name>_n`` (runs with a value), sorted by rank.
    """

    dataset: str
    setting: dict[str, Any]  # extractor, weights_sha256, weights_standard, num_samples, num_reference
    protocol_ids: tuple[str, ...]
    columns: list[MetricColumn]
    primary: str  # name of the column the rank is computed from
    frame: pd.DataFrame
    by_checkpoint: bool = False
    entity_columns: tuple[str, ...] = field(default=("model",))

    @property
    def primary_column(self) -> MetricColumn:
        return next(c for c in self.columns if c.name == self.primary)

    @property
    def title(self) -> str:
        """The protocol, in one line: what must match for these numbers to compare."""
        s = self.setting
        parts = [self.dataset]
        weights = "standard weights" if s["weights_standard"] else "NON-STANDARD weights"
        sha = s["weights_sha256"]
        parts.append(f"{s['extractor']}, {weights}" + (f" (sha256 {sha[:8]})" if sha else ""))
        samples = f"{_thousands(s['num_samples'])} generated samples"
        if s.get("num_reference") is not None:
            samples += f" vs {_thousands(s['num_reference'])} reference images"
        parts.append(samples)
        ids = self.protocol_ids
        parts.append(("protocol " if len(ids) == 1 else "protocols ") + ", ".join(ids))
        return " · ".join(parts)


def _thousands(n: Any) -> str:
    if isinstance(n, str):
        return n
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def _short_count(n: Any) -> str:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return str(n)
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# --------------------------------------------------------------------------- protocols
def parse_protocol(protocol: str) -> dict[str, Any] | None:
    """The protocol as a dict, or None when it is not a JSON object."""
    try:
        obj = json.loads(protocol)
    except (TypeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def setting_id(protocol: str, protocol_id: str) -> str:
    """What the metrics of a run share: the protocol's SETTING_FIELDS (else the protocol)."""
    obj = parse_protocol(protocol)
    if obj is None or "extractor" not in obj:
        return "p:" + str(protocol_id)
    shared = {k: obj.get(k) for k in SETTING_FIELDS}
    return "s:" + hashlib.sha256(canonical_json(shared).encode()).hexdigest()[:12]


def _format_field(name: str, value: Any) -> str:
    if name == "num_samples":
        return _short_count(value)
    if name == "num_reference":
        return "ref" + _short_count(value)
    if name == "metric_version":
        return f"v{value}"
    if name == "weights_sha256":
        return str(value)[:8] if value else "noweights"
    if name == "precision":
        return value or "float32"  # rows without the field: the float32 pass
    return str(value)


def column_names(key: str, protocols: dict[str, dict[str, Any] | None]) -> dict[str, str]:
    """``protocol_id -> column name`` for one output key seen under ``protocols``.

    One protocol: the key itself. Several: ``key@label``, the label made of the fields
    that differ (``10k``, ``v2``, ``inception-v3``...), else the short protocol id.
    """
    if len(protocols) == 1:
        return {pid: key for pid in protocols}
    parsed = [p for p in protocols.values()]
    names: dict[str, str] = {}
    if all(p is not None for p in parsed):
        fields = sorted({f for p in parsed for f in p})
        differing = [f for f in fields if len({canonical_json(p.get(f)) for p in parsed}) > 1]
        differing = [f for f in differing if _IMPLIED_BY.get(f) not in differing]
        known = [f for f in _LABEL_FIELDS if f in differing]
        for pid, p in protocols.items():
            label = ",".join(_format_field(f, p.get(f)) for f in known)
            if len(known) < len(differing) or not label:
                label = f"{label},{pid[:8]}" if label else pid[:8]
            names[pid] = f"{key}@{label}"
    else:
        names = {pid: f"{key}@{pid[:8]}" for pid in protocols}
    if len(set(names.values())) < len(names):  # labels collide: fall back to the ids
        names = {pid: f"{key}@{pid[:12]}" for pid in protocols}
    return names


# --------------------------------------------------------------------------- aggregation
def _outside_studies(results: pd.DataFrame) -> pd.DataFrame:
    """Rows not made by a study (``ganbench study``): a study's runs are draws of a
    hyperparameter search, not a model's configuration, and its report ranks them."""
    if "tags" not in results:
        return results
    in_study = results["tags"].fillna("").astype(str).str.contains('"study": ', regex=False)
    if in_study.all():
        raise GanbenchError("every result comes from a study; rank studies with `ganbench study report NAME`")
    return results[~in_study]


def _select(results: pd.DataFrame, metrics: Sequence[str] | None, protocol: str | Sequence[str] | None) -> pd.DataFrame:
    if results.empty:
        raise GanbenchError("no results to rank")
    df = _outside_studies(results)
    if protocol:
        prefixes = [protocol] if isinstance(protocol, str) else list(protocol)
        mask = pd.Series(False, index=df.index)
        for prefix in prefixes:
            mask |= df["protocol_id"].astype(str).str.startswith(prefix)
        if not mask.any():
            raise GanbenchError(f"no results with a protocol id starting with {', '.join(prefixes)}; "
                                f"present: {', '.join(sorted(df['protocol_id'].astype(str).unique()))}")
        df = df[mask]
    if metrics:
        known = set(df["metric"]) | set(df["key"])
        for m in metrics:
            if m not in known:
                raise UnknownNameError("metric", m, known)
        df = df[df["metric"].isin(list(metrics)) | df["key"].isin(list(metrics))]
    return df


def _entity_columns(by_checkpoint: bool) -> list[str]:
    return ["model", "checkpoint_sha256", "step"] if by_checkpoint else ["model"]


def _entity_key(df: pd.DataFrame, entity: list[str]) -> pd.Series:
    key = df[entity[0]].astype(str)
    for col in entity[1:]:
        key = key + _SEP + df[col].astype("object").where(df[col].notna(), "").astype(str)
    return key


def _annotate(results: pd.DataFrame, metrics, protocol, entity: list[str]) -> pd.DataFrame:
    """The selected raw rows plus ``table``, ``column``, ``entity`` and ``order``."""
    df = _select(results, metrics, protocol).reset_index(drop=True)
    protocols = df.drop_duplicates("protocol_id").set_index("protocol_id")["protocol"]
    parsed = {pid: parse_protocol(p) for pid, p in protocols.items()}
    settings = {pid: setting_id(p, pid) for pid, p in protocols.items()}
    names: dict[tuple[str, str], str] = {}
    for key, pids in df.groupby("key", sort=False)["protocol_id"].unique().items():
        for pid, name in column_names(key, {p: parsed[p] for p in pids}).items():
            names[(key, pid)] = name
    return df.assign(
        table=df["dataset"].astype(str) + _SEP + df["protocol_id"].map(settings),
        column=[names[(k, p)] for k, p in zip(df["key"], df["protocol_id"])],
        entity=_entity_key(df, entity),
        order=range(len(df)),
    )


def _summarise(df: pd.DataFrame, entity: list[str]) -> pd.DataFrame:
    df = df.assign(ci_low=df.get("ci_low"), ci_high=df.get("ci_high"))
    per_run = df.groupby(["table", "entity", "column", "run_id"], sort=False).agg(
        value=("value", "mean"), order=("order", "min"),  # repeats within a run count once
        ci_low=("ci_low", "first"), ci_high=("ci_high", "first"))
    stats = per_run.groupby(["table", "entity", "column"], sort=False).agg(
        mean=("value", "mean"), std=("value", "std"), n=("value", "count"), order=("order", "min"),
        ci_low=("ci_low", "first"), ci_high=("ci_high", "first")).reset_index()
    single = stats["n"] == 1  # one run: its own interval; several: mean ± std over runs
    stats["ci_low"] = stats["ci_low"].where(single).astype("float64")
    stats["ci_high"] = stats["ci_high"].where(single).astype("float64")
    info = df.drop_duplicates(["table", "entity", "column"]).set_index(["table", "entity", "column"])[
        ["dataset", *entity, "key", "metric", "protocol_id", "higher_is_better"]]
    out = stats.join(info, on=["table", "entity", "column"])
    return out[["table", "dataset", *entity, "column", "key", "metric", "protocol_id", "higher_is_better",
                "mean", "std", "n", "ci_low", "ci_high", "order", "entity"]]


def aggregate(results: pd.DataFrame, metrics: Sequence[str] | None = None, *, by_checkpoint: bool = False,
              protocol: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Results summarised in long form: one row per (table, entity, column).

    Columns: ``table`` (dataset + setting), ``dataset``, ``model`` (+ ``checkpoint_sha256``,
    ``step``), ``column``, ``key``, ``metric``, ``protocol_id``, ``higher_is_better``,
    ``mean``, ``std`` (over runs, ddof=1), ``n`` (runs), ``ci_low``/``ci_high`` (the run's
    confidence interval when there is one run), ``order`` (first appearance),
    ``entity``. ``metrics`` keeps rows whose metric name or output key is listed;
    ``protocol`` keeps rows whose protocol_id starts with one of the given prefixes.
    """
    entity = _entity_columns(by_checkpoint)
    return _summarise(_annotate(results, metrics, protocol, entity), entity)


def build_leaderboards(results: pd.DataFrame, metrics: Sequence[str] | None = None, *,
                       by_checkpoint: bool = False, primary: str | None = None,
                       protocol: str | Sequence[str] | None = None, single: bool = False) -> list[Leaderboard]:
    """Leaderboards from a results frame (as from :func:`ganbench.leaderboards.load`).

    Args:
        metrics: metric names or output keys to show, in this column order (default: all,
            in order of first appearance).
        by_checkpoint: one row per (model, checkpoint, step) instead of per model.
        primary: key or column name to rank by (default: the first of ``metrics``, else
            ``fid`` where present, else the first column). A table without it ranks by
            its own default.
        protocol: keep only rows whose protocol_id starts with this (or any of these).
        single: refuse (GanbenchError, with the reason) when the results need more than
            one table.

    Returns one :class:`Leaderboard` per (dataset, setting), sorted by dataset, then by
    first appearance.
    """
    entity = _entity_columns(by_checkpoint)
    df = _annotate(results, metrics, protocol, entity)
    long = _summarise(df, entity)
    if primary is not None and primary not in set(long["key"]) | set(long["column"]) | set(long["metric"]):
        raise UnknownNameError("metric", primary, set(long["key"]) | set(long["column"]))
    boards = [_one_board(rows, long[long["table"] == table], entity=entity, wanted=list(metrics or []),
                         primary=primary, by_checkpoint=by_checkpoint)
              for table, rows in df.groupby("table", sort=False)]
    boards.sort(key=lambda b: b.dataset)  # stable
    if single and len(boards) > 1:
        raise GanbenchError(
            f"the selected results need {len(boards)} tables (numbers under different protocols are never "
            "ranked together): " + " | ".join(b.title for b in boards)
            + ". Narrow the selection (--dataset, --metric, --protocol) or allow several tables")
    return boards


def _ideal(protocol: str | None, key: str) -> float | None:
    """The value ``key`` is best at when its metric ranks by the distance to it, as the row's
    protocol records it (``ideal``: C_T's 0); None for directional outputs."""
    parsed = parse_protocol(protocol) if isinstance(protocol, str) else None
    return ((parsed or {}).get("ideal") or {}).get(key)


def _one_board(rows: pd.DataFrame, part: pd.DataFrame, *, entity: list[str], wanted: list[str],
               primary: str | None, by_checkpoint: bool) -> Leaderboard:
    """One table from its raw ``rows`` and their summary ``part``."""
    cols = part.groupby("column", sort=False).agg(
        key=("key", "first"), metric=("metric", "first"), protocol_id=("protocol_id", "first"),
        higher_is_better=("higher_is_better", "first"), order=("order", "min")).reset_index()

    def position(metric: str, key: str, order: int) -> tuple[int, int]:
        hits = [i for i, w in enumerate(wanted) if w in (metric, key)]
        return (hits[0] if hits else len(wanted), order)

    cols["_pos"] = [position(m, k, o) for m, k, o in zip(cols["metric"], cols["key"], cols["order"])]
    cols = cols.sort_values("_pos", kind="stable")
    protocols = dict(zip(rows["protocol_id"], rows["protocol"])) if "protocol" in rows else {}
    columns = [MetricColumn(str(c), str(k), str(m), str(p), bool(h), _ideal(protocols.get(p), str(k)))
               for c, k, m, p, h in zip(cols["column"], cols["key"], cols["metric"], cols["protocol_id"],
                                        cols["higher_is_better"])]

    chosen = None
    if primary is not None:
        chosen = next((c for c in columns if primary in (c.name, c.key)), None) or \
            next((c for c in columns if c.metric == primary), None)
    if chosen is None and not wanted:
        chosen = next((c for c in columns if c.key == "fid"), None)
    chosen = chosen or columns[0]

    mean = part.pivot(index="entity", columns="column", values="mean")
    std = part.pivot(index="entity", columns="column", values="std")
    n = part.pivot(index="entity", columns="column", values="n")
    ci = {side: part.pivot(index="entity", columns="column", values=side) for side in ("ci_low", "ci_high")}
    frame = rows.drop_duplicates("entity").set_index("entity")[entity].copy()
    frame["runs"] = rows.groupby("entity")["run_id"].nunique().reindex(frame.index).astype("int64")
    for c in columns:
        frame[c.name] = mean[c.name].reindex(frame.index).astype("float64")
        frame[f"{c.name}_std"] = std[c.name].reindex(frame.index).astype("float64")
        frame[f"{c.name}_n"] = n[c.name].reindex(frame.index).fillna(0).astype("int64")
        for side, values in ci.items():
            frame[f"{c.name}_{side}"] = values[c.name].reindex(frame.index).astype("float64")
    rank = chosen.badness(frame[chosen.name]).rank(method="min")
    frame.insert(0, "rank", rank.astype("Int64"))
    frame = frame.sort_values(["rank", "model"], na_position="last", kind="stable").reset_index(drop=True)

    first = rows.iloc[0]
    setting = {
        "extractor": "/".join(dict.fromkeys(rows["extractor"].astype(str))),
        "weights_sha256": first["weights_sha256"] if pd.notna(first["weights_sha256"]) else None,
        "weights_standard": bool(rows["weights_standard"].all()),
        "num_samples": _one_or_joined(rows["num_samples"]),
        "num_reference": _one_or_joined(rows["num_reference"]),
    }
    return Leaderboard(dataset=str(first["dataset"]), setting=setting,
                       protocol_ids=tuple(sorted(rows["protocol_id"].astype(str).unique())),
                       columns=columns, primary=chosen.name, frame=frame, by_checkpoint=by_checkpoint,
                       entity_columns=tuple(entity))


def _one_or_joined(values: pd.Series) -> Any:
    unique = list(dict.fromkeys(int(v) for v in values.dropna()))
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else "/".join(map(str, unique))
