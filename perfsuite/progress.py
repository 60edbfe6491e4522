"""Progress you can see: a count and an ETA for the long commands.

On a terminal, a rich progress bar on stderr; elsewhere (CI logs, pipes) one line per step,
`[3/94 3%, 1m20s, ETA 41m] tiny-llama3-fp32-sdpa-sorted: pass`, so a log shows the same.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """`with Progress(total, "variants") as p: ... p.advance("variant: pass")`."""

    def __init__(self, total: int, what: str, stream=None, bar: bool | None = None) -> None:
        self.total, self.what, self.done = max(total, 0), what, 0
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.start = time.perf_counter()
        self._rich = None
        self._task = None

    def __enter__(self) -> Progress:
        if self.bar:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.what, total=self.total)
        return self

    def eta(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return (time.perf_counter() - self.start) / self.done * (self.total - self.done)

    def line(self, label: str) -> str:
        elapsed = _clock(time.perf_counter() - self.start)
        share = f" {self.done / self.total:.0%}" if self.total else ""
        eta = self.eta()
        tail = f", ETA {_clock(eta)}" if eta is not None else ""
        return f"[{self.done}/{self.total}{share}, {elapsed}{tail}] {label}"

    def advance(self, label: str = "") -> None:
        self.done += 1
        if self._rich is not None:
            self._rich.update(self._task, advance=1, description=f"{self.what}: {label}" if label else self.what)
            if label:
                self._rich.console.print(self.line(label))
        else:
            print(self.line(label), file=self.stream, flush=True)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.stop()
