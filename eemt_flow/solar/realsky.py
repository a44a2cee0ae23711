"""Real-sky radiation from a measured or modelled global horizontal irradiation (pure numpy).

The building blocks of real-sky maps from DAYMET's shortwave radiation (issue 15; not yet
wired into jobs): the clear-sky index of a month, the split of the
real global horizontal irradiation into beam and diffuse with Erbs et al. (1982), and
their application to clear-sky components on any surface the way GRASS ``r.sun`` applies
``coeff_bh`` and ``coeff_dh``.

Units: irradiation in Wh m⁻² day⁻¹ (r.sun's ``glob_rad``, a monthly mean day), angles in
degrees unless named ``_rad``, DAYMET ``srad`` in W m⁻² (mean over the daylight period)
and ``dayl`` in s.

References
----------
Allen, R. G. et al. (1998). FAO Irrigation and Drainage Paper 56, Eqs. 21-25.
Erbs, D. G., Klein, S. A. & Duffie, J. A. (1982). Estimation of the diffuse radiation
    fraction for hourly, daily and monthly-average global radiation. *Solar Energy*
    28:293-302 (monthly-average correlation: Duffie & Beckman, *Solar Engineering of
    Thermal Processes*, Eq. 2.12.1).
Hofierka, J. & Šúri, M. (2002). The solar radiation model for Open source GIS:
    implementation and applications (r.sun; real-sky coefficients coeff_bh, coeff_dh).
Thornton, P. E. et al. DAYMET V4 user guide: ``srad`` is the daylight-average incident
    shortwave flux density, so the daily total is srad · dayl.
"""

from __future__ import annotations

import numpy as np

#: Solar constant [MJ m⁻² min⁻¹]; FAO-56 Eq. 21 (0.0820 = 1366.7 W m⁻²).
SOLAR_CONSTANT_MJ_M2_MIN = 0.0820
#: Wh per MJ [Wh MJ⁻¹] (exact).
WH_PER_MJ = 1.0e6 / 3600.0
#: Sunset hour angle separating Erbs' two monthly correlations [deg]; Erbs et al. (1982).
ERBS_SUNSET_HOUR_ANGLE_SPLIT_DEG = 81.4
#: Range of the monthly-mean clearness index fitted by Erbs et al. (1982) [-]; values
#: outside are clamped to it.
ERBS_MONTHLY_KT_RANGE = (0.3, 0.8)


def extraterrestrial_horizontal_wh_m2(latitude_deg, doy):
    """Daily extraterrestrial irradiation on a horizontal surface H₀ [Wh m⁻² day⁻¹].

    ``H₀ = (24·60/π)·G_sc·d_r·[ω_s sin φ sin δ + cos φ cos δ sin ω_s]`` with
    ``d_r = 1 + 0.033 cos(2πJ/365)``, ``δ = 0.409 sin(2πJ/365 − 1.39)``,
    ``ω_s = arccos(−tan φ tan δ)`` (clamped: polar day and night).

    Parameters
    ----------
    latitude_deg : array
        Latitude φ [degrees north].
    doy : int or array
        Day of year J [1-365].

    Returns
    -------
    array
        H₀ [Wh m⁻² day⁻¹].

    References
    ----------
    FAO-56 Eqs. 21, 23, 24, 25 (Example 8: 20° S, 3 September: 32.2 MJ m⁻² day⁻¹).
    """
    phi = np.radians(np.asarray(latitude_deg, dtype=float))
    j = np.asarray(doy, dtype=float)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    omega = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra_mj = (24.0 * 60.0 / np.pi) * SOLAR_CONSTANT_MJ_M2_MIN * dr * (
        omega * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(omega))
    return ra_mj * WH_PER_MJ


def daymet_daily_global_wh_m2(srad_w_m2, dayl_s):
    """DAYMET's daily global horizontal irradiation [Wh m⁻² day⁻¹] = srad · dayl / 3600.

    Parameters
    ----------
    srad_w_m2 : array
        DAYMET ``srad``, mean shortwave flux over the daylight period [W m⁻²].
    dayl_s : array
        DAYMET ``dayl``, day length [s].
    """
    return np.asarray(srad_w_m2, dtype=float) * np.asarray(dayl_s, dtype=float) / 3600.0


