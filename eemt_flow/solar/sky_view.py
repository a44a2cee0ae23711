"""Sky view factor of every cell from its horizon angles, slope and aspect (Dozier & Frew 1990).

The sky view factor ``V_d`` is the fraction of the isotropic diffuse sky irradiance that a
surface element receives compared with an unobstructed horizontal surface: the radiative
(cosine-weighted) view factor of the visible sky, not the fraction of the sky's solid angle.
It is 1 on open flat ground, (1 + cos S) / 2 on an infinite plane of slope S, and cos a on
the floor of an infinite V-shaped valley with walls of slope a.

No I/O: arrays in, an array out. The horizons are those of
:func:`eemt_flow.solar.horizon.horizon_angles`.
"""

from __future__ import annotations

import math

import numpy as np

from eemt_flow.solar import sky_view_kernels
from eemt_flow.solar.threads import set_numba_threads

#: Right angle [rad]: the zenith angle of the horizontal, pi / 2.
HALF_PI_RAD = 0.5 * math.pi


def tangent_plane_elevation_rad(azimuth_rad, slope_rad, aspect_rad):
    """Elevation of a sloping surface's own tangent plane seen along an azimuth.

    A plane of slope ``S`` facing (falling towards) azimuth ``A`` rises along azimuth
    ``phi`` at ``tan e = -tan S cos(phi - A)``: ``e = S`` straight uphill, ``-S`` downhill,
    0 across the slope.

    Parameters
    ----------
    azimuth_rad : float or array, direction of view [rad], in the same convention as
        ``aspect_rad`` (here counter-clockwise from east)
    slope_rad : float or array, slope S [rad], 0..pi/2
    aspect_rad : float or array, azimuth the slope faces (downslope direction) [rad]

    Returns
    -------
    array, elevation angle of the tangent plane above the horizontal [rad], in [-S, S]
    """
    return -np.arctan(np.tan(slope_rad) * np.cos(np.asarray(azimuth_rad) - aspect_rad))


def sky_view_factor(horizon_angle_rad, slope_rad, aspect_rad, horizon_resolution_rad=None, n_threads=None):
    """Sky view factor of every cell (Dozier & Frew 1990, Eq. 7b).

    With ``H'_phi`` the zenith angle of the horizon along azimuth ``phi``, the slope ``S``
    and the aspect ``A`` (the azimuth the slope faces)::

        V_d = 1/(2 pi) * integral over phi of
              [cos S sin^2 H'_phi + sin S cos(phi - A) (H'_phi - sin H'_phi cos H'_phi)] dphi

    which is (1/pi) times the integral over the visible sky of cos(incidence angle on the
    slope) d(solid angle), for a sky bounded below by the horizontal: the horizons of
    :func:`~eemt_flow.solar.horizon.horizon_angles` are clamped at 0, so directions below
    the horizontal count as ground. The horizon is first raised to the slope's own tangent
    plane where it lies below it (a surface sees nothing behind itself; Dozier
    2022): ``H_phi <- max(H_phi, e_phi)`` with ``tan e_phi = -tan S cos(phi - A)``
    (:func:`tangent_plane_elevation_rad`). The integral over phi is the mean over the
    ``n`` equally spaced directions (the trapezoid rule of a periodic function).

    Closed forms: a flat open cell gives 1; a flat cell gives (1/2 pi) integral of
    cos^2 H_phi dphi; an infinite plane of slope S gives (1 + cos S) / 2; the floor of an
    infinite V valley with walls of slope a gives cos a (``tests/solar/test_sky_view.py``
    derives each).

    Parameters
    ----------
    horizon_angle_rad : array (n_azimuths, rows, cols), horizon elevation angle above the
        horizontal [rad], >= 0, direction ``k`` at azimuth ``2 pi k / n_azimuths``
        counter-clockwise from east (:func:`~eemt_flow.solar.horizon.horizon_angles`);
        NaN = nodata. With ``horizon_resolution_rad``, uint8 angles in units of it.
    slope_rad : array (rows, cols), slope S [rad], 0..pi/2
    aspect_rad : array (rows, cols), azimuth the slope faces (downslope) [rad],
        counter-clockwise from east in the horizons' frame (GRASS aspect in radians,
        turned to geographic azimuth where the horizons are geographic); any value where
        the slope is 0
    horizon_resolution_rad : float or None, the resolution of byte horizons [rad]
        (:data:`eemt_flow.solar.fast.R_SUN_HORIZON_RESOLUTION_RAD`); None = float angles
    n_threads : int or None, numba threads (None = all numba may use)

    Returns
    -------
    array (rows, cols), float64 sky view factor [-], in [0, 1]; NaN where a horizon, the
    slope or the aspect is NaN

    References
    ----------
    Dozier, J., Frew, J. (1990). Rapid calculation of terrain parameters for radiation
    modeling from digital elevation data. IEEE TGRS 28(5), 963-969, Eq. 7b.
    Dozier, J. (2022). Revisiting topographic horizons in the era of big data and parallel
    computing. IEEE GRSL 19, 8024605 (the tangent-plane limit of the horizon).
    """
    horizons, shape, scale = _checked(horizon_angle_rad, horizon_resolution_rad)
    set_numba_threads(n_threads)
    slope = np.ascontiguousarray(np.broadcast_to(np.asarray(slope_rad, dtype=np.float64), shape))
    aspect = np.ascontiguousarray(np.broadcast_to(np.asarray(aspect_rad, dtype=np.float64), shape))
    azimuth = 2.0 * np.pi * np.arange(horizons.shape[0]) / horizons.shape[0]
    out = np.empty(shape)
    if horizons.dtype == np.uint8:
        table = np.arange(256) * scale  # every angle a byte can hold [rad]
        sky_view_kernels.sky_view_bytes_kernel(np.ascontiguousarray(horizons), table, np.sin(table), np.cos(table),
                                               np.cos(azimuth), np.sin(azimuth), slope, aspect, out)
    else:
        sky_view_kernels.sky_view_float_kernel(np.ascontiguousarray(horizons * scale if scale != 1.0 else horizons),
                                               np.cos(azimuth), np.sin(azimuth), slope, aspect, out)
    return out


