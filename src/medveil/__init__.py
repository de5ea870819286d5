"""medveil: de-identification of medical images for public sharing.

The two entry points most programs need::

    import medveil
    key = medveil.load_key(Path("medveil.key"))
    policy = medveil.get_profile("tcia")
    result = medveil.deidentify_dataset(ds, policy, key)      # one pydicom Dataset, in place
    summary = medveil.deidentify_path(src, dst, policy=policy, key=key, mappings_dir=maps)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medveil._version import __version__
from medveil.engine import Result, deidentify_dataset
from medveil.policy import Option, Policy, get_profile, load_recipe
from medveil.pseudonym import Key, generate_key_file, load_key, throwaway_key


def deidentify_path(input: Path, output: Path, *, policy: Policy | str = "basic", key: Key,
                    mappings_dir: Path | None = None, workspace: Path | None = None, workers: int = 1,
                    record_originals: bool = False, resume: bool = True,
                    progress: Callable[[int], None] | None = None,
                    on_total: Callable[[int], None] | None = None):
    """De-identify a file or directory tree into *output*; returns the run summary.

    *on_total* is told how many inputs were found, *progress* how many are done
    as they finish (the CLI's progress bar uses both).
    """
    from medveil.runner.batch import RunConfig, default_workspace, run

    if isinstance(policy, str):
        policy = get_profile(policy)
    config = RunConfig(input=Path(input), output=Path(output), policy=policy, key=key,
                       workspace=Path(workspace) if workspace else default_workspace(Path(output)),
                       mappings_dir=Path(mappings_dir) if mappings_dir else None, workers=workers,
                       record_originals=record_originals, resume=resume)
    return run(config, progress=progress, on_total=on_total)


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
