"""Stable train/valid/test assignment by a hash of an example's id.

A hash split depends only on the id (and a salt), never on file order or on which other
examples exist, so an example keeps its split when categories are added, removed or read in
another order, on every machine and Python version (BLAKE2b, not Python's salted ``hash``).
"""
from __future__ import annotations

import functools
import hashlib
from typing import Sequence

__all__ = ["SPLIT_NAMES", "split_fraction", "split_of", "check_fractions"]

#: The splits a hash split can produce, in this order along the unit interval.
SPLIT_NAMES = ("train", "valid", "test")


def split_fraction(key: str, salt: str = "") -> float:
    """A number in ``[0, 1)``: BLAKE2b with an 8-byte digest (``digest_size=8``, which is not a
    prefix of the 64-byte digest) of ``"salt:key"`` in UTF-8, read big-endian, divided by 2**64."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_of(key: str, fractions: Sequence[float], salt: str = "") -> str:
    """The split of ``key`` for ``fractions = (train, valid, test)`` of the unit interval
    (checked by :func:`check_fractions`).

    ``split_fraction(key, salt)`` below ``train`` -> ``"train"``, below ``train + valid`` ->
    ``"valid"``, else ``"test"`` (the last non-empty split takes any rounding remainder).
    """
    fractions = _checked_fractions(tuple(fractions))  # (0.2, 0.2, 0.2) gave "test" 60% of the keys
    u = split_fraction(key, salt)
    edge = 0.0
    for name, frac in zip(SPLIT_NAMES, fractions):
        edge += frac
        if u < edge:
            return name
    return [n for n, f in zip(SPLIT_NAMES, fractions) if f > 0][-1]


def check_fractions(fractions: Sequence[float], name: str = "split fractions") -> tuple[float, float, float]:
    """Validated ``(train, valid, test)``: each in ``[0, 1]``, summing to 1, train > 0."""
    fr = tuple(float(f) for f in fractions)
    if len(fr) != len(SPLIT_NAMES) or any(not 0.0 <= f <= 1.0 for f in fr) or abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(f"{name}: need (train, valid, test) fractions in [0, 1] summing to 1, got {tuple(fractions)}")
    if fr[0] == 0.0:
        raise ValueError(f"{name}: the train fraction must be > 0, got {tuple(fractions)}")
    return fr


@functools.lru_cache(maxsize=64)
def _checked_fractions(fractions: tuple) -> tuple[float, float, float]:
    """:func:`check_fractions`, once per distinct tuple (``split_of`` runs once per line of a
    category file)."""
    return check_fractions(fractions, "split_of")
