"""Per-month assemblers and the annual sum: hand-computed single-pixel months, guards, invariants."""

import numpy as np
import pytest

from eemt_flow.model import calendar as cal
from eemt_flow.model.eemt import (
    DEFAULT_PARAMETERS,
    ModelParameters,
    MonthResult,
    annual_eemt_mj,
    eemt_topo_month,
    eemt_topo_veg_month,
    eemt_trad_month,
)


# ---------------------------------------------------------------- EEMT-TRAD
def test_trad_month_hand_computed():
    # Tmin 2, Tmax 14 -> T = 8 °C; D̄ = 14.5 h; May, days_m = 31; P = 150 mm
    # PET_H = 31·29.8·14.5·e°(8)/(8 + 273.2) = 13395.1·1.0727688/281.2 = 51.10187 mm
    # Peff = F = max(150 − 51.10187, 0) = 98.89813 mm
    # E_PPT = 4186·98.89813·max(8, 0) = 3311900.6 J m⁻²
    # NPP = 3000/(1 + exp(1.315 − 0.119·8))·31/365 = 3000/(1 + 1.4376359)·0.0849315 = 1230.7006·0.0849315 = 104.52526 g m⁻²
    # E_BIO = 104.52526/1000·22e6 = 2299555.7 J m⁻²
    r = eemt_trad_month(2.0, 14.0, 150.0, 14.5, 31)
    assert r.t_mean_c == pytest.approx(8.0)
    assert r.pet_mm == pytest.approx(51.10187, rel=1e-6)
    assert r.peff_mm == pytest.approx(98.89813, rel=1e-6)
    assert r.f_mm == pytest.approx(98.89813, rel=1e-6)
    assert r.aet_mm == pytest.approx(51.10187, rel=1e-6)
    assert r.e_ppt_j_m2 == pytest.approx(3311900.6, rel=1e-6)
    assert r.npp_g_m2 == pytest.approx(104.52526, rel=1e-6)
    assert r.e_bio_j_m2 == pytest.approx(2299555.7, rel=1e-6)
    assert r.s_i is None
    # Mistake §9.5: EEMT is the sum E_PPT + E_BIO, not the product: 3311900.6 + 2299555.7 = 5611456.3
    assert r.eemt_j_m2 == pytest.approx(5611456.3, rel=1e-6)


def test_trad_dry_month_no_eppt_no_npp():
    # P = 40 < PET = 51.1: Peff = 0 (no negative Peff, mistake §9.14), NPP gated off (P ≤ PET)
    r = eemt_trad_month(2.0, 14.0, 40.0, 14.5, 31)
    assert r.peff_mm == 0.0 and r.e_ppt_j_m2 == 0.0 and r.npp_g_m2 == 0.0
    assert r.aet_mm == pytest.approx(40.0)


def test_trad_cold_wet_month_eppt_zero_npp_from_gate_only():
    # T = −5: ΔT = 0 -> E_PPT = 0 even with Peff > 0; NPP gate is P > PET (not T > 0), as published
    r = eemt_trad_month(-10.0, 0.0, 100.0, 9.5, 31)
    assert r.peff_mm > 0 and r.e_ppt_j_m2 == 0.0
    # NPP = 3000/(1 + exp(1.315 + 0.595))·31/365 = 3000/(1 + 6.7530888)·0.0849315 = 386.94256·0.0849315 = 32.86361 g
    assert r.npp_g_m2 == pytest.approx(32.86361, rel=1e-6)


def test_trad_daily_hamon_mode():
    params = ModelParameters(hamon_mode="daily")
    with pytest.raises(ValueError, match="daily"):
        eemt_trad_month(2.0, 14.0, 150.0, 14.5, 31, params=params)
    # with the precomputed daily sum: Peff = 150 − 60 = 90; E_PPT = 4186·90·8 = 3013920 J m⁻²
    r = eemt_trad_month(2.0, 14.0, 150.0, None, 31, pet_mm=60.0, params=params)
    assert r.e_ppt_j_m2 == pytest.approx(3013920.0)


# ---------------------------------------------------------------- EEMT-TOPO
TOPO_CASE = dict(tmin_c=2.0, tmax_c=14.0, prcp_mm=60.0, vp_pa=700.0, elevation_m=2500.0,
                 s_topo_wh_m2=150000.0, s_flat_wh_m2=120000.0, alpha=1.3, northness=0.4, month=5, days_in_month=31)


