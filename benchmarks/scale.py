#!/usr/bin/env python3
"""Throughput at scale: medveil's engines against the I/O and pydicom floors and dicognito, one run.

Workload (generated into a temporary directory outside the repository): the
files of pydicom's bundled test data (and pydicom-data, when installed) that
medveil writes and pydicom reads and writes, copied with fresh UIDs until
``--files`` inputs exist, plus ``--large`` multi-frame images of about
``--large-mb`` MB each (frames of a bundled MR image tiled), so that sizes
range from a few kB to tens of MB.

Contenders, interleaved and each timed ``--repeats`` times (medians reported):
  copy          shutil.copyfile of each file (the I/O floor)
  pydicom       pydicom.dcmread + Dataset.save_as (the parse/serialise floor)
  medveil-j1    medveil's local runner, one worker (discovery, audit store,
                verification and mapping files included), profile ``tcia``
                without Clean Pixel Data: the header-only path (OCR costs
                seconds per image; benchmarks/pixel_bench.py measures it)
  medveil-j2    the same with two worker processes
  medveil-dask  the Dask engine on a LocalCluster of two worker processes,
                started once before timing (its start-up is reported apart)
  dicognito     dicognito's default Anonymizer in its own venv
                (benchmarks/peers), interpreter start-up included

Peak memory is the largest resident set of any one process doing the work
(this process for the in-process contenders, the largest child for the
others), sampled every 20 ms with psutil.

Usage: python benchmarks/scale.py [--files 2000] [--repeats 3] [--large 2]
[--large-mb 60] [--json FILE] [--no-dicognito] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (  # noqa: E402
    HEADER_ONLY,
    _accepted_inputs,
    _stage,
    corpus_files,
    markdown_table,
)

from medveil import deidentify_path  # noqa: E402
from medveil.pipeline import deidentify_bytes  # noqa: E402
from medveil.pseudonym import throwaway_key  # noqa: E402
from medveil.quiet import silenced  # noqa: E402

#: The header-only path the issue's goals are about: OCR of every image would measure the OCR engine.
POLICY = HEADER_ONLY


# -- workload -----------------------------------------------------------------------------------


def _pydicom_round_trips(path: Path) -> bool:
    import io

    try:
        with silenced():
            pydicom.dcmread(path).save_as(io.BytesIO())
    except Exception:
        return False
    return True


def build_corpus(work: Path, files: int, large: int, large_mb: int) -> tuple[Path, int, int, int]:
    """Returns (input dir, file count, total bytes, largest file's bytes)."""
    seeds = [p for p in _accepted_inputs(_stage(corpus_files(), work / "staged")) if _pydicom_round_trips(p)]
    if not seeds:
        raise SystemExit("no usable seed file")
    inputs = work / "in"
    count = size = largest = 0
    for number in range(large):
        path = _large_file(inputs / "large" / f"large_{number:02d}.dcm", large_mb)
        count, size, largest = count + 1, size + path.stat().st_size, max(largest, path.stat().st_size)
    with silenced():
        loaded = [pydicom.dcmread(seed) for seed in seeds]
    number = 0
    while count < files:
        ds = loaded[number % len(loaded)]
        ds.SOPInstanceUID = generate_uid()
        if number % 7 == 0:
            ds.SeriesInstanceUID = generate_uid()
        if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        target = inputs / f"{number // 200:03d}" / f"{number:05d}_{seeds[number % len(seeds)].name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with silenced():
            ds.save_as(target)
        count, size, largest = count + 1, size + target.stat().st_size, max(largest, target.stat().st_size)
        number += 1
    return inputs, count, size, largest


def _large_file(target: Path, megabytes: int) -> Path:
    """A multi-frame MR image of about *megabytes* MB: MR_small's frame, tiled."""
    with silenced():
        ds = pydicom.dcmread(Path(pydicom.data.__file__).parent / "test_files" / "MR_small.dcm")
    frame = ds.PixelData
    frames = max(1, megabytes * 1_000_000 // len(frame))
    ds.NumberOfFrames = frames
    ds.PixelData = frame * frames
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    out, record = deidentify_bytes(target.read_bytes(), POLICY, throwaway_key())
    if not isinstance(out, bytes):
        raise SystemExit(f"the large file is not accepted by medveil: {out}")
    return target


# -- contenders ---------------------------------------------------------------------------------


def _files(inputs: Path) -> list[Path]:
    return sorted(p for p in inputs.rglob("*.dcm"))


def run_copy(inputs: Path, out: Path) -> None:
    for path in _files(inputs):
        target = out / path.relative_to(inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def run_pydicom(inputs: Path, out: Path) -> None:
    with silenced():
        for path in _files(inputs):
            target = out / path.relative_to(inputs)
            target.parent.mkdir(parents=True, exist_ok=True)
            pydicom.dcmread(path).save_as(target)


def run_medveil(inputs: Path, out: Path, workers: int, **runner) -> None:
    summary = deidentify_path(inputs, out, policy=POLICY, key=throwaway_key(), workers=workers,
                              workspace=out.parent / (out.name + "-ws"),
                              mappings_dir=out.parent / (out.name + "-maps"), **runner)
    if summary.quarantined:
        raise SystemExit(f"medveil quarantined {summary.quarantined} benchmark inputs: {dict(summary.reasons)}")


_WORKER_PROBE = """
import sys
from pathlib import Path
import psutil
sys.path.insert(0, sys.argv[2])
from scale import POLICY
from medveil.pipeline import deidentify_bytes
from medveil.pseudonym import throwaway_key
idle = psutil.Process().memory_info().rss
out, record = deidentify_bytes(Path(sys.argv[1]).read_bytes(), POLICY, throwaway_key())
if not isinstance(out, bytes):
    raise SystemExit(out)
# VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across execve, so a probe started from
# a large process would report that process's size.
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(idle, peak)
"""


def worker_memory(path: Path, repeats: int = 3) -> tuple[int, int]:
    """(idle RSS, peak RSS) in bytes of a fresh worker process that cleans *path*; medians.

    A fresh process, because the local runner's workers are forked from the
    process that starts them and their RSS counts whatever that process held.
    Medians of *repeats* processes.
    """
    import subprocess

    idles, peaks = [], []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", _WORKER_PROBE, str(path), str(Path(__file__).parent)],
                              capture_output=True, text=True, check=True)
        idle, peak = (int(x) for x in done.stdout.split()[-2:])
        idles.append(idle)
        peaks.append(peak)
    return int(statistics.median(idles)), int(statistics.median(peaks))


class PeakRSS:
    """Largest resident set of this process and of any descendant while the block runs.

    Finding descendants scans every process of the machine, so the list is
    refreshed once a second and only the known ones are sampled in between:
    the sampler must not steal the CPU it is measuring.
    """

    def __init__(self, interval: float = 0.05, refresh: float = 1.0):
        self.interval = interval
        self.refresh = refresh
        self.self_peak = 0
        self.child_peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        children: list[psutil.Process] = []
        listed = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - listed >= self.refresh:
                try:
                    children = me.children(recursive=True)
                except psutil.Error:
                    children = []
                listed = now
            self.self_peak = max(self.self_peak, me.memory_info().rss)
            for child in children:
                try:
                    self.child_peak = max(self.child_peak, child.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--large-mb", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-dicognito", action="store_true")
    parser.add_argument("--work", type=Path, help="where to generate (default: a temp dir, removed after)")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    work = Path(tempfile.mkdtemp(prefix="medveil-scale-", dir=args.work))
    load_before = os.getloadavg()
    try:
        started = time.perf_counter()
        inputs, count, size, largest = build_corpus(work, args.files, args.large, args.large_mb)
        print(f"corpus: {count} files, {size / 1e6:.1f} MB, largest {largest / 1e6:.1f} MB "
              f"(generated in {time.perf_counter() - started:.0f} s)", flush=True)
        largest_path = max(_files(inputs), key=lambda p: p.stat().st_size)
        worker_idle, worker_peak = worker_memory(largest_path)
        print(f"a fresh worker: {worker_idle / 1e6:.0f} MB idle, {worker_peak / 1e6:.0f} MB peak on the largest file",
              flush=True)
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
        cluster_start = time.perf_counter() - started
        contenders = {
            "copy": (run_copy, "self"),
            "pydicom": (run_pydicom, "self"),
            "medveil-j1": (lambda i, o: run_medveil(i, o, 1), "self"),
            "medveil-j2": (lambda i, o: run_medveil(i, o, 2), "child"),
            "medveil-dask": (lambda i, o: run_medveil(i, o, 2, runner="dask",
                                                      scheduler=cluster.scheduler_address), "child"),
        }
        dicognito_version = None
        if not args.no_dicognito:
            from peers import get_peer, run_peer
            from peers.venvs import ensure_venv

            peer = get_peer("dicognito")
            venv = ensure_venv(peer)
            dicognito_version = venv.version

            def run_dicognito(i: Path, o: Path) -> None:
                result = run_peer(peer, venv.python, i, o, 3600, o.parent / (o.name + "-peer"))
                if result.failure or result.written != count:
                    raise SystemExit(f"dicognito: {result.failure or result.errors}")

            contenders["dicognito"] = (run_dicognito, "child")
        times: dict[str, list[float]] = {name: [] for name in contenders}
        peaks: dict[str, int] = dict.fromkeys(contenders, 0)
        for repeat in range(args.repeats):
            for name, (fn, where) in contenders.items():  # interleaved, so drift hits all alike
                out = work / f"out-{name}-{repeat}"
                with PeakRSS() as rss:
                    start = time.perf_counter()
                    fn(inputs, out)
                    seconds = time.perf_counter() - start
                times[name].append(seconds)
                peaks[name] = max(peaks[name], rss.self_peak if where == "self" else rss.child_peak)
                print(f"  repeat {repeat + 1} {name}: {seconds:.1f} s", flush=True)
                for leftover in work.glob(f"out-{name}-{repeat}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
        client.close()
        cluster.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = []
    for name, seconds in medians.items():
        row = {"contender": name, "median_s": round(seconds, 2), "files_per_s": round(count / seconds, 1),
               "mb_per_s": round(size / seconds / 1e6, 1),
               "throughput_vs_pydicom": round(medians["pydicom"] / seconds, 2)}
        if "dicognito" in medians:
            row["speed_vs_dicognito"] = round(medians["dicognito"] / seconds, 2)
        row["peak_rss_mb"] = round(peaks[name] / 1e6)
        row["peak_vs_largest_file"] = round(peaks[name] / largest, 1)
        rows.append(row)
    conditions = {"files": count, "bytes": size, "largest_bytes": largest, "repeats": args.repeats,
                  "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                  "load_after": [round(x, 2) for x in load_after], "python": platform.python_version(),
                  "pydicom": pydicom.__version__, "dicognito": dicognito_version,
                  "dask_cluster_start_s": round(cluster_start, 1),
                  "j2_speedup": round(medians["medveil-j1"] / medians["medveil-j2"], 2),
                  "dask_speedup": round(medians["medveil-j1"] / medians["medveil-dask"], 2),
                  "fresh_worker_idle_mb": round(worker_idle / 1e6), "fresh_worker_peak_mb": round(worker_peak / 1e6),
                  "fresh_worker_peak_vs_largest_file": round(worker_peak / largest, 2),
                  "fresh_worker_growth_vs_largest_file": round((worker_peak - worker_idle) / largest, 2)}
    print(f"workload: {count} files, {size / 1e6:.1f} MB (largest {largest / 1e6:.1f} MB); "
          f"{args.repeats} repeats, medians; conditions: {json.dumps(conditions)}")
    print(markdown_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"conditions": conditions, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
