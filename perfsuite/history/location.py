"""Where a history lives: a SQLite path or a database URL, checked before anything connects,
and how a command may open it. Every message naming a URL masks its password, whatever the
scheme (`mask_url`), because these lines reach terminals, CI logs and reports."""

from __future__ import annotations

import os
import re
from enum import Enum
from pathlib import Path

HISTORY_ENV = "PERFSUITE_HISTORY"


class HistoryError(ValueError):
    """A history that cannot be used as asked (the CLI prints it and exits 2). Its text never
    carries a password: every URL in it is masked here, whoever raised it."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_url(message))


def default_history() -> str:
    """`PERFSUITE_HISTORY`, else history.sqlite under $XDG_DATA_HOME/perfsuite (~/.local/share)."""
    if os.environ.get(HISTORY_ENV):
        return os.environ[HISTORY_ENV]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(data_home / "perfsuite" / "history.sqlite")


def is_url(target: str) -> bool:
    return "://" in target


_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/@:]*:)[^\s@]*@")


def mask_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***, whatever the scheme: what
    perfsuite prints, logs or writes never carries one."""
    return _PASSWORD.sub(r"\1***@", str(text))


def make_sqlite_url(path: Path):
    from sqlalchemy.engine import make_url

    return make_url("sqlite://").set(database=str(path))


class Access(Enum):
    """How a command opens a history: a writer may create it; an updater (ack) and a reader
    need one that exists; a reader never writes (a read-only folder or file is fine)."""

    CREATE = "create"
    UPDATE = "update"
    READ = "read"


SUPPORTED = "a SQLite file path, or a postgresql:// URL naming its database"


def history_url(target: str):
    """A path becomes a SQLite URL; postgresql:// (any case; postgres://, postgresql+psycopg://)
    takes the psycopg (3) driver. Anything else is a HistoryError whose text masks the password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_url(target)
    if not is_url(target):
        return make_sqlite_url(Path(target).expanduser().resolve())
    scheme, _, rest = target.partition("://")
    scheme = scheme.lower()
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg", "sqlite"):
        raise HistoryError(f"--history {shown}: the {scheme}:// scheme is not served; use {SUPPORTED}")
    try:
        url = make_url(f"{scheme}://{rest}")
        port = url.port  # sqlalchemy parses it lazily in some releases
    except (ArgumentError, ValueError) as exc:
        why = str(exc).replace(target, shown)
        port_text = re.search(r"@[^/:]*:([^/]*)", rest)
        if port_text and not port_text.group(1).isdigit():
            why = f"port {port_text.group(1)!r} is not a number"
        raise HistoryError(f"--history {shown}: not a database URL ({mask_url(why)})") from None
    if url.get_backend_name() == "sqlite":
        if not url.database:
            raise HistoryError(f"--history {shown}: a sqlite:// URL needs a file (sqlite:///path/history.sqlite)")
        return url
    if port is not None and not 0 < port < 65536:
        raise HistoryError(f"--history {shown}: port {port} is out of range")
    if not url.database:
        raise HistoryError(
            f"--history {shown}: names no database (postgresql://user@host/DBNAME); perfsuite never "
            "writes into a server's default database"
        )
    return url.set(drivername="postgresql+psycopg")