def test_topo_month_hand_computed():
    # S_i = 150000/120000 = 1.25; T_max,topo = 14 + 1.0·(1.25 − 0.8) = 14.45; T = (2 + 14.45)/2 = 8.225 °C
    # R = 150000/31·31·3600 = 5.4e8 J m⁻²
    # Δ(8.225) = 4098·e°(8.225)/(245.525)² = 4098·1.0893194/60282.53 = 0.0740518 kPa K⁻¹
    # P_atm(2500) = 75.03548 kPa; γ = 1013·75.03548/(0.622·2.45e6) = 0.0498792 kPa K⁻¹
    # e_s = [e°(14.45) + e°(2)]/2 = (1.6458903 + 0.7056414)/2 = 1.1757658; VPD = 1.1757658 − 0.7 = 0.4757658 kPa
    # ρ_a = 75035.48/(287.05·281.375) = 0.9290169 kg m⁻³; r_a = 4.72·7.2860917²/2.072 = 120.93208 s m⁻¹
    # t_m = 31·86400 = 2678400 s
    # PET = [0.0740518·5.4e8 + 0.9290169·1013·0.4757658/120.93208·2678400] / [2.45e6·(0.0740518 + 0.0498792)]
    #     = [39987986 + 9916542] / 303631.07 = 164.35910 mm
    # φ = 164.35910/60 = 2.7393183; φ^2.63 = 14.157930; (15.157930)^(1/2.63) = 2.8113344
    # AET = 60·(1 + 2.7393183 − 2.8113344) = 60·0.9279839 = 55.67903 mm
    # Peff = 60 − 55.67903 = 4.32097 mm; F = 1.3·4.32097 = 5.61726 mm
    # E_PPT = 5.61726·4186·8.225 = 193401.4 J m⁻²
    # NPP_TOPO = 0.39·2500 + 346·0.4 − 187 = 926.4 g m⁻² yr⁻¹; month: 926.4·31/365 = 78.68055 g m⁻²
    # E_BIO = 78.68055/1000·22e6 = 1730972.1 J m⁻²
    r = eemt_topo_month(**TOPO_CASE)
    assert r.s_i == pytest.approx(1.25) and not r.s_i_guarded
    assert r.t_mean_c == pytest.approx(8.225)
    assert r.pet_mm == pytest.approx(164.35910, rel=1e-6)
    assert r.aet_mm == pytest.approx(55.67903, rel=1e-6)
    assert r.peff_mm == pytest.approx(4.32097, rel=1e-5)
    assert r.f_mm == pytest.approx(5.61726, rel=1e-5)
    assert r.e_ppt_j_m2 == pytest.approx(193401.4, rel=1e-5)
    assert r.npp_g_m2 == pytest.approx(78.68055, rel=1e-6)
    assert r.e_bio_j_m2 == pytest.approx(1730972.1, rel=1e-6)


def test_topo_p_zero_guard():
    # P = 0: AET = Peff = F = 0, no division by zero, no NaN
    with np.errstate(all="raise"):
        r = eemt_topo_month(**{**TOPO_CASE, "prcp_mm": 0.0})
    assert r.aet_mm == 0.0 and r.peff_mm == 0.0 and r.f_mm == 0.0 and r.e_ppt_j_m2 == 0.0
    assert r.e_bio_j_m2 > 0  # NPP_TOPO does not depend on P


def test_topo_pet_zero_guard():
    # No radiation and saturated air (vp = e_s) -> PET = 0 -> AET = 0 -> Peff = P
    # e_s at Tmin = Tmax = 5 (S_i = 1): e°(5) = 0.8723110 kPa = 872.3110 Pa
    r = eemt_topo_month(**{**TOPO_CASE, "tmin_c": 5.0, "tmax_c": 5.0, "vp_pa": 872.311,
                           "s_topo_wh_m2": 0.0, "s_flat_wh_m2": 1000.0, "prcp_mm": 30.0})
    assert r.s_i == pytest.approx(0.1)  # 0/1000 clamped to S_MIN
    # T_max,topo = 5 + (0.1 − 10) = −4.9; T = (5 − 4.9)/2 = 0.05 °C; VPD = max(e_s − e_a, 0)
    # e_s = [e°(−4.9) + e°(5)]/2 < e°(5) = e_a -> VPD = 0; R = 0 -> PET = 0
    assert r.pet_mm == 0.0
    assert r.aet_mm == 0.0 and r.peff_mm == pytest.approx(30.0)


