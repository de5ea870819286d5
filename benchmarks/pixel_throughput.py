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
same run, and CPU time (``process_time``) is reported beside wall time, since
the project's machine is shared. Recall and false-positive area are scored as
in ``benchmarks/ocr_bench.py`` (a ground-truth box counts when 90% of it is
covered) on what is *masked*: :func:`medveil.pixels.clean.clean_pixels` on
each image, per engine, screen setting and pixel policy (``all-text``;
``phi-only`` with the file's own identifiers), the masked rectangles grown by
the padding as masking grows them. ``screen only`` scores the screen's
candidate regions with the recogniser switched off (their area is not masked
area). Memory: a child process loads the models, then cleans a 64-frame
512x512 16-bit object; its peak RSS above the loaded baseline is set beside
the decoded frame set. No GPU is used (none is available to this project's
benchmarks); CPU only, one ONNX Runtime thread.

Only counts and times are printed or written, never recognised text.

    python benchmarks/pixel_throughput.py [--slices 300] [--engines ppocr ...] [--screens recall ...]
        [--policies all-text phi-only] [--memory-frames 64] [--skip-recall]
"""

from __future__ import annotations

import argparse
import contextlib
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
from ocr_bench import CORPORA, ROOT, burned_in_cases, presidio_cases, score, wrapped_value_lines

from medveil.errors import QuarantineError
from medveil.pixels.clean import clean_pixels
import medveil.pixels.detect as detect
from medveil.pixels.detect import SERIES_CACHE, ReadingCache, TextBox
from medveil.pixels.frames import iter_frames
from medveil.pixels.ocr import OcrUnavailable, get_engine
import medveil.pixels.screen as screen
from medveil.pixels.screen import BACKGROUNDS, screen_frame
from medveil.policy import Option, PixelSettings
from medveil.policy.profiles import get_profile
from medveil.pseudonym import Key
import medveil.runner.core as core
from medveil.runner.core import deidentify_bytes
from medveil.engine.identifiers import collect_known

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

def time_files(files: list[bytes], policy) -> tuple[list[float], list, list[float]]:
    """Wall seconds, audit records and CPU seconds of each file through the runner's core."""
    seconds, records, cpu = [], [], []
    for data in files:
        start, used = time.perf_counter(), time.process_time()
        _out, record = deidentify_bytes(data, policy, KEY)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - used)
        records.append(record)
    return seconds, records, cpu


def time_interleaved(files: list[bytes], header, pixels) -> dict:
    """Each file through the header path, then Clean Pixel Data, then Clean Pixel Data without the
    review pictures, one after the other, so that the machine's load (shared, and it drifts)
    weighs on all three alike. Each pass keeps its own reading cache, as three runs would.

    Returns per pass: wall seconds, CPU seconds and the audit records, file by file.
    """
    caches = {name: (ReadingCache(), screen.BackgroundLines()) for name in ("pixels", "bare")}
    passes = {name: {"wall": [], "cpu": [], "records": []} for name in ("header", "pixels", "bare")}
    for data in files:
        for name, policy in (("header", header), ("pixels", pixels), ("bare", pixels)):
            context = _no_review_pictures() if name == "bare" else contextlib.nullcontext()
            if name in caches:
                detect.SERIES_CACHE, screen.BACKGROUNDS = caches[name]
            with context:
                start, used = time.perf_counter(), time.process_time()
                _out, record = deidentify_bytes(data, policy, KEY)
                passes[name]["cpu"].append(time.process_time() - used)
                passes[name]["wall"].append(time.perf_counter() - start)
            passes[name]["records"].append(record)
    detect.SERIES_CACHE, screen.BACKGROUNDS = SERIES_CACHE, BACKGROUNDS
    return passes


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


@contextlib.contextmanager
def _no_review_pictures():
    """The runner's core without the before/after pictures of masked frames (header changes kept)."""
    original = core.review_material

    def header_only(snapshot, ds, source, masked=()):
        return original(snapshot, ds, source, ())

    core.review_material = header_only
    try:
        yield
    finally:
        core.review_material = original


# -- memory ----------------------------------------------------------------------------------------

