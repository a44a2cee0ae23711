"""Named constants of the EEMT model, each defined once with its unit and source.

Every value of EEMT-SPEC §1.3 appears here exactly once. Those the specification marks
*configurable* are also collected in :data:`DEFAULTS`, the single table from which run
configurations take their default values and which is written into output metadata.
Constants marked *fixed* (published regression coefficients, the DAYMET year length)
are deliberately absent from :data:`DEFAULTS`.

Citations follow EEMT-SPEC: **SSSAJ 2005** = Rasmussen et al., Soil Sci. Soc. Am. J.
69:1266–1274; **Biogeochem 2011** = Rasmussen et al., Biogeochemistry 102:15–29;
**HESS 2012** = Rasmussen, Hydrol. Earth Syst. Sci. 16:725–739; **VZJ 2015** =
Rasmussen et al., Vadose Zone J., doi:10.2136/vzj2014.07.0102; **FAO-56** = Allen et al.
1998, FAO Irrigation and Drainage Paper 56.
"""

from __future__ import annotations

from types import MappingProxyType

# ---------------------------------------------------------------------------
# Exact unit conversions (EEMT-SPEC §1.2)
# ---------------------------------------------------------------------------
KELVIN_OFFSET_K = 273.15  # °C -> K [K]; exact
SECONDS_PER_HOUR = 3600.0  # Wh -> J, s -> h [s h⁻¹]; exact
SECONDS_PER_DAY = 86_400.0  # [s day⁻¹]; exact
J_PER_MJ = 1.0e6  # J -> MJ [J MJ⁻¹]; exact
G_PER_KG = 1000.0  # NPP g -> kg [g kg⁻¹]; exact
PA_PER_KPA = 1000.0  # DAYMET vp Pa -> kPa [Pa kPa⁻¹]; exact

# ---------------------------------------------------------------------------
# Energy terms (EEMT-SPEC §1.1, §1.3, §10.4) — configurable
# ---------------------------------------------------------------------------
C_W = 4186.0  # specific heat of water [J kg⁻¹ K⁻¹]; SSSAJ 2005 Eq. 2 (4.18 J g⁻¹ K⁻¹), Zapata-Rios 2016 p. 1106 (4187)
T_REF = 273.15  # reference temperature of E_PPT [K]; HESS 2012 p. 728, VZJ 2015 p. 3
H_BIO = 22.0e6  # specific biomass enthalpy [J kg⁻¹]; HESS 2012, VZJ 2015, Biogeochem 2011 p. 20

# ---------------------------------------------------------------------------
# Lieth (1975) temperature sigmoid for NPP (SSSAJ 2005 Eq. 3) — fixed
# ---------------------------------------------------------------------------
LIETH_MAX = 3000.0  # asymptotic NPP [g m⁻² yr⁻¹]; SSSAJ 2005 Eq. 3
LIETH_A = 1.315  # intercept of the exponent [-]; SSSAJ 2005 Eq. 3
LIETH_B = 0.119  # temperature coefficient [°C⁻¹]; SSSAJ 2005 Eq. 3

# ---------------------------------------------------------------------------
# Topoclimate (EEMT-SPEC §3, §5, §6) — configurable
# ---------------------------------------------------------------------------
LAPSE_RATE = 6.49  # air-temperature lapse rate for Tmin and Tmax [°C km⁻¹]; VZJ 2015 Eq. 6, EEMT-SPEC §3
MOORE_C = 1.0  # Moore et al. (1993) radiation-temperature coefficient [°C]; VZJ 2015 p. 7
LAI_MAX = 10.0  # maximum leaf area index [m² m⁻²]; VZJ 2015 p. 7
S_MIN = 0.1  # lower clamp of the radiation ratio S_i [-]; EEMT-SPEC §3
S_MAX = 10.0  # upper clamp of the radiation ratio S_i [-]; EEMT-SPEC §3

# ---------------------------------------------------------------------------
# Water balance (EEMT-SPEC §4, §5) — configurable
# ---------------------------------------------------------------------------
BUDYKO_W = 2.63  # Fu/Zhang shape parameter w [-]; VZJ 2015 p. 7 (Zhang et al. 2004)
SMALL_P_MM = 1.0  # a month with less precipitation is flagged in QA (Budyko on PET/P >> 1) [mm month⁻¹]; EEMT-SPEC §10.6
HAMON_K = 29.8  # Hamon coefficient, PET in mm day⁻¹ with D in h and e° in kPa [mm day⁻¹ K h⁻¹ kPa⁻¹]; EEMT-SPEC §10.1
HAMON_T_OFFSET_K = 273.2  # temperature offset in the Hamon denominator [K]; EEMT-SPEC §4 step 1 (fixed form)
# Thornthwaite (1948) PET, the form of Rasmussen et al. 2005/2012 (EEMT-SPEC §10.1):
# PET = THORNTHWAITE_MM · (L/12) · (N/30) · (10 T / I)^a, I = Σ (T/5)^1.514, a = cubic in I
THORNTHWAITE_MM = 16.0  # PET of a 30-day month of 12-hour days at 10 T / I = 1 [mm month⁻¹]; Thornthwaite 1948 Eq. 9
THORNTHWAITE_HEAT_EXPONENT = 1.514  # exponent of the monthly heat index i = (T/5)^1.514 [-]; ibid.
THORNTHWAITE_A_COEFFS = (6.75e-7, -7.71e-5, 1.792e-2, 0.49239)  # a = c3 I³ + c2 I² + c1 I + c0 [-]; ibid.
TAN_BETA_MIN = 0.001  # flat-cell guard on tan(slope) in the wetness index [-]; EEMT-SPEC §5

