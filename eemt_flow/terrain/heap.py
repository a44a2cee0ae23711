"""One binary min-heap for the terrain kernels (numba), ordered by (key, sequence).

Entries are three parallel arrays: ``keys`` (float64) order the heap, ``seqs`` (int64)
break ties between equal keys, and ``values`` (int64) carry what was pushed (a cell or
a graph node). Priority-Flood (:mod:`eemt_flow.terrain.fill`) pushes an increasing
sequence number, so cells of equal elevation leave in the order they came; the tiled
exchanges' Dijkstra searches (:mod:`eemt_flow.terrain.tiled`) push 0, which orders by
key alone.

``heap_push`` and ``heap_pop`` return the new size; the caller owns the arrays and their
capacity (:func:`heap_grow` doubles it when the arrays are full).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _less(keys, seqs, a, b):
    return keys[a] < keys[b] or (keys[a] == keys[b] and seqs[a] < seqs[b])


@numba.njit(cache=True)
def _swap(keys, seqs, values, a, b):
    keys[a], keys[b] = keys[b], keys[a]
    seqs[a], seqs[b] = seqs[b], seqs[a]
    values[a], values[b] = values[b], values[a]


@numba.njit(cache=True)
def heap_push(keys, seqs, values, size, key, seq, value):
    """Add (key, seq, value); returns the new size. The arrays must have room for it."""
    pos = size
    keys[pos] = key
    seqs[pos] = seq
    values[pos] = value
    while pos > 0:
        parent = (pos - 1) // 2
        if _less(keys, seqs, pos, parent):
            _swap(keys, seqs, values, pos, parent)
            pos = parent
        else:
            break
    return size + 1


@numba.njit(cache=True)
def heap_pop(keys, seqs, values, size):
    """Remove the smallest (key, seq); returns (key, value, new size)."""
    key = keys[0]
    value = values[0]
    size -= 1
    keys[0] = keys[size]
    seqs[0] = seqs[size]
    values[0] = values[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and _less(keys, seqs, left + 1, left):
            child = left + 1
        if _less(keys, seqs, child, pos):
            _swap(keys, seqs, values, pos, child)
            pos = child
        else:
            break
    return key, value, size


@numba.njit(cache=True)
def heap_grow(keys, seqs, values, size):
    """The heap arrays with room for one more entry (doubled when full)."""
    if size < keys.size:
        return keys, seqs, values
    keys2 = np.empty(2 * keys.size)
    seqs2 = np.empty(2 * keys.size, dtype=np.int64)
    values2 = np.empty(2 * keys.size, dtype=np.int64)
    keys2[:size] = keys[:size]
    seqs2[:size] = seqs[:size]
    values2[:size] = values[:size]
    return keys2, seqs2, values2
