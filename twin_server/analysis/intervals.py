"""Run-length encoding of per-second label arrays into half-open intervals."""

from __future__ import annotations

from typing import Any

import numpy as np


def runs(labels: np.ndarray) -> list[tuple[int, int, Any]]:
    """Split an array into runs of equal labels.

    Parameters
    ----------
    labels : numpy.ndarray
        One label per grid cell (any dtype comparable with ``!=``).

    Returns
    -------
    list of (start_index, end_index, label)
        Half-open index ranges covering the whole array, in order; each label is an element
        of ``labels`` (a numpy scalar of its dtype).
    """
    n = len(labels)
    if n == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    return [(int(s), int(e), labels[s]) for s, e in zip(starts, ends, strict=True)]


def remove_short_runs(labels: np.ndarray, min_len: int, keep: object = None) -> np.ndarray:
    """Merge runs shorter than ``min_len`` cells into the preceding run (flicker removal).

    Parameters
    ----------
    labels : numpy.ndarray
        Per-cell labels.
    min_len : int
        Shortest run kept, in cells.
    keep : object, optional
        A label whose runs are never removed (e.g. ``"unknown"``).

    Returns
    -------
    numpy.ndarray
        A copy with short runs replaced by the previous run's label (the next one's for the
        first run).
    """
    out = labels.copy()
    if min_len <= 1 or len(out) == 0:
        return out
    for _ in range(3):  # a removal can join two runs; a few passes settle it
        changed = False
        rr = runs(out)
        for i, (s, e, lab) in enumerate(rr):
            if e - s >= min_len or lab == keep or len(rr) == 1:
                continue
            repl = rr[i - 1][2] if i > 0 else rr[i + 1][2]
            if repl == keep:
                continue
            out[s:e] = repl
            changed = True
        if not changed:
            break
    return out
