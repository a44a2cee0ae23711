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
