"""Progress off a terminal: a line every so often on stderr, counts only."""

from __future__ import annotations

import io

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
