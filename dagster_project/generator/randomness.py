"""Named random streams, so each part of the simulation draws from its own seeded generator.

Deriving a stream from (seed, name, ...) instead of sharing one generator keeps every part
reproducible on its own: changing how many numbers one part draws never shifts another.
"""

import zlib

import numpy as np


def stream(seed: int, *names: str | int) -> np.random.Generator:
    spawn_key = tuple(zlib.crc32(str(name).encode()) for name in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def stochastic_round(rng: np.random.Generator, value: float) -> int:
    """Round up with probability equal to the fractional part, so small files keep the expected share."""
    whole = int(np.floor(value))
    return whole + int(rng.random() < value - whole)