# ---------------------------------------------------------------------------
# NPP regressions (VZJ 2015 Eqs. 11–12, p. 8–9) — fixed
# ---------------------------------------------------------------------------
NPP_TOPO_ELEV_COEF = 0.39  # [g m⁻² yr⁻¹ m⁻¹]; VZJ 2015 Eq. 11
NPP_TOPO_NORTHNESS_COEF = 346.0  # [g m⁻² yr⁻¹]; VZJ 2015 Eq. 11
NPP_TOPO_INTERCEPT = -187.0  # [g m⁻² yr⁻¹]; VZJ 2015 Eq. 11
NPP_TOPO_FLOOR = 100.0  # minimum NPP_TOPO [g m⁻² yr⁻¹]; VZJ 2015 Eq. 11
#: Accepted values of a user NPP raster [g m⁻² yr⁻¹]: 0 up to 5000, above the most productive
#: tropical forests (~3500 g m⁻² yr⁻¹ dry matter; Lieth's asymptote is 3000).
NPP_RASTER_RANGE_G_M2_YR = (0.0, 5000.0)
NPP_VEG_INTERCEPT = 196.0  # [g m⁻² yr⁻¹]; VZJ 2015 Eq. 12
NPP_VEG_H_COEF = 36.0  # [g m⁻² yr⁻¹ m⁻¹]; VZJ 2015 Eq. 12
NPP_VEG_QUAD_COEF = 0.61  # [(g m⁻² yr⁻¹)^½ m⁻¹]; VZJ 2015 Eq. 12
NPP_VEG_QUAD_OFFSET = 12.0933  # [(g m⁻² yr⁻¹)^½]; VZJ 2015 Eq. 12

# LAI from NDVI (Qi et al. 2000; VZJ 2015 p. 6 with the dropped x restored) — fixed
LAI_QI_COEFS = (18.99, -15.24, 6.124, -0.352)  # coefficients of x³, x², x, 1 [m² m⁻²]

# ---------------------------------------------------------------------------
# Atmosphere and Penman–Monteith (FAO-56; Thom & Oliver 1977) — configurable
# ---------------------------------------------------------------------------
CP_AIR = 1013.0  # specific heat of moist air at constant pressure [J kg⁻¹ K⁻¹]; FAO-56 p. 26 (1.013e-3 MJ kg⁻¹ °C⁻¹)
LAMBDA_V = 2.45e6  # latent heat of vaporisation [J kg⁻¹]; FAO-56 p. 31
EPSILON = 0.622  # ratio of molecular weights water vapour / dry air [-]; FAO-56 Eq. 8
R_D = 287.05  # specific gas constant of dry air [J kg⁻¹ K⁻¹]
Z_MEAS = 2.0  # wind and humidity measurement height [m]; Thom & Oliver 1977, FAO-56
Z0_WATER = 0.00137  # roughness length of open water [m]; Thom & Oliver 1977
WIND_SPEED = 2.0  # wind speed at Z_MEAS when no wind data [m s⁻¹]; FAO-56 p. 63, EEMT-SPEC §10.2
VON_KARMAN = 0.41  # von Kármán constant [-]; FAO-56 Eq. 4
SURFACE_RESISTANCE = 50.0  # canopy surface resistance r_s for TOPO-VEG, provisional [s m⁻¹]; EEMT-SPEC §6
CANOPY_HEIGHT_MIN = 0.1  # lower clamp of canopy height in the canopy r_a [m]; EEMT-SPEC §6
PM_ALBEDO = 0.0  # PM available energy = (1 − PM_ALBEDO)·S_topo; 0 = incoming global, EEMT-SPEC §10.3

