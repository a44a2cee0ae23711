"""The sky view factor's loop (numba); :func:`eemt_flow.solar.sky_view.sky_view_factor` decides
what it runs on, and :func:`eemt_flow.solar.sky_view.sky_view_factor_reference` is the plain
numpy form the tests hold it to.

Rows run in parallel; each row walks the directions in order, reading each direction's row of
horizons contiguously. Byte horizons (r.sun's storage) look their sine and cosine up in a
table of the 256 angles, so a cell and direction costs a few multiplications; only where the
horizon lies below the slope's tangent plane is an arctangent taken.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _integrand(elevation_rad, sin_e, cos_e, cos_rel, cos_s, sin_s, tan_s):
    """Dozier & Frew's integrand for one direction, the horizon raised to the tangent plane first.

    With the zenith angle H' = pi/2 - e: sin H' = cos e, cos H' = sin e, so
    cos S sin^2 H' + sin S cos(phi - A) (H' - sin H' cos H') is written in e.
    """
    rise = -tan_s * cos_rel  # tan of the tangent plane's elevation along this direction
    if rise > 0.0 and sin_e < rise * cos_e:  # tan e < rise: the horizon is below the tangent plane
        norm = 1.0 / math.sqrt(1.0 + rise * rise)
        elevation_rad, sin_e, cos_e = math.atan(rise), rise * norm, norm
    return cos_s * cos_e * cos_e + sin_s * cos_rel * (0.5 * math.pi - elevation_rad - cos_e * sin_e)


@numba.njit(cache=True, parallel=True)
def sky_view_bytes_kernel(horizons, table_rad, table_sin, table_cos, cos_az, sin_az, slope_rad, aspect_rad, out):
    """out[r, c] = mean over k of the integrand, horizons[k, r, c] indexing the angle tables."""
    n_az, rows, cols = horizons.shape
    for r in numba.prange(rows):
        cos_s, sin_s, tan_s = np.cos(slope_rad[r]), np.sin(slope_rad[r]), np.tan(slope_rad[r])
        cos_a, sin_a = np.cos(aspect_rad[r]), np.sin(aspect_rad[r])
        total = np.zeros(cols)
        for k in range(n_az):
            row = horizons[k, r]
            for c in range(cols):
                b = row[c]
                cos_rel = cos_az[k] * cos_a[c] + sin_az[k] * sin_a[c]
                total[c] += _integrand(table_rad[b], table_sin[b], table_cos[b], cos_rel, cos_s[c], sin_s[c], tan_s[c])
        for c in range(cols):
            out[r, c] = total[c] / n_az


@numba.njit(cache=True, parallel=True)
def sky_view_float_kernel(horizons, cos_az, sin_az, slope_rad, aspect_rad, out):
    """out[r, c] = mean over k of the integrand of the float horizons [rad] (NaN stays NaN)."""
    n_az, rows, cols = horizons.shape
    for r in numba.prange(rows):
        cos_s, sin_s, tan_s = np.cos(slope_rad[r]), np.sin(slope_rad[r]), np.tan(slope_rad[r])
        cos_a, sin_a = np.cos(aspect_rad[r]), np.sin(aspect_rad[r])
        total = np.zeros(cols)
        for k in range(n_az):
            row = horizons[k, r]
            for c in range(cols):
                e = np.float64(row[c])
                cos_rel = cos_az[k] * cos_a[c] + sin_az[k] * sin_a[c]
                total[c] += _integrand(e, math.sin(e), math.cos(e), cos_rel, cos_s[c], sin_s[c], tan_s[c])
        for c in range(cols):
            out[r, c] = total[c] / n_az
