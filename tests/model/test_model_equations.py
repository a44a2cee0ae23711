"""One hand-computed single-pixel case per equation (EEMT-SPEC §3–§6), plus the §9 regressions.

Every expected value is worked out from the spec's formulas with the arithmetic written in
the comments; none is produced by the code under test.
"""

import numpy as np
import pytest

from eemt_flow.model import equations as eq
from eemt_flow.model import constants as C


# ---------------------------------------------------------------- vapour pressure
def test_saturation_vapour_pressure_fao56_eq11():
    # e°(20) = 0.6108·exp(17.27·20/(20+237.3)) = 0.6108·exp(1.342402) = 0.6108·3.828228 = 2.33828 kPa
    assert eq.saturation_vapour_pressure_kpa(20.0) == pytest.approx(2.33828, rel=1e-5)
    # e°(8) = 0.6108·exp(17.27·8/245.3) = 0.6108·exp(0.563229) = 0.6108·1.756335 = 1.07277 kPa
    assert eq.saturation_vapour_pressure_kpa(8.0) == pytest.approx(1.07277, rel=1e-5)
    # e°(0) = 0.6108 kPa exactly
    assert eq.saturation_vapour_pressure_kpa(0.0) == pytest.approx(0.6108, rel=1e-12)


def test_saturation_vapour_pressure_below_zero_is_not_zero():
    # Mistake §9.16: e_s set to 0 below 0 °C.
    # e°(−5) = 0.6108·exp(17.27·(−5)/232.3) = 0.6108·exp(−0.371718) = 0.6108·0.689549 = 0.421176 kPa
    assert eq.saturation_vapour_pressure_kpa(-5.0) == pytest.approx(0.421176, rel=1e-5)


def test_mean_saturation_uses_tmax_and_tmin():
    # Mistake §9.18: e°(Tmin) used where e°(Tmax) belongs.
    # e_s = [e°(20) + e°(8)]/2 = (2.338281 + 1.072769)/2 = 1.705525 kPa
    assert eq.mean_saturation_vapour_pressure_kpa(20.0, 8.0) == pytest.approx(1.705525, rel=1e-5)


def test_vapour_pressure_kpa_and_deficit():
    # Mistake §9.17/§9.19: DAYMET vp in Pa -> kPa; VPD in kPa against Δ and γ in kPa K⁻¹.
    # e_a = 700 Pa / 1000 = 0.7 kPa; VPD = max(1.705525 − 0.7, 0) = 1.005525 kPa
    e_a = eq.actual_vapour_pressure_kpa(700.0)
    assert e_a == pytest.approx(0.7)
    assert eq.vapour_pressure_deficit_kpa(1.705525, e_a) == pytest.approx(1.005525, rel=1e-9)
    # supersaturated air: VPD floored at 0
    assert eq.vapour_pressure_deficit_kpa(0.6, 0.9) == 0.0


def test_slope_of_saturation_curve_fao56_eq13():
    # Δ(20) = 4098·2.338281/(257.3)² = 9582.28/66203.29 = 0.144740 kPa K⁻¹
    assert eq.saturation_vapour_slope_kpa_k(20.0) == pytest.approx(0.144740, rel=1e-5)


# ---------------------------------------------------------------- atmosphere
def test_atmospheric_pressure_fao56_eq7():
    # P(2500) = 101.3·((293 − 0.0065·2500)/293)^5.26 = 101.3·(276.75/293)^5.26
    #         = 101.3·0.944539^5.26 = 101.3·exp(5.26·(−0.0570580)) = 101.3·0.740726 = 75.0355 kPa
    assert eq.atmospheric_pressure_kpa(2500.0) == pytest.approx(75.0355, rel=1e-5)
    # sea level: 101.3 kPa
    assert eq.atmospheric_pressure_kpa(0.0) == pytest.approx(101.3)


def test_psychrometric_constant_fao56_eq8():
    # γ = 1013·75.0355/(0.622·2.45e6) = 76010.96/1523900 = 0.0498792 kPa K⁻¹ (≈ 0.665e-3·75.0355 = 0.049899)
    gamma = eq.psychrometric_constant_kpa_k(75.0355)
    assert gamma == pytest.approx(0.0498792, rel=1e-5)
    assert gamma == pytest.approx(0.665e-3 * 75.0355, rel=1e-3)


