"""Topographic corrections of climate: lapse rate, radiation ratio and irradiation, Moore Tmax, LAI."""

from __future__ import annotations

import numpy as np

from eemt_flow.model.calendar import solar_days_in_month
from eemt_flow.model.constants import LAI_MAX, LAI_QI_COEFS, LAPSE_RATE, MOORE_C, S_MAX, S_MIN, SECONDS_PER_HOUR


def lapse_corrected_temperature_c(t_daymet_c, elevation_m, base_elevation_m, lapse_rate_c_per_km=LAPSE_RATE):
    """Air temperature moved from the DAYMET cell elevation to the DEM elevation.

    ``T_loc = T_DAYMET − Γ · (z − z_base)/1000``

    Parameters
    ----------
    t_daymet_c : array
        DAYMET Tmin or Tmax resampled to the DEM grid [°C].
    elevation_m : array
        DEM elevation z [m].
    base_elevation_m : array
        Elevation of the DAYMET 1 km cell z_base, resampled like the temperature [m].
    lapse_rate_c_per_km : float or array
        Lapse rate Γ [°C km⁻¹] (a monthly Tmin/Tmax table value may be passed).

    Returns
    -------
    array
        T_loc [°C].

    References
    ----------
    VZJ 2015 Eq. 6, p. 6 (lapse term); EEMT-SPEC §3.
    """
    dz_km = (np.asarray(elevation_m, dtype=float) - base_elevation_m) / 1000.0
    return np.asarray(t_daymet_c, dtype=float) - lapse_rate_c_per_km * dz_km


def radiation_ratio(s_topo_wh_m2, s_flat_wh_m2, s_min=S_MIN, s_max=S_MAX):
    """Monthly radiation ratio S_i of the sloped to the flat surface, guarded.

    ``S_i = clamp(S_topo / S_flat, S_MIN, S_MAX)``; where ``S_flat ≤ 0`` (polar night) or
    either sum is nodata, ``S_i = 1`` (no correction) and the QA flag is set.

    Parameters
    ----------
    s_topo_wh_m2 : array
        Monthly sum of r.sun ``glob_rad`` on the real terrain [Wh m⁻²].
    s_flat_wh_m2 : array
        Monthly sum of r.sun ``glob_rad`` on a flat surface [Wh m⁻²].
    s_min, s_max : float
        Clamp of the ratio [-].

    Returns
    -------
    s_i : array
        Radiation ratio [-], finite everywhere.
    qa_flag : array of bool
        True where the guard replaced the ratio by 1.

    References
    ----------
    Moore, I. D. et al. (1993), Soil Sci. Soc. Am. J. 57:443–452; VZJ 2015 p. 6;
    EEMT-SPEC §3, §10.5 (mistake §9.23: no guard for S_flat = 0 or tiny S_i).
    """
    s_topo, s_flat = np.broadcast_arrays(np.asarray(s_topo_wh_m2, dtype=float), np.asarray(s_flat_wh_m2, dtype=float))
    guard = ~(s_flat > 0.0) | np.isnan(s_topo)
    ratio = np.clip(s_topo / np.where(guard, 1.0, s_flat), s_min, s_max)
    return np.where(guard, 1.0, ratio), guard


def radiation_ratio_clamped(s_topo_wh_m2, s_flat_wh_m2, s_min=S_MIN, s_max=S_MAX):
    """QA flag of :func:`radiation_ratio`: True where ``S_topo / S_flat`` lay outside [s_min, s_max].

    Only where the ratio exists (``S_flat > 0``, both sums given); the guard's own cells are
    flagged by :func:`radiation_ratio`.

    Parameters
    ----------
    s_topo_wh_m2, s_flat_wh_m2 : array
        Monthly sums of topographic and flat ``glob_rad`` [Wh m⁻²].
    s_min, s_max : float
        Clamp of the ratio [-].

    Returns
    -------
    array of bool

    References
    ----------
    EEMT-SPEC §3, §10.5.
    """
    s_topo, s_flat = np.broadcast_arrays(np.asarray(s_topo_wh_m2, dtype=float), np.asarray(s_flat_wh_m2, dtype=float))
    exists = (s_flat > 0.0) & np.isfinite(s_topo)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = s_topo / np.where(exists, s_flat, 1.0)
    return exists & ((ratio < s_min) | (ratio > s_max))


