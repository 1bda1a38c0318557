"""The results store: schema validation, append-only transactions, concurrent writers,
writers killed mid-transaction, and refusal of files that are not a store."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import sys
import time

import pandas as pd
import pytest

from ganbench.errors import GanbenchError
from ganbench.leaderboards import load, make_protocol, open_store
from ganbench.leaderboards.store import COLUMNS, SQLAlchemyStore, SQLiteStore, validate_row

CTX = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def make_row(**overrides):
    """A valid row; protocol fields follow the overrides."""
    row = dict(
        run_id="run0", timestamp="2024-05-01T12:00:00+00:00", model="dcgan", checkpoint_sha256="ab" * 32,
        step=1000, third_party=False, dataset="mnist:test", split="test", metric="fid", key="fid", value=12.5,
        std=None, ci_low=None, ci_high=None, higher_is_better=False, num_samples=10000, num_reference=10000,
        extractor="inception-v3-fid",
        weights_sha256="6726825d" * 8, weights_standard=True, protocol="", protocol_id="", seed=0,
        ganbench_version="0.1.0", git_commit="deadbeef", torch_version="2.3.0", device="cpu",
        wall_time_s=3.5, source="dcgan", tags="{}", training=None)
    row.update(overrides)
    if not row["protocol"]:
        row["protocol"], row["protocol_id"] = make_protocol(
            extractor=row["extractor"], weights_sha256=row["weights_sha256"], resize="tf1",
            num_samples=row["num_samples"], reference=row["dataset"], num_reference=row["num_reference"],
            metric=row["metric"], metric_version=1)
    return row


@pytest.fixture(params=["sqlite", "sqlalchemy"])
def store(request, tmp_path, require_extra):
    """An empty store in tmp_path/r.sqlite: the SQLite store, or the same file through SQLAlchemy."""
    if request.param == "sqlalchemy":
        require_extra("sqlalchemy", extra="sql")
        return open_store(f"sqlite+pysqlite:///{tmp_path / 'r.sqlite'}")
    return open_store(tmp_path / "r.sqlite")


def test_columns_and_row_factory_agree():
    assert list(make_row()) == list(COLUMNS)


def test_roundtrip_types_and_filters(store, tmp_path):
    assert not store.exists() and len(store) == 0
    assert store.load().columns.tolist() == list(COLUMNS)  # missing store: empty, nothing created
    # nothing created, except the empty file the sqlite3 driver makes when SQLAlchemy connects
    assert (tmp_path / "r.sqlite").exists() == isinstance(store, SQLAlchemyStore)

    rows = [make_row(model="dcgan", value=10.0), make_row(model="wgan_gp", value=7.25, step=None, seed=None),
            make_row(model="dcgan", dataset="fashion_mnist:test", value=30.0),
            make_row(model="dcgan", metric="kid", key="kid", value=0.01, std=0.001),
            make_row(model="dcgan", dataset="mnistlike:test", value=1.0)]
    assert store.append(rows) == 5
    df = store.load()
    assert len(df) == 5 and df["value"].tolist() == [10.0, 7.25, 30.0, 0.01, 1.0]  # insertion order
    assert df["third_party"].dtype == bool and df["weights_standard"].dtype == bool
    assert df["step"].dtype == "Int64" and pd.isna(df["step"].iloc[1]) and df["step"].iloc[0] == 1000
    assert df["num_samples"].dtype == "int64" and df["value"].dtype == "float64"
    assert pd.isna(df["std"].iloc[0]) and df["std"].iloc[3] == 0.001

    # "mnist" matches "mnist" and "mnist:<split>", never "mnistlike:*" or "fashion_mnist:*"
    assert load(dataset="mnist", store=store)["value"].tolist() == [10.0, 7.25, 0.01]
    assert load(dataset="mnist:test", model="dcgan", store=store)["value"].tolist() == [10.0, 0.01]
    assert load(model=["wgan_gp", "nope"], store=store)["value"].tolist() == [7.25]
    assert load(metric="kid", store=store)["key"].tolist() == ["kid"]
    assert load(third_party=False, step=1000, store=store.location)["model"].nunique() == 1
    with pytest.raises(GanbenchError, match="unknown column 'modle'.*Did you mean 'model'"):
        store.load(modle="dcgan")


def test_append_only_rerun_adds_rows(store):
    store.append([make_row(value=1.0)])
    store.append([make_row(value=2.0)])  # same run_id and model: kept side by side
    assert store.load()["value"].tolist() == [1.0, 2.0]


def test_default_location_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_RESULTS", str(tmp_path / "env.sqlite"))
    open_store().append([make_row()])
    assert (tmp_path / "env.sqlite").exists() and len(load()) == 1
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'env.sqlite'}"), SQLiteStore)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("value"), "missing required column.*value"),
    (lambda r: r.update(valeu=1.0), "unknown column.*valeu"),
    (lambda r: r.update(value="12"), "'value' must be a float"),
    (lambda r: r.update(value=float("nan")), "NaN"),
    (lambda r: r.update(step=1.5), "'step' must be an int"),
    (lambda r: r.update(third_party=1), "'third_party' must be a bool"),
    (lambda r: r.update(model=None), "'model' must not be None"),
    (lambda r: r.update(timestamp="yesterday"), "ISO 8601"),
    (lambda r: r.update(tags="[1]"), "tags must be a JSON object"),
])
def test_invalid_rows_are_refused_and_nothing_is_written(store, change, message):
    bad = make_row(run_id="bad")
    change(bad)
    with pytest.raises(GanbenchError, match=message):
        store.append([make_row(), bad])  # the valid first row is not written either
    assert len(store) == 0


def test_optional_columns_may_be_left_out_and_tags_may_be_a_dict():
    row = make_row(tags={"b": 1, "a": "x"})
    for name in ("checkpoint_sha256", "step", "split", "std", "num_reference", "weights_sha256", "seed", "git_commit"):
        del row[name]
    checked = validate_row(row)
    assert checked["step"] is None and checked["tags"] == '{"a": "x", "b": 1}'


def test_make_protocol_is_canonical():
    a = make_protocol(extractor="e", weights_sha256=None, resize="r", num_samples=10, reference="mnist:test",
                      num_reference=5, metric="fid", metric_version=1, options={"b": 1, "a": 2})
    b = make_protocol(options={"a": 2, "b": 1}, metric_version=1, metric="fid", num_reference=5,
                      reference="mnist:test", num_samples=10, resize="r", weights_sha256=None, extractor="e")
    c = make_protocol(extractor="e", weights_sha256=None, resize="r", num_samples=50, reference="mnist:test",
                      num_reference=5, metric="fid", metric_version=1, options={"b": 1, "a": 2})
    assert a == b and a[1] != c[1] and len(a[1]) == 12


# --------------------------------------------------------------------------- concurrency
WRITERS, BATCHES, ROWS_PER_BATCH = 4, 25, 8


def _writer(path: str, writer: int, barrier) -> None:
    store = SQLiteStore(path)
    barrier.wait()
    for b in range(BATCHES):
        store.append([make_row(run_id=f"w{writer}-b{b}", seed=i, value=float(i)) for i in range(ROWS_PER_BATCH)])


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite")
    barrier = CTX.Barrier(WRITERS)
    procs = [CTX.Process(target=_writer, args=(path, w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    df = load(store=path)
    assert len(df) == WRITERS * BATCHES * ROWS_PER_BATCH
    sizes = df.groupby("run_id").size()
    assert len(sizes) == WRITERS * BATCHES and (sizes == ROWS_PER_BATCH).all()
    # each batch is contiguous: transactions never interleave
    for _, ids in df.reset_index().groupby("run_id")["index"]:
        assert ids.max() - ids.min() == ROWS_PER_BATCH - 1


def _hang_mid_transaction(path: str, ready) -> None:
    store = SQLiteStore(path)

    def insert_half_then_hang(conn, rows):
        SQLiteStore._insert(store, conn, rows[: len(rows) // 2])
        ready.set()
        time.sleep(300)

    store._insert = insert_half_then_hang
    store.append([make_row(run_id="doomed", seed=i) for i in range(100)])


def test_writer_killed_mid_transaction_leaves_readable_store(tmp_path):
    path = str(tmp_path / "r.sqlite")
    store = SQLiteStore(path)
    store.append([make_row(run_id="before", seed=i) for i in range(10)])
    ready = CTX.Event()
    proc = CTX.Process(target=_hang_mid_transaction, args=(path, ready))
    proc.start()
    try:
        assert ready.wait(timeout=60), "writer never reached the middle of its transaction"
        assert store.load()["run_id"].unique().tolist() == ["before"]  # readers see no partial batch
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL

    df = store.load()
    assert len(df) == 10 and set(df["run_id"]) == {"before"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.append([make_row(run_id="after")])  # the dead writer's lock is gone
    assert SQLiteStore(path).load()["run_id"].tolist()[-1] == "after"


# --------------------------------------------------------------------------- bad stores
def test_file_that_is_not_a_database_is_refused_not_recreated(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    for action in (lambda s: s.load(), lambda s: s.append([make_row()]), len):
        with pytest.raises(GanbenchError, match="not an SQLite database") as info:
            action(open_store(path))
        assert "\n" not in str(info.value)
    assert path.read_bytes().startswith(b"these are my notes")


def test_corrupt_database_is_one_line_error(tmp_path):
    path = tmp_path / "r.sqlite"
    open_store(path).append([make_row()])
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # trash the schema page
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    path.write_bytes(bytes(data))
    with pytest.raises(GanbenchError, match="not a readable ganbench store") as info:
        open_store(path).load()
    assert "\n" not in str(info.value)


def test_other_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(GanbenchError, match="not a ganbench results store"):
        open_store(path).append([make_row()])
    with pytest.raises(GanbenchError, match="not a ganbench results store"):
        open_store(path).load()


def test_database_url_needs_sqlalchemy(monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # import fails
    with pytest.raises(GanbenchError, match=r"needs SQLAlchemy: pip install 'ganbench\[sql\]'"):
        open_store("postgresql://user:secret@db.example/results")


def test_database_urls_open_an_sqlalchemy_store(tmp_path, require_extra):
    require_extra("sqlalchemy", extra="sql")
    assert isinstance(open_store(f"sqlite+pysqlite:///{tmp_path / 'sa.sqlite'}"), SQLAlchemyStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'r.sqlite'}?timeout=5"), SQLAlchemyStore)


# --------------------------------------------------------------------------- stores that cannot be written
def test_store_under_a_file_names_the_cause(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(GanbenchError, match=r"cannot write results store .*: .*file is a file, not a folder") as info:
        open_store(tmp_path / "file" / "r.sqlite").append([make_row()])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_read_only_store_is_readable_and_says_it_cannot_be_written(tmp_path, monkeypatch, journal):
    path = tmp_path / "r.sqlite"
    open_store(path).append([make_row()])
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal}")
    connect = sqlite3.connect

    def read_only(database, *args, **kwargs):  # root ignores file permissions: open it read-only instead
        return connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr("ganbench.leaderboards.store.sqlite3.connect", read_only)
    assert len(open_store(path).load()) == 1
    with pytest.raises(GanbenchError, match=r"cannot write results store .*readonly") as info:
        open_store(path).append([make_row()])
    assert "not a readable" not in str(info.value) and "\n" not in str(info.value)
