#!/usr/bin/env python3
"""What Clean Pixel Data costs beside the header path, and what it finds, in one run.

Corpus (built in memory from bundled and shared files; nothing is written):

* ``ct-text``: a CT series of ``--slices`` 512x512 slices (pydicom's
  CT_small enlarged, each slice's anatomy shifted and noised so no two slices
  are alike) with the same name, ID and date burned into the padding corner
  of every slice, as scanners do;
* ``ct-clean``: the same series without text;
* ``us-sc``: the vendor ultrasound screens of ``deid-data`` (1024x768, names
  burned in) and a 1024x1024 secondary capture with text;
* ``ground truth``: the 70 annotated images of ``../shared/corpora``
  (``burned_in/`` and Presidio's), for recall and false-positive area.

Each file goes through :func:`medveil.runner.core.deidentify_bytes` (what
every runner calls) on one core, with the ``tcia`` profile with and without
Clean Pixel Data: the header-only time is measured on the same files in the
same run. Recall and false-positive area are scored as in
``benchmarks/ocr_bench.py`` (a ground-truth box counts when 90% of it is
covered), per engine and screen setting; ``screen only`` scores the screen's
candidate regions with the recogniser switched off. No GPU is used (none is
available to this project's benchmarks); CPU only, one ONNX Runtime thread.

Only counts and times are printed or written, never recognised text.

    python benchmarks/pixel_throughput.py [--slices 300] [--engines ppocr ...] [--screens recall ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ocr_bench import CORPORA, ROOT, burned_in_cases, presidio_cases, score

from medveil.pixels.detect import ReadingCache, TextBox, scan_frames
from medveil.pixels.frames import iter_frames
from medveil.pixels.ocr import OcrUnavailable, get_engine
from medveil.pixels.screen import screen_frame
from medveil.policy import Option
from medveil.policy.profiles import get_profile
from medveil.pseudonym import Key
from medveil.runner.core import deidentify_bytes

KEY = Key(bytes(range(32)))


# -- corpus --------------------------------------------------------------------------------------

def _encode(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_series(slices: int, *, text: bool, seed: int = 5) -> list[bytes]:
    """A CT series: CT_small at 512x512 inside a circular field of view padded with -2000."""
    from PIL import Image, ImageDraw, ImageFont

    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    small = base.pixel_array.astype(np.float32)
    anatomy = np.asarray(Image.fromarray(small, mode="F").resize((512, 512), Image.BICUBIC)).astype(np.int16)
    yy, xx = np.mgrid[:512, :512]
    outside = (yy - 256) ** 2 + (xx - 256) ** 2 > 230 ** 2  # the text sits in the padding, outside the field of view
    overlay = None
    if text:
        image = Image.new("L", (512, 512), 0)
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=11)
        for row, line in enumerate(("DOE^JANE", "ID 40981237", "1961-03-14", "ST MARY HOSPITAL")):
            draw.text((6, 452 + 13 * row), line, fill=255, font=font)
        overlay = np.asarray(image) > 127
    rng = np.random.default_rng(seed)
    series, study = generate_uid(), generate_uid()
    files = []
    for index in range(slices):
        pixels = np.roll(anatomy, index % 17 - 8, axis=0) + rng.normal(0, 6, anatomy.shape).astype(np.int16)
        pixels[outside] = -2000
        if overlay is not None:
            pixels[overlay] = 3071
        ds = base.copy()
        ds.Rows = ds.Columns = 512
        ds.PixelData = pixels.astype(np.int16).tobytes()
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series, study
        ds.InstanceNumber = index + 1
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        files.append(_encode(ds))
    return files


def us_sc_frames() -> list[tuple[str, bytes]]:
    """The deid-data ultrasound screens and a 1024x1024 secondary capture with text."""
    from PIL import Image, ImageDraw, ImageFont

    found = []
    try:
        import deid_data

        folder = Path(deid_data.__file__).parent / "data" / "ultrasounds"
        for name in ("GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"):
            found.append((f"deid-data {name}", (folder / name).read_bytes()))
    except ImportError:
        pass
    base = pydicom.dcmread(get_testdata_file("SC_rgb.dcm"))
    image = Image.new("RGB", (1024, 1024), (12, 12, 12))
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 200, 820, 820), fill=(90, 80, 70))
    font = ImageFont.load_default(size=16)
    draw.text((20, 20), "PATIENT: DOE, JANE   MRN 40981237", fill=(255, 255, 0), font=font)
    draw.text((20, 980), "DOB 1961-03-14   ST MARY HOSPITAL", fill=(255, 255, 255), font=font)
    base.Rows = base.Columns = 1024
    base.PixelData = np.asarray(image).tobytes()
    base.SOPInstanceUID = generate_uid()
    base.Modality = "OT"
    found.append(("SC 1024x1024", _encode(base)))
    return found


# -- timing ----------------------------------------------------------------------------------------

def time_files(files: list[bytes], policy) -> tuple[list[float], list]:
    seconds, records = [], []
    for data in files:
        start = time.perf_counter()
        _out, record = deidentify_bytes(data, policy, KEY)
        seconds.append(time.perf_counter() - start)
        records.append(record)
    return seconds, records


def pixel_counts(records) -> dict:
    counts = {"frames": 0, "candidates": 0, "crops_read": 0, "crops_reused": 0, "masked_boxes": 0,
              "quarantined": 0}
    for record in records:
        if record.status != "written":
            counts["quarantined"] += 1
        for category, detail in record.events:
            if category == "pixel-scan":
                scan = json.loads(detail)
                for key in ("frames", "candidates", "crops_read", "crops_reused"):
                    counts[key] += scan.get(key, 0)
            elif category == "pixel-box":
                counts["masked_boxes"] += 1
    return counts


# -- recall ----------------------------------------------------------------------------------------

def ground_truth(corpora: Path) -> list[tuple[str, Path, list]]:
    return burned_in_cases(corpora / "burned_in") + presidio_cases(corpora / "presidio")


def score_screen(cases) -> dict:
    rows = []
    for _name, path, truth in cases:
        ds = pydicom.dcmread(path)
        frame = next(iter_frames(ds))
        start = time.perf_counter()
        candidates = screen_frame(frame)
        seconds = time.perf_counter() - start
        boxes = [TextBox(0, c.x1, c.y1, c.x2, c.y2, "screen", 1.0, "") for c in candidates]
        rows.append({"seconds": seconds, **score(frame.shape[:2], truth, boxes)})
    return _summary(rows)


def score_engine(cases, engine: str, screen: str) -> dict:
    rows = []
    for _name, path, truth in cases:
        ds = pydicom.dcmread(path)
        start = time.perf_counter()
        scan = scan_frames(ds, engines=[engine], screen=screen, cache=ReadingCache())
        seconds = time.perf_counter() - start
        rows.append({"seconds": seconds, **score((int(ds.Rows), int(ds.Columns)), truth, scan.boxes)})
    return _summary(rows)


def _summary(rows: list[dict]) -> dict:
    boxes = sum(r["boxes"] for r in rows)
    covered = sum(r["covered"] for r in rows)
    return {"images": len(rows), "boxes": boxes, "covered": covered, "recall": covered / boxes if boxes else None,
            "fp_area_mean": statistics.fmean(r["fp_area"] for r in rows),
            "fp_area_max": max(r["fp_area"] for r in rows),
            "median_s": statistics.median(r["seconds"] for r in rows)}


# -- main ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--engines", nargs="+", default=["ppocr"])
    parser.add_argument("--screens", nargs="+", default=["recall", "balanced"])
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "pixel_throughput.json")
    args = parser.parse_args(argv)

    pixels = get_profile("tcia")
    header = dataclasses.replace(pixels, options=pixels.options - {Option.CLEAN_PIXEL_DATA})
    get_engine(pixels.pixels.engines[0])  # load the models outside the timed calls
    deidentify_bytes(ct_series(1, text=True)[0], pixels, KEY)  # and warm the sessions
    result: dict = {"cpu": os.cpu_count(), "gpu": "none (CPU only)", "slices": args.slices, "series": {}}

    for label, files in (("ct-clean", ct_series(args.slices, text=False)),
                         ("ct-text", ct_series(args.slices, text=True, seed=6))):
        header_s, _ = time_files(files, header)
        pixel_s, records = time_files(files, pixels)
        result["series"][label] = {
            "files": len(files),
            "header_total_s": sum(header_s), "pixels_total_s": sum(pixel_s),
            "header_median_s": statistics.median(header_s), "pixels_median_s": statistics.median(pixel_s),
            "ratio_total": sum(pixel_s) / sum(header_s),
            "ratio_median": statistics.median(pixel_s) / statistics.median(header_s),
            **pixel_counts(records),
        }
        print(f"{label}: header {sum(header_s):.2f} s, with pixels {sum(pixel_s):.2f} s "
              f"(x{sum(pixel_s) / sum(header_s):.2f}); {pixel_counts(records)}", file=sys.stderr)

    frames = []
    for label, data in us_sc_frames():
        header_s, _ = time_files([data], header)
        pixel_s, records = time_files([data], pixels)
        frames.append({"file": label, "header_s": header_s[0], "pixels_s": pixel_s[0], **pixel_counts(records)})
        print(f"{label}: header {header_s[0]:.3f} s, with pixels {pixel_s[0]:.3f} s", file=sys.stderr)
    result["us_sc"] = frames

    cases = [] if args.skip_recall else ground_truth(args.corpora)
    result["recall"] = {}
    if cases:
        result["recall"]["screen only"] = score_screen(cases)
        print(f"screen only: {result['recall']['screen only']}", file=sys.stderr)
        for engine in args.engines:
            try:
                get_engine(engine)
            except OcrUnavailable as exc:
                print(f"skipped {engine}: {exc}", file=sys.stderr)
                continue
            for screen in args.screens:
                result["recall"][f"{engine} / {screen}"] = summary = score_engine(cases, engine, screen)
                print(f"{engine} / {screen}: {summary}", file=sys.stderr)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def table(result: dict) -> str:
    lines = ["| workload | files | header-only s/file | with Clean Pixel Data s/file | ratio (total) | crops read / reused |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, row in result["series"].items():
        lines.append(f"| {label} ({result['slices']} slices 512²) | {row['files']} | {row['header_median_s']:.4f} | "
                     f"{row['pixels_median_s']:.4f} | {row['ratio_total']:.2f}x | {row['crops_read']} / {row['crops_reused']} |")
    for row in result["us_sc"]:
        lines.append(f"| {row['file']} | 1 | {row['header_s']:.4f} | {row['pixels_s']:.3f} | "
                     f"{row['pixels_s'] / row['header_s']:.0f}x | {row['crops_read']} / {row['crops_reused']} |")
    if result["recall"]:
        lines += ["", "| engine / screen (ground truth, 70 images) | boxes | recall | FP area mean | FP area max | median s/image |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, row in result["recall"].items():
            lines.append(f"| {label} | {row['boxes']} | {row['recall']:.3f} | {row['fp_area_mean']:.4f} | "
                         f"{row['fp_area_max']:.4f} | {row['median_s']:.3f} |")
    lines.append("")
    lines.append(f"Peak RSS {result['peak_rss_mib']:.0f} MiB; {result['cpu']} CPUs, one worker, no GPU.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
