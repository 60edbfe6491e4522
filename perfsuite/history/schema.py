"""The history's one schema (SQLAlchemy Core, the same tables on SQLite and PostgreSQL), its
version, and the migrations that bring an older history up to it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1
APPLICATION = "perfsuite-history"

metadata = MetaData()

meta = Table(
    "perfsuite_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "perfsuite_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # run | rebaseline | compare
    Column("time", String(40), nullable=False),  # ISO 8601 UTC: series are ordered by it, not by insertion
    Column("machine_key", String(200), nullable=False),
    Column("tier", String(200), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("environment", Text, nullable=False),  # JSON: versions and provenance
    Column("settings", Text, nullable=False),  # JSON: data digest, workload, compare's sides
    Column("source", Text, nullable=False),  # the file it came from, or the command that ran it
    Column("added_at", String(40), nullable=False),
)

results = Table(
    "perfsuite_results",
    metadata,
    Column("run", Integer, ForeignKey("perfsuite_runs.id", ondelete="CASCADE"), nullable=False),
    Column("series", String(300), nullable=False),  # variant id, relative bound, compared variant
    Column("status", String(32), nullable=False),
    Column("entry", Text, nullable=False),  # JSON: every figure the report held for it
    PrimaryKeyConstraint("run", "series"),
)

points = Table(
    "perfsuite_points",
    metadata,
    Column("run", Integer, ForeignKey("perfsuite_runs.id", ondelete="CASCADE"), nullable=False),
    Column("series", String(300), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("scope", String(200), nullable=False),  # a machine key, or "*" for a portable figure
    Column("value", Float, nullable=False),
    Column("low", Float),
    Column("high", Float),
    Column("busy", Boolean, nullable=False),  # timed on a busy machine: drawn, not searched
    PrimaryKeyConstraint("run", "series", "metric"),
    Index("perfsuite_points_by_series", "series", "metric", "scope"),
)

acks = Table(
    "perfsuite_acks",
    metadata,
    Column("change_id", String(32), primary_key=True),
    Column("series", String(300), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("run_id", String(64), nullable=False),  # the run where the acknowledged level starts
    Column("reason", Text, nullable=False),
    Column("at", String(40), nullable=False),
)

TABLES = tuple(t.name for t in metadata.sorted_tables)

# version -> the step that brings a history of that version to version + 1 (creating any table
# it adds), run inside the same transaction as the version bump (SQLite and PostgreSQL both roll
# DDL back).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

# The tables a history of each version holds: one missing is a damaged store, named, never
# silently recreated empty.
TABLES_SINCE: dict[str, int] = dict.fromkeys(TABLES, 1)


def tables_of(version: int) -> list[str]:
    return [name for name, since in TABLES_SINCE.items() if since <= version]
