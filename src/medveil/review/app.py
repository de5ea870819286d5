"""The review page (``medveil review WORKSPACE``): a small Starlette app, server-rendered HTML.

It shows a workspace's account (:mod:`medveil.review.overview`): the run
summary, the quarantine with each reason and the release/drop decisions,
before/after pictures of masked images with the boxes drawn, and per-file
header differences (values as the output holds them).  The "before" pictures
come only from the workspace's review database; nothing is read from the
release tree.

Safety, since the page shows original pixels:

- it binds to 127.0.0.1 unless told otherwise, and the CLI refuses another
  address without a token; with a token every request must carry it (query
  ``?token=`` once, then an HttpOnly, SameSite=Strict cookie, or an
  ``Authorization: Bearer`` header);
- requests naming another host are refused when bound to loopback (a
  malicious web page cannot reach it through DNS rebinding);
- decisions are POSTs carrying a per-server form token and, when the browser
  sends one, a same-origin ``Origin``;
- every response says ``Cache-Control: no-store`` (no original pixels in a
  browser cache) and a Content-Security-Policy that allows only this server's
  own images and style sheet: no scripts at all, no CDN, no build step.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from medveil.errors import MedveilError
from medveil.review import decisions
from medveil.review.database import ReviewDatabase
from medveil.review.html import stylesheet, templates
from medveil.review.overview import is_ref, load

COOKIE = "medveil_review"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


@dataclass
class ReviewSettings:
    workspace: Path
    run_id: str | None = None
    token: str | None = None
    loopback: bool = True
    reviewer: decisions.Reviewer = field(default_factory=decisions.Reviewer)


def create_app(settings: ReviewSettings) -> Starlette:
    env = templates()
    form_token = secrets.token_urlsafe(24)
    messages: deque[str] = deque(maxlen=5)

    def page(name: str, **context) -> HTMLResponse:
        context.setdefault("messages", list(messages))
        context.setdefault("form_token", form_token)
        context.setdefault("can_release", settings.reviewer.key is not None and settings.reviewer.policy is not None)
        context["live"] = True
        return HTMLResponse(env.get_template(name).render(**context))

    def overview():
        return load(settings.workspace, settings.run_id)

    async def unusable(request: Request, exc: Exception) -> Response:
        # The workspace is missing, or its audit store or review database is broken (it may change
        # under a running page): the error page says which, with no traceback.
        return HTMLResponse(env.get_template("error.html").render(message=str(exc)), status_code=404)

    async def index(request: Request) -> Response:
        view = overview()
        return page("index.html", view=view, summary=view.summary_dict(), pictures=_frames(view, settings))

    async def file_page(request: Request) -> Response:
        ref = request.path_params["ref"]
        view = overview()
        state = view.file(ref) if is_ref(ref) else None
        if state is None:
            return HTMLResponse(env.get_template("error.html").render(message="no such file in this run"),
                                status_code=404)
        database = ReviewDatabase.open(settings.workspace)
        kept = None
        if database is not None:
            with database:
                kept = database.file(ref)
        pictures = [_picture_context(ref, info) for info in (kept.pictures if kept else [])]
        return page("file.html", view=view, state=state, kept=kept, pictures=pictures)

    async def picture(request: Request) -> Response:
        ref, side = request.path_params["ref"], request.path_params["side"]
        if not is_ref(ref) or side not in ("before", "after"):
            return PlainTextResponse("not found", status_code=404)
        database = ReviewDatabase.open(settings.workspace)
        if database is None:
            return PlainTextResponse("not found", status_code=404)
        with database:
            data = database.picture_png(ref, int(request.path_params["number"]), side)
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(data, media_type="image/png")

    async def decide(request: Request) -> Response:
        ref, action = request.path_params["ref"], request.path_params["action"]
        form = parse_qs((await request.body()).decode("ascii", "replace"))
        if not same_secret((form.get("form_token") or [""])[0], form_token):
            return PlainTextResponse("the form has expired: reload the page", status_code=403)
        origin = request.headers.get("origin")
        if origin and origin not in (f"http://{request.headers.get('host', '')}",
                                     f"https://{request.headers.get('host', '')}"):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        try:
            if action == "drop":
                result = decisions.drop(settings.workspace, ref)
            elif action == "release":
                with_outputs = ReviewDatabase.open(settings.workspace)
                outputs = {}
                if with_outputs is not None:
                    with with_outputs:
                        outputs = with_outputs.outputs()
                result = decisions.release(settings.workspace, ref, settings.reviewer, outputs)
            else:
                return PlainTextResponse("not found", status_code=404)
        except MedveilError as exc:
            messages.appendleft(f"{ref[:12]}: not done: {exc}")
        else:
            text = {"released": "queued in the gateway's outbox: the next serve or pull forwards it"
                    if result.queued else "released into the release tree", "dropped": "dropped",
                    "release-refused": f"still refused, kept in quarantine: {result.reason}"}[result.decision]
            messages.appendleft(f"{ref[:12]}: {text} ({result.at})")
        return RedirectResponse("/#quarantine", status_code=303)

    async def style(request: Request) -> Response:
        return Response(stylesheet(), media_type="text/css")

    routes = [
        Route("/", index),
        Route("/file/{ref}", file_page),
        Route("/picture/{ref}/{number:int}/{side}.png", picture),
        Route("/quarantine/{ref}/{action}", decide, methods=["POST"]),
        Route("/static/style.css", style),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, settings=settings)],
                     exception_handlers={MedveilError: unusable})


def _frames(view, settings: ReviewSettings) -> dict[str, list[dict]]:
    """Whole-frame pictures per masked file, for the index page."""
    database = ReviewDatabase.open(settings.workspace)
    if database is None:
        return {}
    out: dict[str, list[dict]] = {}
    with database:
        for state in view.masked:
            out[state.input_ref] = [_picture_context(state.input_ref, info)
                                    for info in database.pictures(state.input_ref) if info.kind == "frame"]
    return out


def _picture_context(ref: str, info) -> dict:
    x1, y1, x2, y2 = info.region
    return {"before": f"/picture/{ref}/{info.number}/before.png", "after": f"/picture/{ref}/{info.number}/after.png",
            "width": info.width, "height": info.height, "kind": info.kind, "frame": info.frame,
            "viewbox": f"{x1} {y1} {max(1, x2 - x1)} {max(1, y2 - y1)}", "boxes": info.boxes}


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with ours, whatever characters it holds.

    ``hmac.compare_digest`` raises TypeError for str with non-ASCII characters,
    which a client controls: compare the UTF-8 bytes instead.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def hostname(host_header: str) -> str:
    """The host part of a Host header: ``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0]


class _Guard(BaseHTTPMiddleware):
    """Host check, token check and the headers every response carries."""

    def __init__(self, app, settings: ReviewSettings) -> None:
        super().__init__(app)
        self.settings = settings

    async def dispatch(self, request: Request, call_next) -> Response:
        if self.settings.loopback and hostname(request.headers.get("host", "")) not in LOOPBACK:
            return self._secure(PlainTextResponse("this review page answers only on the loopback address",
                                                  status_code=400))
        token = self.settings.token
        if token:
            given = request.query_params.get("token")
            if given is not None and same_secret(given, token):
                response = RedirectResponse(request.url.path, status_code=303)
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return self._secure(response)
            presented = request.cookies.get(COOKIE) or request.headers.get("authorization", "").removeprefix(
                "Bearer ").strip()
            if not presented or not same_secret(presented, token):
                return self._secure(PlainTextResponse("a token is required: open the address the command printed",
                                                      status_code=401))
        return self._secure(await call_next(request))

    @staticmethod
    def _secure(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes browsers send Origin: null
        response.headers["X-Frame-Options"] = "DENY"
        return response
