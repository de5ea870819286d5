"""How well each OCR engine finds burned-in text, on the annotated corpora in ../shared.

Recall is what matters for de-identification: a ground-truth box counts as
found when the union of detected boxes (dilated by a few pixels, since engines
draw their boxes tight or loose by a pixel or two) covers at least 90% of it.
False-positive area, detected area outside every ground-truth box as a share
of the image, says how much anatomy masking would destroy. Latency is the
median wall time of ``detect_text`` per image.

Only box geometry is compared; the recognised text (PHI in real data) is
neither printed nor written.

    python benchmarks/ocr_bench.py [--engines tesseract rapidocr] [--limit N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

from medveil.pixels.detect import TextBox, detect_text
from medveil.pixels.ocr import OcrUnavailable, get_engine

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
COVERED = 0.9
#: Presidio's ground truth was measured on its redactor's working image, which adds a
#: 25-pixel border (``padding_width=25``) around the DICOM frame: its boxes sit 25 pixels
#: right of and below the text in the file itself.
PRESIDIO_PADDING = 25
DILATE = 3


def burned_in_cases(folder: Path) -> list[tuple[str, Path, list[tuple[int, int, int, int]]]]:
    """(name, file, boxes) from each NAME.json beside NAME.dcm; bbox corners are inclusive.

    Annotations with no text (an empty Institution Name is annotated as a box at the
    origin) are left out: there is nothing there to find or mask.
    """
    cases = []
    for note in sorted(folder.glob("*.json")):
        dicom = note.with_suffix(".dcm")
        if not dicom.is_file():
            continue
        boxes = []
        for pair in json.loads(note.read_text())["annotation"]:
            for part in ("key", "value"):
                bbox = (pair.get(part) or {}).get("bbox")
                if not str((pair.get(part) or {}).get("text", "")).strip():
                    continue  # an empty value is annotated as a box at (0, 0): nothing to find there
                if bbox and len(bbox) == 4:
                    x1, y1, x2, y2 = (int(v) for v in bbox)
                    boxes.append((x1, y1, x2 + 1, y2 + 1))
        cases.append((f"burned_in/{dicom.name}", dicom, boxes))
    return cases


def wrapped_value_lines(folder: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    """Text the burned_in annotations leave outside every box: the upper lines of wrapped values.

    Where a value wraps ("Nielsen, Jimenez / and Aguilar / Community Hospital"), its annotated
    box lies on the value's LAST line, as wide as its widest line; the lines above it, from the
    key's line down, are in no box. Derived from the annotation alone (a value box that starts
    right of its key and lies below the key's line): the rectangle from the key's top to the
    value box's top, over the value box's width. Keyed like :func:`burned_in_cases`' names.
    """
    found: dict[str, list[tuple[int, int, int, int]]] = {}
    for note in sorted(folder.glob("*.json")):
        boxes = []
        for pair in json.loads(note.read_text())["annotation"]:
            key, value = pair.get("key") or {}, pair.get("value") or {}
            if not (key.get("bbox") and value.get("bbox") and str(value.get("text", "")).strip()):
                continue
            kx1, ky1, kx2, ky2 = (int(v) for v in key["bbox"])
            vx1, vy1, vx2, _vy2 = (int(v) for v in value["bbox"])
            if vy1 > ky2 and vx1 >= kx2:
                boxes.append((vx1, ky1, vx2 + 1, vy1))
        found[f"burned_in/{note.with_suffix('.dcm').name}"] = boxes
    return found


def presidio_cases(folder: Path) -> list[tuple[str, Path, list[tuple[int, int, int, int]]]]:
    """Presidio's ground truth names sample_dicom/N_ORIGINAL.dcm; the copies here are N_ORIGINAL*.dcm."""
    truth_file = folder / "ground_truth.json"
    if not truth_file.is_file():
        return []
    truth = json.loads(truth_file.read_text())
    cases = []
    for key, words in sorted(truth.items()):
        stem = Path(key).stem
        pad = PRESIDIO_PADDING
        boxes = [(w["left"] - pad, w["top"] - pad, w["left"] + w["width"] - pad, w["top"] + w["height"] - pad)
                 for w in words.values()]
        for dicom in sorted(folder.glob(f"{stem}*.dcm")):
            if "PixelData" in pydicom.dcmread(dicom, stop_before_pixels=False, specific_tags=["PixelData"]):
                cases.append((f"presidio/{dicom.name}", dicom, boxes))
    return cases