# FAO-56 fixed empirical coefficients
ESAT_A_KPA = 0.6108  # [kPa]; FAO-56 Eq. 11
ESAT_B = 17.27  # [-]; FAO-56 Eq. 11
ESAT_C_C = 237.3  # [°C]; FAO-56 Eqs. 11, 13
ESAT_SLOPE_NUM = 4098.0  # [°C]; FAO-56 Eq. 13
P_SEA_LEVEL_KPA = 101.3  # [kPa]; FAO-56 Eq. 7
P_T0_K = 293.0  # standard-atmosphere temperature [K]; FAO-56 Eq. 7
P_LAPSE_K_M = 0.0065  # standard-atmosphere lapse rate [K m⁻¹]; FAO-56 Eq. 7
P_EXPONENT = 5.26  # [-]; FAO-56 Eq. 7
THOM_OLIVER_A = 4.72  # [s m⁻¹]; Thom & Oliver 1977 open-water r_a
THOM_OLIVER_B = 0.536  # multiplies u [s m⁻¹]; Thom & Oliver 1977 open-water r_a
CANOPY_D_RATIO = 0.67  # zero-plane displacement d / h [-]; FAO-56 p. 20 (≈ 2/3)
CANOPY_ZOM_RATIO = 0.123  # momentum roughness z_om / h [-]; FAO-56 p. 20
CANOPY_ZOH_RATIO = 0.1  # heat/vapour roughness z_oh / z_om [-]; FAO-56 p. 20

# Daylength (FAO-56 Eqs. 24, 25, 34) — fixed
DECLINATION_AMPLITUDE_RAD = 0.409  # [rad]; FAO-56 Eq. 24
DECLINATION_PHASE_RAD = 1.39  # [rad]; FAO-56 Eq. 24

# ---------------------------------------------------------------------------
# Calendar — fixed
# ---------------------------------------------------------------------------
DAYS_PER_YEAR = 365  # DAYMET year and r.sun solar year [day]; EEMT-SPEC §2

#: Defaults of every configurable parameter (EEMT-SPEC §1.3 and §10). Keys carry units.
#: Read-only: copy it (``dict(DEFAULTS)``) to build a configuration.
DEFAULTS = MappingProxyType(
    {
        "c_w_j_kg_k": C_W,
        "t_ref_k": T_REF,
        "h_bio_j_kg": H_BIO,
        "lapse_rate_c_per_km": LAPSE_RATE,
        "moore_c_c": MOORE_C,
        "lai_max": LAI_MAX,
        "s_min": S_MIN,
        "s_max": S_MAX,
        "budyko_w": BUDYKO_W,
        "small_p_mm": SMALL_P_MM,
        "hamon_k": HAMON_K,
        "hamon_mode": "monthly",
        "pet": "hamon",  # EEMT-TRAD's PET: hamon, or thornthwaite (the 2005 and 2012 papers); EEMT-SPEC §10.1
        "tan_beta_min": TAN_BETA_MIN,
        "cp_air_j_kg_k": CP_AIR,
        "lambda_v_j_kg": LAMBDA_V,
        "epsilon": EPSILON,
        "r_d_j_kg_k": R_D,
        "z_meas_m": Z_MEAS,
        "z0_water_m": Z0_WATER,
        "wind_speed_m_s": WIND_SPEED,
        "surface_resistance_s_m": SURFACE_RESISTANCE,
        "canopy_height_min_m": CANOPY_HEIGHT_MIN,
        "pm_albedo": PM_ALBEDO,
        "npp_require_t_above_0": False,
    }
)

#: Accepted range [low, high] of each numeric parameter, inclusive, with its unit in the key:
#: wide enough for every alternative the papers and EEMT-SPEC §10 name, narrow enough to
#: refuse a sign error or a unit slip (J g⁻¹ for J kg⁻¹, km h⁻¹ for m s⁻¹) at plan time.
PARAMETER_RANGES = MappingProxyType(
    {
        "c_w_j_kg_k": (4100.0, 4300.0),  # 4180-4187 in the papers (EEMT-SPEC §10.4)
        "t_ref_k": (250.0, 300.0),  # 273.15 or 273 K
        "h_bio_j_kg": (15.0e6, 30.0e6),  # 22.0 or 22.2 kJ g⁻¹
        "lapse_rate_c_per_km": (-10.0, 15.0),  # inversions to super-adiabatic
        "moore_c_c": (0.0, 10.0),
        "lai_max": (0.1, 20.0),
        "s_min": (0.001, 1.0),
        "s_max": (1.0, 1000.0),
        "budyko_w": (1.01, 10.0),
        "small_p_mm": (0.0, 100.0),  # Fu's w > 1 (w = 1: AET = 0); 2.15-3.75 in Zhang et al. (2004)
        "hamon_k": (1.0, 100.0),
        "tan_beta_min": (1e-6, 0.1),
        "cp_air_j_kg_k": (900.0, 1100.0),
        "lambda_v_j_kg": (2.2e6, 2.6e6),
        "epsilon": (0.6, 0.65),
        "r_d_j_kg_k": (280.0, 295.0),
        "z_meas_m": (0.5, 100.0),
        "z0_water_m": (1e-5, 0.1),
        "wind_speed_m_s": (0.1, 50.0),  # > 0: the aerodynamic resistance divides by it
        "surface_resistance_s_m": (0.0, 5000.0),
        "canopy_height_min_m": (0.001, 10.0),
        "pm_albedo": (0.0, 0.95),
    }
)
