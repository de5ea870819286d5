"""The HTML templates and style sheet shared by the review page and the static report.

Both render the same templates (``templates/``) from the same account, so the
static report is the page's summary, not a second implementation of it.
"""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape

from medveil.review.overview import ACTION_NAMES


def templates() -> Environment:
    """A Jinja2 environment over the package's templates, autoescaping everything."""
    env = Environment(loader=PackageLoader("medveil.review", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["action_names"] = ACTION_NAMES
    return env


def stylesheet() -> str:
    return resources.files("medveil.review").joinpath("static/style.css").read_text(encoding="utf-8")