def clear_sky_index(real_global_wh_m2, clear_global_wh_m2):
    """Clear-sky index K_c = real / clear-sky global horizontal irradiation [-].

    Where the clear-sky value is 0 (polar night) or nodata, K_c = 1 (nothing to scale).

    Parameters
    ----------
    real_global_wh_m2 : array
        Real-sky global horizontal irradiation, e.g. DAYMET's monthly mean day [Wh m⁻² day⁻¹].
    clear_global_wh_m2 : array
        Clear-sky global horizontal irradiation of the same mean day (eemt-flow's
        ``flat_glob_rad``) [Wh m⁻² day⁻¹].
    """
    real = np.asarray(real_global_wh_m2, dtype=float)
    clear = np.asarray(clear_global_wh_m2, dtype=float)
    ok = np.isfinite(clear) & (clear > 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, real / np.where(ok, clear, 1.0), 1.0)


def erbs_monthly_diffuse_fraction(kt_mean, sunset_hour_angle_deg):
    """Diffuse fraction of the monthly-mean daily global irradiation, H̄_d / H̄ [-].

    Erbs et al. (1982), monthly-average correlation, with K̄_T = H̄ / H̄₀ clamped to the
    fitted range 0.3-0.8:

    * ω_s ≤ 81.4°: ``1.391 − 3.560 K̄_T + 4.189 K̄_T² − 2.137 K̄_T³``
    * ω_s > 81.4°: ``1.311 − 3.022 K̄_T + 3.427 K̄_T² − 1.821 K̄_T³``

    Parameters
    ----------
    kt_mean : array
        Monthly-mean clearness index K̄_T = global / extraterrestrial horizontal [-].
    sunset_hour_angle_deg : array
        Sunset hour angle ω_s of the month's mean day [deg].

    Returns
    -------
    array
        Diffuse fraction [-], between 0.130 (K̄_T ≥ 0.8) and 0.664 (K̄_T ≤ 0.3, long days).
    """
    k = np.clip(np.asarray(kt_mean, dtype=float), *ERBS_MONTHLY_KT_RANGE)
    short_days = 1.391 - 3.560 * k + 4.189 * k ** 2 - 2.137 * k ** 3
    long_days = 1.311 - 3.022 * k + 3.427 * k ** 2 - 1.821 * k ** 3
    return np.where(np.asarray(sunset_hour_angle_deg, dtype=float) <= ERBS_SUNSET_HOUR_ANGLE_SPLIT_DEG,
                    short_days, long_days)


