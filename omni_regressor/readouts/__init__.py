"""Readout registry: `--readout NAME` -> the class that loads, collates, tests and exports that readout.

A new readout is one module here with a `Readout` subclass (see `base.py`) and one entry in `READOUTS`.
"""

from .base import Readout, RunContext, TestResult
from .discriminative import DiscriminativeReadout
from .generative import GenerativeReadout

READOUTS: dict[str, type[Readout]] = {readout.name: readout for readout in (DiscriminativeReadout, GenerativeReadout)}


def get_readout(name: str) -> Readout:
    if name not in READOUTS:
        raise ValueError(f"unknown readout {name!r}; choose one of {', '.join(READOUTS)}.")
    return READOUTS[name]()


__all__ = ["READOUTS", "Readout", "RunContext", "TestResult", "get_readout"]
