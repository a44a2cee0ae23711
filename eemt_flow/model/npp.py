"""Net primary production: Lieth sigmoid (TRAD), VZJ 2015 regressions (TOPO, TOPO-VEG)."""

from __future__ import annotations

import numpy as np

from eemt_flow.model.constants import (
    DAYS_PER_YEAR,
    LIETH_A,
    LIETH_B,
    LIETH_MAX,
    NPP_TOPO_ELEV_COEF,
    NPP_TOPO_FLOOR,
    NPP_TOPO_INTERCEPT,
    NPP_TOPO_NORTHNESS_COEF,
    NPP_VEG_H_COEF,
    NPP_VEG_INTERCEPT,
    NPP_VEG_QUAD_COEF,
    NPP_VEG_QUAD_OFFSET,
)


def annual_to_month(annual_value, days_in_month):
    """Share of an annual amount that falls in one month.

    ``x_m = x_year · days_m / 365``

    Parameters
    ----------
    annual_value : array
        Annual amount (e.g. NPP [g m⁻² yr⁻¹]).
    days_in_month : int or array
        days_m of the DAYMET year [day].

    Returns
    -------
    array
        Monthly amount (e.g. [g m⁻² month⁻¹]); the 12 months sum to the annual value.

    References
    ----------
    EEMT-SPEC §5, §10.7 (mistake §9.11: annual NPP added in full every month).
    """
    return np.asarray(annual_value, dtype=float) * np.asarray(days_in_month, dtype=float) / DAYS_PER_YEAR


def lieth_npp_month_g_m2(t_mean_c, prcp_mm, pet_mm, days_in_month, require_t_above_0=False):
    """Monthly NPP from Lieth's temperature sigmoid, gated by P > PET.

    ``NPP_m = 3000 / (1 + exp(1.315 − 0.119·T)) · days_m/365`` if ``P_m > PET_m``, else 0.

    Parameters
    ----------
    t_mean_c : array
        Monthly mean temperature T_m [°C].
    prcp_mm : array
        Monthly precipitation P_m [mm].
    pet_mm : array
        Monthly Hamon PET [mm].
    days_in_month : int or array
        days_m [day].
    require_t_above_0 : bool
        Optional extra gate T_m > 0 °C (EEMT-SPEC §10.9; default off, as published).

    Returns
    -------
    array
        NPP_m [g m⁻² month⁻¹].

    References
    ----------
    Lieth, H. (1975), in Primary Productivity of the Biosphere, Springer, pp. 237–263;
    SSSAJ 2005 Eq. 3, p. 1269; Zapata-Rios 2016 Eq. 6, p. 1107; EEMT-SPEC §4 step 4
    (VZJ 2015 p. 8 misprints "1 − exp"; mistake §9.13).
    """
    t = np.asarray(t_mean_c, dtype=float)
    annual = LIETH_MAX / (1.0 + np.exp(LIETH_A - LIETH_B * t))
    monthly = annual_to_month(annual, days_in_month)
    gate = np.asarray(prcp_mm, dtype=float) > pet_mm
    if require_t_above_0:
        gate = gate & (t > 0.0)
    return np.where(gate, monthly, 0.0)


def npp_topo_annual_g_m2(elevation_m, northness):
    """Annual NPP from elevation and northness (Santa Catalina Mountains regression).

    ``NPP_TOPO = max(0.39·z + 346·n − 187, 100)``

    Parameters
    ----------
    elevation_m : array
        Elevation z [m].
    northness : array
        n = cos(aspect_N)·sin(β) [-], +1 = steep north face.

    Returns
    -------
    array
        NPP_TOPO [g m⁻² yr⁻¹], ≥ 100.

    References
    ----------
    VZJ 2015 Eq. 11, p. 8 (fitted to Whittaker & Niering 1975; extrapolation elsewhere);
    EEMT-SPEC §5 (mistake §9.12: floor missing).
    """
    npp = (
        NPP_TOPO_ELEV_COEF * np.asarray(elevation_m, dtype=float)
        + NPP_TOPO_NORTHNESS_COEF * np.asarray(northness, dtype=float)
        + NPP_TOPO_INTERCEPT
    )
    return np.maximum(npp, NPP_TOPO_FLOOR)


def npp_veg_annual_g_m2(canopy_height_m):
    """Annual NPP from canopy height (VZJ 2015 Eq. 12).

    ``NPP_VEG = 196 + 36·h − (0.61·h − 12.0933)²``, h clamped to ≥ 0.

    Parameters
    ----------
    canopy_height_m : array
        Canopy height h [m].

    Returns
    -------
    array
        NPP_VEG [g m⁻² yr⁻¹]. Site-specific regression (extrapolation elsewhere).

    References
    ----------
    VZJ 2015 Eq. 12, p. 9; EEMT-SPEC §6.
    """
    h = np.maximum(np.asarray(canopy_height_m, dtype=float), 0.0)
    return NPP_VEG_INTERCEPT + NPP_VEG_H_COEF * h - (NPP_VEG_QUAD_COEF * h - NPP_VEG_QUAD_OFFSET) ** 2
