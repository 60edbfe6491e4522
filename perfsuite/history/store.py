"""The history store: one schema on SQLite (a file, nothing to start) or PostgreSQL (a team's
shared server), through SQLAlchemy Core. Every run goes in whole in one transaction or not at
all; a corrupt, foreign or newer history is one HistoryError naming the file or URL."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from perfsuite.history import schema
from perfsuite.history.location import Access, HistoryError, default_history, history_url, make_sqlite_url, mask_url
from perfsuite.history.runs import RunRecord
from perfsuite.report.metadata import now_iso

__all__ = [  # the store's names, and where a history lives (history.location), for its callers
    "Access",
    "Ack",
    "HistoryError",
    "HistoryStore",
    "StoredPoint",
    "StoredRun",
    "check_history",
    "default_history",
]


@dataclass(frozen=True)
class StoredRun:
    pk: int
    run_id: str
    kind: str
    time: str
    machine_key: str
    tier: str
    commit: str
    environment: dict[str, str]
    settings: dict[str, Any]
    source: str


class StoredPoint(NamedTuple):  # a million of them load at once: a tuple, not a dataclass
    run: int  # StoredRun.pk
    series: str
    metric: str
    scope: str
    value: float
    low: float | None
    high: float | None
    busy: bool


@dataclass(frozen=True)
class Ack:
    change_id: str
    series: str
    metric: str
    scope: str
    run_id: str
    reason: str
    at: str


def _bulk(conn: Any, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """Many rows (tuples in the table's column order) in one executemany, straight to the
    driver: building SQLAlchemy's per-row parameter dicts took most of a 100k-row insert."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    marks = ", ".join(mark for _ in table.columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)


class HistoryStore:
    """A history at a path or URL. `Access.CREATE` (add, run) creates or migrates its schema;
    `UPDATE` (ack) and `READ` (changes, show, html) open one that exists - a typo is "no history
    at ...", never a new empty store reporting all clear - and a reader writes nothing."""

    def __init__(self, target: str, access: Access = Access.CREATE) -> None:
        from sqlalchemy import create_engine

        self.target = str(target)
        self.access = access
        url = history_url(self.target)
        self.backend = url.get_backend_name()
        self.where = mask_url(self.target if self.backend == "sqlite" else url.render_as_string(hide_password=True))
        self._immediate = False
        if self.backend == "sqlite":
            self.engine = self._sqlite_engine(Path(url.database or ""))
        else:
            self.engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        with self._errors():
            if access is Access.READ:
                self._check_schema()
            else:
                self._ensure_schema()

    def _sqlite_engine(self, path: Path):
        import sqlite3

        from sqlalchemy import create_engine, event

        if path.is_dir():
            raise HistoryError(f"history {path}: a folder, not a SQLite file")
        if self.access is Access.CREATE:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"history {path}: cannot create its folder ({exc.strerror})") from None
        elif not path.is_file():
            raise HistoryError(f"no history at {path} (a command that adds runs creates it: `perfsuite history add`)")
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        if self.access is Access.READ and not writable:
            # A read-only file, folder or mount: mode=ro never writes; where even WAL's -shm
            # cannot be made there, immutable=1 reads the file as it is - nobody can write it.
            # (Where it is writable, a reader opens it as usual, so SQLite tidies -wal and -shm.)
            base = f"file:{quote(str(path))}?mode=ro"

            def connect() -> sqlite3.Connection:
                try:
                    conn = sqlite3.connect(base, uri=True, timeout=60)
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    return conn
                except sqlite3.OperationalError as exc:
                    if "unable to open" not in str(exc):
                        raise
                    return sqlite3.connect(base + "&immutable=1", uri=True, timeout=60)

            engine = create_engine("sqlite://", creator=connect)
        else:
            engine = create_engine(make_sqlite_url(path), connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi, _record) -> None:
            dbapi.isolation_level = None  # transactions are begun below, as SQLite means them
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA busy_timeout = 60000")
            if self.access is not Access.READ:
                # WAL: readers (changes, html) go on while a run is written; an uncommitted
                # transaction's frames are ignored after a kill, so the file stays as it was
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            # A writer takes the write lock when it begins: two writers queue instead of one
            # failing when it upgrades a read lock (the deadlock SQLite answers with SQLITE_BUSY).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._immediate else "BEGIN")

        return engine

    # -- transactions and errors ---------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            yield
        except HistoryError:
            raise
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            raise HistoryError(f"history {self.where}: {self._explain(first)}") from None
        except SQLAlchemyError as exc:
            raise HistoryError(f"history {self.where}: {exc}") from None

    def _explain(self, message: str) -> str:
        if "file is not a database" in message or "malformed" in message:
            return f"not a usable SQLite database ({message}); nothing was written"
        if self.backend == "postgresql" and ("connect" in message or "authentication" in message):
            return f"cannot connect to the PostgreSQL server ({message})"
        return message

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction: committed whole, or rolled back (an error, a kill) whole."""
        with self.engine.connect() as conn:
            self._immediate = True
            try:
                conn.begin()
            finally:
                self._immediate = False
            if self.backend == "postgresql":  # writers of one history take turns, schema creation included
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(728374651)")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _tables(self, conn: Any) -> set[str]:
        from sqlalchemy import inspect

        return set(inspect(conn).get_table_names())

    def _meta(self, conn: Any, tables: set[str]) -> int:
        """The stored schema version, after checking the store is a perfsuite history with every
        table of that version (a dropped table is named, never recreated empty)."""
        from sqlalchemy import select

        if schema.meta.name not in tables:
            raise HistoryError(f"history {self.where}: has perfsuite tables but no {schema.meta.name} table")
        values = dict(conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all())
        if values.get("application") != schema.APPLICATION:
            raise HistoryError(
                f"history {self.where}: not a perfsuite history (application {values.get('application')!r})"
            )
        text = values.get("schema_version", "0")
        if not text.isdigit():
            raise HistoryError(f"history {self.where}: its schema_version {text!r} is not a whole number")
        version = int(text)
        if version > schema.SCHEMA_VERSION:
            raise HistoryError(
                f"history {self.where}: schema {version} was written by a newer perfsuite "
                f"(this one reads up to {schema.SCHEMA_VERSION}); upgrade perfsuite"
            )
        missing = [t for t in schema.tables_of(version) if t not in tables]
        if missing:
            raise HistoryError(
                f"history {self.where}: table {', '.join(missing)} is missing (dropped or never written); "
                "nothing was read or written - restore the file from a backup"
            )
        return version

    def _ours(self, conn: Any) -> tuple[set[str], set[str]]:
        tables = self._tables(conn)
        return tables, tables & set(schema.TABLES)

    def _check_schema(self) -> None:
        """A reader's check: an existing, complete, current perfsuite history."""
        with self.engine.connect() as conn:
            tables, ours = self._ours(conn)
            if not ours:
                raise HistoryError(f"no history at {self.where} (it holds no perfsuite tables)")
            version = self._meta(conn, tables)
        if version < schema.SCHEMA_VERSION:
            raise HistoryError(
                f"history {self.where}: schema {version} is older than {schema.SCHEMA_VERSION}; "
                "`perfsuite history add` migrates it"
            )

    def _ensure_schema(self) -> None:
        with self._write() as conn:
            tables, ours = self._ours(conn)
            if not ours:
                if self.access is not Access.CREATE:
                    raise HistoryError(f"no history at {self.where} (it holds no perfsuite tables)")
                if tables and self.backend == "sqlite":
                    listed = ", ".join(sorted(tables)[:5])
                    raise HistoryError(
                        f"history {self.where}: a SQLite database, but not a perfsuite history ({listed})"
                    )
                schema.metadata.create_all(conn)
                conn.execute(
                    schema.meta.insert(),
                    [
                        {"key": "application", "value": schema.APPLICATION},
                        {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                        {"key": "created_at", "value": now_iso()},
                    ],
                )
                return
            version = self._meta(conn, tables)
            for step in range(version, schema.SCHEMA_VERSION):
                if step not in schema.MIGRATIONS:
                    raise HistoryError(f"history {self.where}: no migration from schema {step}")
                schema.MIGRATIONS[step](conn)
            if version != schema.SCHEMA_VERSION:
                conn.execute(
                    schema.meta.update()
                    .where(schema.meta.c.key == "schema_version")
                    .values(value=str(schema.SCHEMA_VERSION))
                )

    def schema_version(self) -> int:
        from sqlalchemy import select

        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
        return int(row[0]) if row else 0

    # -- writing -------------------------------------------------------------------------------
    def add(self, records: Sequence[RunRecord], source: str = "") -> list[str]:
        """Append runs, all in one transaction. A run already in the history is a HistoryError
        naming it and the file it came from; then nothing of this call is written."""
        from sqlalchemy import select

        ids = [r.run_id for r in records]
        seen: dict[str, RunRecord] = {}
        for r in records:
            if r.run_id in seen:
                raise HistoryError(f"run {r.run_id} is in both {seen[r.run_id].source} and {r.source}")
            seen[r.run_id] = r
        added_at = now_iso()
        with self._errors(), self._write() as conn:
            existing: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = select(schema.runs.c.run_id, schema.runs.c.source).where(schema.runs.c.run_id.in_(chunk))
                existing.update(dict(conn.execute(query).all()))
            if existing:
                run_id, first_source = next(iter(existing.items()))
                raise HistoryError(
                    f"{seen[run_id].source}: run {run_id} is already in history {self.where} "
                    f"(added from {first_source}); nothing was added"
                )
            result_rows: list[tuple[Any, ...]] = []  # in the tables' column order, for _bulk
            point_rows: list[tuple[Any, ...]] = []
            for r in records:
                pk = conn.execute(
                    schema.runs.insert().values(
                        run_id=r.run_id,
                        kind=r.kind,
                        time=r.time,
                        machine_key=r.machine_key,
                        tier=r.tier,
                        commit=r.commit,
                        environment=json.dumps(r.environment, sort_keys=True),
                        settings=json.dumps(r.settings, sort_keys=True),
                        source=r.source or source,
                        added_at=added_at,
                    )
                ).inserted_primary_key[0]
                result_rows += [(pk, x.series, x.status, json.dumps(x.entry, allow_nan=False)) for x in r.results]
                point_rows += [(pk, p.series, p.metric, p.scope, p.value, p.low, p.high, p.busy) for p in r.points]
            _bulk(conn, schema.results, result_rows)
            _bulk(conn, schema.points, point_rows)
        return ids

    def add_ack(self, ack: Ack, replace: bool = False) -> Ack | None:
        """Store `ack`; the acknowledgement it replaced, or None. A change already acknowledged
        keeps its reason (HistoryError saying which) unless `replace`."""
        from sqlalchemy import delete, select

        with self._errors(), self._write() as conn:
            row = conn.execute(select(*schema.acks.c).where(schema.acks.c.change_id == ack.change_id)).first()
            before = Ack(*row) if row else None
            if before is not None and not replace:
                raise HistoryError(
                    f"change {ack.change_id} was acknowledged at {before.at}: {before.reason!r}; "
                    "pass --replace to give it the new reason"
                )
            conn.execute(delete(schema.acks).where(schema.acks.c.change_id == ack.change_id))
            conn.execute(schema.acks.insert().values(**ack.__dict__))
        return before

    # -- reading -------------------------------------------------------------------------------
    def runs(self) -> list[StoredRun]:
        from sqlalchemy import select

        r = schema.runs.c
        query = select(
            r.id, r.run_id, r.kind, r.time, r.machine_key, r.tier, r.commit, r.environment, r.settings, r.source
        )
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(query.order_by(r.time, r.id)).all()
        return [
            StoredRun(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), json.loads(row[8]), row[9]
            )
            for row in rows
        ]

    def points(self, metrics: Sequence[str] | None = None) -> list[StoredPoint]:
        from sqlalchemy import select

        p = schema.points.c
        query = select(p.run, p.series, p.metric, p.scope, p.value, p.low, p.high, p.busy)
        if metrics:
            query = query.where(p.metric.in_(list(metrics)))
        with self._errors(), self.engine.connect() as conn:
            return list(map(StoredPoint._make, conn.execute(query).all()))

    def results(self, series: str) -> list[tuple[int, str, dict[str, Any]]]:
        """(run pk, status, the report's entry) of one series, every run that has it."""
        from sqlalchemy import select

        x = schema.results.c
        query = select(x.run, x.status, x.entry).where(x.series == series)
        with self._errors(), self.engine.connect() as conn:
            return [(row[0], row[1], json.loads(row[2])) for row in conn.execute(query)]

    def entry(self, run: int, series: str) -> dict[str, Any] | None:
        """The report's entry of one series in one run (StoredRun.pk), or None."""
        from sqlalchemy import select

        x = schema.results.c
        query = select(x.entry).where(x.run == run, x.series == series)
        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(query).first()
        return json.loads(row[0]) if row else None

    def statuses(self) -> dict[tuple[int, str], str]:
        from sqlalchemy import select

        x = schema.results.c
        with self._errors(), self.engine.connect() as conn:
            return {(row[0], row[1]): row[2] for row in conn.execute(select(x.run, x.series, x.status))}

    def acks(self) -> list[Ack]:
        from sqlalchemy import select

        with self._errors(), self.engine.connect() as conn:
            return [Ack(*row) for row in conn.execute(select(*schema.acks.c))]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_history(target: str) -> str:
    """Open (creating) the history a run will append to, before the run: where it cannot take
    runs, a HistoryError now instead of a lost run at the end. Returns where it is (masked)."""
    with HistoryStore(target, Access.CREATE) as store:
        return store.where
