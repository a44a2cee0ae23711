"""Per-month EEMT assemblers and the annual sum.

Each assembler takes the numpy arrays of **one month** (any shape; inputs broadcast),
chains the equation functions of :mod:`eemt_flow.model` and returns a
:class:`MonthResult` with the two energy terms and the intermediates needed for QA.
NaN in any input marks nodata: the outputs are NaN exactly there and finite elsewhere.

* :func:`eemt_trad_month` — EEMT-TRAD (SSSAJ 2005; HESS 2012; EEMT-SPEC §4)
* :func:`eemt_topo_month` — EEMT-TOPO (VZJ 2015 pp. 6–8; EEMT-SPEC §5)
* :func:`eemt_topo_veg_month` — EEMT-TOPO-VEG (VZJ 2015 pp. 6–9; EEMT-SPEC §6)
* :func:`annual_eemt_mj` — Σ over the 12 months, J → MJ (EEMT-SPEC §1.1, §2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eemt_flow.model import constants as C
from eemt_flow.model.atmosphere import (
    actual_vapour_pressure_kpa,
    aerodynamic_resistance_canopy_s_m,
    aerodynamic_resistance_open_water_s_m,
    air_density_kg_m3,
    atmospheric_pressure_kpa,
    mean_saturation_vapour_pressure_kpa,
    psychrometric_constant_kpa_k,
    saturation_vapour_slope_kpa_k,
    vapour_pressure_deficit_kpa,
)
from eemt_flow.model.energy import e_bio_j_m2, e_ppt_j_m2
from eemt_flow.model.npp import annual_to_month, lieth_npp_month_g_m2, npp_topo_annual_g_m2, npp_veg_annual_g_m2
from eemt_flow.model.pet import hamon_pet_mm, penman_monteith_mm
from eemt_flow.model.topoclimate import lai_from_ndvi, monthly_irradiation_j_m2, moore_tmax_c, radiation_ratio
from eemt_flow.model.water import budyko_fu_aet_mm, effective_precipitation_mm, redistributed_water_mm

_D = C.DEFAULTS


@dataclass(frozen=True)
class ModelParameters:
    """Configurable model parameters (EEMT-SPEC §1.3, §10); defaults from ``constants.DEFAULTS``.

    Field names equal the keys of :data:`eemt_flow.model.constants.DEFAULTS` and carry
    their units. Build from a configuration with :meth:`from_mapping`.
    """

    c_w_j_kg_k: float = _D["c_w_j_kg_k"]
    t_ref_k: float = _D["t_ref_k"]
    h_bio_j_kg: float = _D["h_bio_j_kg"]
    lapse_rate_c_per_km: float = _D["lapse_rate_c_per_km"]
    moore_c_c: float = _D["moore_c_c"]
    lai_max: float = _D["lai_max"]
    s_min: float = _D["s_min"]
    s_max: float = _D["s_max"]
    budyko_w: float = _D["budyko_w"]
    small_p_mm: float = _D["small_p_mm"]
    hamon_k: float = _D["hamon_k"]
    hamon_mode: str = _D["hamon_mode"]
    pet: str = _D["pet"]
    tan_beta_min: float = _D["tan_beta_min"]
    cp_air_j_kg_k: float = _D["cp_air_j_kg_k"]
    lambda_v_j_kg: float = _D["lambda_v_j_kg"]
    epsilon: float = _D["epsilon"]
    r_d_j_kg_k: float = _D["r_d_j_kg_k"]
    z_meas_m: float = _D["z_meas_m"]
    z0_water_m: float = _D["z0_water_m"]
    wind_speed_m_s: float = _D["wind_speed_m_s"]
    surface_resistance_s_m: float = _D["surface_resistance_s_m"]
    canopy_height_min_m: float = _D["canopy_height_min_m"]
    pm_albedo: float = _D["pm_albedo"]
    npp_require_t_above_0: bool = _D["npp_require_t_above_0"]

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), _D[f.name]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{f.name} must be true or false, got {value!r:.40}")
            elif isinstance(default, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                    raise TypeError(f"{f.name} must be a finite number, got {value!r:.40}")
                object.__setattr__(self, f.name, float(value))
            elif not isinstance(value, type(default)):
                raise TypeError(f"{f.name} must be a {type(default).__name__}, got {value!r:.40}")
        for name, (low, high) in C.PARAMETER_RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} = {value:g} is outside the accepted range {low:g} to {high:g}")
        if self.hamon_mode not in ("monthly", "daily"):
            raise ValueError(f"hamon_mode must be 'monthly' or 'daily', got {self.hamon_mode!r}")
        if self.pet not in ("hamon", "thornthwaite"):
            raise ValueError(f"pet must be 'hamon' or 'thornthwaite', got {self.pet!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> "ModelParameters":
        """Build from a mapping of (some of) the DEFAULTS keys; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model parameter(s) {', '.join(map(repr, sorted(unknown)))}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**dict(values))

    def as_dict(self) -> dict:
        """All parameters as a plain dict (for output metadata)."""
        return dataclasses.asdict(self)