def _checked(horizon_angle_rad, horizon_resolution_rad):
    """The horizons as an array, the grid's shape and the factor to radians."""
    horizons = np.asarray(horizon_angle_rad)
    if horizons.ndim != 3:
        raise ValueError(f"horizon_angle_rad must be (n_azimuths, rows, cols), got shape {horizons.shape}")
    if horizons.shape[0] < 1:
        raise ValueError("horizon_angle_rad needs at least one azimuth")
    if horizon_resolution_rad is None and horizons.dtype == np.uint8:
        raise ValueError("byte horizons need their horizon_resolution_rad")
    if not np.issubdtype(horizons.dtype, np.floating) and horizons.dtype != np.uint8:
        raise ValueError(f"horizon_angle_rad must be float [rad] or uint8, got {horizons.dtype}")
    return horizons, horizons.shape[1:], 1.0 if horizon_resolution_rad is None else float(horizon_resolution_rad)


def sky_view_factor_reference(horizon_angle_rad, slope_rad, aspect_rad, horizon_resolution_rad=None):
    """:func:`sky_view_factor` written plainly with numpy, one direction at a time: the slow,
    obvious form the numba kernel is held to (``tests/solar/test_sky_view.py``)."""
    horizons, shape, scale = _checked(horizon_angle_rad, horizon_resolution_rad)
    return sky_view_factor_by_direction((horizons[k].astype(np.float64) * scale for k in range(horizons.shape[0])),
                                        horizons.shape[0], slope_rad, aspect_rad)


def sky_view_factor_by_direction(directions, n_azimuths, slope_rad, aspect_rad):
    """:func:`sky_view_factor` from the horizons given one direction at a time, so that only one
    direction's map is held (the GRASS engine reads r.horizon's maps band by band).

    Parameters
    ----------
    directions : iterable of ``n_azimuths`` arrays (rows, cols), the horizon elevation angle
        [rad] of direction ``k`` (azimuth ``2 pi k / n_azimuths`` counter-clockwise from east,
        in the frame of ``aspect_rad``), in order; NaN = nodata
    n_azimuths : int, the number of directions
    slope_rad, aspect_rad : as for :func:`sky_view_factor`

    Returns
    -------
    array (rows, cols), float64 sky view factor [-]
    """
    total, count = None, 0
    for k, elevation in enumerate(directions):
        elevation = np.asarray(elevation, dtype=np.float64)
        if total is None:
            slope = np.broadcast_to(np.asarray(slope_rad, dtype=np.float64), elevation.shape)
            aspect = np.broadcast_to(np.asarray(aspect_rad, dtype=np.float64), elevation.shape)
            cos_s, sin_s = np.cos(slope), np.sin(slope)
            total = np.zeros(elevation.shape)
        azimuth = 2.0 * math.pi * k / n_azimuths
        elevation = np.maximum(elevation, tangent_plane_elevation_rad(azimuth, slope, aspect))  # NaN stays NaN
        zenith = HALF_PI_RAD - elevation
        total += cos_s * np.sin(zenith) ** 2 + sin_s * np.cos(azimuth - aspect) * (zenith - np.sin(zenith) * np.cos(zenith))
        count += 1
    if count != n_azimuths:
        raise ValueError(f"expected {n_azimuths} directions of horizons, got {count}")
    return total / n_azimuths
