"""medveil: de-identification of medical images for public sharing.

The two entry points most programs need::

    import medveil
    key = medveil.load_key(Path("medveil.key"))
    policy = medveil.get_profile("tcia")
    result = medveil.deidentify_dataset(ds, policy, key)      # one pydicom Dataset, in place, the way a
                                                              # file's dataset is (burned-in gate included)
    summary = medveil.deidentify_path(src, dst, policy=policy, key=key, mappings_dir=maps)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medveil._version import __version__
from medveil.engine import Result
from medveil.errors import MedveilError
from medveil.policy import Option, Policy, get_profile, load_recipe
from medveil.pseudonym import Key, generate_key_file, load_key, throwaway_key


def deidentify_dataset(ds, policy: Policy | str, key: Key, *, patient_id: str | None = None) -> Result:
    """De-identify a pydicom Dataset in place, through the same per-file pipeline as a file.

    The burned-in gate applies (an ultrasound or Secondary Capture is refused
    unless the policy cleans its pixels or passes such objects), and so do
    Clean Pixel Data and ``--verify`` when the policy has them.  *patient_id*
    is the patient's sequential ID when the policy numbers patients.  Raises
    :class:`medveil.errors.QuarantineError` when the dataset must not be
    released (it may then be half-changed: write it nowhere).
    """
    from medveil.pipeline import deidentify_dataset as pipeline_deidentify

    if isinstance(policy, str):
        policy = get_profile(policy)
    return pipeline_deidentify(ds, policy, key, patient_id=patient_id)


def deidentify_path(input: Path | str, output: Path | str, *, policy: Policy | str = "basic", key: Key,
                    mappings_dir: Path | None = None, workspace: Path | None = None, workers: int = 1,
                    record_originals: bool = False, resume: bool = True,
                    progress: Callable[[str], None] | None = None,
                    on_total: Callable[[int], None] | None = None,
                    runner: str = "local", scheduler: str | None = None, batch_size: int | None = None,
                    storage_options: dict | None = None, follow_symlinks: bool = False,
                    protected: tuple[Path, ...] = (), force: bool = False, memory_budget: int | None = None,
                    quarantine_limit: int | None = None, engine: str | None = None):
    """De-identify a file or directory tree into *output*; returns the run summary.

    *on_total* is told how many inputs were found, *progress* each input's
    status (a :class:`medveil.records.Status`: written, unchanged,
    quarantined, skipped) as it finishes (the CLI's progress display uses
    both).  *runner* says where files are de-identified: ``"local"`` (worker
    processes), ``"thread"`` (threads in this process) or ``"dask"`` (a Dask
    cluster: a local one of *workers* processes unless *scheduler* names
    one); with Dask, *input* and *output* may be fsspec URLs such as
    ``s3://bucket/prefix``, and *storage_options* go to fsspec.  *engine* is
    the old name of *runner*.

    Symbolic links leading out of *input* are followed only with
    *follow_symlinks*; files in *protected* (pass the key file) are never
    read.  An *output* holding files no medveil run wrote is refused unless
    *force*.  *memory_budget* (bytes per worker) refuses files whose declared
    sizes need more; the default shares the machine's available memory.
    Quarantine copies of files over *quarantine_limit* bytes are not made.
    Interrupted (Ctrl-C, SIGTERM), the run stops cleanly and raises
    :class:`KeyboardInterrupt` whose ``summary`` says what was done.
    """
    from medveil.runner import RUNNERS, executor
    from medveil.runner.base import run
    from medveil.runner.book import RunConfig, default_workspace
    from medveil.runner.locations import is_url

    if isinstance(policy, str):
        policy = get_profile(policy)
    runner = engine or runner
    if runner not in RUNNERS:
        raise MedveilError(f"the runner must be one of {', '.join(RUNNERS)}")
    remote = is_url(input) or is_url(output)
    if remote and runner != "dask":
        raise MedveilError("URLs as input or output need --runner dask")
    if remote and workspace is None and is_url(output):
        raise MedveilError("an output URL needs a local --workspace (it holds the audit store)")
    as_path = (lambda p: str(p)) if remote else Path
    config = RunConfig(input=as_path(input), output=as_path(output), policy=policy, key=key,
                       workspace=Path(workspace) if workspace else default_workspace(Path(output)),
                       mappings_dir=Path(mappings_dir) if mappings_dir else None, workers=workers,
                       record_originals=record_originals, resume=resume, follow_symlinks=follow_symlinks,
                       protected=tuple(Path(p) for p in protected), force=force, memory_budget=memory_budget,
                       **({"quarantine_limit": quarantine_limit} if quarantine_limit is not None else {}))
    return run(config, executor(runner, workers, scheduler=scheduler, batch_size=batch_size),
               storage_options=storage_options, progress=progress, on_total=on_total)


__all__ = [
    "Key",
    "Option",
    "Policy",
    "Result",
    "__version__",
    "deidentify_dataset",
    "deidentify_path",
    "generate_key_file",
    "get_profile",
    "load_key",
    "load_recipe",
    "throwaway_key",
]
