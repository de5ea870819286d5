"""How completely the Clean Pixel Data step masks burned-in PHI, on annotated real images.

For each annotated image in ``../shared/corpora`` (``burned_in/`` key/value
boxes, Presidio's word boxes) the step runs exactly as ``medveil deidentify``
runs it (policy ``auto``: these CT/MR/MG/DX/CR objects get ``phi-only``,
the header's own identifiers included), and then:

* a PHI box counts as masked when every pixel of it lies inside a masked
  region ("fully"), or at least 90% of it (since annotation boxes are drawn
  a pixel or two loose);
* false-positive area is masked area outside every annotated box, as a
  share of the image;
* the masked output is read by OCR again, and any annotated value found in
  what it reads (normalised: letters and digits only, 3 characters or more)
  counts as a leak;
* latency is the wall time of the step per image (median).

Only counts are printed or written; no recognised or annotated text.

    python benchmarks/pixel_bench.py [--limit N] [--engines rapidocr] [--policy auto|all-text|phi-only]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ocr_bench import CORPORA, ROOT, burned_in_cases, presidio_cases

from medveil.pixels.clean import clean_pixels
from medveil.pixels.detect import detect_text
from medveil.policy import PixelSettings
from medveil.runner.burned_in import burned_in_reason
from medveil.engine.identifiers import collect_known

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def value_texts(case: str, path: Path) -> list[str]:
    """The annotated PHI strings of a case (for the leak check only; never printed)."""
    if case.startswith("burned_in/"):
        note = json.loads(path.with_suffix(".json").read_text())
        return [pair["value"]["text"] for pair in note["annotation"] if pair.get("value")]
    truth = json.loads((path.parent / "ground_truth.json").read_text())
    stem = path.name.split("_ORIGINAL")[0] + "_ORIGINAL"
    for key, words in truth.items():
        if Path(key).stem == stem:
            return [w.get("label", "") for w in words.values()]
    return []


def _norm(text: str) -> str:
    return _NON_ALNUM.sub("", text.lower())


def masked_area(shape: tuple[int, int], report, padding: int) -> np.ndarray:
    height, width = shape
    area = np.zeros((height, width), dtype=bool)
    for region in report.masked:
        if region.frame not in (None, 0):
            continue
        area[max(0, region.y1 - padding):region.y2 + padding, max(0, region.x1 - padding):region.x2 + padding] = True
    return area


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--engines", nargs="+", default=["rapidocr"])
    parser.add_argument("--policy", default="auto", choices=["auto", "all-text", "phi-only"])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--match", default="", help="only cases whose name contains this")
    parser.add_argument("--no-reread", action="store_true", help="skip the OCR of the masked output")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "pixel_bench.json")
    args = parser.parse_args(argv)

    cases = burned_in_cases(args.corpora / "burned_in") + presidio_cases(args.corpora / "presidio")
    if not cases:
        print(f"skipped: no annotated corpora under {args.corpora}")
        return 0
    cases = [case for case in cases if args.match in case[0]]
    if args.limit:
        cases = cases[:args.limit]
    settings = PixelSettings(policy=args.policy, engines=tuple(args.engines))
    rows = []
    for case, path, truth in cases:
        ds = pydicom.dcmread(path)
        shape = (int(ds.Rows), int(ds.Columns))
        known = collect_known(ds)
        start = time.perf_counter()
        report = clean_pixels(ds, settings, known=known, burned_in_reason=burned_in_reason(ds))
        seconds = time.perf_counter() - start
        area = masked_area(shape, report, settings.padding)
        inside = np.zeros(shape, dtype=bool)
        full = most = total = 0
        for x1, y1, x2, y2 in truth:
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(shape[1], x2), min(shape[0], y2)
            if x2 <= x1 or y2 <= y1:
                continue
            total += 1
            inside[y1:y2, x1:x2] = True
            share = float(area[y1:y2, x1:x2].mean())
            full += share >= 1.0
            most += share >= 0.9
        leaks = 0
        if not args.no_reread:
            read = _norm(" ".join(box.text for box in detect_text(ds, engines=list(args.engines))))
            leaks = sum(1 for value in value_texts(case, path) if len(_norm(value)) >= 3 and _norm(value) in read)
        row = {"case": case, "policy": report.policy, "boxes": total, "fully": full, "most": most,
               "fp_area": float((area & ~inside).sum()) / float(area.size), "leaks": leaks,
               "seconds": seconds}
        rows.append(row)
        print(f"  {case[:60]:60s} {report.policy:8s} fully {full}/{total} 90% {most}/{total} "
              f"leaks {leaks} {seconds:5.1f}s", file=sys.stderr)
    boxes = sum(r["boxes"] for r in rows)
    summary = {
        "images": len(rows), "boxes": boxes,
        "fully_masked": sum(r["fully"] for r in rows) / boxes,
        "masked_90": sum(r["most"] for r in rows) / boxes,
        "images_with_leak": sum(1 for r in rows if r["leaks"]),
        "leaked_values": sum(r["leaks"] for r in rows),
        "fp_area_mean": statistics.fmean(r["fp_area"] for r in rows),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "engines": args.engines, "policy": args.policy, "reread": not args.no_reread,
    }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "per_image": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