def test_topo_frozen_month_f_zero_but_aet_kept():
    # Mistake §9.21: AET forced to 0 at T ≤ 0 so that F = P. Here T_mean ≤ 0: F = 0 and E_PPT = 0,
    # while AET keeps its Budyko value (Peff = P − AET < P).
    r = eemt_topo_month(**{**TOPO_CASE, "tmin_c": -12.0, "tmax_c": 3.0, "prcp_mm": 80.0})
    assert r.t_mean_c <= 0.0
    assert r.f_mm == 0.0 and r.e_ppt_j_m2 == 0.0
    assert r.aet_mm > 0.0 and r.peff_mm < 80.0


def test_topo_polar_night_radiation_guard():
    r = eemt_topo_month(**{**TOPO_CASE, "s_topo_wh_m2": 0.0, "s_flat_wh_m2": 0.0})
    assert r.s_i == 1.0 and r.s_i_guarded
    assert np.isfinite(r.eemt_j_m2)


def test_topo_npp_regressions_floor_and_monthly_split():
    # Mistakes §9.11, §9.12: NPP_TOPO floor 100 and split by days/365.
    # z = 300, n = −0.5: 117 − 173 − 187 = −243 -> 100 g m⁻² yr⁻¹; in a 30-day month 100·30/365 = 8.219178 g
    # E_BIO = 8.219178/1000·22e6 = 180821.9 J m⁻²
    r = eemt_topo_month(**{**TOPO_CASE, "elevation_m": 300.0, "northness": -0.5, "days_in_month": 30})
    assert r.npp_g_m2 == pytest.approx(8.219178, rel=1e-6)
    assert r.e_bio_j_m2 == pytest.approx(180821.9, rel=1e-6)


def test_topo_wind_raster_and_parameters():
    # u = 5 m s⁻¹: r_a = 4.72·53.087133/(1 + 2.68) = 250.5713/3.68 = 68.0900 s m⁻¹ -> larger aero term -> larger PET
    r2 = eemt_topo_month(**TOPO_CASE)
    r5 = eemt_topo_month(**TOPO_CASE, wind_speed_m_s=np.array([5.0]))
    assert r5.pet_mm[0] > r2.pet_mm
    # aero term scales with 1/r_a: 9916542·120.93208/68.09002 = 17612391; PET = (39987986 + 17612391)/303631.07 = 189.7052
    assert r5.pet_mm[0] == pytest.approx(189.7052, rel=1e-6)


# ---------------------------------------------------------------- EEMT-TOPO-VEG
def test_topo_veg_month_hand_computed():
    # NDVI 0.6 -> LAI = 1.93784; S_i = 1.25 -> T_max,veg = 14 + 0.45·(1 − 0.193784) = 14 + 0.3627972 = 14.3627972
    # T = (2 + 14.3627972)/2 = 8.1813986 °C
    # NPP_VEG(h = 10) = 520.080355 g m⁻² yr⁻¹; May: ·31/365 = 44.17121 g; E_BIO = 971766.6 J m⁻²
    # P = 60 and the canopy PM PET far exceeds it, so AET = min(PET, P) = 60, Peff = 0, F = 0, E_PPT = 0
    r = eemt_topo_veg_month(**{k: v for k, v in TOPO_CASE.items() if k != "northness"}, ndvi=0.6, canopy_height_m=10.0)
    assert r.t_mean_c == pytest.approx(8.1813986, rel=1e-7)
    assert r.npp_g_m2 == pytest.approx(44.17121, rel=1e-6)
    assert r.e_bio_j_m2 == pytest.approx(971766.6, rel=1e-6)
    assert r.pet_mm > 60.0
    assert r.aet_mm == pytest.approx(60.0) and r.f_mm == 0.0 and r.e_ppt_j_m2 == 0.0


