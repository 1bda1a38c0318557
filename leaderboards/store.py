"""The results store: every number ganbench computes, appended with its provenance.

One row is one output of one metric for one model in one evaluation run (schema:
:data:`COLUMNS`). The store is append-only: a re-run adds rows, never overwrites.

Backends:

* a path (default ``$GANBENCH_RESULTS``, else ``<user data dir>/ganbench/results.sqlite``):
  an SQLite file in WAL mode with a busy timeout, so several processes can append at once
  without losing rows. Each :meth:`append` is one transaction (all rows or none); a
  process killed mid-transaction leaves the store readable, without its partial batch.
  WAL needs a local file system (not NFS/SMB): use an SQL server for a shared team store.
* a URL (``postgresql://...``, ``mysql+pymysql://...``): an SQLAlchemy engine, for team
  stores; needs the optional extra ``pip install 'ganbench[sql]'``. ``sqlite:///PATH``
  is the built-in SQLite backend and needs nothing extra.

A file that is not an SQLite database is reported, never silently recreated.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ganbench.errors import GanbenchError, UnknownNameError, first_line, write_problem

if TYPE_CHECKING:  # pandas is imported only by readers; writers stay light
    import pandas as pd

SCHEMA_VERSION = 1
TABLE = "results"
META_TABLE = "ganbench_meta"
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another writer's transaction


@dataclass(frozen=True)
class Column:
    type: type  # str, int, float or bool
    nullable: bool = False  # None allowed (and the key may be left out of a row)


# The row schema, in storage order. Every row passed to `append` has these keys.
COLUMNS: dict[str, Column] = {
    "run_id": Column(str),  # one per evaluation invocation (see new_run_id)
    "timestamp": Column(str),  # UTC, ISO 8601
    "model": Column(str),  # model name or input descriptor
    "checkpoint_sha256": Column(str, nullable=True),
    "step": Column(int, nullable=True),  # training step of the checkpoint
    "third_party": Column(bool),  # the checkpoint was not trained by ganbench
    "dataset": Column(str),  # the reference, e.g. "mnist:test"
    "split": Column(str, nullable=True),
    "metric": Column(str),  # metric name: "fid", "kid", "pr"
    "key": Column(str),  # output key: "fid", "kid", "precision"
    "value": Column(float),
    "std": Column(float, nullable=True),  # the metric's own spread (KID subsets, IS splits)
    "ci_low": Column(float, nullable=True),  # confidence interval (ganbench.metrics.bootstrap;
    "ci_high": Column(float, nullable=True),  # its method, replicates and level are in the protocol)
    "higher_is_better": Column(bool),
    "num_samples": Column(int),  # generated images evaluated
    "num_reference": Column(int, nullable=True),  # reference images
    "extractor": Column(str),
    "weights_sha256": Column(str, nullable=True),
    "weights_standard": Column(bool),  # the extractor weights are the official file
    "protocol": Column(str),  # canonical JSON of everything comparability needs (make_protocol)
    "protocol_id": Column(str),  # short hash of `protocol`
    "seed": Column(int, nullable=True),
    "ganbench_version": Column(str),
    "git_commit": Column(str, nullable=True),
    "torch_version": Column(str),
    "device": Column(str),
    "wall_time_s": Column(float),
    "source": Column(str),  # the input descriptor as given
    "tags": Column(str),  # JSON object, "{}" when none
    # JSON: how the evaluated checkpoint was trained (batch size, EMA, raw or EMA generator,
    # precision); None for inputs that are not ganbench checkpoints
    "training": Column(str, nullable=True),
}

_SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL", bool: "INTEGER"}

# Protocol fields that the metrics of one evaluation share (the "setting"): the
# leaderboard puts the metrics of one dataset and setting into one table. Everything else
# in a protocol (metric, version, options, reference details) is per column.
SETTING_FIELDS = ("extractor", "weights_sha256", "input_size", "resize", "num_samples")


# --------------------------------------------------------------------------- helpers
def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


def utc_now() -> str:
    """The current time as a UTC ISO 8601 string, for the ``timestamp`` column."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def canonical_json(obj: Any) -> str:
    """Sorted-key JSON, the form ``protocol`` and ``tags`` are stored in."""
    return json.dumps(obj, sort_keys=True, default=str)


def protocol_hash(protocol: str) -> str:
    """``protocol_id``: the first 12 hex digits of the sha256 of the canonical JSON."""
    return hashlib.sha256(protocol.encode()).hexdigest()[:12]


