"""Sun geometry as GRASS ``r.sun`` (GRASS 8.2) computes it, as pure array functions.

Every function takes scalars or NumPy arrays and returns arrays; no I/O, no state.
Angles are radians unless a name says ``_deg``.  Azimuths come in two conventions,
both named explicitly:

* ``*_cw_from_north`` -- geographic azimuth, 0 = north, pi/2 = east (clockwise);
* ``*_ccw_from_east`` -- the convention of ``r.horizon`` output and of the
  ``r.slope.aspect`` aspect map, 0 = east, pi/2 = north (counter-clockwise).

Time is local *solar* time: the hour angle is ``(t_h - 12) * pi / 12`` (r.sun daily
mode applies no time-zone or equation-of-time correction).

References
----------
.. [1] Šúri, M., Hofierka, J. (2004). A new GIS-based solar radiation model and its
   application to photovoltaic assessments. Transactions in GIS 8(2), 175-190,
   Eqs. (1)-(6) (declination, sunrise/sunset, solar altitude and azimuth, incidence
   angle on an inclined surface after Jenčo 1992).
.. [2] Hofierka, J., Šúri, M. (2002). The solar radiation model for Open source GIS:
   implementation and applications. Proc. Open source GIS - GRASS users conference,
   Trento, Italy, Eqs. (1)-(5).
.. [3] Gruter, J. W. (ed.) (1984). Radiation Nomenclature. Brussels, CEC, Second
   Solar Energy Programme, Project F, Solar Radiation Data (the declination fit).
.. [4] GRASS GIS 8.2 ``r.sun`` (raster/r.sun/rsunlib.c: ``com_declin``,
   ``com_sol_const``, ``com_par_const``, ``com_par``).
"""

from __future__ import annotations

import numpy as np

#: Mean length of the year used by r.sun's day-angle [days] ([4], ``com_declin``).
YEAR_LENGTH_DAYS = 365.25
#: Solar constant used by r.sun [W m-2] ([1] p. 178; [4] ``com_sol_const``).
SOLAR_CONSTANT_W_M2 = 1367.0
#: Amplitude of the Sun-Earth distance correction [-] ([1] Eq. 1; [4]).
ECCENTRICITY_AMPLITUDE = 0.03344
#: Phase of the Sun-Earth distance correction [rad] ([1] Eq. 1; [4]).
ECCENTRICITY_PHASE_RAD = 0.048869
#: Hour angle per hour of solar time [rad h-1] (15 degrees per hour).
HOUR_ANGLE_RAD_PER_H = np.pi / 12.0


def day_angle_rad(day_of_year):
    """Day angle ``j' = 2 pi j / 365.25`` as r.sun defines it.

    Parameters
    ----------
    day_of_year : array_like, day number j, 1 = 1 January [-]

    Returns
    -------
    ndarray, day angle [rad]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (1) notation; GRASS r.sun ``com_declin``.
    """
    return 2.0 * np.pi * np.asarray(day_of_year, dtype=np.float64) / YEAR_LENGTH_DAYS


def declination_rad(day_of_year):
    """Solar declination, ``delta = asin(0.3978 sin(j' - 1.4 + 0.0355 sin(j' - 0.0489)))``.

    Parameters
    ----------
    day_of_year : array_like, day number j, 1 = 1 January [-]

    Returns
    -------
    ndarray, declination delta, positive in the northern summer [rad]

    References
    ----------
    Gruter (1984); Šúri & Hofierka (2004) p. 177 (Eq. 2 of Hofierka & Šúri 2002);
    GRASS r.sun ``com_declin`` (which stores the negated value internally; the
    physical sign is returned here).
    """
    j = day_angle_rad(day_of_year)
    return np.arcsin(0.3978 * np.sin(j - 1.4 + 0.0355 * np.sin(j - 0.0489)))


def extraterrestrial_irradiance_w_m2(day_of_year):
    """Extraterrestrial irradiance normal to the beam, ``G0 = 1367 (1 + 0.03344 cos(j' - 0.048869))``.

    Parameters
    ----------
    day_of_year : array_like, day number j [-]

    Returns
    -------
    ndarray, extraterrestrial irradiance normal to the solar beam [W m-2]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (1); GRASS r.sun ``com_sol_const``.
    """
    j = day_angle_rad(day_of_year)
    return SOLAR_CONSTANT_W_M2 * (1.0 + ECCENTRICITY_AMPLITUDE * np.cos(j - ECCENTRICITY_PHASE_RAD))


