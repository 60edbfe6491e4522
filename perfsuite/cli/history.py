"""history add / changes / show / ack / html: every run remembered, change points found."""

from __future__ import annotations

import argparse
import json

from .options import HISTORY_HELP, HelpFormatter, at_least, iso_time

EXAMPLES = {
    "add": "perfsuite history add reports/perfsuite/cpu/report.json artifacts/",
    "changes": "perfsuite history changes -k 'tiny-llama3-*' --since 2026-11-01",
    "show": "perfsuite history show -k tiny-llama3-fp32-sdpa-sorted",
    "ack": "perfsuite history ack c1a2b3c4d5e --reason 'sdpa kernel change, intended'",
    "html": "perfsuite history html reports/history-site",
}


def _store(args: argparse.Namespace, access=None):
    """The history as the command needs it: `add` may create it, `ack` updates one that exists,
    the others only read one that exists (the default)."""
    from perfsuite.history.store import Access, HistoryStore

    return HistoryStore(args.history, access or Access.READ)


def _add(args: argparse.Namespace) -> int:
    from perfsuite.history.ingest import add_files
    from perfsuite.history.store import Access

    with _store(args, Access.CREATE) as store:
        records = add_files(store, args.paths)
        figures = sum(len(r.points) for r in records)
        print(f"added {len(records)} runs ({figures} figures) to {store.where}")
    return 0


def _analyse(store, select: str | None, since: str | None, everything: bool = True):
    """(change points, series, compare chains, runs) from one load of the store: every figure
    (the dashboard, show), or only those searched for change points and the compare chain."""
    from perfsuite.history.creep import creep
    from perfsuite.history.series import DETECTED, changes_in, load_series

    wanted = None if everything else [*DETECTED, "head_over_base"]
    series, runs = load_series(store, select, wanted)
    chains = creep([s for s in series if s.key.metric == "head_over_base"], store.acks())
    return changes_in(store, series, since), series, chains, runs


def _changes(args: argparse.Namespace) -> int:
    with _store(args) as store:
        changes, _, chains, _ = _analyse(store, args.select, args.since, everything=False)
    alerting = [c for c in changes if c.alerting]
    creeping = [c for c in chains if c.flagged]
    if args.json:
        doc = {
            "changes": [c.to_json() for c in changes],
            "creep": [c.to_json() for c in chains],
            "alerting": [c.change_id for c in alerting] + [c.change_id for c in creeping],
        }
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        for c in changes:
            print(("ALERT " if c.alerting else "      ") + c.describe())
        for c in chains:
            print(("ALERT " if c.flagged else "      ") + c.describe())
        print(
            f"{len(changes)} change points, {len(alerting)} unacknowledged regressions at their series' latest "
            f"level; compare chains: {len(chains)}, {len(creeping)} creeping"
        )
    return 1 if alerting or creeping else 0


def _show(args: argparse.Namespace) -> int:
    from perfsuite.history.show import render_series

    with _store(args) as store:
        changes, series, _, _ = _analyse(store, args.select, None)
        if not series:
            raise ValueError(f"history {store.where}: no series matches {args.select!r}")
    print(render_series(series, changes, args.width))
    return 0


def _ack(args: argparse.Namespace) -> int:
    from perfsuite.history.store import Access, Ack
    from perfsuite.report.metadata import now_iso

    if not args.reason.strip():
        raise ValueError("--reason must say why the change is intended")
    with _store(args, Access.UPDATE) as store:
        changes, _, chains, _ = _analyse(store, None, None, everything=False)
        found = next((c for c in changes if c.change_id == args.change), None)
        if found is not None:
            key, run_id = found.key, found.run.run_id
            ack = Ack(args.change, key.series, key.metric, key.scope, run_id, args.reason, now_iso())
            before = store.add_ack(ack, replace=args.replace)
            print(f"acknowledged {found.describe()}\n  reason: {args.reason}")
            if before is not None:
                print(f"  (replaced the reason given at {before.at}: {before.reason})")
            return 0
        chain = next((c for c in chains if c.change_id == args.change and c.last), None)
        if chain is None:
            raise ValueError(
                f"history {store.where}: no change point or compare chain {args.change!r} (see `history changes`)"
            )
        ack = Ack(args.change, chain.series, "head_over_base", "*", chain.last.run_id, args.reason, now_iso())
        before = store.add_ack(ack, replace=args.replace)
        print(f"acknowledged the compare chain of {chain.series} up to run {chain.last.run_id[:12]}: {args.reason}")
        if before is not None:
            print(f"  (replaced the reason given at {before.at}: {before.reason})")
    return 0


def _html(args: argparse.Namespace) -> int:
    from pathlib import Path

    from perfsuite.history.dashboard import check_out, is_dashboard, write_dashboard

    out = Path(args.out)
    check_out(out)  # before the history is read: a folder that is not ours is refused at once
    replacing = is_dashboard(out)
    with _store(args) as store:
        changes, series, chains, runs = _analyse(store, args.select, None)
        if args.select and not series:
            raise ValueError(f"history {store.where}: no series matches {args.select!r}")
        pages = write_dashboard(out, runs, series, changes, chains, store.statuses())
    said = "replaced the earlier dashboard: " if replacing else ""
    print(f"dashboard: {said}{len(pages)} pages in {pages[0].parent.resolve()} (open index.html)")
    return 0


def register(sub) -> None:
    from perfsuite.history.store import default_history

    parser = sub.add_parser("history", help="the history of runs: add, change points, show, ack, html dashboard")
    commands = parser.add_subparsers(dest="history_command", required=True)

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = commands.add_parser(
            name,
            help=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=HelpFormatter,
        )
        p.add_argument("--history", default=default_history(), help=HISTORY_HELP)
        p.set_defaults(func=func)
        return p

    add = command("add", "add report.json / compare.json files (or folders of them) as runs", _add)
    add.add_argument("paths", nargs="+", help="report.json, compare.json, or folders holding them")
    changes = command("changes", "change points per series and compare-chain creep (exit 1: an alert)", _changes)
    changes.add_argument("-k", "--select", default=None, help="globs over series (variant ids, bound:variant)")
    changes.add_argument(
        "--since",
        type=iso_time,
        default=None,
        help="only change points from this ISO date or time on (no offset: UTC), e.g. 2026-11-01T13:00+09:00",
    )
    changes.add_argument("--json", action="store_true", help="print JSON instead of lines")
    show = command("show", "a variant's series as sparklines, its change points, its latest runs", _show)
    show.add_argument("-k", "--select", required=True, help="glob over series, e.g. a variant id")
    show.add_argument("--width", type=at_least(8), default=60, help="runs per sparkline (at least 8)")
    ack = command(
        "ack", "acknowledge a change point (intended): it stops alerting, its level becomes the new one", _ack
    )
    ack.add_argument("change", help="the id `history changes` printed (c...)")
    ack.add_argument("--reason", required=True, help="why the change is intended")
    ack.add_argument(
        "--replace", action="store_true", help="give a change already acknowledged this new reason (else refused)"
    )
    html = command("html", "write the static dashboard (offline; one page per tier, the compare chain)", _html)
    html.add_argument("out", help="folder for index.html and the pages")
    html.add_argument("-k", "--select", default=None, help="only these series")
