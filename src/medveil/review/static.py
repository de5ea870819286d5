"""``medveil deidentify --report report.html``: the run summary as one self-contained HTML file.

For users who never start a server: the same summary as the review page
(same templates, same :mod:`~medveil.review.overview` account), with its style
sheet inlined and pictures as ``data:`` URIs, so the file opens anywhere,
offline, and can be mailed.

Because such a file travels, it holds nothing the release does not: masked
regions are shown from the OUTPUT files only (read back from the release
tree, never from the workspace's "before" pictures), original input paths
are left out, and files are named by input reference and output path.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pydicom

from medveil.quiet import silenced
from medveil.records import Status
from medveil.review.capture import (
    CROP_HEIGHT,
    CROP_WIDTH,
    CROP_ZOOM,
    MIN_SIDE,
    displayable,
    displayed_like,
    frames_at,
    png,
)
from medveil.review.html import stylesheet, templates
from medveil.review.overview import load

THUMBNAIL_SIDE = 384
#: Files whose masked regions are pictured; the rest are listed.
MAX_PICTURED = 200


def write_report(workspace: Path, path: Path, *, run_id: str | None = None, output: Path | None = None) -> Path:
    """Write the report of *run_id* (default: the latest run) to *path*; returns *path*.

    *output* is the release tree to take masked regions from (default: where
    the run wrote, as the workspace recorded it).
    """
    view = load(workspace, run_id)
    root = Path(output) if output is not None else (Path(view.output) if view.output and "://" not in view.output
                                                   else None)
    pictures = {state.input_ref: _output_pictures(root, state) for state in view.masked[:MAX_PICTURED]}
    html = templates().get_template("report.html").render(
        view=view, summary=view.summary_dict(), pictures=pictures, css=stylesheet(), live=False,
        notable=[f for f in view.files
                 if f.repairs or f.boxes or f.reason or f.decisions or f.status != Status.WRITTEN],
        messages=[])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _output_pictures(root: Path | None, state) -> list[dict]:
    """Pictures of the masked regions of one file, read from its OUTPUT in the release tree."""
    if root is None or not state.output_relpath:
        return []
    target = root / state.output_relpath
    try:
        with silenced():
            ds = pydicom.dcmread(target, force=True)
            boxes_by_frame: dict[int, list] = {}
            for box in state.boxes:
                frame = box.get("frame")
                boxes_by_frame.setdefault(0 if frame is None else int(frame), []).append(tuple(box["box"]))
            wanted = sorted(boxes_by_frame)[:3]
            frames = frames_at(ds, wanted)
            out = []
            for index in wanted:
                if index not in frames:
                    continue
                boxes = boxes_by_frame[index]
                image = _shown_outside(frames[index], ds, boxes)
                rows, columns = image.shape[:2]
                zoom = min(4.0, max(1.0, MIN_SIDE / max(rows, columns)))
                out.append(_picture(image, (0, 0, columns, rows), boxes, THUMBNAIL_SIDE, THUMBNAIL_SIDE, zoom,
                                    "frame", index))
                for x1, y1, x2, y2 in boxes[:4]:
                    margin = max(8, (y2 - y1) // 2)
                    region = (max(0, x1 - margin), max(0, y1 - margin), min(columns, x2 + margin),
                              min(rows, y2 + margin))
                    out.append(_picture(image, region, boxes, CROP_WIDTH, CROP_HEIGHT, CROP_ZOOM, "box", index))
            return out
    except Exception:  # noqa: BLE001  (an unreadable output is reported as having no picture)
        return []


def _shown_outside(frame: np.ndarray, ds, boxes) -> np.ndarray:
    """The output frame for display, its grey levels fitted to the pixels outside the masked boxes.

    The mask's fill value would otherwise stretch the display (a CT masked with
    its minimum turns the anatomy white); the boxes still show as they are,
    at the dark end.
    """
    if frame.ndim != 2:
        return displayable(frame, ds)
    inside = np.zeros(frame.shape, dtype=bool)
    for x1, y1, x2, y2 in boxes:
        inside[max(0, y1):y2, max(0, x1):x2] = True
    if inside.all() or not inside.any():
        return displayable(frame, ds)
    filled = frame.copy()
    filled[inside] = np.median(frame[~inside]).astype(frame.dtype)
    return displayed_like(frame, ds, filled, displayable(filled, ds))


def _picture(image, region, boxes, max_width, max_height, max_zoom, kind, frame) -> dict:
    x1, y1, x2, y2 = region
    width, height = max(1, x2 - x1), max(1, y2 - y1)
    scale = min(max_zoom, max_width / width, max_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    data = base64.b64encode(png(image[y1:y2, x1:x2], size)).decode("ascii")
    return {"after": f"data:image/png;base64,{data}", "width": size[0], "height": size[1], "kind": kind,
            "frame": frame, "viewbox": f"{x1} {y1} {width} {height}", "boxes": boxes}
