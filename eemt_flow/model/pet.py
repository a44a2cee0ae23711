"""Potential evapotranspiration: Hamon or Thornthwaite (EEMT-TRAD) and Penman–Monteith (EEMT-TOPO, -VEG)."""

from __future__ import annotations

import numpy as np

from eemt_flow.model.atmosphere import saturation_vapour_pressure_kpa
from eemt_flow.model.constants import (
    CP_AIR,
    HAMON_K,
    HAMON_T_OFFSET_K,
    LAMBDA_V,
    THORNTHWAITE_A_COEFFS,
    THORNTHWAITE_HEAT_EXPONENT,
    THORNTHWAITE_MM,
)


def hamon_pet_mm(t_mean_c, daylength_h, n_days=1, hamon_k=HAMON_K):
    """Hamon potential evapotranspiration over ``n_days`` days.

    ``PET_H = n_days · k · D · e°(T) / (T + 273.2)``

    With monthly mean T and mean daylength D̄_m and ``n_days = days_m`` this is the
    default monthly mode (mm month⁻¹); with daily values and ``n_days = 1`` it is one
    day of the daily mode (sum them with :func:`hamon_pet_daily_sum_mm`).

    Parameters
    ----------
    t_mean_c : array
        Mean air temperature T [°C].
    daylength_h : array
        Astronomical daylength D [h] (never r.sun ``insol_time``).
    n_days : int or array
        Number of days the rate applies to [day].
    hamon_k : float
        Hamon coefficient k [mm day⁻¹ K h⁻¹ kPa⁻¹].

    Returns
    -------
    array
        PET [mm over n_days] (= kg m⁻²).

    References
    ----------
    Hamon, W. R. (1961), J. Hydraul. Div. ASCE 87:107–120; VZJ 2015 p. 7; EEMT-SPEC §4
    step 1 and §10.1 (mistake §9.15: a mm day⁻¹ rate treated as monthly).
    """
    t = np.asarray(t_mean_c, dtype=float)
    return n_days * hamon_k * np.asarray(daylength_h, dtype=float) * saturation_vapour_pressure_kpa(t) / (
        t + HAMON_T_OFFSET_K
    )


def hamon_pet_daily_sum_mm(t_mean_daily_c, daylength_daily_h, hamon_k=HAMON_K, axis=0):
    """Hamon PET of a month in daily mode: the daily expression summed over the days.

    Parameters
    ----------
    t_mean_daily_c : array
        Daily mean temperature of every day of the month [°C]; days along ``axis``.
    daylength_daily_h : array
        Daily astronomical daylength [h], broadcastable against ``t_mean_daily_c``.
    hamon_k : float
        Hamon coefficient [mm day⁻¹ K h⁻¹ kPa⁻¹].
    axis : int
        Axis of the days.

    Returns
    -------
    array
        PET_H,m [mm month⁻¹].

    References
    ----------
    EEMT-SPEC §4 step 1 (``hamon_mode = daily``).
    """
    return np.sum(hamon_pet_mm(t_mean_daily_c, daylength_daily_h, 1, hamon_k), axis=axis)


def thornthwaite_heat_index(t_mean_monthly_c, axis=0):
    """Thornthwaite's annual heat index ``I = Σ_months (T/5)^1.514`` over the months with T > 0.

    Parameters
    ----------
    t_mean_monthly_c : array
        Mean air temperature of each of the 12 months [°C]; months along ``axis``.
    axis : int
        Axis of the months.

    Returns
    -------
    array
        Heat index I [-]; 0 where no month is above 0 °C.

    References
    ----------
    Thornthwaite, C. W. (1948), An approach toward a rational classification of climate,
    Geogr. Rev. 38:55–94, Eq. 9 and p. 89; EEMT-SPEC §10.1.
    """
    t = np.clip(np.asarray(t_mean_monthly_c, dtype=float), 0.0, None)
    return np.sum((t / 5.0) ** THORNTHWAITE_HEAT_EXPONENT, axis=axis)


def thornthwaite_exponent(heat_index):
    """Thornthwaite's exponent ``a = 6.75e-7 I³ − 7.71e-5 I² + 1.792e-2 I + 0.49239``.

    Parameters
    ----------
    heat_index : array
        Annual heat index I [-] (:func:`thornthwaite_heat_index`).

    Returns
    -------
    array
        Exponent a [-].

    References
    ----------
    Thornthwaite (1948), Geogr. Rev. 38, p. 89; EEMT-SPEC §10.1.
    """
    c3, c2, c1, c0 = THORNTHWAITE_A_COEFFS
    i = np.asarray(heat_index, dtype=float)
    return ((c3 * i + c2) * i + c1) * i + c0