def moore_tmax_c(t_max_loc_c, s_i, lai=0.0, moore_c_c=MOORE_C, lai_max=LAI_MAX):
    """Maximum temperature adjusted for slope irradiance (and canopy shading).

    ``T_max = T_max,loc + C · (S_i − 1/S_i) · (1 − LAI/LAI_MAX)``

    With ``lai = 0`` (default) this is T_max,topo of EEMT-TOPO (LAI factor 1); with LAI
    from :func:`lai_from_ndvi` it is T_max,veg of EEMT-TOPO-VEG.

    Parameters
    ----------
    t_max_loc_c : array
        Lapse-corrected maximum temperature [°C].
    s_i : array
        Radiation ratio [-], guarded (see :func:`radiation_ratio`).
    lai : array
        Leaf area index [m² m⁻²], within [0, LAI_MAX].
    moore_c_c : float
        Coefficient C [°C].
    lai_max : float
        Maximum LAI [m² m⁻²].

    Returns
    -------
    array
        Adjusted T_max [°C].

    References
    ----------
    Moore et al. (1993); VZJ 2015 Eq. 6, p. 6; EEMT-SPEC §5, §6.
    """
    s = np.asarray(s_i, dtype=float)
    canopy = 1.0 - np.asarray(lai, dtype=float) / lai_max
    return np.asarray(t_max_loc_c, dtype=float) + moore_c_c * (s - 1.0 / s) * canopy


def lai_from_ndvi(ndvi, lai_max=LAI_MAX):
    """Leaf area index from NDVI (cubic of Qi et al. 2000), clamped.

    ``LAI = 18.99x³ − 15.24x² + 6.124x − 0.352``, x = NDVI, clamped to [0, LAI_MAX].

    Parameters
    ----------
    ndvi : array
        Normalised difference vegetation index [-].
    lai_max : float
        Upper clamp [m² m⁻²].

    Returns
    -------
    array
        LAI [m² m⁻²].

    References
    ----------
    Qi, J. et al. (2000), Agric. For. Meteorol. 105:55–68; VZJ 2015 p. 6 (with the
    dropped x restored); EEMT-SPEC §6.
    """
    x = np.asarray(ndvi, dtype=float)
    c3, c2, c1, c0 = LAI_QI_COEFS
    return np.clip(((c3 * x + c2) * x + c1) * x + c0, 0.0, lai_max)


def monthly_irradiation_j_m2(glob_rad_month_sum_wh_m2, month, days_in_month):
    """Monthly irradiation of a climate month from the solar-month r.sun sum.

    ``R_m = (S_m / n_solar,m) · days_m · 3600``: the mean daily ``glob_rad`` over the
    solar month (non-leap DOY ranges) times the days of the DAYMET month, Wh → J. In a
    leap year the two months can differ by one day; ratios (S_i) are unaffected.

    Parameters
    ----------
    glob_rad_month_sum_wh_m2 : array
        Sum of r.sun daily ``glob_rad`` over the solar month [Wh m⁻²].
    month : int
        Month 1..12.
    days_in_month : int or array
        days_m of the DAYMET year [day].

    Returns
    -------
    array
        R_m [J m⁻² month⁻¹].

    References
    ----------
    EEMT-SPEC §1.2 (Wh × 3600 = J) and §2 (leap rule).
    """
    mean_daily = np.asarray(glob_rad_month_sum_wh_m2, dtype=float) / solar_days_in_month(month)
    return mean_daily * np.asarray(days_in_month, dtype=float) * SECONDS_PER_HOUR
