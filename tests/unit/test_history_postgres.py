"""The same history on a real PostgreSQL server started by the test: runs in, change points out,
two concurrent writers lose nothing, a server that is down or refuses the login is one error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perfsuite.cli import main
from perfsuite.history.ingest import add_files
from perfsuite.history.series import find_changes
from perfsuite.history.store import HistoryError, HistoryStore
from tests.postgres import postgres_server, server_binaries
from tests.unit.history_data import report, write

pytestmark = pytest.mark.skipif(
    server_binaries() is None, reason="no PostgreSQL server binaries (Debian package postgresql; .ci/run installs it)"
)
pytest.importorskip("psycopg", reason="psycopg (the PostgreSQL driver, in the dev extra) is not installed")

V = "tiny-llama3-fp32-sdpa-sorted"


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_runs_go_in_and_a_step_comes_out_on_postgresql(pg_url, tmp_path):
    docs = [report(i, {V: 100.0 * (1.3 if i >= 8 else 1.0) * (1 + 0.003 * (i % 3))}) for i in range(14)]
    with HistoryStore(pg_url) as store:
        assert store.backend == "postgresql" and store.schema_version() == 1
        add_files(store, write(tmp_path, docs))
        with pytest.raises(HistoryError, match="already in history"):
            add_files(store, write(tmp_path / "again", docs[:1]))
        (change,) = [c for c in find_changes(store, V)[0] if c.key.metric == "latency_ms"]
        assert change.index == 8 and change.ratio == pytest.approx(1.3, rel=0.02)
        assert len(store.runs()) == 14


_WRITER = """
import sys
from perfsuite.history.ingest import add_files
from perfsuite.history.store import HistoryStore
store = HistoryStore(sys.argv[1])
for path in sys.argv[2:]:
    add_files(store, [path])
"""


def test_two_concurrent_writers_lose_nothing_on_postgresql(pg_url, tmp_path):
    before = len(HistoryStore(pg_url).runs())
    paths = [str(p) for p in write(tmp_path, [report(100 + i, {V: 100.0}) for i in range(20)])]
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, pg_url, *half]) for half in (paths[0::2], paths[1::2])]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(HistoryStore(pg_url).runs()) == before + 20


def test_a_server_that_is_down_is_exit_2_naming_the_url_without_its_password(tmp_path, capsys):
    from tests.postgres import _free_port

    url = f"postgresql://perfsuite:secret@127.0.0.1:{_free_port()}/postgres"
    (path,) = write(tmp_path, [report(0, {V: 1.0})])
    assert main(["history", "add", str(path), "--history", url]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL server" in err and "127.0.0.1" in err
    assert "secret" not in err and "Traceback" not in err


def test_a_refused_login_is_exit_2(pg_url, tmp_path, capsys):
    bad = pg_url.replace("perfsuite@", "nobody@")
    (path,) = write(tmp_path, [report(0, {V: 1.0})])
    assert main(["history", "add", str(path), "--history", bad]) == 2
    err = capsys.readouterr().err
    assert "nobody" in err and "Traceback" not in err
