"""Enhancement of winning faces before they are published (super-resolution lands here).

Only winners pass through an enhancer, once per published event, never every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .select import Candidate


@dataclass
class Enhanced:
    face: np.ndarray  # aligned face to publish (restored when sr_applied)
    context: np.ndarray | None  # context crop to publish
    sr_applied: bool = False
    model: str | None = None  # name and version of the model that restored the face


class Enhancer(Protocol):
    def enhance(self, candidate: Candidate) -> Enhanced: ...


class PassThrough:
    """Publishes the aligned face and context crop untouched."""

    def enhance(self, candidate: Candidate) -> Enhanced:
        return Enhanced(face=candidate.aligned, context=candidate.context)


def make_enhancer(config) -> Enhancer:
    return PassThrough()
