"""One virtual environment per peer, created once and reused, with a pinned version.

Pinned, because a score is only comparable from one run to the next when the
peer did not change underneath it; reused, because installing three tools
with their numpy and pydicom takes longer than the benchmark itself.  A stamp
file beside each venv records what was asked for and what pip actually
installed (the peer and the pydicom it pulled in): the table reports those
installed versions, not the pins, since a pin says what we wanted and the
stamp says what ran.  A venv whose stamp does not match the pin (or that a
failed install left half-built) is thrown away and built again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import Peer, PeerError, peer_env, short_reason

DEFAULT_ROOT = Path(".bench/venvs")
STAMP = "medveil-bench.json"

_VERSIONS = (
    "import importlib.metadata as m, json, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class PeerVenv:
    """A ready environment: its interpreter and the versions installed in it."""

    python: Path
    version: str
    pydicom: str | None


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_venv(peer: Peer, root: Path = DEFAULT_ROOT, timeout: float = 900) -> PeerVenv:
    """The peer's environment under ``root/<name>``, built if missing or stale.

    Raises PeerError with a short reason when the venv or the install fails,
    so the benchmark can show the peer as failed and go on with the others.
    """
    venv = root / peer.name
    stamp = venv / STAMP
    cached = _read_stamp(stamp)
    if cached and cached.get("requirement") == peer.requirement and venv_python(venv).exists():
        return PeerVenv(venv_python(venv), cached["version"], cached.get("pydicom"))
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _call([sys.executable, "-m", "venv", str(venv)], "venv", timeout)
    python = venv_python(venv)
    _call([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           peer.requirement], "pip install", timeout)
    versions = installed_versions(python, [peer.distribution, "pydicom"])
    if not versions.get(peer.distribution):
        raise PeerError(f"{peer.distribution} not importable after install")
    record = {"requirement": peer.requirement, "version": versions[peer.distribution],
              "pydicom": versions.get("pydicom")}
    stamp.write_text(json.dumps(record, indent=2) + "\n")
    return PeerVenv(python, record["version"], record["pydicom"])


def installed_versions(python: Path, distributions: list[str]) -> dict[str, str | None]:
    """Versions as the venv's own importlib.metadata sees them (None: not installed)."""
    proc = _call([str(python), "-c", _VERSIONS, *distributions], "version probe", 120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _read_stamp(stamp: Path) -> dict | None:
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None


def _call(cmd: list[str], what: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=peer_env())
    except subprocess.TimeoutExpired:
        raise PeerError(f"{what}: timeout after {timeout:.0f} s") from None
    except OSError as exc:
        raise PeerError(f"{what}: {type(exc).__name__}") from None
    if proc.returncode != 0:
        raise PeerError(f"{what}: {short_reason(proc.stderr or proc.stdout)}")
    return proc