def test_topo_veg_wet_month_canopy_pm_hand_computed():
    # P = 400 mm, everything else as above. T = 8.1813986 °C:
    # e°(8.1813986) = 0.6108·exp(17.27·8.1813986/245.4813986) = 1.0860948 kPa
    # Δ = 4098·1.0860948/245.4813986² = 4450.816/60261.12 = 0.0738588 kPa K⁻¹; γ = 0.0498792
    # e_s = [e°(14.3627972) + e°(2)]/2 = (1.6366324 + 0.7056414)/2 = 1.1711369; VPD = 0.4711369 kPa
    # ρ = 75035.48/(287.05·281.3313986) = 0.9291609 kg m⁻³; r_a(h = 10, u = 2) = 16.350363 s m⁻¹; r_s = 50
    # rad = 0.0738588·5.4e8 = 39883775; aero = 0.9291609·1013·0.4711369/16.350363·2678400 = 72643300
    # den = 2.45e6·(0.0738588 + 0.0498792·(1 + 50/16.350363)) = 2.45e6·0.2762705 = 676862.8
    # PET = (39883775 + 72643300)/676862.8 = 166.2480 mm; AET = min(166.2480, 400) = 166.2480
    # Peff = 233.7520; F = 1.3·233.7520 = 303.8776 mm; E_PPT = 303.8776·4186·8.1813986 = 10406998 J m⁻²
    case = {k: v for k, v in TOPO_CASE.items() if k != "northness"}
    r = eemt_topo_veg_month(**{**case, "prcp_mm": 400.0}, ndvi=0.6, canopy_height_m=10.0)
    assert r.pet_mm == pytest.approx(166.2480, rel=1e-6)
    assert r.aet_mm == pytest.approx(166.2480, rel=1e-6)
    assert r.f_mm == pytest.approx(303.8776, rel=1e-6)
    assert r.e_ppt_j_m2 == pytest.approx(10406998.0, rel=1e-6)


def test_topo_veg_guards():
    case = {k: v for k, v in TOPO_CASE.items() if k != "northness"}
    r = eemt_topo_veg_month(**{**case, "prcp_mm": 0.0}, ndvi=0.6, canopy_height_m=10.0)
    assert r.aet_mm == 0.0 and r.f_mm == 0.0
    r = eemt_topo_veg_month(**{**case, "tmin_c": -15.0, "tmax_c": 2.0, "prcp_mm": 300.0},
                            ndvi=0.6, canopy_height_m=10.0)
    assert r.f_mm == 0.0 and r.e_ppt_j_m2 == 0.0 and r.aet_mm > 0.0


# ---------------------------------------------------------------- nodata and properties
def _random_month_inputs(rng, shape):
    return dict(
        tmin_c=rng.uniform(-25, 20, shape),
        tmax_c=rng.uniform(-15, 38, shape),
        prcp_mm=np.where(rng.random(shape) < 0.15, 0.0, rng.gamma(1.2, 60.0, shape)),
        vp_pa=rng.uniform(50, 2500, shape),
        elevation_m=rng.uniform(-50, 4200, shape),
        s_topo_wh_m2=np.where(rng.random(shape) < 0.05, 0.0, rng.uniform(0, 300000, shape)),
        s_flat_wh_m2=np.where(rng.random(shape) < 0.05, 0.0, rng.uniform(0, 300000, shape)),
        alpha=rng.uniform(0, 3, shape),
        northness=rng.uniform(-1, 1, shape),
    )


