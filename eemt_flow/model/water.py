"""Water balance: Fu/Zhang–Budyko AET, wetness index, MCWI redistribution (VZJ 2015 pp. 7–8)."""

from __future__ import annotations

import numpy as np

from eemt_flow.model.constants import BUDYKO_W, TAN_BETA_MIN


def budyko_fu_aet_mm(prcp_mm, pet_mm, budyko_w=BUDYKO_W):
    """Actual evapotranspiration from the Fu/Zhang form of the Budyko curve, with guards.

    ``φ = PET/P;  AET = P·[1 + φ − (1 + φ^w)^(1/w)]``, clamped to ``[0, min(P, PET)]``.

    Evaluated in the algebraically identical, division-free form
    ``AET = P + PET − (P^w + PET^w)^(1/w)`` (scaled by max(P, PET)), so it never divides
    by zero or overflows. Guards (EEMT-SPEC §5): ``P ≤ 0 → AET = 0`` and
    ``PET ≤ 0 → AET = 0``. Temperature is **not** a guard here: a frozen month keeps its
    AET, and the caller sets F = 0 instead (mistake §9.21).

    Parameters
    ----------
    prcp_mm : array
        Monthly precipitation P_m [mm].
    pet_mm : array
        Monthly potential evapotranspiration PET_m [mm].
    budyko_w : float
        Shape parameter w [-].

    Returns
    -------
    array
        AET_m [mm]; NaN only where an input is NaN.

    References
    ----------
    Fu, B. P. (1981), Sci. Atmos. Sin. 5:23–31; Zhang et al. (2004), Water Resour. Res.
    40:W02502; VZJ 2015 Eq. 8, p. 7; EEMT-SPEC §5.
    """
    p = np.asarray(prcp_mm, dtype=float)
    pet = np.asarray(pet_mm, dtype=float)
    p, pet = np.broadcast_arrays(p, pet)
    active = (p > 0.0) & (pet > 0.0)
    p_safe = np.where(active, p, 1.0)
    pet_safe = np.where(active, pet, 1.0)
    scale = np.maximum(p_safe, pet_safe)
    norm = scale * ((p_safe / scale) ** budyko_w + (pet_safe / scale) ** budyko_w) ** (1.0 / budyko_w)
    aet = p_safe + pet_safe - norm
    aet = np.clip(aet, 0.0, np.minimum(p_safe, pet_safe))
    aet = np.where(active, aet, 0.0)
    return np.where(np.isnan(p) | np.isnan(pet), np.nan, aet)


def effective_precipitation_mm(prcp_mm, evap_mm):
    """Effective precipitation, water balance of a month, floored at zero.

    ``Peff = max(P − E, 0)`` where E is Hamon PET (EEMT-TRAD, SSSAJ 2005 Eq. 2) or
    Budyko AET (EEMT-TOPO, VZJ 2015 Eq. 7; AET ≤ P, so the floor is inactive there).

    Parameters
    ----------
    prcp_mm : array
        Monthly precipitation [mm].
    evap_mm : array
        Monthly evaporative loss (PET or AET) [mm].

    Returns
    -------
    array
        Peff_m [mm].

    References
    ----------
    SSSAJ 2005 Eq. 2, p. 1268; VZJ 2015 Eq. 7, p. 7; EEMT-SPEC §4 step 2, §5
    (mistake §9.14: negative Peff unclamped).
    """
    return np.maximum(np.asarray(prcp_mm, dtype=float) - evap_mm, 0.0)


def wetness_index(specific_catchment_area_m, slope_rad, tan_beta_min=TAN_BETA_MIN):
    """Topographic wetness index.

    ``λ = ln(a / max(tan β, TAN_BETA_MIN))``

    Parameters
    ----------
    specific_catchment_area_m : array
        D-infinity specific catchment area a [m] (upslope area per unit contour width).
    slope_rad : array
        Slope angle β [rad].
    tan_beta_min : float
        Lower bound of tan β on flat cells [-].

    Returns
    -------
    array
        λ [-] (natural log of metres).

    References
    ----------
    Beven, K. J. and Kirkby, M. J. (1979), Hydrol. Sci. Bull. 24:43–69; VZJ 2015 Eq. 9,
    p. 8; EEMT-SPEC §5.
    """
    tan_beta = np.maximum(np.tan(np.asarray(slope_rad, dtype=float)), tan_beta_min)
    return np.log(np.asarray(specific_catchment_area_m, dtype=float) / tan_beta)


def mcwi_alpha(wetness_index_values):
    """Redistribution factor α from the wetness index, over the whole domain.

    ``α_i = max(λ_i / mean_domain(λ), 0)``, mean over all valid (non-NaN) cells.

    Parameters
    ----------
    wetness_index_values : array
        λ of every cell of the **whole** DEM (never a tile); NaN = nodata.

    Returns
    -------
    array
        α [-], NaN where λ is NaN. Σα = number of valid cells when no λ is negative.

    Raises
    ------
    ValueError
        If there is no valid cell or mean(λ) ≤ 0 (the redistribution is undefined).

    References
    ----------
    VZJ 2015 Eqs. 9–10, p. 8; EEMT-SPEC §5 (mistake §9.3: a per-cell median made α ≡ 1).
    """
    lam = np.asarray(wetness_index_values, dtype=float)
    valid = ~np.isnan(lam)
    if not valid.any():
        raise ValueError("mcwi_alpha: the wetness index has no valid cell; cannot compute the domain mean")
    mean_lambda = float(lam[valid].mean())
    if not mean_lambda > 0.0:
        raise ValueError(
            f"mcwi_alpha: the domain mean of the wetness index is {mean_lambda:.6g} <= 0, so "
            "alpha = lambda/mean(lambda) is undefined (EEMT-SPEC §5). Check the DEM units "
            "(metres), the cell size and the specific catchment area."
        )
    return np.maximum(lam / mean_lambda, 0.0)


def redistributed_water_mm(alpha, peff_mm):
    """Water passing into the subsurface after topographic redistribution.

    ``F = max(α·Peff, 0)``

    Parameters
    ----------
    alpha : array
        MCWI redistribution factor α [-].
    peff_mm : array
        Effective precipitation [mm].

    Returns
    -------
    array
        F_m [mm = kg m⁻²].

    References
    ----------
    VZJ 2015 Eq. 10, p. 8; EEMT-SPEC §5 (mistake §9.22: F not clamped at 0).
    """
    return np.maximum(np.asarray(alpha, dtype=float) * peff_mm, 0.0)
