"""Choosing a climate source from its text form, and the single entry point :func:`load_climate`.

Forms of the source text::

    station:FILE.csv     monthly normals of one station (eemt_flow.climate.station)
    grids:DIR            user rasters, GeoTIFF or NetCDF, any CRS (eemt_flow.climate.grids)
    daymet               DAYMET V4 R1 daily from ORNL DAAC (eemt_flow.climate.daymet)
    daymet:FILE.tif      the same, with the DAYMET 1 km DEM as base elevation
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError
from eemt_flow.model.constants import LAPSE_RATE

from eemt_flow.climate.daymet import prepare_daymet
from eemt_flow.climate.grids import prepare_grids
from eemt_flow.climate.monthly import MonthlyClimate, is_finite_number, lapse_rate_table
from eemt_flow.climate.prepared import PreparedClimate, StationClimate
from eemt_flow.climate.resample import CLIMATE_RESAMPLING
from eemt_flow.climate.station import read_station_normals

STATION = "station"
GRIDS = "grids"
DAYMET = "daymet"
#: The accepted forms of a climate source, for messages.
CLIMATE_SOURCE_FORMS = "station:FILE.csv, grids:DIR or daymet[:DAYMET_1KM_DEM.tif]"


@dataclass(frozen=True)
class ClimateSource:
    """A parsed climate source.

    Attributes
    ----------
    kind : str
        ``"station"``, ``"grids"`` or ``"daymet"``.
    path : pathlib.Path or None
        The station CSV, the grids directory, or the optional DAYMET 1 km DEM.
    """

    kind: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_climate_source(text: str) -> ClimateSource:
    """Parse a climate source text and check that its file or directory exists.

    Parameters
    ----------
    text : str
        ``station:FILE.csv``, ``grids:DIR``, ``daymet`` or ``daymet:FILE.tif``.

    Returns
    -------
    ClimateSource

    Raises
    ------
    UserError
        For an unknown form, a missing path, or a path of the wrong kind.
    """
    raw = (text or "").strip()
    kind, sep, rest = raw.partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    if kind == DAYMET:
        if not sep:
            return ClimateSource(DAYMET)
        path = Path(rest).expanduser()
        if not path.is_file():
            raise UserError(f"climate '{raw}': {path} is not a file; give daymet:FILE.tif with the DAYMET 1 km DEM, or plain daymet")
        return ClimateSource(DAYMET, path)
    if kind == STATION:
        if not rest:
            raise UserError(f"climate '{raw}': give the station file, station:FILE.csv")
        path = Path(rest).expanduser()
        if not path.is_file():
            raise UserError(f"climate '{raw}': {path}: no such station file; give station:FILE.csv")
        return ClimateSource(STATION, path)
    if kind == GRIDS:
        if not rest:
            raise UserError(f"climate '{raw}': give the grids directory, grids:DIR")
        path = Path(rest).expanduser()
        if not path.is_dir():
            raise UserError(f"climate '{raw}': {path} is not a directory; give grids:DIR with tmin, tmax, prcp, vp rasters")
        return ClimateSource(GRIDS, path)
    raise UserError(f"climate '{raw}' is not a climate source; give {CLIMATE_SOURCE_FORMS}")


def load_climate(source_text: str, dem: Dem, *, years=None, station_elevation_m: float | None = None,
                 lapse_tmin_c_per_km=LAPSE_RATE, lapse_tmax_c_per_km=LAPSE_RATE, cache_dir=None,
                 resampling: str = CLIMATE_RESAMPLING, radiation: bool = False) -> list[MonthlyClimate]:
    """Monthly climate on the cells of a DEM in memory: :func:`prepare_climate`, then onto ``dem``."""
    return [c.on_dem(dem) for c in prepare_climate(
        source_text, dem, years=years, station_elevation_m=station_elevation_m,
        lapse_tmin_c_per_km=lapse_tmin_c_per_km, lapse_tmax_c_per_km=lapse_tmax_c_per_km, cache_dir=cache_dir,
        resampling=resampling, radiation=radiation)]


def prepare_climate(source_text: str, dem, *, years=None, station_elevation_m: float | None = None,
                    lapse_tmin_c_per_km=LAPSE_RATE, lapse_tmax_c_per_km=LAPSE_RATE, cache_dir=None,
                    resampling: str = CLIMATE_RESAMPLING, radiation: bool = False) -> list[PreparedClimate]:
    """Every climate year of a source, read and checked for the whole DEM, not yet on its cells.

    Parameters
    ----------
    source_text : str
        Climate source (see :func:`parse_climate_source`).
    dem : Dem or eemt_flow.dem.raster.DemGrid
        The whole DEM, in memory or on disk (read in chunks where a base elevation needs it).
    years : iterable of int, optional
        Years: required for DAYMET (one result each); for grids at most one (the year of
        the data, needed for 365-band GeoTIFFs); ignored for station normals.
    station_elevation_m : float, optional
        Station elevation [m]; required for ``station:``.
    lapse_tmin_c_per_km, lapse_tmax_c_per_km : float or sequence of 12 float
        Lapse rates for Tmin and Tmax, one value or Jan..Dec [°C km⁻¹]; default
        :data:`~eemt_flow.model.constants.LAPSE_RATE` (6.49).
    cache_dir : path-like, optional
        Cache of DAYMET responses.
    resampling : str
        How grids (DAYMET, your own) reach the DEM grid: ``bilinear`` (default), ``nearest``
        or ``cubic``; station normals are not resampled.
    radiation : bool
        DAYMET only: also fetch shortwave radiation (``srad``, ``dayl``) for real-sky
        radiation (:attr:`MonthlyClimate.glob_wh_m2_day`); ignored by the other sources.

    Returns
    -------
    list of GridClimate or StationClimate
        One per year (DAYMET), or one (station normals; grids); each puts itself on any
        window of the DEM with ``on_dem`` (:mod:`eemt_flow.climate.prepared`).

    Raises
    ------
    UserError
        For every user mistake, with one line naming the file and row or variable.

    References
    ----------
    EEMT-SPEC §2, §3, §8; VZJ 2015 Eq. 6.
    """
    source = parse_climate_source(source_text)
    tmin_table = lapse_rate_table(lapse_tmin_c_per_km, "lapse_tmin_c_per_km")
    tmax_table = lapse_rate_table(lapse_tmax_c_per_km, "lapse_tmax_c_per_km")
    if source.kind == STATION:
        if station_elevation_m is None:
            raise UserError(f"climate '{source}': give the station elevation in metres (station_elevation_m)")
        if not is_finite_number(station_elevation_m):
            raise UserError(f"{source.path}: station elevation '{station_elevation_m}' is not a number in metres")
        normals = read_station_normals(source.path)
        return [StationClimate(normals, float(station_elevation_m), tmin_table, tmax_table)]
    if source.kind == GRIDS:
        year_list = [] if years is None else [int(y) for y in years]
        if len(year_list) > 1:
            raise UserError(f"climate '{source}': a grids directory holds one period; give at most one year, "
                            f"not {len(year_list)}")
        return [prepare_grids(source.path, dem, year=year_list[0] if year_list else None,
                              lapse_tmin_table=tmin_table, lapse_tmax_table=tmax_table, resampling=resampling)]
    return prepare_daymet(dem, years, lapse_tmin_table=tmin_table, lapse_tmax_table=tmax_table,
                          base_elevation_path=source.path, cache_dir=cache_dir, resampling=resampling,
                          radiation=radiation)
