"""One import point for every EEMT equation function.

The functions live in topical modules (:mod:`~eemt_flow.model.atmosphere`,
:mod:`~eemt_flow.model.pet`, :mod:`~eemt_flow.model.water`,
:mod:`~eemt_flow.model.topoclimate`, :mod:`~eemt_flow.model.npp`,
:mod:`~eemt_flow.model.energy`); this module only re-exports them.
"""

from eemt_flow.model.atmosphere import (
    actual_vapour_pressure_kpa,
    aerodynamic_resistance_canopy_s_m,
    aerodynamic_resistance_open_water_s_m,
    air_density_kg_m3,
    atmospheric_pressure_kpa,
    mean_saturation_vapour_pressure_kpa,
    psychrometric_constant_kpa_k,
    saturation_vapour_pressure_kpa,
    saturation_vapour_slope_kpa_k,
    vapour_pressure_deficit_kpa,
)
from eemt_flow.model.energy import delta_t_k, e_bio_j_m2, e_ppt_j_m2
from eemt_flow.model.npp import annual_to_month, lieth_npp_month_g_m2, npp_topo_annual_g_m2, npp_veg_annual_g_m2
from eemt_flow.model.pet import (
    hamon_pet_daily_sum_mm,
    hamon_pet_mm,
    penman_monteith_mm,
    thornthwaite_exponent,
    thornthwaite_heat_index,
    thornthwaite_pet_mm,
)
from eemt_flow.model.topoclimate import (
    lai_from_ndvi,
    lapse_corrected_temperature_c,
    monthly_irradiation_j_m2,
    moore_tmax_c,
    radiation_ratio,
    radiation_ratio_clamped,
)
from eemt_flow.model.water import (
    budyko_fu_aet_mm,
    effective_precipitation_mm,
    mcwi_alpha,
    redistributed_water_mm,
    wetness_index,
)

__all__ = [
    "actual_vapour_pressure_kpa",
    "aerodynamic_resistance_canopy_s_m",
    "aerodynamic_resistance_open_water_s_m",
    "air_density_kg_m3",
    "annual_to_month",
    "atmospheric_pressure_kpa",
    "budyko_fu_aet_mm",
    "delta_t_k",
    "e_bio_j_m2",
    "e_ppt_j_m2",
    "effective_precipitation_mm",
    "hamon_pet_daily_sum_mm",
    "hamon_pet_mm",
    "lai_from_ndvi",
    "lapse_corrected_temperature_c",
    "lieth_npp_month_g_m2",
    "mcwi_alpha",
    "mean_saturation_vapour_pressure_kpa",
    "monthly_irradiation_j_m2",
    "moore_tmax_c",
    "npp_topo_annual_g_m2",
    "npp_veg_annual_g_m2",
    "penman_monteith_mm",
    "psychrometric_constant_kpa_k",
    "radiation_ratio",
    "radiation_ratio_clamped",
    "redistributed_water_mm",
    "saturation_vapour_pressure_kpa",
    "saturation_vapour_slope_kpa_k",
    "thornthwaite_exponent",
    "thornthwaite_heat_index",
    "thornthwaite_pet_mm",
    "vapour_pressure_deficit_kpa",
    "wetness_index",
]