def score(shape: tuple[int, int], truth: list[tuple[int, int, int, int]], found: list[TextBox]) -> dict:
    """Covered ground-truth boxes and false-positive pixels for one image."""
    height, width = shape
    detected = np.zeros((height, width), dtype=bool)
    dilated = np.zeros((height, width), dtype=bool)
    for box in found:
        if box.frame != 0:
            continue
        detected[box.y1:box.y2, box.x1:box.x2] = True
        dilated[max(0, box.y1 - DILATE):box.y2 + DILATE, max(0, box.x1 - DILATE):box.x2 + DILATE] = True
    inside_truth = np.zeros((height, width), dtype=bool)
    covered = total = 0
    for x1, y1, x2, y2 in truth:
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if x2 <= x1 or y2 <= y1:
            continue  # annotations that fall outside the image or have no size
        total += 1
        inside_truth[y1:y2, x1:x2] = True
        covered += float(dilated[y1:y2, x1:x2].mean()) >= COVERED
    false_positive = float((detected & ~inside_truth).sum()) / float(height * width)
    return {"boxes": total, "covered": covered, "fp_area": false_positive}


def summarise(rows: list[dict]) -> dict:
    boxes = sum(r["boxes"] for r in rows)
    covered = sum(r["covered"] for r in rows)
    return {
        "images": len(rows),
        "boxes": boxes,
        "covered": covered,
        "recall": covered / boxes if boxes else None,
        "fp_area_mean": statistics.fmean(r["fp_area"] for r in rows) if rows else None,
        "median_latency_s": statistics.median(r["seconds"] for r in rows) if rows else None,
        "images_per_s": len(rows) / sum(r["seconds"] for r in rows) if rows else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--engines", nargs="+", default=["tesseract", "rapidocr"])
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--min-confidence", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "ocr_bench.json")
    args = parser.parse_args(argv)

    cases = burned_in_cases(args.corpora / "burned_in") + presidio_cases(args.corpora / "presidio")
    if not cases:
        print(f"skipped: no annotated corpora under {args.corpora}")
        return 0
    if args.limit:
        cases = cases[:args.limit]
    engines = []
    for name in args.engines:
        try:
            get_engine(name)  # load the model outside the timed calls
            engines.append(name)
        except OcrUnavailable as exc:
            print(f"skipped {name}: {exc}")
    if not engines:
        print("skipped: no OCR engine installed")
        return 0

    rows: dict[str, list[dict]] = {name: [] for name in engines}
    if len(engines) > 1:
        rows["+".join(engines)] = []
    for case, path, truth in cases:
        ds = pydicom.dcmread(path)
        shape = (int(ds.Rows), int(ds.Columns))
        union: list[TextBox] = []
        union_seconds = 0.0
        for name in engines:
            start = time.perf_counter()
            found = detect_text(ds, engines=[name], min_confidence=args.min_confidence)
            seconds = time.perf_counter() - start
            union.extend(found)
            union_seconds += seconds
            rows[name].append({"case": case, "seconds": seconds, **score(shape, truth, found)})
        if len(engines) > 1:
            rows["+".join(engines)].append({"case": case, "seconds": union_seconds, **score(shape, truth, union)})
        print(f"  {case[:70]:70s} " + "  ".join(
            f"{name}={r[-1]['covered']}/{r[-1]['boxes']}" for name, r in rows.items()), file=sys.stderr)

    summary = {name: summarise(r) for name, r in rows.items()}
    print(f"{'engine':22s} {'images':>6s} {'recall':>8s} {'FP area':>8s} {'median s':>9s} {'images/s':>9s}")
    for name, s in summary.items():
        print(f"{name:22s} {s['images']:6d} {s['recall']:8.3f} {s['fp_area_mean']:8.4f} "
              f"{s['median_latency_s']:9.2f} {s['images_per_s']:9.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "per_image": rows,
                                    "covered_threshold": COVERED, "dilate_px": DILATE,
                                    "min_confidence": args.min_confidence}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
