"""Climate sources resampled to the DEM grid: station normals, user grids, DAYMET.

:func:`load_climate` is the single entry point; every source yields
:class:`MonthlyClimate` objects (twelve months on the DEM grid, temperatures
lapse-corrected; EEMT-SPEC §2, §3, §8).
"""

from eemt_flow.climate.monthly import NORMALS, MonthlyClimate
from eemt_flow.climate.source import ClimateSource, load_climate, parse_climate_source

__all__ = ["NORMALS", "ClimateSource", "MonthlyClimate", "load_climate", "parse_climate_source"]