@pytest.mark.parametrize("month", [1, 2, 5, 12])
def test_properties_no_nan_outside_nodata_nonnegative(month):
    rng = np.random.default_rng(month)
    shape = (40, 50)
    inputs = _random_month_inputs(rng, shape)
    # sprinkle nodata into every input
    holes = {}
    for key in inputs:
        holes[key] = rng.random(shape) < 0.02
        inputs[key] = np.where(holes[key], np.nan, inputs[key])
    days = int(cal.daymet_days_in_month(2020)[month - 1])
    daylength = cal.monthly_mean_daylength_h(np.full(shape, 36.0), month)
    veg_inputs = {k: v for k, v in inputs.items() if k != "northness"}
    results = {
        "trad": eemt_trad_month(inputs["tmin_c"], inputs["tmax_c"], inputs["prcp_mm"], daylength, days),
        "topo": eemt_topo_month(**inputs, month=month, days_in_month=days),
        "veg": eemt_topo_veg_month(**veg_inputs, ndvi=rng.uniform(-0.2, 1.0, shape),
                                   canopy_height_m=rng.uniform(-1, 40, shape), month=month, days_in_month=days),
    }
    used = {"trad": ["tmin_c", "tmax_c", "prcp_mm"], "topo": list(inputs), "veg": list(veg_inputs)}
    for name, r in results.items():
        expect = np.logical_or.reduce([holes[k] for k in used[name]])
        for field in ("e_ppt_j_m2", "e_bio_j_m2", "pet_mm", "aet_mm", "peff_mm", "f_mm", "npp_g_m2", "t_mean_c"):
            value = getattr(r, field)
            assert value.shape == shape
            assert np.array_equal(np.isnan(value), expect), (name, field)
        ok = ~expect
        assert np.all(r.eemt_j_m2[ok] >= 0), name
        assert np.all(r.e_ppt_j_m2[ok] >= 0) and np.all(r.e_bio_j_m2[ok] >= 0)
        assert np.all(r.f_mm[ok] >= 0) and np.all(r.peff_mm[ok] >= 0)
        assert np.all(r.aet_mm[ok] <= np.maximum(inputs["prcp_mm"][ok], 0) + 1e-9)
        # E_PPT = 0 wherever T ≤ 0 °C or F ≤ 0
        frozen_or_dry = ok & ((r.t_mean_c <= 0) | (r.f_mm <= 0))
        assert np.all(r.e_ppt_j_m2[frozen_or_dry] == 0.0), name
        if r.s_i is not None:
            assert np.all(np.isfinite(r.s_i[ok]))
            assert np.all((r.s_i[ok] >= 0.1) & (r.s_i[ok] <= 10.0))


def test_broadcasting_scalar_and_arrays():
    r = eemt_topo_month(**{**TOPO_CASE, "prcp_mm": np.array([0.0, 60.0, 200.0])})
    assert r.e_ppt_j_m2.shape == (3,)
    assert r.e_ppt_j_m2[1] == pytest.approx(193401.4, rel=1e-5)
    assert r.s_i_guarded.shape == (3,)


# ---------------------------------------------------------------- annual sum
def test_annual_sum_divides_by_1e6_and_adds_components():
    # Mistake §9.24: monthly EEMT never summed. 12 months of E_PPT = 1e6 and E_BIO = 2e6 J m⁻²
    # -> E_PPT = 12 MJ, E_BIO = 24 MJ, EEMT = 36 MJ m⁻² yr⁻¹
    months = [MonthResult(*(np.array(v) for v in (1e6, 2e6, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0))) for _ in range(12)]
    annual = annual_eemt_mj(months)
    assert annual.e_ppt_mj_m2 == pytest.approx(12.0)
    assert annual.e_bio_mj_m2 == pytest.approx(24.0)
    assert annual.eemt_mj_m2 == pytest.approx(36.0)
    with pytest.raises(ValueError, match="12 months"):
        annual_eemt_mj(months[:11])


def test_annual_topo_npp_equals_annual_regression_in_leap_year():
    # Σ_m NPP_TOPO·days_m/365 over a DAYMET leap year (Σ days_m = 365) = NPP_TOPO:
    # E_BIO,year = 926.4/1000·22e6 J = 20.3808 MJ m⁻² (not 12× that, mistake §9.11)
    days = cal.daymet_days_in_month(2024)
    months = [eemt_topo_month(**{**TOPO_CASE, "month": m, "days_in_month": int(days[m - 1])}) for m in range(1, 13)]
    annual = annual_eemt_mj(months)
    assert annual.e_bio_mj_m2 == pytest.approx(20.3808, rel=1e-9)
    assert annual.eemt_mj_m2 == pytest.approx(annual.e_ppt_mj_m2 + 20.3808, rel=1e-12)


def test_default_parameters_are_the_spec_defaults():
    assert DEFAULT_PARAMETERS.c_w_j_kg_k == 4186.0
    assert DEFAULT_PARAMETERS.wind_speed_m_s == 2.0
    assert DEFAULT_PARAMETERS.hamon_mode == "monthly"
