"""``medveil review``: the review page for a run's workspace, served on this machine."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import quote

import typer
from rich.markup import escape

from medveil.cli.common import fail
from medveil.errors import MedveilError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def review(
    workspace: Path = typer.Argument(..., metavar="WORKSPACE",
                                     help="The run's private workspace (e.g. OUTPUT.medveil-workspace)."),
    run: str | None = typer.Option(None, "--run", help="A run id (or its start); default: the latest run."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    token: str = typer.Option(
        "auto", "--token", help="Token every request must carry: auto (a new one each start, in the printed "
                                "address) or your own; none: no token, loopback only, and then every account of "
                                "this machine can open the page."),
    key_file: Path | None = typer.Option(
        None, "--key-file", "-k", help="The run's key (or set MEDVEIL_KEY_FILE): needed to release files."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="The run's profile: needed to release files."),
    option: list[str] = typer.Option([], "--option", "-o", help="The run's extra options (repeatable)."),
    without: list[str] = typer.Option([], "--without", help="Options the run dropped (repeatable)."),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", exists=True, help="The run's YAML recipe."),
    sequential_ids: bool = typer.Option(False, "--sequential-ids", metavar="", help="The run numbered patients."),
    output: Path | None = typer.Option(
        None, "--output", help="The release tree (default: where the run wrote, as its workspace recorded)."),
    mappings: Path | None = typer.Option(
        None, "--mappings", help="The run's mapping directory: released files' pairs are merged into it."),
) -> None:
    """Serve the review page: run summary, quarantine decisions, masked pixels before/after, header differences."""
    try:
        import uvicorn

        from medveil.review.app import ReviewSettings, create_app
        from medveil.review.decisions import Reviewer
        from medveil.review.overview import load
    except ImportError:
        fail(escape("the review page needs the review extra: pip install 'medveil[review]'"))
    loopback = _is_loopback(host)
    try:
        required = page_token(token, loopback)
    except MedveilError as exc:
        fail(escape(str(exc)))
    try:
        load(workspace, run)  # fail now, not on the first request
        reviewer = _reviewer(key_file, profile, option, without, recipe, sequential_ids, output, mappings, Reviewer)
    except MedveilError as exc:
        fail(escape(str(exc)))
    app = create_app(ReviewSettings(workspace=workspace, run_id=run, token=required, loopback=loopback,
                                    reviewer=reviewer))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the address is announced: a browser that connects at once waits in the
        # backlog until the server accepts, instead of being refused.
        sock.listen(128)
    except OSError as exc:
        fail(f"cannot listen on {escape(host)}:{port} ({type(exc).__name__})")
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}/" + (f"?token={quote(required, safe='')}" if required else "")
    print(f"review page: {url}", flush=True)
    if reviewer.key is None or reviewer.policy is None:
        print("releasing quarantined files is off: pass the run's --key-file and --profile/--option", flush=True)
    print("press Ctrl-C to stop", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    sys.stdout.flush()


def page_token(token: str, loopback: bool) -> str | None:
    """The token the page will require, or None for none.

    Loopback is not private to the user: every account of the machine can
    connect to 127.0.0.1, and the page shows original pixels and releases
    files.  So a token is the default everywhere; going without one is a
    choice, and only on loopback.
    """
    if token == "auto":
        return secrets.token_urlsafe(24)
    if token == "none":
        if not loopback:
            raise MedveilError("listening on an address other than loopback needs a token (--token auto, the "
                               "default, or your own): the page shows original pixels")
        return None
    if len(token) < 16:
        raise MedveilError("a token of your own must be at least 16 characters (or use --token auto)")
    return token


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reviewer(key_file, profile, option, without, recipe, sequential_ids, output, mappings, reviewer_type):
    from dataclasses import replace

    from medveil.cli.deidentify import KEY_ENV, build_policy
    from medveil.pseudonym import load_key

    if key_file is None and os.environ.get(KEY_ENV):
        key_file = Path(os.environ[KEY_ENV])
    key = load_key(key_file) if key_file is not None else None
    policy = None
    if profile is not None or recipe is not None:
        policy = build_policy(profile or "basic", recipe, option, None, without)
        if sequential_ids:
            policy = replace(policy, sequential_patient_ids=True)
    return reviewer_type(key=key, policy=policy, mappings_dir=mappings,
                         output=str(output.resolve()) if output else None)


def register(app: typer.Typer) -> None:
    app.command(name="review")(review)
