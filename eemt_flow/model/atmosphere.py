"""Atmospheric quantities for the Penman–Monteith step (FAO-56; Thom & Oliver 1977).

Pure numpy functions, one equation each. Pressures in kPa, temperatures in °C unless a
name says otherwise.
"""

from __future__ import annotations

import numpy as np

from eemt_flow.model.constants import (
    CANOPY_D_RATIO,
    CANOPY_HEIGHT_MIN,
    CANOPY_ZOH_RATIO,
    CANOPY_ZOM_RATIO,
    CP_AIR,
    EPSILON,
    ESAT_A_KPA,
    ESAT_B,
    ESAT_C_C,
    ESAT_SLOPE_NUM,
    KELVIN_OFFSET_K,
    LAMBDA_V,
    P_EXPONENT,
    P_LAPSE_K_M,
    P_SEA_LEVEL_KPA,
    P_T0_K,
    PA_PER_KPA,
    R_D,
    THOM_OLIVER_A,
    THOM_OLIVER_B,
    VON_KARMAN,
    Z0_WATER,
    Z_MEAS,
)


def saturation_vapour_pressure_kpa(t_c):
    """Saturation vapour pressure over water, valid at all temperatures used here.

    ``e°(T) = 0.6108 · exp(17.27·T / (T + 237.3))``

    Parameters
    ----------
    t_c : array
        Air temperature [°C]; negative values are valid (never set to 0 below 0 °C).

    Returns
    -------
    array
        e°(T) [kPa].

    References
    ----------
    FAO-56 Eq. 11, p. 36; EEMT-SPEC §3 (mistake §9.16: e_s set to 0 below 0 °C).
    """
    t = np.asarray(t_c, dtype=float)
    return ESAT_A_KPA * np.exp(ESAT_B * t / (t + ESAT_C_C))


def mean_saturation_vapour_pressure_kpa(t_max_c, t_min_c):
    """Mean saturation vapour pressure from Tmax and Tmin.

    ``e_s = [e°(T_max) + e°(T_min)] / 2``

    Parameters
    ----------
    t_max_c : array
        Maximum air temperature [°C] (T_max,topo in EEMT-TOPO).
    t_min_c : array
        Minimum air temperature [°C].

    Returns
    -------
    array
        e_s [kPa].

    References
    ----------
    FAO-56 Eq. 12, p. 36; EEMT-SPEC §5 (mistake §9.18: e°(Tmin) used for e°(Tmax)).
    """
    return 0.5 * (saturation_vapour_pressure_kpa(t_max_c) + saturation_vapour_pressure_kpa(t_min_c))


def actual_vapour_pressure_kpa(vp_pa):
    """Actual vapour pressure from DAYMET ``vp``.

    Parameters
    ----------
    vp_pa : array
        Monthly mean DAYMET water vapour pressure [Pa] (not lapse-adjusted).

    Returns
    -------
    array
        e_a [kPa].

    References
    ----------
    EEMT-SPEC §1.2, §3 (mistake §9.17: DAYMET vp ignored).
    """
    return np.asarray(vp_pa, dtype=float) / PA_PER_KPA


def vapour_pressure_deficit_kpa(e_s_kpa, e_a_kpa):
    """Vapour pressure deficit, floored at zero.

    ``VPD = max(e_s − e_a, 0)``

    Parameters
    ----------
    e_s_kpa : array
        Mean saturation vapour pressure [kPa].
    e_a_kpa : array
        Actual vapour pressure [kPa].

    Returns
    -------
    array
        VPD [kPa].

    References
    ----------
    EEMT-SPEC §5 (mistake §9.19: hPa and kPa mixed).
    """
    return np.maximum(np.asarray(e_s_kpa, dtype=float) - e_a_kpa, 0.0)


def atmospheric_pressure_kpa(elevation_m):
    """Atmospheric pressure from elevation (standard atmosphere).

    ``P = 101.3 · ((293 − 0.0065·z) / 293)^5.26``

    Parameters
    ----------
    elevation_m : array
        Elevation above sea level z [m].

    Returns
    -------
    array
        P_atm [kPa].

    References
    ----------
    FAO-56 Eq. 7, p. 31.
    """
    z = np.asarray(elevation_m, dtype=float)
    return P_SEA_LEVEL_KPA * ((P_T0_K - P_LAPSE_K_M * z) / P_T0_K) ** P_EXPONENT


def psychrometric_constant_kpa_k(p_atm_kpa, cp_air_j_kg_k=CP_AIR, epsilon=EPSILON, lambda_v_j_kg=LAMBDA_V):
    """Psychrometric constant.

    ``γ = c_p · P / (ε · λ)``  (≈ 0.665·10⁻³ · P)

    Parameters
    ----------
    p_atm_kpa : array
        Atmospheric pressure [kPa].
    cp_air_j_kg_k : float
        Specific heat of air [J kg⁻¹ K⁻¹].
    epsilon : float
        Ratio of molecular weights water vapour / dry air [-].
    lambda_v_j_kg : float
        Latent heat of vaporisation [J kg⁻¹].

    Returns
    -------
    array
        γ [kPa K⁻¹].

    References
    ----------
    FAO-56 Eq. 8, p. 32; EEMT-SPEC §5 (mistake §9.7: γ = c_p·P, ~10⁶× too large).
    """
    return cp_air_j_kg_k * np.asarray(p_atm_kpa, dtype=float) / (epsilon * lambda_v_j_kg)