def test_psychrometric_constant_regression_not_cp_times_p():
    # Mistake §9.7: γ = c_p·P (= 1013·101.3 = 102617) instead of 0.0673 kPa K⁻¹.
    gamma = eq.psychrometric_constant_kpa_k(101.3)
    # 1013·101.3/(0.622·2.45e6) = 102616.9/1523900 = 0.0673383
    assert gamma == pytest.approx(0.0673383, rel=1e-5)
    assert gamma < 0.1


def test_air_density_ideal_gas():
    # ρ_a = 1000·75.0355/(287.05·(10 + 273.15)) = 75035.5/81278.21 = 0.923193 kg m⁻³
    rho = eq.air_density_kg_m3(75.0355, 10.0)
    assert rho == pytest.approx(0.923193, rel=1e-5)
    # Mistake §9.9: molar mass 0.289644 and T·273.125 gave densities far from ~1 kg m⁻³.
    assert 0.5 < rho < 1.5


def test_aerodynamic_resistance_open_water_squares_the_log():
    # Mistake §9.8: ln(z/z0)·2 instead of (ln(z/z0))².
    # ln(2/0.00137) = ln(1459.854) = 7.286092; squared = 53.08713
    # r_a = 4.72·53.08713/(1 + 0.536·2) = 250.5713/2.072 = 120.9321 s m⁻¹
    assert eq.aerodynamic_resistance_open_water_s_m(2.0) == pytest.approx(120.9321, rel=1e-5)
    # the doubled-log form would give 4.72·14.572/2.072 = 33.19 s m⁻¹
    assert eq.aerodynamic_resistance_open_water_s_m(2.0) > 100.0


def test_aerodynamic_resistance_canopy_fao56_eq4():
    # h = 10 m, z = h + 2 = 12 m, d = 0.67·10 = 6.7 m, z_om = 0.123·10 = 1.23 m, z_oh = 0.123 m, u = 2 m s⁻¹
    # ln((12 − 6.7)/1.23) = ln(4.308943) = 1.460693;  ln(5.3/0.123) = ln(43.08943) = 3.763278
    # r_a = 1.460693·3.763278/(0.41²·2) = 5.497000/0.3362 = 16.35036 s m⁻¹
    assert eq.aerodynamic_resistance_canopy_s_m(10.0, 2.0) == pytest.approx(16.35036, rel=1e-5)
    # h = 0 is clamped to CANOPY_HEIGHT_MIN: finite and positive
    assert np.isfinite(eq.aerodynamic_resistance_canopy_s_m(0.0, 2.0))


# ---------------------------------------------------------------- PET
def test_hamon_monthly():
    # PET_H = 31·29.8·14.5·e°(8)/(8 + 273.2) = 13395.1·1.0727688/281.2 = 51.1019 mm month⁻¹
    assert eq.hamon_pet_mm(8.0, 14.5, 31) == pytest.approx(51.1019, rel=1e-5)


def test_hamon_daily_sum_equals_expression_summed():
    # Mistake §9.15: a mm day⁻¹ PET treated as monthly. Two days:
    # day 1: e°(5) = 0.6108·exp(17.27·5/242.3) = 0.6108·exp(0.356376) = 0.6108·1.428145 = 0.872311 kPa
    #        29.8·14·0.872311/(5 + 273.2) = 417.2·0.872311/278.2 = 363.9281/278.2 = 1.308153 mm
    # day 2: e°(10) = 0.6108·exp(17.27·10/247.3) = 0.6108·exp(0.698342) = 0.6108·2.010417 = 1.227963 kPa
    #        29.8·15·1.227963/283.2 = 447·1.227963/283.2 = 548.8993/283.2 = 1.938204 mm
    # sum = 1.308153 + 1.938204 = 3.246357 mm
    t = np.array([5.0, 10.0])
    d = np.array([14.0, 15.0])
    assert eq.hamon_pet_daily_sum_mm(t, d) == pytest.approx(3.246357, rel=1e-6)
    # one day of the monthly expression is the daily rate, not a month
    assert eq.hamon_pet_mm(5.0, 14.0) == pytest.approx(1.308153, rel=1e-6)