def _status_mib(field: str) -> float | None:
    """A size from /proc/self/status (VmRSS: now, VmHWM: the peak since the last reset), in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Start the peak RSS (VmHWM) afresh (Linux 4.0+), so it measures only what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _memory_child(frames: int, connection) -> None:
    """In a fresh process: load, warm, clean one multi-frame object; its peak RSS above what was held."""
    pixels = get_profile("tcia")
    get_engine(pixels.pixels.engines[0])
    deidentify_bytes(ct_series(1, text=True)[0], pixels, KEY)  # sessions warm
    data = multiframe(frames)
    baseline = _status_mib("VmRSS") or 0.0
    exact = _reset_peak()
    _out, record = deidentify_bytes(data, pixels, KEY)
    peak = (_status_mib("VmHWM") if exact else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    connection.send({"baseline_mib": baseline, "peak_mib": peak, "status": record.status, "exact_peak": exact,
                     "growth_mib": max(0.0, peak - baseline), "input_mib": len(data) / 2**20})
    connection.close()


def multiframe(frames: int) -> bytes:
    """A *frames*-frame 512x512 16-bit object (CT_small enlarged; eight distinct slices repeated)."""
    slices = [pydicom.dcmread(io.BytesIO(d)) for d in ct_series(min(frames, 8), text=False)]
    stack = np.stack([np.asarray(s.pixel_array) for s in slices])
    stack = np.resize(stack, (frames, 512, 512)).astype(np.int16)
    ds = slices[0]
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return _encode(ds)


def measure_memory(frames: int) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_memory_child, args=(frames, sender))
    child.start()
    result = receiver.recv()
    child.join()
    frame_set = frames * 512 * 512 * 2 / 2**20
    result.update({"frames": frames, "frame_set_mib": frame_set, "growth_over_frame_set": result["growth_mib"] / frame_set})
    return result


# -- recall ----------------------------------------------------------------------------------------

def ground_truth(corpora: Path) -> list[tuple[str, Path, list]]:
    return burned_in_cases(corpora / "burned_in") + presidio_cases(corpora / "presidio")


def score_screen(cases, setting: str = "recall") -> dict:
    rows = []
    for _name, path, truth in cases:
        ds = pydicom.dcmread(path)
        frame = next(iter_frames(ds))
        start, cpu = time.perf_counter(), time.process_time()
        candidates = screen_frame(frame, setting)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        boxes = [TextBox(0, c.x1, c.y1, c.x2, c.y2, "screen", 1.0, "") for c in candidates]
        rows.append({"seconds": seconds, "cpu": cpu, **score(frame.shape[:2], truth, boxes)})
    return _summary(rows)


def score_engine(cases, engine: str, screen: str, policy: str, wrapped: dict | None = None) -> dict:
    """Recall and false-positive area of what Clean Pixel Data masks under *policy*.

    ``fp_area`` counts masked pixels outside every annotated box; ``fp_area_wrapped`` also
    counts as text the upper lines of wrapped values, which the annotations leave outside
    every box (*wrapped*, see :func:`ocr_bench.wrapped_value_lines`).
    """
    settings = PixelSettings(policy=policy, engines=(engine,), screen=screen)
    rows = []
    for name, path, truth in cases:
        ds = pydicom.dcmread(path)
        known = collect_known(ds)
        SERIES_CACHE.clear()  # every image read afresh: no reuse between the annotated images
        start, cpu = time.perf_counter(), time.process_time()
        try:
            report = clean_pixels(ds, settings, known=known)
        except QuarantineError:
            report = None
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        boxes = padded(report.masked if report else (), settings.padding)
        shape = (int(ds.Rows), int(ds.Columns))
        extra = (wrapped or {}).get(name, [])
        rows.append({"seconds": seconds, "cpu": cpu, "quarantined": report is None, **score(shape, truth, boxes),
                     "fp_area_wrapped": score(shape, truth + extra, boxes)["fp_area"]})
    return _summary(rows)


def padded(regions, padding: int) -> list[TextBox]:
    """Masked regions of frame 0 as the masking step fills them: grown by the padding."""
    return [TextBox(0, max(0, r.x1 - padding), max(0, r.y1 - padding), r.x2 + padding, r.y2 + padding,
                    getattr(r, "engine", ""), 1.0, "") for r in regions if r.frame in (0, None)]


def score_annotations(cases, padding: int, wrapped: dict | None = None) -> dict:
    """The metric's floor: the annotated boxes themselves masked, grown by the padding as masks are."""
    rows = []
    for name, path, truth in cases:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        shape = (int(ds.Rows), int(ds.Columns))
        boxes = padded([TextBox(0, *box, "truth", 1.0, "") for box in truth], padding)
        extra = (wrapped or {}).get(name, [])
        rows.append({"seconds": 0.0, **score(shape, truth, boxes),
                     "fp_area_wrapped": score(shape, truth + extra, boxes)["fp_area"]})
    return _summary(rows)


