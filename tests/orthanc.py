"""A real Orthanc for the gateway tests: started on free loopback ports with a generated configuration.

Orthanc comes from the Debian packages ``orthanc`` and ``orthanc-dicomweb``
(``make test`` installs them where apt works); without them the tests that
need it skip and say so.  Nothing here waits a fixed time: readiness and
arrivals are polled with generous deadlines.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
MISSING = ("Orthanc is not installed (Debian packages 'orthanc' and 'orthanc-dicomweb'; `make test` installs "
           "them where apt-get works as root or with password-less sudo)")


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or (shutil.which("Orthanc", path="/usr/sbin:/usr/bin"))


def require_orthanc() -> str:
    binary = orthanc_binary()
    if binary is None:
        pytest.skip(MISSING)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 120.0, what: str = "condition", interval: float = 0.2):
    """Poll *predicate* until it returns something truthy; fail after *timeout* seconds (generous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class Orthanc:
    """One Orthanc process; ``modalities`` maps a name to (AET, host, port) for C-MOVE destinations."""

    def __init__(self, root: Path, *, aet: str = "ORTHANC", dicom_port: int | None = None,
                 http_port: int | None = None, modalities: dict | None = None) -> None:
        self.binary = require_orthanc()
        self.root = Path(root)
        self.aet = aet
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.modalities = modalities or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def node(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def config(self) -> dict:
        storage = self.root / "storage"
        config = {
            "Name": f"medveil-test-{self.aet}",
            "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "StorageCompression": False,
            "HttpServerEnabled": True, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "SslEnabled": False,
            "DicomServerEnabled": True, "DicomAet": self.aet, "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
            "UnknownSopClassAccepted": True, "OverwriteInstances": False,
            "DicomModalities": {name: list(value) for name, value in self.modalities.items()},
            "DicomScuTimeout": 60, "DicomScpTimeout": 60,
            "ConcurrentJobs": 1, "LimitFindResults": 0, "LimitFindInstances": 0,
            "Plugins": [],
        }
        if DICOMWEB_PLUGIN.exists():
            config["Plugins"] = [str(DICOMWEB_PLUGIN)]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": True}
        return config

    def start(self) -> Orthanc:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=2))
        self.log = open(self.root / "orthanc.log", "ab")
        self.process = subprocess.Popen([self.binary, str(path)], stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        wait_for(self._ready, 120, "Orthanc to answer on its HTTP port")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Orthanc exited with {self.process.returncode}; see {self.root}/orthanc.log")
        try:
            self.get("/system")
            return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process = None
        if getattr(self, "log", None):
            self.log.close()

    # -- REST --------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> bytes:
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": content_type} if body is not None else {})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def get(self, path: str):
        return json.loads(self.request("GET", path))

    def upload(self, data: bytes) -> dict:
        return json.loads(self.request("POST", "/instances", data, "application/dicom"))

    def instances(self) -> list[str]:
        return self.get("/instances")

    def files(self) -> list[bytes]:
        return [self.request("GET", f"/instances/{i}/file") for i in self.instances()]

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