def test_penman_monteith_radiation_total_plus_rate_times_time():
    # Mistake §9.20: monthly radiation total added to a per-second aerodynamic rate.
    # R = 3e8 J m⁻², Δ = 0.1, γ = 0.05 kPa K⁻¹, ρ = 1.2 kg m⁻³, VPD = 1 kPa, r_a = 100 s m⁻¹, t = 30·86400 s
    # radiation term: 0.1·3e8 = 3.0e7; aerodynamic: 1.2·1013·1.0/100·2592000 = 12.156·2592000 = 3.1508352e7
    # denominator: 2.45e6·(0.1 + 0.05) = 367500
    # E = (3.0e7 + 3.1508352e7)/367500 = 167.3697 mm
    e = eq.penman_monteith_mm(3e8, 0.1, 0.05, 1.2, 1.0, 100.0, 30 * 86400.0)
    assert e == pytest.approx(167.3697, rel=1e-6)
    # with r_s = 50 s m⁻¹: denominator 2.45e6·(0.1 + 0.05·1.5) = 428750 -> 61508352/428750 = 143.4597 mm
    e_rs = eq.penman_monteith_mm(3e8, 0.1, 0.05, 1.2, 1.0, 100.0, 30 * 86400.0, r_s_s_m=50.0)
    assert e_rs == pytest.approx(143.4597, rel=1e-6)


# ---------------------------------------------------------------- Budyko
def test_budyko_fu_hand_values():
    # P = PET = 100, w = 2.63: AET = 100·[1 + 1 − 2^(1/2.63)] = 100·(2 − 1.698452) = 69.8452 mm
    assert eq.budyko_fu_aet_mm(100.0, 100.0) == pytest.approx(69.8452, rel=1e-5)
    # P = 50, PET = 100: φ = 2; 2^2.63 = 6.190260; (7.190260)^(1/2.63) = 2.117183
    # AET = 50·(1 + 2 − 2.117183) = 50·0.882817 = 44.1408 mm
    assert eq.budyko_fu_aet_mm(50.0, 100.0) == pytest.approx(44.1408, rel=1e-5)


def test_budyko_guards_p_zero_pet_zero_and_bounds():
    # Mistake §9.21: division by zero at P = 0.
    with np.errstate(all="raise"):
        assert eq.budyko_fu_aet_mm(0.0, 120.0) == 0.0
        assert eq.budyko_fu_aet_mm(80.0, 0.0) == 0.0
        assert eq.budyko_fu_aet_mm(0.0, 0.0) == 0.0
        assert eq.budyko_fu_aet_mm(-1.0, 10.0) == 0.0
    # extreme aridity and humidity stay finite and inside [0, min(P, PET)]
    p = np.array([1e-12, 1e-3, 1.0, 100.0, 1e6, 300.0])
    pet = np.array([500.0, 1e6, 1e-9, 1e-12, 5.0, 300.0])
    aet = eq.budyko_fu_aet_mm(p, pet)
    assert np.all(np.isfinite(aet))
    assert np.all(aet >= 0) and np.all(aet <= np.minimum(p, pet) * (1 + 1e-12))
    # NaN in, NaN out
    assert np.isnan(eq.budyko_fu_aet_mm(np.nan, 10.0))


# ---------------------------------------------------------------- water balance and MCWI
def test_effective_precipitation_clamped():
    # Mistake §9.14: negative Peff unclamped. max(40 − 51.1, 0) = 0; max(150 − 51.1, 0) = 98.9
    assert eq.effective_precipitation_mm(40.0, 51.1) == 0.0
    assert eq.effective_precipitation_mm(150.0, 51.1) == pytest.approx(98.9)


def test_wetness_index_and_flat_guard():
    # λ = ln(100 m / tan 45°) = ln(100) = 4.605170
    assert eq.wetness_index(100.0, np.pi / 4) == pytest.approx(4.605170, rel=1e-6)
    # flat cell: tan 0 = 0 -> TAN_BETA_MIN = 0.001; λ = ln(10/0.001) = ln(10000) = 9.210340
    assert eq.wetness_index(10.0, 0.0) == pytest.approx(9.210340, rel=1e-6)