def thornthwaite_pet_mm(t_mean_c, daylength_h, days_in_month, heat_index):
    """Thornthwaite potential evapotranspiration of a month.

    ``PET = 16 · (L/12) · (N/30) · (10 T / I)^a`` for T > 0, and 0 for T <= 0 (or I = 0),
    with L the month's mean astronomical daylength, N its number of days and a the
    exponent of the year's heat index I (:func:`thornthwaite_exponent`). The form of
    Rasmussen et al. (2005, 2012) and Zapata-Rios et al. (2016) Eq. 5; Thornthwaite's
    separate table for T > 26.5 °C is not part of that form and is not applied.

    Parameters
    ----------
    t_mean_c : array
        Mean air temperature of the month T [°C].
    daylength_h : array
        Mean astronomical daylength of the month L [h] (never r.sun ``insol_time``).
    days_in_month : int or array
        Days in the month N [day].
    heat_index : array
        The year's heat index I [-] (:func:`thornthwaite_heat_index` of its 12 months).

    Returns
    -------
    array
        PET [mm month⁻¹].

    References
    ----------
    Thornthwaite (1948), Geogr. Rev. 38:55–94; Rasmussen, Southard & Horwath (2005), SSSAJ
    69:1266–1274; EEMT-SPEC §10.1.
    """
    t = np.asarray(t_mean_c, dtype=float)
    i = np.asarray(heat_index, dtype=float)
    warm = (t > 0.0) & (i > 0.0)
    ratio = np.where(warm, 10.0 * np.clip(t, 0.0, None) / np.where(i > 0.0, i, 1.0), 0.0)
    pet = (THORNTHWAITE_MM * np.asarray(daylength_h, dtype=float) / 12.0 * np.asarray(days_in_month, dtype=float) / 30.0
           * ratio ** thornthwaite_exponent(i))
    return np.where(warm, pet, 0.0)


def penman_monteith_mm(radiation_j_m2, slope_kpa_k, gamma_kpa_k, air_density_kg_m3, vpd_kpa,
                       r_a_s_m, duration_s, r_s_s_m=0.0, cp_air_j_kg_k=CP_AIR, lambda_v_j_kg=LAMBDA_V):
    """Penman–Monteith evaporation integrated over a period.

    ``E = [Δ·R + ρ_a·c_p·VPD/r_a · t] / [λ·(Δ + γ·(1 + r_s/r_a))]``

    The radiation term is an energy total over the period and the aerodynamic term a
    rate times the duration ``t``; Δ and γ share the unit kPa K⁻¹, so it cancels, and
    VPD·c_p·ρ_a/r_a is a flux in W m⁻² (kPa/kPa K⁻¹ → K). With ``r_s = 0`` this is the
    open-water (pan) evaporation of EEMT-TOPO.

    Parameters
    ----------
    radiation_j_m2 : array
        Available energy over the period R [J m⁻²].
    slope_kpa_k : array
        Slope of the saturation vapour pressure curve Δ [kPa K⁻¹].
    gamma_kpa_k : array
        Psychrometric constant γ [kPa K⁻¹].
    air_density_kg_m3 : array
        Air density ρ_a [kg m⁻³].
    vpd_kpa : array
        Vapour pressure deficit [kPa].
    r_a_s_m : array
        Aerodynamic resistance [s m⁻¹].
    duration_s : array
        Length of the period t [s] (days_m · 86 400 for a month).
    r_s_s_m : array
        Surface resistance [s m⁻¹]; 0 for open water.
    cp_air_j_kg_k : float
        Specific heat of air [J kg⁻¹ K⁻¹].
    lambda_v_j_kg : float
        Latent heat of vaporisation [J kg⁻¹].

    Returns
    -------
    array
        Evaporation [kg m⁻² = mm over the period].

    References
    ----------
    Monteith, J. L. (1965); FAO-56 Eq. 3, p. 19; VZJ 2015 Eq. 8 context, p. 7;
    EEMT-SPEC §5, §6 (mistake §9.20: monthly radiation total added to a per-second rate).
    """
    radiation = np.asarray(radiation_j_m2, dtype=float)
    aero = air_density_kg_m3 * cp_air_j_kg_k * np.asarray(vpd_kpa, dtype=float) / r_a_s_m * duration_s
    denominator = lambda_v_j_kg * (slope_kpa_k + gamma_kpa_k * (1.0 + np.asarray(r_s_s_m, dtype=float) / r_a_s_m))
    return (slope_kpa_k * radiation + aero) / denominator
