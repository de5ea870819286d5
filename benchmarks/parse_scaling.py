#!/usr/bin/env python3
"""Does the cost of a file grow linearly with its size?  Zero padding and very long values.

A hostile-input test found files padded with zeros (or carrying very long
values) parsing at about 0.6 s per MB: 200 MB took 117 s.  Every 8 zero
bytes read as one empty element, 25 million of them.  This benchmark times
medveil's core (``deidentify_bytes``, header path, profile ``tcia`` without
Clean Pixel Data) on such files at growing sizes, beside pydicom's own
read + write of the same bytes in the same run, and reports seconds per MB
and the ratio to pydicom.  Medians of ``--repeats``.

Cases:
  zero-padding   CT_small.dcm followed by N MB of zero bytes
  long-text      a Study Description (cleaned text) of N MB
  long-comment   Image Comments (cleaned text) of N MB
  long-private   a private OB value of N MB (removed)

Usage: python benchmarks/parse_scaling.py [--sizes 1,10,50] [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import statistics
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from medveil import get_profile
from medveil.pipeline import deidentify_bytes
from medveil.policy import Option
from medveil.pseudonym import throwaway_key
from medveil.quiet import silenced

POLICY = get_profile("tcia")
POLICY = dataclasses.replace(POLICY, options=POLICY.options - {Option.CLEAN_PIXEL_DATA})
MB = 1 << 20


def build(case: str, size: int) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if case == "zero-padding":
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue() + bytes(size)
    if case == "long-text":
        ds.add_new(0x00081030, "UT", ("Chest CT follow-up, no change. " * (size // 30 + 1))[:size])
    elif case == "long-private":
        ds.add_new(0x00290010, "LO", "ACME 1.0")
        ds.add_new(0x00291010, "OB", bytes(size))
    elif case == "long-comment":
        ds.add_new(0x00204000, "LT", ("word " * (size // 5 + 1))[:size])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def pydicom_round_trip(data: bytes) -> None:
    with silenced():
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for tag in [t for t in ds.keys() if t.group == 0]:  # padding parsed as (0000,0000)
            del ds[tag]
        ds.save_as(io.BytesIO(), enforce_file_format=False)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,50", help="sizes in MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    key = throwaway_key()
    rows = []
    for case in ("zero-padding", "long-text", "long-comment", "long-private"):
        for megabytes in (int(s) for s in args.sizes.split(",")):
            with silenced():
                data = build(case, megabytes * MB)
            ours = timed(lambda data=data: deidentify_bytes(data, POLICY, key), args.repeats)
            theirs = timed(lambda data=data: pydicom_round_trip(data), args.repeats)
            _, record = deidentify_bytes(data, POLICY, key)
            rows.append({"case": case, "mb": megabytes, "medveil_s": round(ours, 3),
                         "pydicom_s": round(theirs, 3), "s_per_mb": round(ours / megabytes, 4),
                         "vs_pydicom": round(ours / theirs, 2) if theirs else None, "status": record.status})
    print("| case | MB | medveil s | s/MB | pydicom read+write s | ratio | status |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['case']} | {row['mb']} | {row['medveil_s']} | {row['s_per_mb']} | {row['pydicom_s']} "
              f"| {row['vs_pydicom']} | {row['status']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