def test_mcwi_alpha_uses_domain_mean():
    # Mistake §9.3: a per-cell median made α ≡ 1.
    # λ = [2, 4, 6, NaN]; mean over valid = 4; α = [0.5, 1, 1.5, NaN]; Σα = 3 = N valid
    alpha = eq.mcwi_alpha(np.array([2.0, 4.0, 6.0, np.nan]))
    assert np.allclose(alpha[:3], [0.5, 1.0, 1.5])
    assert np.isnan(alpha[3])
    assert np.nansum(alpha) == pytest.approx(3.0)
    # a negative λ is clamped to α = 0: λ = [−1, 5, 8], mean = 4 -> α = [0, 1.25, 2]
    assert np.allclose(eq.mcwi_alpha(np.array([-1.0, 5.0, 8.0])), [0.0, 1.25, 2.0])


def test_mcwi_alpha_nonpositive_mean_is_fatal():
    with pytest.raises(ValueError, match="mean of the wetness index"):
        eq.mcwi_alpha(np.array([-1.0, 0.5, 0.2]))
    with pytest.raises(ValueError, match="no valid cell"):
        eq.mcwi_alpha(np.array([np.nan, np.nan]))


def test_redistributed_water_clamped():
    # Mistake §9.22: F not clamped at 0. F = max(1.3·4.0, 0) = 5.2; F = max(−0.2·4, 0) = 0
    assert eq.redistributed_water_mm(1.3, 4.0) == pytest.approx(5.2)
    assert eq.redistributed_water_mm(-0.2, 4.0) == 0.0


# ---------------------------------------------------------------- topoclimate
def test_lapse_rate_correction():
    # T = 10 − 6.49·(2800 − 2300)/1000 = 10 − 3.245 = 6.755 °C
    assert eq.lapse_corrected_temperature_c(10.0, 2800.0, 2300.0) == pytest.approx(6.755)
    # a monthly table value may replace the default: 10 − 5.0·0.5 = 7.5
    assert eq.lapse_corrected_temperature_c(10.0, 2800.0, 2300.0, 5.0) == pytest.approx(7.5)


def test_radiation_ratio_guard_and_clamp():
    # Mistake §9.23: no guard for S_flat = 0 or tiny S_i.
    s_topo = np.array([150000.0, 100.0, 5.0e6, 300.0, 0.0, np.nan])
    s_flat = np.array([120000.0, 0.0, 1000.0, 10000.0, -1.0, 200.0])
    s_i, flag = eq.radiation_ratio(s_topo, s_flat)
    # 150000/120000 = 1.25; S_flat = 0 -> 1 + flag; 5000 -> clamp 10; 0.03 -> clamp 0.1; S_flat < 0 -> 1; NaN -> 1
    assert np.allclose(s_i, [1.25, 1.0, 10.0, 0.1, 1.0, 1.0])
    assert list(flag) == [False, True, False, False, True, True]
    assert np.all(np.isfinite(1.0 / s_i))


def test_moore_tmax_topo_and_veg():
    # TOPO: 14 + 1.0·(1.25 − 1/1.25) = 14 + 0.45 = 14.45 °C
    assert eq.moore_tmax_c(14.0, 1.25) == pytest.approx(14.45)
    # VEG, NDVI 0.6: LAI = 18.99·0.216 − 15.24·0.36 + 6.124·0.6 − 0.352 = 4.10184 − 5.4864 + 3.6744 − 0.352 = 1.93784
    # T = 20 + 1.0·(2 − 0.5)·(1 − 1.93784/10) = 20 + 1.5·0.806216 = 21.209324 °C
    lai = eq.lai_from_ndvi(0.6)
    assert lai == pytest.approx(1.93784, rel=1e-9)
    assert eq.moore_tmax_c(20.0, 2.0, lai) == pytest.approx(21.209324, rel=1e-9)
    # dense canopy LAI = LAI_MAX removes the slope effect
    assert eq.moore_tmax_c(20.0, 2.0, C.LAI_MAX) == pytest.approx(20.0)