def _summary(rows: list[dict]) -> dict:
    boxes = sum(r["boxes"] for r in rows)
    covered = sum(r["covered"] for r in rows)
    return {"images": len(rows), "boxes": boxes, "covered": covered, "recall": covered / boxes if boxes else None,
            "fp_area_mean": statistics.fmean(r["fp_area"] for r in rows),
            "fp_area_max": max(r["fp_area"] for r in rows),
            "fp_area_wrapped_mean": statistics.fmean(r.get("fp_area_wrapped", r["fp_area"]) for r in rows),
            "median_s": statistics.median(r["seconds"] for r in rows),
            "median_cpu_s": statistics.median(r.get("cpu", r["seconds"]) for r in rows),
            "quarantined": sum(bool(r.get("quarantined")) for r in rows)}


# -- main ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--engines", nargs="+", default=["ppocr", "ppocr-v5", "ppocr-v6"],
                        help="engines scored on the ground truth (the first is also timed on the series)")
    parser.add_argument("--screens", nargs="+", default=["recall"])
    parser.add_argument("--policies", nargs="+", default=["all-text", "phi-only"],
                        help="pixel policies scored for the first engine; the others are scored all-text")
    parser.add_argument("--memory-frames", type=int, default=64)
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "pixel_throughput.json")
    args = parser.parse_args(argv)

    pixels = get_profile("tcia")
    header = dataclasses.replace(pixels, options=pixels.options - {Option.CLEAN_PIXEL_DATA})
    get_engine(pixels.pixels.engines[0])  # load the models outside the timed calls
    deidentify_bytes(ct_series(1, text=True)[0], pixels, KEY)  # and warm the sessions
    result: dict = {"cpu": _cpu_name(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "gpu": "none (CPU only)", "slices": args.slices, "series": {}}

    for label, files in (("ct-clean", ct_series(args.slices, text=False)),
                         ("ct-text", ct_series(args.slices, text=True, seed=6))):
        time_interleaved(files[:5], header, pixels)  # every path warm
        timed = time_interleaved(files, header, pixels)
        cpu = {name: timed[name]["cpu"] for name in timed}
        wall = {name: timed[name]["wall"] for name in timed}
        med = {name: statistics.median(values) for name, values in cpu.items()}
        row = {
            "files": len(files),
            "header_total_s": sum(wall["header"]), "pixels_total_s": sum(wall["pixels"]),
            "header_median_s": statistics.median(wall["header"]), "pixels_median_s": statistics.median(wall["pixels"]),
            "header_cpu_s": sum(cpu["header"]), "pixels_cpu_s": sum(cpu["pixels"]),
            "header_median_cpu_s": med["header"], "pixels_median_cpu_s": med["pixels"],
            "bare_median_cpu_s": med["bare"],
            # The headline: median CPU per file with Clean Pixel Data over median CPU per file header-only.
            "ratio_median_cpu": med["pixels"] / med["header"],
            "ratio_median_cpu_no_review_pictures": med["bare"] / med["header"],
            "ratio_cpu": sum(cpu["pixels"]) / sum(cpu["header"]),
            "ratio_total": sum(wall["pixels"]) / sum(wall["header"]),
            "ratio_median": statistics.median(wall["pixels"]) / statistics.median(wall["header"]),
            "no_review_pictures_total_s": sum(wall["bare"]), "no_review_pictures_cpu_s": sum(cpu["bare"]),
            "ratio_cpu_no_review_pictures": sum(cpu["bare"]) / sum(cpu["header"]),
            **pixel_counts(timed["pixels"]["records"]),
        }
        result["series"][label] = row
        print(f"{label}: median CPU per file header {med['header'] * 1e3:.2f} ms, with pixels "
              f"{med['pixels'] * 1e3:.2f} ms (x{row['ratio_median_cpu']:.2f}; totals x{row['ratio_cpu']:.2f} CPU, "
              f"x{row['ratio_total']:.2f} wall; without review pictures x{row['ratio_median_cpu_no_review_pictures']:.2f}"
              f" median CPU); {pixel_counts(timed['pixels']['records'])}", file=sys.stderr)

    frames = []
    for label, data in us_sc_frames():
        header_s, header_records, _ = time_files([data], header)
        SERIES_CACHE.clear()  # a first reading, not a reuse
        pixel_s, records, pixel_cpu = time_files([data], pixels)
        # The pixel step alone as well: a file the header path refuses (deid-data's US screens carry
        # binary bytes in a text element) still pays for its pixels, but records no pixel counts.
        SERIES_CACHE.clear()
        ds = pydicom.dcmread(io.BytesIO(data))
        start, cpu = time.perf_counter(), time.process_time()
        report = clean_pixels(ds, pixels.pixels, known=collect_known(ds),
                              burned_in_reason="benchmark: all text")
        step_s, step_cpu = time.perf_counter() - start, time.process_time() - cpu
        frames.append({"file": label, "header_s": header_s[0], "pixels_s": pixel_s[0], "pixels_cpu_s": pixel_cpu[0],
                       "status": records[0].status, "header_status": header_records[0].status,
                       "step_s": step_s, "step_cpu_s": step_cpu, "candidates": report.candidates,
                       "crops_read": report.crops_read, "crops_reused": report.crops_reused,
                       "masked_boxes": len(report.masked)})
        print(f"{label}: header {header_s[0]:.3f} s, with pixels {pixel_s[0]:.3f} s ({pixel_cpu[0]:.3f} s CPU); "
              f"pixel step {step_s:.3f} s ({step_cpu:.3f} s CPU), {report.candidates} candidates, "
              f"{len(report.masked)} boxes masked", file=sys.stderr)
    result["us_sc"] = frames

    if args.memory_frames:
        result["memory"] = measure_memory(args.memory_frames)
        print(f"memory: {result['memory']}", file=sys.stderr)

    cases = [] if args.skip_recall else ground_truth(args.corpora)
    wrapped = wrapped_value_lines(args.corpora / "burned_in") if cases else {}
    result["recall"] = {}
    if cases:
        label = f"annotated boxes themselves, padded by {pixels.pixels.padding} (the metric's floor)"
        result["recall"][label] = score_annotations(cases, pixels.pixels.padding, wrapped)
        for screen in args.screens:
            label = f"screen only ({screen})"
            result["recall"][label] = score_screen(cases, screen)
            print(f"{label}: {result['recall'][label]}", file=sys.stderr)
        for engine in args.engines:
            try:
                get_engine(engine)
            except OcrUnavailable as exc:
                print(f"skipped {engine}: {exc}", file=sys.stderr)
                continue
            for screen in args.screens:
                for policy in (args.policies if engine == args.engines[0] else args.policies[:1]):
                    label = f"{engine} / {screen} / {policy}"
                    result["recall"][label] = summary = score_engine(cases, engine, screen, policy, wrapped)
                    print(f"{label}: {summary}", file=sys.stderr)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def table(result: dict) -> str:
    lines = ["| workload | files | header-only CPU ms/file (median) | with Clean Pixel Data CPU ms/file (median) | "
             "ratio CPU (medians) | ratio CPU (totals) | ratio wall (totals) | ratio CPU without review pictures "
             "(medians) | crops read / reused |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, row in result["series"].items():
        lines.append(f"| {label} ({result['slices']} slices 512²) | {row['files']} | "
                     f"{row['header_median_cpu_s'] * 1e3:.2f} | {row['pixels_median_cpu_s'] * 1e3:.2f} | "
                     f"{row['ratio_median_cpu']:.2f}x | {row['ratio_cpu']:.2f}x | {row['ratio_total']:.2f}x | "
                     f"{row['ratio_median_cpu_no_review_pictures']:.2f}x | {row['crops_read']} / {row['crops_reused']} |")
    for row in result["us_sc"]:
        refused = " (header path refuses it)" if row["header_status"] != "written" else ""
        lines.append(f"| {row['file']}{refused} | 1 | {row['header_s']:.4f} | {row['pixels_s']:.3f}; pixel step "
                     f"{row['step_s']:.3f} ({row['step_cpu_s']:.3f} CPU) | | | | "
                     f"{row['crops_read']} / {row['crops_reused']} |")
    if result["recall"]:
        lines += ["", "| engine / screen / policy (70 images, 530 boxes) | recall | FP area mean | FP area max | "
                  "FP area mean, wrapped values' upper lines as text | median s/image (CPU) | quarantined |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for label, row in result["recall"].items():
            lines.append(f"| {label} | {row['covered']}/{row['boxes']} = {row['recall']:.3f} | "
                         f"{row['fp_area_mean']:.4f} | {row['fp_area_max']:.4f} | {row['fp_area_wrapped_mean']:.4f} | "
                         f"{row['median_s']:.3f} ({row['median_cpu_s']:.3f}) | {row.get('quarantined', 0)} |")
    lines.append("")
    memory = result.get("memory")
    if memory:
        lines.append(f"Memory: {memory['frames']}-frame 512² 16-bit object ({memory['frame_set_mib']:.0f} MiB decoded): "
                     f"RSS {memory['baseline_mib']:.0f} MiB loaded, peak {memory['peak_mib']:.0f} MiB, growth "
                     f"{memory['growth_mib']:.0f} MiB = {memory['growth_over_frame_set']:.2f}x the frame set.")
    lines.append(f"Peak RSS of the benchmark process {result['peak_rss_mib']:.0f} MiB; {result['cpu']}, "
                 f"{result['cpus']} CPUs, load average {result['load_average'][0]:.1f}; one worker, no GPU.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