def make_protocol(*, extractor: str, weights_sha256: str | None, num_samples: int, metric: str,
                  metric_version: Any, options: Mapping[str, Any] | None = None, input_size: int | None = None,
                  resize: str | None = None, reference: str | None = None, num_reference: int | None = None,
                  **extra: Any) -> tuple[str, str]:
    """``(protocol, protocol_id)`` for one metric of one evaluation.

    Two numbers are comparable exactly when their protocols are equal. ``reference`` and
    ``num_reference`` are None for metrics without reference images (IS); ``extra``
    holds anything else that must match (reference content hash, truncation, dtype...).
    The fields in :data:`SETTING_FIELDS` are shared by the metrics of a run.
    """
    fields = dict(extra, extractor=extractor, weights_sha256=weights_sha256, input_size=input_size,
                  resize=resize, num_samples=int(num_samples), reference=reference,
                  num_reference=None if num_reference is None else int(num_reference),
                  metric=metric, metric_version=metric_version, options=dict(options or {}))
    protocol = canonical_json(fields)
    return protocol, protocol_hash(protocol)


def validate_row(row: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """A copy of ``row`` checked against :data:`COLUMNS`, with values in storage types.

    Nullable columns may be left out (stored as None); ``tags`` may be a dict (stored as
    canonical JSON). Raises GanbenchError naming the row and column on any problem.
    """
    where = f"result row {index}"
    if not isinstance(row, Mapping):
        raise GanbenchError(f"{where}: expected a dict, got {type(row).__name__}")
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise GanbenchError(f"{where}: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    missing = [name for name, col in COLUMNS.items() if not col.nullable and name not in row]
    if missing:
        raise GanbenchError(f"{where}: missing required column(s) {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, col in COLUMNS.items():
        value = row.get(name)
        if name == "tags" and isinstance(value, Mapping):
            value = canonical_json(dict(value))
        if value is None:
            if not col.nullable:
                raise GanbenchError(f"{where}: column {name!r} must not be None")
            out[name] = None
            continue
        out[name] = _coerce(value, col.type, f"{where}: column {name!r}")
    if math.isnan(out["value"]):
        raise GanbenchError(f"{where}: value of {out['key']!r} is NaN; store a finite number or inf")
    if out["std"] is not None and math.isnan(out["std"]):
        out["std"] = None
    try:
        datetime.fromisoformat(out["timestamp"])
    except ValueError:
        raise GanbenchError(f"{where}: timestamp {out['timestamp']!r} is not ISO 8601") from None
    try:
        tags = json.loads(out["tags"])
    except json.JSONDecodeError:
        tags = None
    if not isinstance(tags, dict):
        raise GanbenchError(f"{where}: tags must be a JSON object, got {out['tags']!r}")
    return out


def _coerce(value: Any, kind: type, where: str) -> Any:
    # numpy scalars and the like are accepted through their Python equivalents
    if kind is bool:
        if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
            return bool(value)
        raise GanbenchError(f"{where} must be a bool, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise GanbenchError(f"{where} must be a string, got {value!r}")
    if isinstance(value, bool) or isinstance(value, str):
        raise GanbenchError(f"{where} must be a{'n int' if kind is int else ' float'}, got {value!r}")
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise GanbenchError(f"{where} must be a{'n int' if kind is int else ' float'}, got {value!r}") from None
    if kind is int and converted != value:
        raise GanbenchError(f"{where} must be an int, got {value!r}")
    return converted


# --------------------------------------------------------------------------- filters
def _normalise_filters(dataset=None, metric=None, model=None, **filters) -> list[tuple[str, str, list]]:
    """``[(column, op, values)]`` with op "in" (equality) or "dataset" (name or name:split).

    None means no filter; a list or tuple matches any of its values.
    """
    conditions = []
    for name, value, op in [("dataset", dataset, "dataset"), ("metric", metric, "in"), ("model", model, "in")] + \
            [(k, v, "in") for k, v in filters.items()]:
        if name not in COLUMNS:
            raise UnknownNameError("column", name, COLUMNS)
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if values:
            conditions.append((name, op, values))
    return conditions


def _empty_frame() -> "pd.DataFrame":
    import pandas as pd

    return _typed_frame(pd.DataFrame({name: [] for name in COLUMNS}))


def _typed_frame(df: "pd.DataFrame") -> "pd.DataFrame":
    """Columns in schema order with their schema types (nullable ints as Int64; strings
    keep pandas' default string dtype)."""
    import pandas as pd

    df = df.reindex(columns=list(COLUMNS))
    for name, col in COLUMNS.items():
        if col.type is bool:
            df[name] = df[name].astype("bool")
        elif col.type is int:
            df[name] = pd.to_numeric(df[name]).astype("Int64" if col.nullable else "int64")
        elif col.type is float:
            df[name] = pd.to_numeric(df[name]).astype("float64")
    return df


# --------------------------------------------------------------------------- stores
class ResultsStore:
    """Interface of a results store."""

    location: str

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Validate and add ``rows`` in one transaction; returns how many were added."""
        raise NotImplementedError

    def load(self, dataset: str | Sequence[str] | None = None, metric: str | Sequence[str] | None = None,
             model: str | Sequence[str] | None = None, **filters: Any) -> "pd.DataFrame":
        """Rows matching the filters (None: no filter; a list: any of), oldest first.

        ``dataset="mnist"`` matches "mnist" and every "mnist:<split>"; other filters are
        equalities on :data:`COLUMNS`.
        """
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.load())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


class SQLiteStore(ResultsStore):
    """A results store in one SQLite file (WAL mode). Safe for concurrent processes.

    A connection is opened per operation, so the object can be shared with (or forked
    into) worker processes.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._ready = False

    # -- connection and schema
    def exists(self) -> bool:
        return self.path.exists()

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise GanbenchError(f"results store {self.path} is a directory, not an SQLite file")
        try:
            with open(self.path, "rb") as f:
                header = f.read(16)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise GanbenchError(f"cannot read results store {self.path}: {exc.strerror or exc}") from None
        if header and header != b"SQLite format 3\x00":
            raise GanbenchError(f"results store {self.path} is not an SQLite database; "
                                f"move it away or point GANBENCH_RESULTS/--store elsewhere")

    def _connect(self) -> sqlite3.Connection:
        self._check_file()
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise GanbenchError(f"cannot open results store {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _set_wal(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._error(exc) from None
        return conn

    def _error(self, exc: Exception) -> GanbenchError:
        if isinstance(exc, GanbenchError):
            return exc
        return GanbenchError(f"results store {self.path} is not a readable ganbench store: {exc}")

    def _write_error(self, exc: Exception) -> GanbenchError:
        """Why an append failed: the file system (read-only, a file in the way, locked) or the file."""
        if isinstance(exc, (OSError, sqlite3.OperationalError)):
            return GanbenchError(f"cannot write results store {self.path}: {write_problem(self.path, exc)}")
        return self._error(exc)

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create (or extend) the tables; call inside a write transaction."""
        if self._ready:
            return
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if TABLE not in tables and (tables - {META_TABLE, "sqlite_sequence"}):
            raise GanbenchError(f"{self.path} is an SQLite database but not a ganbench results store "
                                f"(tables: {', '.join(sorted(tables))})")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise GanbenchError(f"results store {self.path} has schema version {row[0]}, newer than this "
                                f"ganbench understands ({SCHEMA_VERSION}); upgrade ganbench")
        columns = ",\n  ".join(
            f"{name} {_SQL_TYPES[col.type]}{'' if col.nullable else ' NOT NULL'}" for name, col in COLUMNS.items())
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  {columns}\n)")
        present = {r[1] for r in conn.execute(f"PRAGMA table_info({TABLE})")}
        for name, col in COLUMNS.items():  # additive migration from older schemas
            if name not in present:
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {_SQL_TYPES[col.type]}")
        for name in ("dataset", "model", "run_id"):
            conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_{name} ON {TABLE} ({name})")
        conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        self._ready = True

    # -- writing
    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        checked = [validate_row(row, i) for i, row in enumerate(rows)]
        if not checked:
            return 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._write_error(exc) from None
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            try:
                self._ensure_schema(conn)
                self._insert(conn, checked)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None
        finally:
            conn.close()
        return len(checked)

    def _insert(self, conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        names = list(COLUMNS)
        sql = f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.executemany(sql, ([row[n] for n in names] for row in rows))

    # -- reading
    def load(self, dataset=None, metric=None, model=None, **filters) -> "pd.DataFrame":
        import pandas as pd

        conditions = _normalise_filters(dataset, metric, model, **filters)
        if not self.exists():
            return _empty_frame()
        where, params = [], []
        for name, op, values in conditions:
            if op == "dataset":
                parts = []
                for v in values:
                    parts.append("(dataset = ? OR substr(dataset, 1, ?) = ?)")
                    params += [str(v), len(str(v)) + 1, f"{v}:"]
                where.append("(" + " OR ".join(parts) + ")")
            else:
                where.append(f"{name} IN ({', '.join('?' * len(values))})")
                params += [_sql_value(v) for v in values]
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        conn = self._connect()
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if TABLE not in tables:
                if tables - {META_TABLE, "sqlite_sequence"}:
                    raise GanbenchError(f"{self.path} is an SQLite database but not a ganbench results store")
                return _empty_frame()
            cursor = conn.execute(sql, params)
            records = cursor.fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            conn.close()
        return _typed_frame(pd.DataFrame.from_records(records, columns=list(COLUMNS)))

    def __len__(self) -> int:
        if not self.exists():
            return 0
        conn = self._connect()
        try:
            return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            conn.close()


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (persistent; readers never block writers). Changing the
    journal mode needs an exclusive lock and SQLite answers "database is locked" at once,
    without its busy handler, while another connection holds one (several writers opening
    a new store together): retry until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):  # a read-only store stays readable; append says why it cannot write
                return
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _sql_value(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v


class SQLAlchemyStore(ResultsStore):
    """A results store in any database SQLAlchemy can reach (a team's PostgreSQL...)."""

    def __init__(self, url: str):
        try:
            import sqlalchemy as sa
        except ImportError:
            raise GanbenchError(f"results store {_redact(url)} is a database URL, which needs SQLAlchemy: "
                                "pip install 'ganbench[sql]'") from None
        self.sa = sa
        self.location = _redact(url)
        try:
            self.engine = sa.create_engine(url)
        except Exception as exc:  # noqa: BLE001 -- bad URL, missing driver
            raise GanbenchError(f"cannot open results store {self.location}: {first_line(exc)}") from None
        types = {str: sa.Text, int: sa.BigInteger, float: sa.Float(53), bool: sa.Boolean}
        self.meta = sa.MetaData()
        self.table = sa.Table(
            TABLE, self.meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            *[sa.Column(name, types[col.type], nullable=col.nullable) for name, col in COLUMNS.items()])
        self._ready = False

    def _ensure_schema(self) -> None:
        if not self._ready:
            self.meta.create_all(self.engine, checkfirst=True)
            self._ready = True

    def exists(self) -> bool:
        try:
            return self.sa.inspect(self.engine).has_table(TABLE)
        except self.sa.exc.SQLAlchemyError as exc:
            raise GanbenchError(f"cannot read results store {self.location}: {first_line(exc)}") from None

    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        checked = [validate_row(row, i) for i, row in enumerate(rows)]
        if not checked:
            return 0
        try:
            self._ensure_schema()
            with self.engine.begin() as conn:  # one transaction
                conn.execute(self.table.insert(), checked)
        except self.sa.exc.SQLAlchemyError as exc:
            raise GanbenchError(f"cannot write results store {self.location}: {first_line(exc)}") from None
        return len(checked)

    def load(self, dataset=None, metric=None, model=None, **filters) -> "pd.DataFrame":
        import pandas as pd

        sa, t = self.sa, self.table
        conditions = _normalise_filters(dataset, metric, model, **filters)
        if not self.exists():
            return _empty_frame()
        stmt = sa.select(*[t.c[name] for name in COLUMNS]).order_by(t.c.id)
        for name, op, values in conditions:
            if op == "dataset":
                stmt = stmt.where(sa.or_(*[sa.or_(t.c.dataset == str(v),
                                                  sa.func.substr(t.c.dataset, 1, len(str(v)) + 1) == f"{v}:")
                                           for v in values]))
            else:
                stmt = stmt.where(t.c[name].in_(values))
        try:
            with self.engine.connect() as conn:
                records = conn.execute(stmt).fetchall()
        except self.sa.exc.SQLAlchemyError as exc:
            raise GanbenchError(f"cannot read results store {self.location}: {first_line(exc)}") from None
        return _typed_frame(pd.DataFrame.from_records([tuple(r) for r in records], columns=list(COLUMNS)))


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# --------------------------------------------------------------------------- opening
def default_location() -> str:
    """``$GANBENCH_RESULTS``, else ``<user data dir>/ganbench/results.sqlite``."""
    env = os.environ.get("GANBENCH_RESULTS")
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("ganbench")) / "results.sqlite")


def open_store(location: "str | os.PathLike | ResultsStore | None" = None) -> ResultsStore:
    """The store at ``location``: a path, ``sqlite:///PATH``, a database URL, or a store.

    Opening never creates anything; the first :meth:`~ResultsStore.append` does.
    """
    if isinstance(location, ResultsStore):
        return location
    loc = str(location) if location is not None else default_location()
    if loc.startswith("sqlite:///") and len(loc) > len("sqlite:///") and "?" not in loc:
        return SQLiteStore(loc[len("sqlite:///"):])
    if "://" in loc:
        return SQLAlchemyStore(loc)
    return SQLiteStore(loc)


def load(dataset: str | Sequence[str] | None = None, metric: str | Sequence[str] | None = None,
         model: str | Sequence[str] | None = None, store: "str | os.PathLike | ResultsStore | None" = None,
         **filters: Any) -> "pd.DataFrame":
    """Stored results as a DataFrame with the :data:`COLUMNS`, oldest first.

    ``dataset="mnist"`` matches "mnist" and "mnist:<split>"; ``metric``, ``model`` and any
    other column given as a keyword match exactly (a list matches any of its values).
    """
    return open_store(store).load(dataset=dataset, metric=metric, model=model, **filters)
