"""Other de-identification tools, run over the same synthetic set as medveil.

Each peer lives in its own virtual environment (see ``venvs``) because the
peers pin pydicom, numpy and friends differently from medveil and from one
another: importing them into medveil's environment would measure a setup no
user of theirs has.  So a peer is driven from outside: this package writes a
small stdlib-only driver script, and the peer's own interpreter runs it.

The driver walks the input tree and writes each output at the SAME relative
path.  That is what lets ``medveil validate --original`` pair inputs with
outputs for tools that write no UID or patient-ID mapping files: none of the
peers do, and several remove or replace every UID, so without the path there
would be nothing to pair on.

A per-file failure is counted, not fatal: a real batch goes on past one bad
file, and the count is part of what the benchmark reports.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PEER_NAMES = ("dicognito", "deid", "anonymizer")
"""Every peer the benchmark knows, in table order."""

RESULT_MARKER = "MIDI-BENCH-RESULT "
"""Prefix of the driver's one result line; peers print their own chatter to stdout too."""


@dataclass(frozen=True)
class Peer:
    """How to install one peer and what its driver does to one file.

    ``driver`` is Python source, run in the peer's environment, defining
    ``setup()`` (called once; its result is handed to every ``process`` call,
    so per-run state such as a consistent pseudonym table is shared across
    files as the tool's own batch mode would) and ``process(state, src, dst)``.
    ``default`` says in words which default behaviour the driver uses, for the
    report: a benchmark of a peer is only as fair as that choice.
    """

    name: str
    requirement: str
    distribution: str
    driver: str
    default: str


@dataclass
class PeerRun:
    """What one driver run did: counts, per-error-type tallies, wall time, or why it failed."""

    total: int = 0
    written: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str | None = None


class PeerError(RuntimeError):
    """A peer could not be installed or run at all; the message is short enough for a table cell."""


_DRIVER_LOOP = '''
# --- driver loop (written by medveil's benchmarks/peers; stdlib only) ---
import json as _json
import sys as _sys
import traceback as _traceback
from pathlib import Path as _Path


class Skipped(Exception):
    """The tool itself would have left this file out."""


def _main(argv):
    source, target = _Path(argv[1]), _Path(argv[2])
    files = sorted(p for p in source.rglob("*") if p.is_file())
    state = setup()
    written, errors = 0, {}
    for src in files:
        rel = src.relative_to(source)
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            process(state, src, dst)
        except Exception as exc:  # counted, not fatal: a batch goes on
            kind = "skipped: " + str(exc) if isinstance(exc, Skipped) else type(exc).__name__
            errors[kind] = errors.get(kind, 0) + 1
            print("error: %s: %s" % (rel, _traceback.format_exception_only(type(exc), exc)[-1].strip()),
                  file=_sys.stderr)
        if dst.is_file():
            written += 1
    print("''' + RESULT_MARKER + '''" + _json.dumps({"total": len(files), "written": written, "errors": errors}))


if __name__ == "__main__":
    _main(_sys.argv)
'''


def build_driver(peer: Peer) -> str:
    """The whole script a peer's interpreter runs: its ``setup``/``process`` plus the shared loop."""
    return f'"""Benchmark driver for {peer.name} ({peer.requirement}): {peer.default}."""\n' \
        + peer.driver.strip() + "\n\n" + _DRIVER_LOOP


def parse_driver_output(stdout: str) -> dict:
    """The driver's result object: the last line that carries the marker."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise PeerError("driver printed no result")


def short_reason(text: str, limit: int = 80) -> str:
    """The last non-empty line of a tool's error output, cut to fit a table cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1] if lines else "no output"
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def peer_env() -> dict[str, str]:
    """This process's environment without what would make the peer's Python see medveil's venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_peer(peer: Peer, python: Path, input_dir: Path, output_dir: Path, timeout: float,
             workdir: Path) -> PeerRun:
    """Run ``peer`` over ``input_dir`` into ``output_dir`` with its own interpreter.

    The driver script and the peer's stderr are kept in ``workdir``
    (driver.py, peer.log), so a surprising score can be traced to what the
    peer was actually asked to do and what it said.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    driver = workdir / "driver.py"
    driver.write_text(build_driver(peer))
    log = workdir / "peer.log"
    start = time.perf_counter()
    try:
        with log.open("w") as stderr:
            proc = subprocess.run([str(python), str(driver), str(input_dir), str(output_dir)],
                                  stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=timeout,
                                  env=peer_env())
    except subprocess.TimeoutExpired:
        return PeerRun(seconds=time.perf_counter() - start, failure=f"timeout after {timeout:.0f} s")
    seconds = time.perf_counter() - start
    try:
        result = parse_driver_output(proc.stdout)
    except (PeerError, ValueError):
        return PeerRun(seconds=seconds, failure=f"exit {proc.returncode}: {short_reason(log.read_text())}")
    return PeerRun(total=result["total"], written=result["written"], errors=result["errors"],
                   seconds=seconds)


def get_peer(name: str) -> Peer:
    """The peer called ``name`` (imported on demand, so a typo names what exists)."""
    if name not in PEER_NAMES:
        raise PeerError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")
    return importlib.import_module(f".{name}_peer", __name__).PEER


__all__ = ["PEER_NAMES", "Peer", "PeerError", "PeerRun", "build_driver", "get_peer",
           "parse_driver_output", "peer_env", "run_peer", "short_reason"]
