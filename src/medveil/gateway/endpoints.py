"""The addresses a gateway talks to, parsed from what the user types.

A destination is written the way people say it: ``AET@host:port`` for a
DICOM node (C-STORE), or the base URL of a DICOMweb service
(``http://host:8042/dicom-web``) for STOW-RS.  AE titles follow PS3.8 9.3.1
(1 to 16 characters of the default repertoire, no backslash, not all
spaces); a bad one is refused at start-up, not at the first association.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from medveil.errors import MedveilError


class EndpointError(MedveilError):
    """An address, AE title or TLS setting cannot be used."""


_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # default repertoire without backslash


def ae_title(value: str, what: str = "AE title") -> str:
    """*value* checked as an AE title (leading and trailing spaces are not significant)."""
    title = value.strip()
    if not title or not _AE_TITLE.match(title):
        raise EndpointError(f"the {what} must be 1 to 16 printable characters without a backslash")
    return title


def port(value: int, what: str = "port") -> int:
    if not 0 < int(value) < 65536:
        raise EndpointError(f"the {what} must be between 1 and 65535")
    return int(value)


@dataclass(frozen=True)
class Tls:
    """TLS for one side of an association (PS3.15 B.1, the Basic TLS Secure Transport profile).

    *certificate* and *private_key* identify this node; *ca* holds the
    certificates it trusts for its peers.  A server given *ca* requires the
    peer to present a certificate signed by it (mutual TLS); a client given
    no *ca* uses the system's trust store.
    """

    certificate: Path | None = None
    private_key: Path | None = None
    ca: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        if self.certificate is None or self.private_key is None:
            raise EndpointError("TLS for incoming associations needs --tls-cert and --tls-key")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load_own(context)
        if self.ca is not None:
            self._load_ca(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca is not None:
            self._load_ca(context)
        if self.certificate is not None:
            if self.private_key is None:
                raise EndpointError("a TLS client certificate needs its private key")
            self._load_own(context)
        return context

    def _load_own(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(str(self.certificate), str(self.private_key))
        except (OSError, ssl.SSLError) as exc:
            raise EndpointError(f"cannot load the TLS certificate or key ({type(exc).__name__})") from None

    def _load_ca(self, context: ssl.SSLContext) -> None:
        try:
            context.load_verify_locations(cafile=str(self.ca))
        except (OSError, ssl.SSLError) as exc:
            raise EndpointError(f"cannot load the TLS CA certificates ({type(exc).__name__})") from None


@dataclass(frozen=True)
class DicomNode:
    """A remote DICOM application entity: where C-STORE, C-FIND and C-MOVE go."""

    ae_title: str
    host: str
    port: int
    tls: Tls | None = None

    def describe(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


@dataclass(frozen=True)
class DicomWeb:
    """A DICOMweb service's base URL (STOW-RS posts to ``<base>/studies``)."""

    url: str
    tls: Tls | None = None
    timeout: float = 120.0

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"


Destination = DicomNode | DicomWeb


def parse_node(text: str, tls: Tls | None = None, what: str = "destination") -> DicomNode:
    """``AET@host:port`` (IPv6 hosts in brackets: ``AET@[::1]:104``)."""
    title, at, address = text.rpartition("@")
    if not at:
        raise EndpointError(f"the {what} must look like AET@host:port")
    host, colon, number = address.rpartition(":")
    if not colon or not host or not number.isdigit():
        raise EndpointError(f"the {what} must look like AET@host:port")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return DicomNode(ae_title(title, f"{what}'s AE title"), host, port(int(number), f"{what}'s port"), tls)


def parse_destination(text: str, tls: Tls | None = None) -> Destination:
    """A DICOMweb base URL (``http://`` or ``https://``) or a DICOM node (``AET@host:port``)."""
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if not parts.hostname:
            raise EndpointError("the destination URL has no host")
        if parts.username or parts.password:
            raise EndpointError("put no credentials in the destination URL")
        if tls is not None and parts.scheme != "https":
            # urllib ignores a TLS context for http://: the files would go out in plain text.
            raise EndpointError("TLS towards a DICOMweb destination needs an https:// URL")
        return DicomWeb(text.rstrip("/"), tls)
    return parse_node(text, tls)