def hour_angle_rad(solar_time_h):
    """Hour angle ``omega = (t - 12) pi / 12``, negative in the morning.

    Parameters
    ----------
    solar_time_h : array_like, local solar time [h]

    Returns
    -------
    ndarray, hour angle [rad]
    """
    return (np.asarray(solar_time_h, dtype=np.float64) - 12.0) * HOUR_ANGLE_RAD_PER_H


def sunset_hour_angle_rad(lat_rad, decl_rad):
    """Sunset hour angle on a horizontal plane, ``omega_s = acos(-tan(phi) tan(delta))``.

    Polar day gives pi, polar night 0 (the argument is clipped to [-1, 1]); sunrise is
    at ``-omega_s``, i.e. at ``12 - omega_s / (pi/12)`` h solar time.

    Parameters
    ----------
    lat_rad : array_like, latitude phi [rad]
    decl_rad : array_like, solar declination delta [rad]

    Returns
    -------
    ndarray, sunset hour angle [rad], in [0, pi]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (4); GRASS r.sun ``com_par_const``.
    """
    x = -np.tan(lat_rad) * np.tan(decl_rad)
    return np.arccos(np.clip(x, -1.0, 1.0))


def sin_solar_altitude(lat_rad, decl_rad, hour_angle):
    """Sine of the solar altitude, ``sin h0 = cos(phi) cos(delta) cos(omega) + sin(phi) sin(delta)``.

    Parameters
    ----------
    lat_rad : array_like, latitude phi [rad]
    decl_rad : array_like, solar declination delta [rad]
    hour_angle : array_like, hour angle omega [rad]

    Returns
    -------
    ndarray, sin of the solar altitude above the horizontal [-]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (2)-(3) (C31 cos(T) + C33 in r.sun ``com_par``).
    """
    return (np.cos(lat_rad) * np.cos(decl_rad) * np.cos(hour_angle)
            + np.sin(lat_rad) * np.sin(decl_rad))


def solar_altitude_rad(lat_rad, decl_rad, hour_angle):
    """Geometric solar altitude (no refraction) above the horizontal plane.

    Parameters
    ----------
    lat_rad : array_like, latitude phi [rad]
    decl_rad : array_like, solar declination delta [rad]
    hour_angle : array_like, hour angle omega [rad]

    Returns
    -------
    ndarray, solar altitude h0 [rad], in [-pi/2, pi/2]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (2).
    """
    return np.arcsin(np.clip(sin_solar_altitude(lat_rad, decl_rad, hour_angle), -1.0, 1.0))


def solar_azimuth_cw_from_north_rad(lat_rad, decl_rad, hour_angle):
    """Solar azimuth clockwise from north: east in the morning, south at noon (phi > delta).

    ``A = atan2(-cos(delta) sin(omega), sin(delta) cos(phi) - cos(delta) sin(phi) cos(omega))``,
    i.e. the east and north components of the unit vector towards the Sun.

    Parameters
    ----------
    lat_rad : array_like, latitude phi [rad]
    decl_rad : array_like, solar declination delta [rad]
    hour_angle : array_like, hour angle omega [rad]

    Returns
    -------
    ndarray, solar azimuth [rad], in [0, 2 pi), 0 = north, pi/2 = east

    References
    ----------
    Šúri & Hofierka (2004), Eq. (3) (r.sun ``com_par``: ``acos(Ly / sqrt(Lx^2 + Ly^2))``
    mirrored to [pi, 2 pi) when ``Lx < 0``; the same angle).
    """
    east = -np.cos(decl_rad) * np.sin(hour_angle)
    north = (np.sin(decl_rad) * np.cos(lat_rad)
             - np.cos(decl_rad) * np.sin(lat_rad) * np.cos(hour_angle))
    return np.mod(np.arctan2(east, north), 2.0 * np.pi)


