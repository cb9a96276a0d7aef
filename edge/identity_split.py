"""The one identity split that every trainer, evaluator and the INT8 calibration share: the same people are
held out from all of them, decided by a hash of the identity folder's name (never of an image)."""

from __future__ import annotations

import hashlib

HOLDOUT_FRACTION = 0.35


def holdout_identity(name: str, fraction: float, salt: str = "faceedge") -> bool:
    """Deterministic identity split: the first 8 hex digits of sha256(salt/name) as a fraction."""
    digest = hashlib.sha256(f"{salt}/{name}".encode()).hexdigest()
    return int(digest[:8], 16) / 0x100000000 < fraction


def split_identities(names: list[str], fraction: float, salt: str = "faceedge") -> tuple[list[str], list[str]]:
    """(train, held_out) identity names."""
    held = [n for n in names if holdout_identity(n, fraction, salt)]
    return [n for n in names if n not in held], held
