"""Real-sky building blocks (eemt_flow.solar.realsky) against hand arithmetic and FAO-56's worked example."""

from __future__ import annotations

import numpy as np
import pytest

from eemt_flow.solar import realsky


def test_extraterrestrial_fao56_example_8():
    # FAO-56 Example 8: 20° S on 3 September (J = 246): d_r = 0.985, δ = 0.120 rad, ω_s = 1.527 rad,
    # Ra = 24·60/π · 0.0820 · 0.985 · [1.527·sin(−0.349)·sin(0.120) + cos(−0.349)·cos(0.120)·sin(1.527)]
    #    = 32.2 MJ m-2 day-1 = 32.2e6 / 3600 = 8944 Wh m-2 day-1 (the example rounds to 0.1 MJ)
    assert realsky.extraterrestrial_horizontal_wh_m2(-20.0, 246) == pytest.approx(32.2e6 / 3600, rel=2e-3)
    # polar night: 80° N on 21 December, nothing
    assert realsky.extraterrestrial_horizontal_wh_m2(80.0, 355) == pytest.approx(0.0, abs=1e-9)


def test_daymet_daily_global():
    # srad is the daylight mean: 250 W m-2 over 12 h (43 200 s) = 250 · 43 200 / 3600 = 3000 Wh m-2
    assert realsky.daymet_daily_global_wh_m2(250.0, 43_200.0) == pytest.approx(3000.0)


def test_clear_sky_index_and_guard():
    kc = realsky.clear_sky_index(np.array([3000.0, 0.0, 10.0]), np.array([6000.0, 0.0, np.nan]))
    np.testing.assert_allclose(kc, [0.5, 1.0, 1.0])  # 3000/6000; polar night and nodata: 1


def test_erbs_monthly_by_hand():
    # K_T = 0.5, ω_s ≤ 81.4°: 1.391 − 3.560·0.5 + 4.189·0.25 − 2.137·0.125 = 1.391 − 1.78 + 1.04725 − 0.267125
    #                        = 0.391125
    # K_T = 0.5, ω_s > 81.4°: 1.311 − 1.511 + 0.85675 − 0.227625 = 0.429125
    # K_T = 0.9 → 0.8 (fitted range): 1.391 − 2.848 + 2.68096 − 1.094144 = 0.129816
    # K_T = 0.1 → 0.3, long days: 1.311 − 0.9066 + 0.30843 − 0.049167 = 0.663663
    got = realsky.erbs_monthly_diffuse_fraction(np.array([0.5, 0.5, 0.9, 0.1]), np.array([80.0, 90.0, 60.0, 100.0]))
    np.testing.assert_allclose(got, [0.391125, 0.429125, 0.129816, 0.663663], rtol=1e-9)


def test_coefficients_and_application_as_r_sun():
    # G = 3000 with 40 % diffuse; clear-sky horizontal beam 4500, diffuse 1500 (Wh m-2 day-1)
    # coeff_bh = 0.6·3000/4500 = 0.4; coeff_dh = 0.4·3000/1500 = 0.8
    cb, cd = realsky.real_sky_coefficients(3000.0, 0.4, 4500.0, 1500.0)
    assert (cb, cd) == (pytest.approx(0.4), pytest.approx(0.8))
    # The horizontal gets back G: 0.4·4500 + 0.8·1500 = 1800 + 1200 = 3000 (no reflected part on the flat)
    assert realsky.real_sky_global(4500.0, 1500.0, 0.0, cb, cd, 4500.0, 1500.0) == pytest.approx(3000.0)
    # A sunny slope: beam 5000, diffuse 1200, reflected 100: 0.4·5000 + 0.8·1200 + 100·3000/6000 = 3010
    assert realsky.real_sky_global(5000.0, 1200.0, 100.0, cb, cd, 4500.0, 1500.0) == pytest.approx(3010.0)
    # No clear-sky beam (polar night): coefficient 0, not a division by zero
    cb0, cd0 = realsky.real_sky_coefficients(0.0, 1.0, 0.0, 0.0)
    assert (float(cb0), float(cd0)) == (0.0, 0.0)


def test_monthly_real_sky_by_hand():
    # A flat cell gets back DAYMET's G; a slope gets r.sun's scaling of its own parts.
    # July (solar days 182-212) at 36 N; 2 computed days; clear-sky sums: flat 16 000 (beam 12 000),
    # so a mean day of 8000 = beam 6000 + diffuse 2000; G = 5000 Wh m-2 day-1.
    lat = 36.0
    doys = np.arange(182, 213)
    phi = np.radians(lat)
    delta = 0.409 * np.sin(2 * np.pi * doys / 365 - 1.39)
    omega = np.arccos(-np.tan(phi) * np.tan(delta))
    h0 = np.mean(24 * 60 / np.pi * 0.0820 * (1 + 0.033 * np.cos(2 * np.pi * doys / 365))
                 * (omega * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(omega))) * 1e6 / 3600
    kt = 5000 / h0  # ≈ 0.45; summer: ω_s ≈ 105° > 81.4°
    assert np.degrees(omega).mean() > 81.4
    fd = 1.311 - 3.022 * kt + 3.427 * kt ** 2 - 1.821 * kt ** 3
    cb, cd = (1 - fd) * 5000 / 6000, fd * 5000 / 2000
    flat, kc = realsky.monthly_real_sky_wh_m2(16_000, 16_000, 12_000, 0.0, 12_000, 2, 5000.0, lat, 7)
    assert flat == pytest.approx(5000.0) and kc == pytest.approx(5000 / 8000)
    # a slope: mean day global 9000 = beam 7000 + reflected 200 + diffuse 1800
    slope, _ = realsky.monthly_real_sky_wh_m2(18_000, 16_000, 14_000, 400.0, 12_000, 2, 5000.0, lat, 7)
    assert slope == pytest.approx(cb * 7000 + cd * 1800 + 200 * 5000 / 8000, rel=1e-9)