def azimuth_ccw_from_east_rad(azimuth_cw_from_north_rad):
    """Convert an azimuth from clockwise-from-north to counter-clockwise-from-east.

    This is r.sun's ``sunAzimuthAngle``, the angle it uses to pick horizon maps
    (r.horizon direction 0 = east, 90 degrees = north).

    Parameters
    ----------
    azimuth_cw_from_north_rad : array_like, azimuth, 0 = north, clockwise [rad]

    Returns
    -------
    ndarray, azimuth, 0 = east, counter-clockwise, in [0, 2 pi) [rad]
    """
    return np.mod(0.5 * np.pi - np.asarray(azimuth_cw_from_north_rad, dtype=np.float64), 2.0 * np.pi)


def aspect_cw_from_north_rad(aspect_grass_deg):
    """Convert a GRASS ``r.slope.aspect`` aspect to a downslope azimuth clockwise from north.

    GRASS writes aspect in degrees counter-clockwise from east (90 = north-facing,
    360 = east-facing) and 0 for flat cells where aspect is undefined; r.sun converts
    with ``90 - a`` (a < 90) or ``450 - a``.  Flat cells (0) are returned as 0 and must
    be handled by the caller as "aspect undefined".

    Parameters
    ----------
    aspect_grass_deg : array_like, aspect [degrees CCW from east; 0 = undefined]

    Returns
    -------
    ndarray, downslope azimuth [rad], 0 = north-facing, pi/2 = east-facing

    References
    ----------
    GRASS r.slope.aspect manual; r.sun main.c aspect conversion.
    """
    a = np.asarray(aspect_grass_deg, dtype=np.float64)
    cw = np.where(a < 90.0, 90.0 - a, 450.0 - a)
    cw = np.where(a == 0.0, 0.0, cw)
    return np.deg2rad(np.mod(cw, 360.0))


def cos_incidence(slope_rad, aspect_cw_from_north_rad, sin_altitude, azimuth_cw_from_north_rad):
    """Cosine of the angle between the solar beam and the normal of an inclined surface.

    ``cos(theta) = sin(h0) cos(beta) + cos(h0) sin(beta) cos(A - a)``; equal to Jenčo's
    form (local latitude and longitude of the inclined plane) used by r.sun.  Negative
    values mean the surface faces away from the Sun (self-shading).

    Parameters
    ----------
    slope_rad : array_like, slope beta [rad]
    aspect_cw_from_north_rad : array_like, downslope azimuth a, clockwise from north [rad]
    sin_altitude : array_like, sin of the solar altitude h0 [-]
    azimuth_cw_from_north_rad : array_like, solar azimuth A, clockwise from north [rad]

    Returns
    -------
    ndarray, cosine of the incidence angle [-], unclipped

    References
    ----------
    Šúri & Hofierka (2004), Eqs. (5)-(6) (Jenčo 1992).
    """
    sin_h = np.asarray(sin_altitude, dtype=np.float64)
    cos_h = np.sqrt(np.maximum(1.0 - sin_h * sin_h, 0.0))
    return (sin_h * np.cos(slope_rad)
            + cos_h * np.sin(slope_rad) * np.cos(azimuth_cw_from_north_rad - aspect_cw_from_north_rad))


def step_midpoints_h(step_h):
    """Solar times of r.sun's daily-mode integration steps, ``(n + 0.5) * step`` for n >= 0.

    r.sun starts at the first step midpoint at or after sunrise on the horizontal and
    advances by ``step`` until sunset, counting every step whose solar altitude is
    positive with weight ``step``; that is exactly the set of these midpoints where the
    Sun is above the horizontal plane.

    Parameters
    ----------
    step_h : float, integration step [decimal hours], 0 < step_h <= 1

    Returns
    -------
    ndarray, step midpoints covering the day [h solar time]

    References
    ----------
    GRASS r.sun ``joules2`` (``srStepNo``, ``firstTime``, ``dfr``).
    """
    if not 0.0 < step_h <= 1.0:
        raise ValueError(f"step_h must be in (0, 1] decimal hours, got {step_h}")
    n_steps = int(np.floor(24.0 / step_h + 1e-9))
    return (np.arange(n_steps, dtype=np.float64) + 0.5) * step_h
