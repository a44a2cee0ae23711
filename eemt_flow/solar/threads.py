"""Thread count of the solar engine's numba kernels."""

from __future__ import annotations

import numba


def set_numba_threads(n_threads):
    """Let numba's parallel loops use ``n_threads`` threads (None = all numba may use)."""
    if n_threads is None:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    else:
        numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