def test_lai_clamped():
    # NDVI 0: −0.352 -> 0; NDVI 1: 18.99 − 15.24 + 6.124 − 0.352 = 9.522 (< 10); NDVI 1.2 -> >10 -> 10
    assert eq.lai_from_ndvi(0.0) == 0.0
    assert eq.lai_from_ndvi(1.0) == pytest.approx(9.522)
    assert eq.lai_from_ndvi(1.2) == 10.0


def test_monthly_irradiation_leap_rule():
    # May: solar sum 150000 Wh m⁻² over 31 solar days -> 4838.71 Wh m⁻² day⁻¹; × 31 DAYMET days × 3600 = 5.4e8 J m⁻²
    assert eq.monthly_irradiation_j_m2(150000.0, 5, 31) == pytest.approx(5.4e8)
    # Leap-year February: solar Feb has 28 days, DAYMET Feb 29: 28000/28·29·3600 = 1.044e8 J m⁻²
    assert eq.monthly_irradiation_j_m2(28000.0, 2, 29) == pytest.approx(1.044e8)
    # Leap-year December: 31 solar days, 30 DAYMET days: 31000/31·30·3600 = 1.08e8
    assert eq.monthly_irradiation_j_m2(31000.0, 12, 30) == pytest.approx(1.08e8)


# ---------------------------------------------------------------- NPP
def test_lieth_uses_one_plus_exp_days_fraction_and_p_gt_pet_gate():
    # Mistake §9.13: exponent misplaced, no days/365, gate T > 0 instead of P > PET.
    # T = 8: exp(1.315 − 0.952) = exp(0.363) = 1.437636; 3000/2.437636 = 1230.7006 g m⁻² yr⁻¹
    # × 31/365 = 104.52526 g m⁻² month⁻¹
    assert eq.lieth_npp_month_g_m2(8.0, 150.0, 51.1, 31) == pytest.approx(104.52526, rel=1e-6)
    # gate: P ≤ PET -> 0 even when warm
    assert eq.lieth_npp_month_g_m2(25.0, 50.0, 50.0, 31) == 0.0
    # T = −10 with P > PET is NOT gated by temperature (as published):
    # exp(1.315 + 1.19) = exp(2.505) = 12.243559; 3000/13.243559 = 226.5252; × 30/365 = 18.61851
    assert eq.lieth_npp_month_g_m2(-10.0, 40.0, 1.0, 30) == pytest.approx(18.61851, rel=1e-6)
    # the optional cold gate (EEMT-SPEC §10.9) switches it off
    assert eq.lieth_npp_month_g_m2(-10.0, 40.0, 1.0, 30, require_t_above_0=True) == 0.0


def test_npp_topo_eq11_and_floor():
    # 0.39·2500 + 346·0.4 − 187 = 975 + 138.4 − 187 = 926.4 g m⁻² yr⁻¹
    assert eq.npp_topo_annual_g_m2(2500.0, 0.4) == pytest.approx(926.4)
    # Mistake §9.12: floor missing. 0.39·300 − 346·0.5 − 187 = 117 − 173 − 187 = −243 -> 100
    assert eq.npp_topo_annual_g_m2(300.0, -0.5) == 100.0


def test_npp_topo_split_by_days():
    # Mistake §9.11: annual NPP added in full every month. 926.4·31/365 = 78.68055 g m⁻²
    assert eq.annual_to_month(926.4, 31) == pytest.approx(78.68055, rel=1e-6)
    days = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30])  # DAYMET leap year
    assert sum(eq.annual_to_month(926.4, d) for d in days) == pytest.approx(926.4)


def test_npp_veg_eq12():
    # h = 10: 196 + 360 − (6.1 − 12.0933)² = 556 − 35.919645 = 520.080355 g m⁻² yr⁻¹
    assert eq.npp_veg_annual_g_m2(10.0) == pytest.approx(520.080355, rel=1e-9)
    # h < 0 clamped to 0: 196 − 12.0933² = 196 − 146.24790 = 49.75210
    assert eq.npp_veg_annual_g_m2(-3.0) == pytest.approx(49.75210, rel=1e-6)


