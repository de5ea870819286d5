"""How: walking datasets and applying the policy's actions."""

from medveil.engine.deidentify import Result, deidentify_dataset

__all__ = ["Result", "deidentify_dataset"]
