"""Calendars, daylength and the constants table (EEMT-SPEC §1.3, §2, §3)."""

import dataclasses

import numpy as np
import pytest

from eemt_flow.model import calendar as cal
from eemt_flow.model import constants as C
from eemt_flow.model.eemt import ModelParameters


# ---------------------------------------------------------------- solar calendar
def test_every_doy_maps_to_exactly_one_month():
    doys = np.arange(1, 366)
    months = cal.month_of_doy(doys)
    assert months.min() == 1 and months.max() == 12
    # each DOY is in exactly one month's DOY list, and the lists tile 1..365 without gaps
    membership = np.zeros((12, 365), dtype=int)
    for m in range(1, 13):
        membership[m - 1, cal.solar_month_doys(m) - 1] = 1
    assert np.all(membership.sum(axis=0) == 1)
    assert np.array_equal(np.argmax(membership, axis=0) + 1, months)
    assert cal.SOLAR_DAYS_IN_MONTH.sum() == 365


def test_day_151_belongs_to_may():
    # Mistake §9.2: May summed as 121-150 and June from 152, so DOY 151 was never counted.
    assert cal.month_of_doy(151) == 5
    assert cal.month_of_doy(121) == 5
    assert cal.month_of_doy(152) == 6
    may = cal.solar_month_doys(5)
    assert may[0] == 121 and may[-1] == 151 and may.size == 31
    assert cal.solar_days_in_month(5) == 31


def test_solar_month_table_matches_spec():
    assert list(cal.SOLAR_MONTH_FIRST_DOY) == [1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335]
    assert list(cal.SOLAR_MONTH_LAST_DOY) == [31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]


@pytest.mark.parametrize("bad", [0, 366, -1])
def test_doy_out_of_range_rejected(bad):
    with pytest.raises(ValueError):
        cal.month_of_doy(bad)


# ---------------------------------------------------------------- DAYMET calendar
@pytest.mark.parametrize("year", [1980, 1999, 2000, 2019, 2020, 2023, 2024])
def test_daymet_days_sum_to_365(year):
    days = cal.daymet_days_in_month(year)
    assert days.shape == (12,)
    assert days.sum() == 365


def test_daymet_leap_year_drops_dec_31():
    # 2020 is a leap year: Feb 29 kept, Dec 31 dropped -> Feb 29 days, Dec 30 days.
    days = cal.daymet_days_in_month(2020)
    assert list(days) == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30]
    dates = cal.daymet_dates(2020)
    assert dates[0] == np.datetime64("2020-01-01")
    assert np.datetime64("2020-02-29") in dates
    assert dates[-1] == np.datetime64("2020-12-30")
    # 1900 is not a leap year (century rule), 2000 is.
    assert cal.daymet_days_in_month(1900)[1] == 28
    assert cal.daymet_days_in_month(2000)[1] == 29


def test_daymet_common_year_matches_solar_calendar():
    assert np.array_equal(cal.daymet_days_in_month(2019), cal.SOLAR_DAYS_IN_MONTH)


def test_days_from_decoded_dates_not_index_ranges():
    # A time coordinate that starts mid-year: months counted from the dates themselves.
    dates = np.arange(np.datetime64("2021-05-30"), np.datetime64("2021-06-03"))
    counts = cal.days_in_month_from_dates(dates)
    assert counts[4] == 2 and counts[5] == 2 and counts.sum() == 4
    assert list(cal.month_index_from_dates(dates)) == [5, 5, 6, 6]


# ---------------------------------------------------------------- daylength (FAO-56)
def test_daylength_hand_computed_45n_doy172():
    # δ = 0.409·sin(2π·172/365 − 1.39) = 0.409·sin(1.570843) = 0.409·1.0000 = 0.40900 rad   (FAO-56 Eq. 24)
    # ω_s = arccos(−tan 45°·tan 0.409) = arccos(−0.433443) = 2.019106 rad                  (Eq. 25)
    # D = 24·2.019106/π = 15.4248 h                                                          (Eq. 34)
    assert cal.solar_declination_rad(172) == pytest.approx(0.40900, abs=1e-5)
    assert cal.daylength_h(45.0, 172) == pytest.approx(15.4248, abs=1e-4)


def test_daylength_equator_and_polar_clamp():
    # φ = 0: tan φ = 0 -> ω_s = arccos(0) = π/2 -> D = 12 h on every day
    assert np.allclose(cal.daylength_h(0.0, np.arange(1, 366)), 12.0)
    # polar night and polar day: the arccos argument is clamped to [−1, 1]
    assert cal.daylength_h(80.0, 355) == pytest.approx(0.0, abs=1e-12)
    assert cal.daylength_h(80.0, 172) == pytest.approx(24.0, abs=1e-12)
    assert cal.daylength_h(-80.0, 172) == pytest.approx(0.0, abs=1e-12)


def test_monthly_mean_daylength_is_mean_over_solar_month():
    lat = np.array([[0.0, 35.9], [45.0, -30.0]])
    got = cal.monthly_mean_daylength_h(lat, 5)
    # independent evaluation of FAO-56 Eqs. 24, 25, 34 over DOY 121..151
    j = np.arange(121, 152)[:, None, None]
    dec = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(np.deg2rad(lat)) * np.tan(dec), -1, 1))
    assert got.shape == lat.shape
    assert np.allclose(got, (24 / np.pi * ws).mean(axis=0), rtol=1e-12)
    assert got[0, 0] == pytest.approx(12.0)


# ---------------------------------------------------------------- constants
def test_constants_values_of_spec_table():
    assert C.C_W == 4186.0
    assert C.T_REF == 273.15
    assert C.H_BIO == 22.0e6
    assert (C.LIETH_MAX, C.LIETH_A, C.LIETH_B) == (3000.0, 1.315, 0.119)
    assert C.LAPSE_RATE == 6.49
    assert (C.MOORE_C, C.LAI_MAX, C.S_MIN, C.S_MAX) == (1.0, 10.0, 0.1, 10.0)
    assert C.BUDYKO_W == 2.63
    assert (C.NPP_TOPO_ELEV_COEF, C.NPP_TOPO_NORTHNESS_COEF, C.NPP_TOPO_INTERCEPT, C.NPP_TOPO_FLOOR) == (
        0.39, 346.0, -187.0, 100.0)
    assert (C.CP_AIR, C.LAMBDA_V, C.EPSILON, C.R_D) == (1013.0, 2.45e6, 0.622, 287.05)
    assert (C.Z_MEAS, C.Z0_WATER, C.WIND_SPEED) == (2.0, 0.00137, 2.0)
    assert (C.HAMON_K, C.TAN_BETA_MIN, C.DAYS_PER_YEAR) == (29.8, 0.001, 365)


def test_defaults_table_feeds_model_parameters():
    fields = {f.name: f.default for f in dataclasses.fields(ModelParameters)}
    assert fields == dict(C.DEFAULTS)
    with pytest.raises(TypeError):
        C.DEFAULTS["c_w_j_kg_k"] = 1.0  # read-only
    p = ModelParameters.from_mapping({"c_w_j_kg_k": 4180.0, "wind_speed_m_s": 5.0})
    assert p.c_w_j_kg_k == 4180.0 and p.budyko_w == C.BUDYKO_W
    with pytest.raises(ValueError, match="unknown model parameter"):
        ModelParameters.from_mapping({"cw": 1.0})
    with pytest.raises(ValueError):
        ModelParameters(hamon_mode="weekly")