DEFAULT_PARAMETERS = ModelParameters()


@dataclass(frozen=True)
class MonthResult:
    """EEMT terms of one month and the intermediates kept for QA.

    Attributes
    ----------
    e_ppt_j_m2 : array
        E_PPT [J m⁻² month⁻¹].
    e_bio_j_m2 : array
        E_BIO [J m⁻² month⁻¹].
    t_mean_c : array
        Mean temperature used for ΔT and PET [°C].
    pet_mm : array
        Potential evapotranspiration (Hamon, or Penman–Monteith) [mm month⁻¹].
    aet_mm : array
        Actual evapotranspiration [mm month⁻¹] (TRAD: min(P, PET_H)).
    peff_mm : array
        Effective precipitation P − AET [mm month⁻¹].
    f_mm : array
        Water into the subsurface F [mm month⁻¹].
    npp_g_m2 : array
        NPP of the month [g m⁻² month⁻¹].
    s_i : array or None
        Radiation ratio (TOPO, TOPO-VEG) [-].
    s_i_guarded : array of bool or None
        QA flag: True where S_flat ≤ 0 or nodata set S_i = 1.
    """

    e_ppt_j_m2: np.ndarray
    e_bio_j_m2: np.ndarray
    t_mean_c: np.ndarray
    pet_mm: np.ndarray
    aet_mm: np.ndarray
    peff_mm: np.ndarray
    f_mm: np.ndarray
    npp_g_m2: np.ndarray
    s_i: np.ndarray | None = None
    s_i_guarded: np.ndarray | None = None

    @property
    def eemt_j_m2(self) -> np.ndarray:
        """EEMT of the month, E_PPT + E_BIO [J m⁻² month⁻¹] (VZJ 2015 Eq. 3)."""
        return self.e_ppt_j_m2 + self.e_bio_j_m2


@dataclass(frozen=True)
class AnnualEEMT:
    """Annual EEMT and its components [MJ m⁻² yr⁻¹]."""

    eemt_mj_m2: np.ndarray
    e_ppt_mj_m2: np.ndarray
    e_bio_mj_m2: np.ndarray


def _nodata_mask(*arrays) -> np.ndarray:
    """True wherever any (broadcast) input is NaN."""
    mask = np.zeros((), dtype=bool)
    for a in arrays:
        if a is None:
            continue
        mask = mask | np.isnan(np.asarray(a, dtype=float))
    return mask


def _finish(nodata, s_i=None, s_i_guarded=None, **fields) -> MonthResult:
    shape = np.broadcast_shapes(nodata.shape, *(np.shape(v) for v in fields.values()))
    nodata = np.broadcast_to(nodata, shape)
    out = {k: np.where(nodata, np.nan, np.broadcast_to(np.asarray(v, dtype=float), shape)) for k, v in fields.items()}
    if s_i is not None:
        s_i = np.where(nodata, np.nan, np.broadcast_to(s_i, shape))
        s_i_guarded = np.broadcast_to(s_i_guarded, shape).copy()
    return MonthResult(s_i=s_i, s_i_guarded=s_i_guarded, **out)