def saturation_vapour_slope_kpa_k(t_c):
    """Slope of the saturation vapour pressure curve.

    ``Δ = 4098 · e°(T) / (T + 237.3)²``

    Parameters
    ----------
    t_c : array
        Air temperature [°C].

    Returns
    -------
    array
        Δ [kPa K⁻¹].

    References
    ----------
    FAO-56 Eq. 13, p. 37.
    """
    t = np.asarray(t_c, dtype=float)
    return ESAT_SLOPE_NUM * saturation_vapour_pressure_kpa(t) / (t + ESAT_C_C) ** 2


def air_density_kg_m3(p_atm_kpa, t_c, r_d_j_kg_k=R_D):
    """Density of (dry) air from the ideal-gas law.

    ``ρ_a = 1000 · P / (R_d · (T + 273.15))``

    Parameters
    ----------
    p_atm_kpa : array
        Atmospheric pressure [kPa].
    t_c : array
        Air temperature [°C].
    r_d_j_kg_k : float
        Specific gas constant of dry air [J kg⁻¹ K⁻¹].

    Returns
    -------
    array
        ρ_a [kg m⁻³].

    References
    ----------
    EEMT-SPEC §5 (mistake §9.9: molar mass 0.289644 and T·273.125).
    """
    return PA_PER_KPA * np.asarray(p_atm_kpa, dtype=float) / (r_d_j_kg_k * (np.asarray(t_c, dtype=float) + KELVIN_OFFSET_K))


def aerodynamic_resistance_open_water_s_m(wind_speed_m_s, z_meas_m=Z_MEAS, z0_water_m=Z0_WATER):
    """Aerodynamic resistance of an open-water surface.

    ``r_a = 4.72 · (ln(z/z₀))² / (1 + 0.536·u)``

    Parameters
    ----------
    wind_speed_m_s : array
        Wind speed u at height z [m s⁻¹].
    z_meas_m : float
        Measurement height z [m].
    z0_water_m : float
        Roughness length of open water z₀ [m].

    Returns
    -------
    array
        r_a [s m⁻¹].

    References
    ----------
    Thom, A. S. and Oliver, H. R. (1977), On Penman's equation for estimating regional
    evaporation, Q. J. R. Meteorol. Soc. 103:345–357; EEMT-SPEC §5 (mistake §9.8: the
    logarithm must be squared, not doubled).
    """
    log_term = np.log(z_meas_m / z0_water_m)
    return THOM_OLIVER_A * log_term**2 / (1.0 + THOM_OLIVER_B * np.asarray(wind_speed_m_s, dtype=float))


def aerodynamic_resistance_canopy_s_m(canopy_height_m, wind_speed_m_s, z_above_canopy_m=Z_MEAS,
                                      canopy_height_min_m=CANOPY_HEIGHT_MIN):
    """Aerodynamic resistance of a vegetated surface (neutral stability).

    ``r_a = ln((z − d)/z_om) · ln((z − d)/z_oh) / (k² · u)`` with ``d = 0.67·h``,
    ``z_om = 0.123·h``, ``z_oh = 0.1·z_om``.

    The wind and humidity reference height is taken as ``z = h + z_above_canopy_m`` so
    that ``z − d > z_om`` for every canopy height (FAO-56 assumes 2 m over short grass;
    over a forest the measurement must lie above the canopy). This is a documented
    eemt-flow decision for EEMT-SPEC §6.

    Parameters
    ----------
    canopy_height_m : array
        Canopy height h [m]; clamped below at ``canopy_height_min_m``.
    wind_speed_m_s : array
        Wind speed u at the reference height [m s⁻¹].
    z_above_canopy_m : float
        Height of the wind/humidity reference above the canopy top [m].
    canopy_height_min_m : float
        Minimum canopy height [m], keeps the roughness lengths positive.

    Returns
    -------
    array
        r_a [s m⁻¹].

    References
    ----------
    FAO-56 Eq. 4, p. 20; EEMT-SPEC §6.
    """
    h = np.maximum(np.asarray(canopy_height_m, dtype=float), canopy_height_min_m)
    z = h + z_above_canopy_m
    d = CANOPY_D_RATIO * h
    z_om = CANOPY_ZOM_RATIO * h
    z_oh = CANOPY_ZOH_RATIO * z_om
    return np.log((z - d) / z_om) * np.log((z - d) / z_oh) / (VON_KARMAN**2 * np.asarray(wind_speed_m_s, dtype=float))