# ---------------------------------------------------------------- energy
def test_delta_t_with_t_ref():
    # ΔT = max(T + 273.15 − 273.15, 0) = max(T, 0)
    assert eq.delta_t_k(12.5) == pytest.approx(12.5)
    assert eq.delta_t_k(-3.0) == 0.0
    # T_ref = 273 K (Biogeochem 2011): ΔT(12.5) = 12.5 + 0.15 = 12.65 K
    assert eq.delta_t_k(12.5, 273.0) == pytest.approx(12.65)


def test_e_ppt_and_e_bio_units():
    # E_PPT = 98.898 kg m⁻²·4186 J kg⁻¹ K⁻¹·8 K = 413987.028·8 = 3311896.224 J m⁻²
    assert eq.e_ppt_j_m2(98.898, 8.0) == pytest.approx(3311896.224, rel=1e-12)
    assert eq.e_ppt_j_m2(50.0, -2.0) == 0.0  # T ≤ 0 °C
    # Mistake §9.4: g × J kg⁻¹. E_BIO = 104.525 g/1000·22e6 J kg⁻¹ = 2299550 J m⁻² (not 2.3e9)
    assert eq.e_bio_j_m2(104.525) == pytest.approx(2299550.0, rel=1e-9)


def test_thornthwaite_one_month_by_hand():
    # a year of 10 °C every month: i = (10/5)^1.514 = e^(1.514 ln 2) = e^1.049425 = 2.856008,
    # I = 12 * 2.856008 = 34.27210
    t = np.full(12, 10.0)
    heat = eq.thornthwaite_heat_index(t)
    assert heat == pytest.approx(12 * 2.0 ** 1.514, rel=1e-12)
    assert heat == pytest.approx(34.27210, abs=1e-4)
    # a = 6.75e-7 I^3 - 7.71e-5 I^2 + 1.792e-2 I + 0.49239, I^2 = 1174.577, I^3 = 40255.35
    #   = 0.0271724 - 0.0905599 + 0.6141560 + 0.49239 = 1.0431585
    a = eq.thornthwaite_exponent(heat)
    assert a == pytest.approx(1.0431585, abs=2e-6)
    # July-like month, L = 14 h, N = 31: 10 T / I = 2.917824, ln = 1.070838,
    #   ^a = e^(1.0431584 * 1.070838) = e^1.117054 = 2.718282 * 1.124180 = 3.055839
    #   PET = 16 * (14/12) * (31/30) * 3.055839 = 19.288889 * 3.055839 = 58.9437 mm
    assert eq.thornthwaite_pet_mm(10.0, 14.0, 31, heat) == pytest.approx(58.9437, abs=2e-4)
    # frozen months and a year without a warm month give no PET
    assert eq.thornthwaite_pet_mm(-2.0, 10.0, 31, heat) == 0.0
    assert eq.thornthwaite_heat_index(np.full(12, -5.0)) == 0.0
    assert eq.thornthwaite_pet_mm(0.0, 10.0, 31, 0.0) == 0.0


def test_thornthwaite_against_a_published_table():
    """Aberdeen (57.15 N) 2014, the worked example of the PyETo documentation (an independent implementation).

    Inputs as published there: monthly mean temperature and mean daylight hours; outputs
    their PET in mm per month, to the 4 decimals printed.
    """
    t = np.array([3.1, 3.5, 5.0, 6.7, 9.3, 12.1, 14.3, 14.1, 11.8, 8.9, 5.5, 3.8])
    daylight_h = np.array([7.182842574993897, 9.13512841264262, 11.523002734356053, 14.035348256722466,
                           16.277003584884323, 17.505213218539176, 16.891449464611544, 14.861767363416547,
                           12.394150156712453, 9.88498386070613, 7.658250142104072, 6.489516585536734])
    published_mm = [11.0459, 14.2259, 27.8029, 43.1789, 70.4769, 93.9942, 109.6988, 95.2449, 64.9945, 41.0637,
                    19.5621, 12.0902]
    days_2014 = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    heat = eq.thornthwaite_heat_index(t)
    got = eq.thornthwaite_pet_mm(t, daylight_h, days_2014, heat)
    np.testing.assert_allclose(got, published_mm, atol=1e-4)
    # per cell: months along axis 0 of a grid
    grid = np.stack([np.full((2, 3), v) for v in t])
    assert np.allclose(eq.thornthwaite_heat_index(grid), heat)