def eemt_trad_month(tmin_c, tmax_c, prcp_mm, daylength_h, days_in_month, *, pet_mm=None,
                    params: ModelParameters = DEFAULT_PARAMETERS) -> MonthResult:
    """EEMT-TRAD for one month: Hamon (or Thornthwaite) PET, no redistribution, Lieth NPP.

    Steps (EEMT-SPEC §4): ``T = (Tmin + Tmax)/2``; ``PET_H = days_m·k·D̄·e°(T)/(T + 273.2)``;
    ``Peff = F = max(P − PET_H, 0)``; ``E_PPT = c_w·Peff·ΔT(T)``;
    ``NPP = 3000/(1 + exp(1.315 − 0.119T))·days_m/365`` if P > PET_H else 0;
    ``E_BIO = NPP/1000·h_BIO``.

    Parameters
    ----------
    tmin_c, tmax_c : array
        Monthly mean lapse-corrected Tmin and Tmax [°C].
    prcp_mm : array
        Monthly precipitation sum P_m [mm].
    daylength_h : array or None
        Monthly mean astronomical daylength D̄_m [h]; may be None when ``pet_mm`` is given.
    days_in_month : int or array
        days_m of the DAYMET month [day].
    pet_mm : array, optional
        The month's PET computed outside [mm month⁻¹]: Hamon summed in daily mode
        (``hamon_pet_daily_sum_mm``), required when ``params.hamon_mode == 'daily'``, or
        Thornthwaite's (``thornthwaite_pet_mm``, which needs the year's heat index), required
        when ``params.pet == 'thornthwaite'``.
    params : ModelParameters
        Model parameters.

    Returns
    -------
    MonthResult
        E_PPT and E_BIO [J m⁻²]; the water loss is ``aet_mm = min(P, PET_H)`` so that
        ``peff_mm = P − aet_mm``; ``f_mm = peff_mm``; ``s_i`` is None.

    References
    ----------
    SSSAJ 2005 Eqs. 2–3, pp. 1268–1269; HESS 2012 p. 729; VZJ 2015 p. 7; EEMT-SPEC §4.
    """
    if pet_mm is None:
        if params.pet == "thornthwaite":
            raise ValueError("pet='thornthwaite' needs pet_mm from thornthwaite_pet_mm (the year's heat index)")
        if params.hamon_mode == "daily":
            raise ValueError("hamon_mode='daily' needs pet_mm summed from daily values (hamon_pet_daily_sum_mm)")
        if daylength_h is None:
            raise ValueError("eemt_trad_month needs daylength_h (or a precomputed pet_mm)")
    nodata = _nodata_mask(tmin_c, tmax_c, prcp_mm, daylength_h, days_in_month, pet_mm)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        prcp = np.asarray(prcp_mm, dtype=float)
        t_mean = 0.5 * (np.asarray(tmin_c, dtype=float) + np.asarray(tmax_c, dtype=float))
        if pet_mm is None:
            pet = hamon_pet_mm(t_mean, daylength_h, days_in_month, params.hamon_k)
        else:
            pet = np.asarray(pet_mm, dtype=float)
        peff = effective_precipitation_mm(prcp, pet)
        aet = prcp - peff
        e_ppt = e_ppt_j_m2(peff, t_mean, params.c_w_j_kg_k, params.t_ref_k)
        npp = lieth_npp_month_g_m2(t_mean, prcp, pet, days_in_month, params.npp_require_t_above_0)
        e_bio = e_bio_j_m2(npp, params.h_bio_j_kg)
    return _finish(nodata, e_ppt_j_m2=e_ppt, e_bio_j_m2=e_bio, t_mean_c=t_mean, pet_mm=pet, aet_mm=aet,
                   peff_mm=peff, f_mm=peff, npp_g_m2=npp)


def _penman_inputs(t_mean_c, t_max_c, t_min_c, vp_pa, elevation_m, params):
    p_atm = atmospheric_pressure_kpa(elevation_m)
    gamma = psychrometric_constant_kpa_k(p_atm, params.cp_air_j_kg_k, params.epsilon, params.lambda_v_j_kg)
    slope = saturation_vapour_slope_kpa_k(t_mean_c)
    vpd = vapour_pressure_deficit_kpa(mean_saturation_vapour_pressure_kpa(t_max_c, t_min_c),
                                      actual_vapour_pressure_kpa(vp_pa))
    rho = air_density_kg_m3(p_atm, t_mean_c, params.r_d_j_kg_k)
    return slope, gamma, rho, vpd


