"""The Dask runner gives the local runner's release, byte for byte, locally and on object storage.

One small mixed input tree (images, a structured report, an RT plan, a
truncated file, a text file, two inputs that share a SOP Instance UID with
different content) goes through the local runner and through Dask with two
worker processes.  Batches of one or two files make the clash span tasks, so
the coordinator has to put the earlier file's output back.  The S3 test talks
to moto's server on loopback through a real s3fs client over HTTP.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
from pathlib import Path

import boto3
import pydicom
import pydicom.data
import pytest
import s3fs
from distributed import Client, LocalCluster
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

import medveil
from medveil.cli import app
from medveil.errors import MedveilError
from medveil.pseudonym import Key
from medveil.quiet import silenced
from medveil.runner.base import Job, run
from medveil.runner.book import RunConfig
from medveil.runner.dask import DaskExecutor, run_batch
from medveil.runner.locations import Location


def run_dask(config: RunConfig, *, scheduler=None, batch_size=None, storage_options=None):
    """A run on Dask, as ``medveil deidentify --runner dask`` starts it."""
    return run(config, DaskExecutor(config.workers, scheduler=scheduler, batch_size=batch_size),
               storage_options=storage_options)

pytestmark = pytest.mark.slow  # a Dask cluster of worker processes, object storage over loopback

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
KEY = Key(b"d" * 32)
BASIC = medveil.get_profile("basic")
BUNDLED = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "test-SR.dcm", "emri_small.dcm",
           "MR_small_implicit.dcm", "rtplan_truncated.dcm", "SC_rgb.dcm")


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, shared by the tests that pass a scheduler address."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as local:
        yield local


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    root = tmp_path / "DOE^JANE_MRN-123456"
    root.mkdir()
    for number, name in enumerate(BUNDLED):
        if (TEST_FILES / name).exists():
            shutil.copyfile(TEST_FILES / name, root / f"{number:02d}_{name}")
    with silenced():
        twin = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    twin.StudyDescription = "same SOP Instance UID, other content"
    twin.save_as(root / "zz_twin.dcm")
    twin.PatientID = "OTHER-PATIENT"  # same SOP Instance UID under another patient: another path
    twin.save_as(root / "zz_twin_other_patient.dcm")
    (root / "notes.txt").write_text("patient DOE^JANE called back\n")
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def statuses(workspace: Path) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(workspace / "audit.sqlite") as db:
        rows = db.execute("SELECT input_ref, status, reason FROM files").fetchall()
    return {ref: (status, reason) for ref, status, reason in rows}


def local_release(tmp_path: Path, inputs: Path) -> tuple[Path, Path, Path]:
    out, ws, maps = tmp_path / "local-out", tmp_path / "local-ws", tmp_path / "local-maps"
    run(RunConfig(input=inputs, output=out, policy=BASIC, key=KEY, workspace=ws, mappings_dir=maps))
    return out, ws, maps


def dask_config(tmp_path: Path, inputs, name: str, output=None, **kwargs) -> RunConfig:
    return RunConfig(input=inputs, output=output if output is not None else tmp_path / f"{name}-out",
                     policy=BASIC, key=KEY, workspace=tmp_path / f"{name}-ws",
                     mappings_dir=tmp_path / f"{name}-maps", **kwargs)


def test_dask_with_two_worker_processes_matches_the_local_runner(tmp_path, inputs):
    local_out, local_ws, local_maps = local_release(tmp_path, inputs)
    config = dask_config(tmp_path, inputs, "dask", workers=2)
    summary = run_dask(config, batch_size=2)  # no scheduler: starts (and stops) its own cluster
    assert tree(config.output) == tree(local_out)
    assert tree(config.mappings_dir) == tree(local_maps)
    assert statuses(config.workspace) == statuses(local_ws)
    # one output per written input; the twin is quarantined, the text file skipped
    written = [s for s in statuses(config.workspace).values() if s[0] == "written"]
    assert len(tree(config.output)) == len(written) == summary.written
    assert summary.quarantined >= 3 and summary.skipped == 1
    assert not list(config.output.rglob(".medveil-tmp-*"))


def test_rerun_is_byte_identical_and_writes_nothing_new(tmp_path, inputs, cluster):
    config = dask_config(tmp_path, inputs, "dask")
    once = run_dask(config, scheduler=cluster.scheduler_address, batch_size=3)
    first = tree(config.output)
    accepted = once.written + once.unchanged  # MR_small and its implicit VR copy share one output
    again = run_dask(config, scheduler=cluster.scheduler_address, batch_size=1)
    assert tree(config.output) == first
    assert again.written == 0 and again.unchanged == accepted
    fresh = run_dask(RunConfig(**{**config.__dict__, "resume": False}), scheduler=cluster.scheduler_address)
    assert tree(config.output) == first
    assert fresh.written == 0 and fresh.unchanged == accepted  # workers found identical objects


def test_a_retried_batch_leaves_no_duplicates(tmp_path, inputs, cluster):
    """A task that dies half-way is run again by Dask; its outputs overwrite, never duplicate."""
    marker = tmp_path / "failed-once"
    source, target = Location(inputs), Location(tmp_path / "retried")
    jobs = [Job(index=i, path=str(p), input_ref=f"ref{i}") for i, p in enumerate(sorted(inputs.iterdir()))
            if p.suffix == ".dcm" and "twin" not in p.name and "implicit" not in p.name]

    def flaky(batch):
        if not marker.exists():
            run_batch(batch[: len(batch) // 2 + 1], source, target, BASIC, KEY)
            marker.touch()
            raise RuntimeError("worker lost half-way")
        return run_batch(batch, source, target, BASIC, KEY)

    with Client(cluster.scheduler_address) as client:
        done = client.submit(flaky, jobs, retries=1, pure=False).result()
    assert marker.exists()
    written = tree(Path(target.root))
    assert len(written) == len({d.relpath for d in done if d.status in ("written", "unchanged")}) > 2
    reference = Location(tmp_path / "once")
    run_batch(jobs, source, reference, BASIC, KEY)
    assert written == tree(Path(reference.root))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3():
    """moto's S3 server on loopback and the options a real s3fs client needs to reach it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"key": "testing", "secret": "testing", "use_listings_cache": False,
               "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}
    boto3.client("s3", endpoint_url=options["client_kwargs"]["endpoint_url"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="medveil-test")
    fs = s3fs.S3FileSystem(**options)
    try:
        yield fs, options
    finally:
        server.stop()


def test_s3_round_trip_over_loopback(tmp_path, inputs, cluster, s3):
    fs, options = s3
    local_out, local_ws, local_maps = local_release(tmp_path, inputs)
    fs.put(str(inputs) + "/", "medveil-test/in/", recursive=True)
    config = dask_config(tmp_path, "s3://medveil-test/in", "s3", output="s3://medveil-test/out")
    summary = run_dask(config, scheduler=cluster.scheduler_address, batch_size=2, storage_options=options)
    downloaded = tmp_path / "downloaded"
    fs.get("medveil-test/out/", str(downloaded) + "/", recursive=True)
    assert tree(downloaded) == tree(local_out)
    assert tree(config.mappings_dir) == tree(local_maps)
    assert statuses(config.workspace) == statuses(local_ws)  # same keyed refs, same decisions
    assert summary.written + summary.unchanged >= len(tree(local_out)) > 0
    quarantined = sorted(p.name for p in (config.workspace / "quarantine").glob("*.dcm"))
    assert quarantined == sorted(p.name for p in (local_ws / "quarantine").glob("*.dcm"))
    # rerunning against the bucket overwrites nothing and adds nothing
    again = run_dask(config, scheduler=cluster.scheduler_address, storage_options=options)
    assert again.unchanged == summary.written + summary.unchanged and again.written == 0
    assert len(fs.find("medveil-test/out")) == len(tree(local_out))


def test_cli_engine_dask_end_to_end(tmp_path, inputs, cluster):
    key_file = tmp_path / "k.key"
    runner = CliRunner()
    assert runner.invoke(app, ["keygen", str(key_file)]).exit_code == 0
    args = ["deidentify", str(inputs), str(tmp_path / "cli-out"), "--key-file", str(key_file),
            "--mappings", str(tmp_path / "cli-maps"), "--runner", "dask", "--scheduler",
            cluster.scheduler_address, "--batch-size", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # 1: some inputs were quarantined
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["written"] == len(tree(tmp_path / "cli-out")) > 0
    # the same key through the local engine gives the same release
    local = runner.invoke(app, ["deidentify", str(inputs), str(tmp_path / "cli-local-out"), "--key-file",
                                str(key_file), "--mappings", str(tmp_path / "cli-local-maps"), "--json"])
    assert local.exit_code == 1, local.output
    assert tree(tmp_path / "cli-out") == tree(tmp_path / "cli-local-out")
    assert tree(tmp_path / "cli-maps") == tree(tmp_path / "cli-local-maps")
    assert "DOE" not in result.output and "123456" not in result.output


def test_scheduler_without_dask_engine_is_refused(tmp_path, inputs):
    result = CliRunner().invoke(app, ["deidentify", str(inputs), str(tmp_path / "o"), "--throwaway-key",
                                      "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code != 0
    assert not (tmp_path / "o").exists()


def test_urls_need_the_dask_runner(tmp_path):
    with pytest.raises(MedveilError, match="runner dask"):
        medveil.deidentify_path("s3://bucket/in", tmp_path / "o", key=KEY)
