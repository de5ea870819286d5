"""Progress: a bar on a terminal; off a terminal quiet unless asked for, then a line every so often."""

from __future__ import annotations

import io
import threading

from medveil.cli.progress import RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_rate_eta_and_quarantined_so_far():
    stream, clock = io.StringIO(), Clock()
    with RunProgress(stream=stream, every=10, clock=clock) as progress:
        progress.set_total(100)
        for number in range(40):
            clock.now += 0.5
            progress("quarantined" if number % 10 == 0 else "written")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # 20 s of work: a line at 10 s and one at 20 s
    assert lines[0].startswith("medveil de-identifying: 20/100 files (20%), 2.0 files/s")
    assert "ETA 40s" in lines[0] and "quarantined so far: 2" in lines[0]
    assert lines[1].startswith("medveil de-identifying: 40/100 files (40%)") and "ETA 30s" in lines[1]


def test_no_lines_when_turned_off():
    stream, clock = io.StringIO(), Clock()
    with RunProgress(stream=stream, every=0, clock=clock) as progress:
        for _ in range(10):
            clock.now += 100
            progress("written")
    assert stream.getvalue() == ""


def test_quiet_off_a_terminal_by_default():
    stream, clock = io.StringIO(), Clock()
    with RunProgress(stream=stream, clock=clock) as progress:
        progress.set_total(5)
        for _ in range(5):
            clock.now += 1000
            progress("written")
    assert stream.getvalue() == "" and progress.done == 5


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_and_none_with_json():
    shown, hidden = Terminal(), Terminal()
    with RunProgress("verifying", stream=shown, held_label="flagged") as progress:
        progress.set_total(2)
        progress("quarantined")
        progress("written")
    with RunProgress("verifying", stream=hidden, quiet=True, every=1) as progress:
        progress("written")
    assert "verifying" in shown.getvalue()
    assert hidden.getvalue() == ""


def test_own_units_and_held_word():
    stream, clock = io.StringIO(), Clock()
    with RunProgress("generating", stream=stream, every=1, clock=clock, held="left out",
                     unit="sources") as progress:
        progress.set_total(4)
        for status in ("written", "left out", "written", "written"):
            clock.now += 1
            progress(status)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("medveil generating: 4/4 sources (100%), 1.0 sources/s")
    assert last.endswith("left out so far: 1")


def test_counts_from_many_threads_add_up():
    progress = RunProgress(stream=io.StringIO())
    with progress:
        threads = [threading.Thread(target=lambda: [progress("written") for _ in range(500)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert progress.done == 4000 and progress.statuses["written"] == 4000