def real_sky_coefficients(real_global_wh_m2, diffuse_fraction, clear_beam_h_wh_m2, clear_diffuse_h_wh_m2):
    """r.sun's real-sky coefficients (coeff_bh, coeff_dh) from a real global horizontal value.

    ``coeff_bh = (1 − f_d)·G / B_h,clear`` and ``coeff_dh = f_d·G / D_h,clear``: the real
    beam and diffuse horizontal irradiation over their clear-sky values, so that
    ``coeff_bh·B_h,clear + coeff_dh·D_h,clear = G``. A clear-sky component of 0 gets a
    coefficient of 0.

    Parameters
    ----------
    real_global_wh_m2 : array
        Real global horizontal irradiation G [Wh m⁻² day⁻¹].
    diffuse_fraction : array
        Its diffuse fraction f_d [-] (e.g. :func:`erbs_monthly_diffuse_fraction`).
    clear_beam_h_wh_m2, clear_diffuse_h_wh_m2 : array
        Clear-sky beam and diffuse irradiation on the horizontal [Wh m⁻² day⁻¹].

    Returns
    -------
    (coeff_bh, coeff_dh) : arrays [-]
    """
    g = np.asarray(real_global_wh_m2, dtype=float)
    fd = np.asarray(diffuse_fraction, dtype=float)
    bh = np.asarray(clear_beam_h_wh_m2, dtype=float)
    dh = np.asarray(clear_diffuse_h_wh_m2, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        coeff_bh = np.where(bh > 0.0, (1.0 - fd) * g / np.where(bh > 0.0, bh, 1.0), 0.0)
        coeff_dh = np.where(dh > 0.0, fd * g / np.where(dh > 0.0, dh, 1.0), 0.0)
    return coeff_bh, coeff_dh


def real_sky_global(beam_wh_m2, diffuse_wh_m2, reflected_wh_m2, coeff_bh, coeff_dh, clear_beam_h_wh_m2,
                    clear_diffuse_h_wh_m2):
    """Real-sky global irradiation of any surface from its clear-sky components [Wh m⁻² day⁻¹].

    As r.sun with ``coeff_bh``/``coeff_dh``: the beam is scaled by coeff_bh, the diffuse by
    coeff_dh, and the ground-reflected part, proportional to the global horizontal
    irradiation, by the ratio of real to clear-sky global horizontal:
    ``G = c_b·B + c_d·D + R·(c_b·B_h + c_d·D_h)/(B_h + D_h)``.

    Parameters
    ----------
    beam_wh_m2, diffuse_wh_m2, reflected_wh_m2 : array
        Clear-sky beam, diffuse and reflected irradiation on the surface [Wh m⁻² day⁻¹].
    coeff_bh, coeff_dh : array
        Real-sky coefficients (:func:`real_sky_coefficients`) [-].
    clear_beam_h_wh_m2, clear_diffuse_h_wh_m2 : array
        Clear-sky beam and diffuse irradiation on the horizontal [Wh m⁻² day⁻¹].
    """
    cb, cd = np.asarray(coeff_bh, dtype=float), np.asarray(coeff_dh, dtype=float)
    bh, dh = np.asarray(clear_beam_h_wh_m2, dtype=float), np.asarray(clear_diffuse_h_wh_m2, dtype=float)
    clear_h = bh + dh
    with np.errstate(invalid="ignore", divide="ignore"):
        reflected_scale = np.where(clear_h > 0.0, (cb * bh + cd * dh) / np.where(clear_h > 0.0, clear_h, 1.0), 0.0)
    return (cb * np.asarray(beam_wh_m2, dtype=float) + cd * np.asarray(diffuse_wh_m2, dtype=float)
            + reflected_scale * np.asarray(reflected_wh_m2, dtype=float))


def monthly_real_sky_wh_m2(glob_sum, flat_sum, beam_sum, refl_sum, flat_beam_sum, n_days, real_global_wh_m2,
                           latitude_deg, month: int):
    """Real-sky global irradiation of a solar month's mean day on the terrain [Wh m⁻² day⁻¹].

    From the clear-sky sums over the month's ``n_days`` computed days (eemt-flow's monthly
    solar bands) and the real global horizontal irradiation G of the month's mean day
    (DAYMET): K̄_T = G / H̄₀ (H̄₀ and ω_s averaged over the solar month's days at the cell's
    latitude), the diffuse fraction from :func:`erbs_monthly_diffuse_fraction`, r.sun's
    coefficients (:func:`real_sky_coefficients`) against the flat clear-sky beam and
    diffuse, applied to the terrain's clear-sky beam, diffuse and reflected parts
    (:func:`real_sky_global`). On a horizontal cell the result is G.

    Parameters
    ----------
    glob_sum, flat_sum, beam_sum, refl_sum, flat_beam_sum : array
        Clear-sky sums over the computed days [Wh m⁻²]: global, flat global, beam and
        reflected parts of global, beam part of flat global.
    n_days : int
        Days summed.
    real_global_wh_m2 : array
        Real global horizontal irradiation of the month's mean day [Wh m⁻² day⁻¹].
    latitude_deg : array
        Latitude [degrees north].
    month : int
        Month 1..12 (solar calendar of EEMT-SPEC §2).

    Returns
    -------
    (real_global, clear_sky_index) : arrays [Wh m⁻² day⁻¹], [-]
    """
    from eemt_flow.model.calendar import solar_month_doys

    n = float(n_days)
    glob, flat = np.asarray(glob_sum, dtype=float) / n, np.asarray(flat_sum, dtype=float) / n
    beam, refl = np.asarray(beam_sum, dtype=float) / n, np.asarray(refl_sum, dtype=float) / n
    flat_beam = np.asarray(flat_beam_sum, dtype=float) / n
    flat_diffuse = np.maximum(flat - flat_beam, 0.0)
    diffuse = np.maximum(glob - beam - refl, 0.0)
    lat = np.asarray(latitude_deg, dtype=float)
    doys = solar_month_doys(month)
    h0 = np.mean([extraterrestrial_horizontal_wh_m2(lat, d) for d in doys], axis=0)
    delta = [0.409 * np.sin(2.0 * np.pi * d / 365.0 - 1.39) for d in doys]
    omega_deg = np.mean([np.degrees(np.arccos(np.clip(-np.tan(np.radians(lat)) * np.tan(x), -1.0, 1.0)))
                         for x in delta], axis=0)
    g = np.asarray(real_global_wh_m2, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        kt = np.where(h0 > 0.0, g / np.where(h0 > 0.0, h0, 1.0), 0.0)
    fd = erbs_monthly_diffuse_fraction(kt, omega_deg)
    coeff_bh, coeff_dh = real_sky_coefficients(g, fd, flat_beam, flat_diffuse)
    real = real_sky_global(beam, diffuse, refl, coeff_bh, coeff_dh, flat_beam, flat_diffuse)
    return real, clear_sky_index(g, flat)