def _frozen_guard(f_mm, t_mean_c):
    """F = 0 in a frozen month (T_mean ≤ 0 °C); AET is kept so that Peff ≠ P (§9.21)."""
    return np.where(np.asarray(t_mean_c) <= 0.0, 0.0, f_mm)


def eemt_topo_month(tmin_c, tmax_c, prcp_mm, vp_pa, elevation_m, s_topo_wh_m2, s_flat_wh_m2, alpha, northness,
                    month: int, days_in_month, *, wind_speed_m_s=None, npp_annual_g_m2=None,
                    params: ModelParameters = DEFAULT_PARAMETERS) -> MonthResult:
    """EEMT-TOPO for one month: Moore Tmax, open-water Penman–Monteith, Fu/Zhang AET, MCWI, NPP_TOPO.

    Steps (EEMT-SPEC §5): ``S_i`` guarded ratio; ``T_max,topo = T_max + C(S_i − 1/S_i)``;
    ``T = (T_min + T_max,topo)/2``; ``R_m = S_topo/n_solar·days_m·3600·(1 − pm_albedo)``;
    ``PET = [Δ·R + ρc_p·VPD/r_a·t_m]/[λ(Δ + γ)]``; Budyko AET with the P ≤ 0 and PET = 0
    guards; ``Peff = P − AET``; ``F = max(α·Peff, 0)``, and F = 0 when T ≤ 0 °C;
    ``E_PPT = F·c_w·ΔT(T)``; ``E_BIO = NPP_TOPO·days_m/365/1000·h_BIO``.

    Parameters
    ----------
    tmin_c, tmax_c : array
        Monthly mean lapse-corrected Tmin and Tmax [°C].
    prcp_mm : array
        Monthly precipitation P_m [mm].
    vp_pa : array
        Monthly mean DAYMET vapour pressure [Pa].
    elevation_m : array
        DEM elevation [m].
    s_topo_wh_m2, s_flat_wh_m2 : array
        Solar-month sums of r.sun ``glob_rad`` on terrain and on a flat surface [Wh m⁻²].
    alpha : array
        MCWI factor α from :func:`eemt_flow.terrain.whole_dem.compute_terrain` [-].
    northness : array
        n = cos(aspect_N)·sin β [-].
    month : int
        Month 1..12 (selects the solar-month length for the leap rule).
    days_in_month : int or array
        days_m of the DAYMET month [day].
    wind_speed_m_s : array, optional
        Wind speed at 2 m [m s⁻¹]; default ``params.wind_speed_m_s``.
    npp_annual_g_m2 : array, optional
        The user's annual NPP [g m⁻² yr⁻¹], used instead of NPP_TOPO (VZJ 2015 Eq. 11, a
        site-specific regression); split by days_m/365 the same way.
    params : ModelParameters
        Model parameters.

    Returns
    -------
    MonthResult
        With ``s_i`` and the QA flag ``s_i_guarded``.

    References
    ----------
    VZJ 2015 Eqs. 6–11, pp. 6–8; FAO-56 Eqs. 7, 8, 11–13; Thom & Oliver (1977);
    EEMT-SPEC §2, §3, §5.
    """
    wind = params.wind_speed_m_s if wind_speed_m_s is None else wind_speed_m_s
    nodata = _nodata_mask(tmin_c, tmax_c, prcp_mm, vp_pa, elevation_m, s_topo_wh_m2, s_flat_wh_m2, alpha,
                          northness, days_in_month, wind, npp_annual_g_m2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        prcp = np.asarray(prcp_mm, dtype=float)
        t_min = np.asarray(tmin_c, dtype=float)
        s_i, s_i_guarded = radiation_ratio(s_topo_wh_m2, s_flat_wh_m2, params.s_min, params.s_max)
        t_max = moore_tmax_c(tmax_c, s_i, 0.0, params.moore_c_c, params.lai_max)
        t_mean = 0.5 * (t_min + t_max)
        radiation = monthly_irradiation_j_m2(s_topo_wh_m2, month, days_in_month) * (1.0 - params.pm_albedo)
        slope, gamma, rho, vpd = _penman_inputs(t_mean, t_max, t_min, vp_pa, elevation_m, params)
        r_a = aerodynamic_resistance_open_water_s_m(wind, params.z_meas_m, params.z0_water_m)
        duration = np.asarray(days_in_month, dtype=float) * C.SECONDS_PER_DAY
        pet = penman_monteith_mm(radiation, slope, gamma, rho, vpd, r_a, duration, 0.0,
                                 params.cp_air_j_kg_k, params.lambda_v_j_kg)
        aet = budyko_fu_aet_mm(prcp, pet, params.budyko_w)
        peff = effective_precipitation_mm(prcp, aet)
        f = _frozen_guard(redistributed_water_mm(alpha, peff), t_mean)
        e_ppt = e_ppt_j_m2(f, t_mean, params.c_w_j_kg_k, params.t_ref_k)
        annual_npp = npp_topo_annual_g_m2(elevation_m, northness) if npp_annual_g_m2 is None else npp_annual_g_m2
        npp = annual_to_month(annual_npp, days_in_month)
        e_bio = e_bio_j_m2(npp, params.h_bio_j_kg)
    return _finish(nodata, s_i=s_i, s_i_guarded=s_i_guarded, e_ppt_j_m2=e_ppt, e_bio_j_m2=e_bio, t_mean_c=t_mean,
                   pet_mm=pet, aet_mm=aet, peff_mm=peff, f_mm=f, npp_g_m2=npp)


def eemt_topo_veg_month(tmin_c, tmax_c, prcp_mm, vp_pa, elevation_m, s_topo_wh_m2, s_flat_wh_m2, alpha, ndvi,
                        canopy_height_m, month: int, days_in_month, *, wind_speed_m_s=None,
                        surface_resistance_s_m=None, npp_annual_g_m2=None,
                        params: ModelParameters = DEFAULT_PARAMETERS) -> MonthResult:
    """EEMT-TOPO-VEG for one month: canopy Penman–Monteith AET, LAI-damped Moore Tmax, NPP_VEG.

    Steps (EEMT-SPEC §6): ``LAI = Qi(NDVI)`` clamped to [0, LAI_MAX];
    ``T_max,veg = T_max + C(S_i − 1/S_i)(1 − LAI/LAI_MAX)``; ``T = (T_min + T_max,veg)/2``;
    ``AET = min(PM(r_a canopy, r_s), P)`` (0 where P ≤ 0); ``F = max(α(P − AET), 0)``,
    F = 0 when T ≤ 0 °C; ``E_PPT = F·c_w·ΔT(T)``; ``E_BIO = NPP_VEG·days_m/365/1000·h_BIO``.

    Parameters
    ----------
    tmin_c, tmax_c, prcp_mm, vp_pa, elevation_m, s_topo_wh_m2, s_flat_wh_m2, alpha : array
        As in :func:`eemt_topo_month` [°C, °C, mm, Pa, m, Wh m⁻², Wh m⁻², -].
    month : int
        Month 1..12.
    days_in_month : int or array
        days_m of the DAYMET month [day].
    ndvi : array
        NDVI on the DEM grid [-].
    canopy_height_m : array
        Canopy height h [m].
    wind_speed_m_s : array, optional
        Wind speed above the canopy [m s⁻¹]; default ``params.wind_speed_m_s``.
    surface_resistance_s_m : array, optional
        Bulk surface resistance r_s = 1/g_s [s m⁻¹] (pluggable g_s); default
        ``params.surface_resistance_s_m`` (50 s m⁻¹, provisional).
    npp_annual_g_m2 : array, optional
        The user's annual NPP [g m⁻² yr⁻¹], used instead of NPP_VEG (VZJ 2015 Eq. 12).
    params : ModelParameters
        Model parameters.

    Returns
    -------
    MonthResult
        ``pet_mm`` holds the canopy Penman–Monteith value before the min(·, P) cap.

    References
    ----------
    VZJ 2015 Eqs. 6, 7, 10, 12, pp. 6–9; FAO-56 Eqs. 3, 4; Qi et al. (2000); EEMT-SPEC §6.
    """
    wind = params.wind_speed_m_s if wind_speed_m_s is None else wind_speed_m_s
    r_s = params.surface_resistance_s_m if surface_resistance_s_m is None else surface_resistance_s_m
    nodata = _nodata_mask(tmin_c, tmax_c, prcp_mm, vp_pa, elevation_m, s_topo_wh_m2, s_flat_wh_m2, alpha, ndvi,
                          canopy_height_m, days_in_month, wind, r_s, npp_annual_g_m2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        prcp = np.asarray(prcp_mm, dtype=float)
        t_min = np.asarray(tmin_c, dtype=float)
        lai = lai_from_ndvi(ndvi, params.lai_max)
        s_i, s_i_guarded = radiation_ratio(s_topo_wh_m2, s_flat_wh_m2, params.s_min, params.s_max)
        t_max = moore_tmax_c(tmax_c, s_i, lai, params.moore_c_c, params.lai_max)
        t_mean = 0.5 * (t_min + t_max)
        radiation = monthly_irradiation_j_m2(s_topo_wh_m2, month, days_in_month) * (1.0 - params.pm_albedo)
        slope, gamma, rho, vpd = _penman_inputs(t_mean, t_max, t_min, vp_pa, elevation_m, params)
        r_a = aerodynamic_resistance_canopy_s_m(canopy_height_m, wind, params.z_meas_m, params.canopy_height_min_m)
        duration = np.asarray(days_in_month, dtype=float) * C.SECONDS_PER_DAY
        pet = penman_monteith_mm(radiation, slope, gamma, rho, vpd, r_a, duration, r_s,
                                 params.cp_air_j_kg_k, params.lambda_v_j_kg)
        aet = np.where(prcp > 0.0, np.clip(pet, 0.0, np.maximum(prcp, 0.0)), 0.0)
        peff = effective_precipitation_mm(prcp, aet)
        f = _frozen_guard(redistributed_water_mm(alpha, peff), t_mean)
        e_ppt = e_ppt_j_m2(f, t_mean, params.c_w_j_kg_k, params.t_ref_k)
        annual_npp = npp_veg_annual_g_m2(canopy_height_m) if npp_annual_g_m2 is None else npp_annual_g_m2
        npp = annual_to_month(annual_npp, days_in_month)
        e_bio = e_bio_j_m2(npp, params.h_bio_j_kg)
    return _finish(nodata, s_i=s_i, s_i_guarded=s_i_guarded, e_ppt_j_m2=e_ppt, e_bio_j_m2=e_bio, t_mean_c=t_mean,
                   pet_mm=pet, aet_mm=aet, peff_mm=peff, f_mm=f, npp_g_m2=npp)


def annual_eemt_mj(monthly_results: Sequence[MonthResult]) -> AnnualEEMT:
    """Annual EEMT: the sum of the 12 monthly terms, J → MJ.

    ``EEMT = Σ_m (E_PPT,m + E_BIO,m) / 10⁶``

    Parameters
    ----------
    monthly_results : sequence of MonthResult
        The 12 months of one DAYMET year (Jan..Dec), from one assembler.

    Returns
    -------
    AnnualEEMT
        EEMT, E_PPT and E_BIO [MJ m⁻² yr⁻¹]; NaN where any month is nodata.

    Raises
    ------
    ValueError
        If not exactly 12 months are given.

    References
    ----------
    VZJ 2015 Eq. 3, p. 3; EEMT-SPEC §1.1, §2 (mistakes §9.5: E_PPT × E_BIO; §9.24:
    months never summed).
    """
    months = list(monthly_results)
    if len(months) != 12:
        raise ValueError(f"annual_eemt_mj needs the 12 months of a year, got {len(months)}")
    e_ppt = sum(np.asarray(m.e_ppt_j_m2, dtype=float) for m in months) / C.J_PER_MJ
    e_bio = sum(np.asarray(m.e_bio_j_m2, dtype=float) for m in months) / C.J_PER_MJ
    return AnnualEEMT(eemt_mj_m2=e_ppt + e_bio, e_ppt_mj_m2=e_ppt, e_bio_mj_m2=e_bio)
