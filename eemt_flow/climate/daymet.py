"""DAYMET V4 R1 daily climate for the DEM: subset download, cache, monthly aggregation.

Only the DEM's bounding box (padded by :data:`DAYMET_PAD_CELLS` 1 km cells for bilinear
support) and the requested years are asked of ORNL DAAC's THREDDS NetCDF Subset Service
(NCSS), one request per variable and year, for the V4 R1 daily dataset
(:data:`DAYMET_DATASET_ID`); whole-continent files are never fetched (EEMT-SPEC §8, §9.27).

Access needs a NASA Earthdata login: a bearer token in ``$EARTHDATA_TOKEN``, or a
``machine urs.earthdata.nasa.gov login … password …`` entry in ``~/.netrc`` (or the file
named by ``$NETRC``). Credentials are never taken from the command line and never
logged. Responses are cached under a key that hashes the request; a cache hit makes no
HTTP request. ``$EEMT_DAYMET_URL`` replaces the NCSS base URL (a mirror, or a test server).

Processing follows EEMT-SPEC §2–§3: daily → monthly per 1 km pixel on DAYMET's 365-day
calendar with months from the decoded dates; then bilinear resampling of every variable
and of the base elevation to the DEM grid; then the lapse correction, with the base
elevation = mean of the DEM over each DAYMET cell unless a DAYMET 1 km DEM is given.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import netrc
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError
from eemt_flow.model.calendar import daymet_dates

from eemt_flow.climate.aggregate import DAILY_TO_MONTHLY, daily_to_monthly
from eemt_flow.climate.assemble import MonthlyField, base_elevations
from eemt_flow.climate.monthly import CLIMATE_VARIABLE_UNITS, MonthlyClimate
from eemt_flow.climate.netcdf import read_netcdf_variable
from eemt_flow.climate.prepared import GridClimate
from eemt_flow.climate.resample import (
    BOUNDS_DENSIFY_POINTS,
    CLIMATE_RESAMPLING,
    check_grid_covers_dem,
    dem_bounds_in,
    read_geotiff_grid,
)

log = logging.getLogger(__name__)

#: ORNL DAAC dataset id of Daymet V4 R1 daily (EEMT-SPEC §8; 1840 is V4, 1328 is V3 — never mixed).
DAYMET_DATASET_ID = 2129
#: NCSS base URL of the dataset; a file name is appended.
DAYMET_NCSS_URL = f"https://thredds.daac.ornl.gov/thredds/ncss/grid/ornldaac/{DAYMET_DATASET_ID}"
#: Environment variable that replaces :data:`DAYMET_NCSS_URL`.
DAYMET_URL_ENV = "EEMT_DAYMET_URL"
#: V4 file name of one region, variable and year (EEMT-SPEC §8).
DAYMET_FILE_TEMPLATE = "daymet_v4_daily_{region}_{variable}_{year}.nc"
#: DAYMET Lambert conformal conic projection (EEMT-SPEC §8), used when a response lacks a grid mapping.
DAYMET_PROJ4 = "+proj=lcc +lat_1=25 +lat_2=60 +lat_0=42.5 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
DAYMET_CRS = CRS.from_proj4(DAYMET_PROJ4)
#: DAYMET grid spacing [m].
DAYMET_CELL_M = 1000.0
#: Relative tolerance on the cell size of a response (catches km read as m) [-].
DAYMET_CELL_TOLERANCE = 0.01
#: Padding of the request box around the DEM [DAYMET cells]; ≥ 2 for bilinear support (EEMT-SPEC §8).
DAYMET_PAD_CELLS = 3
#: Variables requested (EEMT-SPEC §8: required tmin, tmax, prcp, vp).
DAYMET_VARIABLES = tuple(CLIMATE_VARIABLE_UNITS)
#: Variables requested for real-sky radiation: shortwave flux averaged over the daylight
#: period [W m⁻²] and day length [s] (EEMT-SPEC §8).
DAYMET_RADIATION_VARIABLES = ("srad", "dayl")
#: First year of DAYMET.
DAYMET_FIRST_YEAR = 1980
#: Bounding boxes (west, south, east, north) [degrees] of the DAYMET V4 R1 regions, from the
#: spatial coverage of ORNL DAAC dataset 2129. Checked in this order (hi and pr lie inside na's box).
DAYMET_REGIONS = {
    "hi": (-160.31, 17.96, -154.77, 23.52),
    "pr": (-67.97, 16.85, -64.12, 19.94),
    "na": (-178.13, 14.08, -53.06, 82.92),
}
DAYMET_REGION_NAMES = {"na": "North America", "hi": "Hawaii", "pr": "Puerto Rico"}
#: Decimal places of the lat/lon request box (rounded outward) [degrees].
BOX_DECIMALS = 4

#: Environment variable holding a NASA Earthdata bearer token.
EARTHDATA_TOKEN_ENV = "EARTHDATA_TOKEN"
#: NASA Earthdata Login host, the netrc ``machine`` of the credentials.
EARTHDATA_LOGIN_HOST = "urs.earthdata.nasa.gov"
#: Environment variable naming a netrc file other than ``~/.netrc`` (curl's convention).
NETRC_ENV = "NETRC"
#: Environment variable naming the cache directory.
CACHE_DIR_ENV = "EEMT_CACHE_DIR"

#: Timeout of one HTTP request [s].
HTTP_TIMEOUT_S = 120.0
#: Attempts per request on 5xx answers, timeouts and connection errors.
HTTP_MAX_ATTEMPTS = 5
#: First retry delay; doubled after each failed attempt [s].
HTTP_BACKOFF_S = 2.0
#: Redirects followed per request (the Earthdata login takes three).
HTTP_MAX_REDIRECTS = 10
#: First bytes of a NetCDF-3 (classic, 64-bit offset, CDF-5) or NetCDF-4/HDF5 file.
NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


@dataclass(frozen=True)
class EarthdataCredentials:
    """NASA Earthdata credentials: a bearer token or a login and password.

    ``origin`` says where they came from (an environment variable or a netrc file), for
    messages; the secret itself is never shown (``repr`` hides it).
    """

    origin: str
    token: str | None = None
    login: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"EarthdataCredentials(origin={self.origin!r})"


def earthdata_credentials(login_host: str = EARTHDATA_LOGIN_HOST) -> EarthdataCredentials | None:
    """Find NASA Earthdata credentials in the user's standard configuration.

    Parameters
    ----------
    login_host : str
        netrc ``machine`` to look up.

    Returns
    -------
    EarthdataCredentials or None
        The token of ``$EARTHDATA_TOKEN`` if set, else the netrc entry for ``login_host``
        in ``$NETRC`` or ``~/.netrc``, else None.

    Raises
    ------
    UserError
        If the netrc file exists but cannot be parsed.
    """
    token = os.environ.get(EARTHDATA_TOKEN_ENV, "").strip()
    if token:
        return EarthdataCredentials(origin=f"${EARTHDATA_TOKEN_ENV}", token=token)
    path = Path(os.environ.get(NETRC_ENV) or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(login_host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise UserError(f"{path}: cannot read the netrc file ({exc.__class__.__name__}); fix it or set ${EARTHDATA_TOKEN_ENV}") from None
    if entry is None:
        return None
    login, _account, password = entry
    return EarthdataCredentials(origin=str(path), login=login, password=password or "")


def default_cache_dir() -> Path:
    """Cache directory of DAYMET responses: ``$EEMT_CACHE_DIR``, else ``$XDG_CACHE_HOME/eemt-flow``
    (``~/.cache/eemt-flow``), with a ``daymet`` subdirectory."""
    base = os.environ.get(CACHE_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "eemt-flow"
    return Path(base) / "daymet"


def daymet_region(dem: Dem) -> str:
    """The DAYMET region that holds the whole DEM.

    Parameters
    ----------
    dem : Dem
        The DEM.

    Returns
    -------
    str
        ``"na"``, ``"hi"`` or ``"pr"``.

    Raises
    ------
    UserError
        If the DEM lies outside every region's box (made before any request).
    """
    west, south, east, north = dem_bounds_in(dem, CRS.from_epsg(4326))
    for region, (r_west, r_south, r_east, r_north) in DAYMET_REGIONS.items():
        if r_west <= west and east <= r_east and r_south <= south and north <= r_north:
            return region
    names = ", ".join(f"{DAYMET_REGION_NAMES[r]} ({r})" for r in DAYMET_REGIONS)
    raise UserError(
        f"the DEM (lon {west:.3f}..{east:.3f}, lat {south:.3f}..{north:.3f}) lies outside DAYMET coverage ({names}); "
        "use station:FILE.csv or grids:DIR climate instead"
    )


def request_box_lonlat(dem: Dem) -> tuple[float, float, float, float]:
    """Latitude/longitude box of the DEM padded by :data:`DAYMET_PAD_CELLS` DAYMET cells.

    Parameters
    ----------
    dem : Dem
        The DEM.

    Returns
    -------
    tuple of float
        (west, south, east, north) [degrees], rounded outward to :data:`BOX_DECIMALS`.

    Notes
    -----
    The pad is added in the DAYMET projection (metres), so that the box holds at least
    that many 1 km cells on every side of the DEM, then the padded box is transformed
    (densified edges) to lon/lat.
    """
    left, bottom, right, top = dem_bounds_in(dem, DAYMET_CRS)
    pad = DAYMET_PAD_CELLS * DAYMET_CELL_M
    west, south, east, north = transform_bounds(DAYMET_CRS, CRS.from_epsg(4326), left - pad, bottom - pad,
                                                right + pad, top + pad, densify_pts=BOUNDS_DENSIFY_POINTS)
    scale = 10**BOX_DECIMALS
    return (math.floor(west * scale) / scale, math.floor(south * scale) / scale,
            math.ceil(east * scale) / scale, math.ceil(north * scale) / scale)


def ncss_params(variable: str, year: int, box_lonlat: tuple[float, float, float, float]) -> list[tuple[str, str]]:
    """NCSS query of one variable and DAYMET year over a lon/lat box.

    Parameters
    ----------
    variable : str
        DAYMET variable, e.g. ``"tmin"``.
    year : int
        DAYMET year.
    box_lonlat : tuple of float
        (west, south, east, north) [degrees].

    Returns
    -------
    list of (str, str)
        Query parameters: ``var``, ``north``, ``west``, ``east``, ``south``, ``horizStride``,
        ``time_start``, ``time_end`` (noon of the first and last DAYMET day: Dec 30 in leap
        years), ``timeStride``, ``accept=netcdf``.
    """
    west, south, east, north = box_lonlat
    dates = daymet_dates(year)
    return [
        ("var", variable),
        ("north", f"{north:.{BOX_DECIMALS}f}"),
        ("west", f"{west:.{BOX_DECIMALS}f}"),
        ("east", f"{east:.{BOX_DECIMALS}f}"),
        ("south", f"{south:.{BOX_DECIMALS}f}"),
        ("horizStride", "1"),
        ("time_start", f"{dates[0]}T12:00:00Z"),
        ("time_end", f"{dates[-1]}T12:00:00Z"),
        ("timeStride", "1"),
        ("accept", "netcdf"),
    ]


def request_key(url: str, params: list[tuple[str, str]]) -> str:
    """SHA-256 hex digest identifying a request (URL and query; never credentials)."""
    return hashlib.sha256(json.dumps([url, sorted(params)]).encode()).hexdigest()


class DaymetClient:
    """Fetches DAYMET NCSS subsets with caching, retries and Earthdata authentication.

    Parameters
    ----------
    base_url : str, optional
        NCSS base URL; default ``$EEMT_DAYMET_URL`` or :data:`DAYMET_NCSS_URL`.
    cache_dir : path-like, optional
        Cache directory; default :func:`default_cache_dir`.
    credentials : EarthdataCredentials, optional
        Default :func:`earthdata_credentials` (looked up on first request).
    login_host : str
        Earthdata Login host that receives the netrc login and password.
    max_attempts : int
        Attempts per request on 5xx, timeouts and connection errors.
    backoff_s : float
        First retry delay, doubled after each failure [s].
    timeout_s : float
        Timeout of one HTTP request [s].
    """

    def __init__(self, base_url: str | None = None, cache_dir=None, *, credentials: EarthdataCredentials | None = None,
                 login_host: str = EARTHDATA_LOGIN_HOST, max_attempts: int = HTTP_MAX_ATTEMPTS,
                 backoff_s: float = HTTP_BACKOFF_S, timeout_s: float = HTTP_TIMEOUT_S):
        self.base_url = (base_url or os.environ.get(DAYMET_URL_ENV) or DAYMET_NCSS_URL).rstrip("/")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.login_host = login_host
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._credentials = credentials
        self._credentials_looked_up = credentials is not None

    @property
    def credentials(self) -> EarthdataCredentials | None:
        """The Earthdata credentials in use (looked up once, on first use), or None."""
        if not self._credentials_looked_up:
            self._credentials = earthdata_credentials(self.login_host)
            self._credentials_looked_up = True
        return self._credentials

    def fetch(self, region: str, variable: str, year: int, box_lonlat) -> Path:
        """The NetCDF subset of one variable and year, from the cache or the server.

        Parameters
        ----------
        region : str
            ``"na"``, ``"hi"`` or ``"pr"``.
        variable : str
            DAYMET variable.
        year : int
            DAYMET year.
        box_lonlat : tuple of float
            (west, south, east, north) [degrees].

        Returns
        -------
        pathlib.Path
            The cached NetCDF file.

        Raises
        ------
        UserError
            When offline, unauthorised, the file does not exist, the server keeps failing,
            or the answer is not NetCDF.
        """
        name = DAYMET_FILE_TEMPLATE.format(region=region, variable=variable, year=year)
        url = f"{self.base_url}/{name}"
        params = ncss_params(variable, year, box_lonlat)
        path = self.cache_dir / f"{Path(name).stem}-{request_key(url, params)[:24]}.nc"
        if path.is_file():
            log.info("DAYMET %s %d: cached %s", variable, year, path)
            return path
        content = self._get(url, params, what=f"DAYMET {variable} {year}")
        if not content.startswith(NETCDF_MAGIC):
            raise UserError(f"DAYMET {variable} {year}: {url} answered with something that is not NetCDF "
                            "(an Earthdata login page?); check the Earthdata credentials")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + f".{os.getpid()}.part")
        part.write_bytes(content)
        part.replace(path)
        log.info("DAYMET %s %d: downloaded %d bytes to %s", variable, year, len(content), path)
        return path

    def _authorise(self, request: httpx.Request) -> None:
        # Called for every hop of a redirect chain: the secret goes only to the data and login hosts.
        cred = self.credentials
        if cred is None:
            return
        host = request.url.host
        if cred.token and host in (httpx.URL(self.base_url).host, self.login_host):
            request.headers["Authorization"] = f"Bearer {cred.token}"
        elif cred.login is not None and host == self.login_host:
            pair = base64.b64encode(f"{cred.login}:{cred.password}".encode()).decode()
            request.headers["Authorization"] = f"Basic {pair}"

    def _get(self, url: str, params: list[tuple[str, str]], *, what: str) -> bytes:
        host = httpx.URL(url).host
        failure = ""
        with httpx.Client(follow_redirects=True, max_redirects=HTTP_MAX_REDIRECTS, timeout=self.timeout_s,
                          event_hooks={"request": [self._authorise]}) as http:
            for attempt in range(self.max_attempts):
                if attempt:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                try:
                    response = http.get(url, params=params)
                except httpx.TooManyRedirects:
                    raise UserError(f"{what}: too many redirects from {host}; check the Earthdata credentials") from None
                except httpx.TransportError as exc:
                    failure = f"could not reach {host} ({exc.__class__.__name__})"
                    log.warning("%s: %s; attempt %d of %d", what, failure, attempt + 1, self.max_attempts)
                    continue
                status = response.status_code
                if status >= 500 or status == 429:
                    failure = f"{host} answered HTTP {status}"
                    log.warning("%s: %s; attempt %d of %d", what, failure, attempt + 1, self.max_attempts)
                    continue
                if status in (401, 403):
                    cred = self.credentials
                    held = f"the credentials from {cred.origin} were refused" if cred else "no Earthdata credentials were found"
                    raise UserError(
                        f"{what}: {host} answered HTTP {status} (unauthorised): {held}; set ${EARTHDATA_TOKEN_ENV} to a NASA "
                        f"Earthdata token or add 'machine {EARTHDATA_LOGIN_HOST} login USER password PASS' to ~/.netrc"
                    )
                if status == 404:
                    raise UserError(f"{what}: {host} has no {httpx.URL(url).path.rsplit('/', 1)[-1]} (HTTP 404); "
                                    f"DAYMET covers {DAYMET_FIRST_YEAR} to the last complete year")
                if status >= 400:
                    reason = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
                    raise UserError(f"{what}: {host} refused the subset request (HTTP {status}: {reason})")
                return response.content
        if failure.startswith("could not reach"):
            raise UserError(f"{what}: {failure} after {self.max_attempts} attempts; check the network connection (offline?)")
        raise UserError(f"{what}: {failure} {self.max_attempts} times; the DAYMET service is failing, try again later")


def read_daymet_response(path: Path, variable: str, year: int) -> MonthlyField:
    """Read a DAYMET NCSS answer and aggregate it to months on its 1 km grid.

    Parameters
    ----------
    path : pathlib.Path
        NetCDF subset of one variable and year.
    variable : str
        DAYMET variable.
    year : int
        DAYMET year.

    Returns
    -------
    MonthlyField
        Monthly means (tmin, tmax [°C], vp [Pa]) or sums (prcp [mm]) on the DAYMET grid.

    Raises
    ------
    UserError
        If the grid is not a 1 km grid once its x/y units are applied.
    """
    grid = read_netcdf_variable(path, variable, default_crs=DAYMET_CRS)
    what = f"DAYMET {variable} {year} ({path})"
    cell = (abs(grid.transform.a), abs(grid.transform.e))
    if any(abs(c - DAYMET_CELL_M) > DAYMET_CELL_TOLERANCE * DAYMET_CELL_M for c in cell):
        raise UserError(f"{what}: cells of {cell[0]:g} x {cell[1]:g} m, not DAYMET's 1 km; check the x/y units attribute")
    agg = daily_to_monthly(grid.values, grid.dates, DAILY_TO_MONTHLY[variable], year=year, what=what)
    return MonthlyField(agg.values, grid.transform, grid.crs, path, agg.incomplete_months)


def check_years(years) -> list[int]:
    """Validate the DAYMET years asked for.

    Parameters
    ----------
    years : iterable of int
        Calendar years.

    Returns
    -------
    list of int

    Raises
    ------
    UserError
        If none is given or one is before :data:`DAYMET_FIRST_YEAR`.
    """
    if years is None or isinstance(years, (str, bytes)):
        raise UserError("daymet: give the years to fetch, e.g. 2019 or 2015-2019")
    try:
        checked = [int(y) for y in years]
    except (TypeError, ValueError):
        raise UserError(f"daymet: years {years!r} are not whole numbers") from None
    if not checked:
        raise UserError("daymet: give the years to fetch, e.g. 2019 or 2015-2019")
    early = [y for y in checked if y < DAYMET_FIRST_YEAR]
    if early:
        raise UserError(f"daymet: year {early[0]} is before DAYMET begins ({DAYMET_FIRST_YEAR})")
    return checked


def daymet_global_radiation_field(srad_path: Path, dayl_path: Path, year: int) -> MonthlyField:
    """DAYMET's global horizontal irradiation of each month's mean day on its 1 km grid [Wh m⁻² day⁻¹].

    Daily ``srad`` [W m⁻², mean over the daylight period] times ``dayl`` [s] / 3600 gives the
    day's irradiation [Wh m⁻² day⁻¹]; its monthly mean is taken on the 1 km grid (days from
    the decoded dates, Dec 31 of leap years dropped). It reaches the DEM like the other
    climate variables (:class:`~eemt_flow.climate.prepared.GridClimate`), not
    elevation-adjusted.

    Parameters
    ----------
    srad_path, dayl_path : pathlib.Path
        NCSS answers of ``srad`` and ``dayl`` for ``year`` (the same box, hence grid).
    year : int
        DAYMET year.

    Returns
    -------
    MonthlyField
        (12, rows, cols) on the DAYMET grid.
    """
    from eemt_flow.solar.realsky import daymet_daily_global_wh_m2

    srad = read_netcdf_variable(srad_path, "srad", default_crs=DAYMET_CRS)
    dayl = read_netcdf_variable(dayl_path, "dayl", default_crs=DAYMET_CRS)
    what = f"DAYMET srad, dayl {year} ({srad_path}, {dayl_path})"
    if (srad.values.shape != dayl.values.shape or tuple(srad.transform) != tuple(dayl.transform)
            or not np.array_equal(srad.dates, dayl.dates)):
        raise UserError(f"{what}: srad and dayl answers differ in grid or days; clear the DAYMET cache and run again")
    daily = daymet_daily_global_wh_m2(srad.values, dayl.values)
    agg = daily_to_monthly(daily, srad.dates, DAILY_TO_MONTHLY["dayl"], year=year, what=what)  # monthly mean
    return MonthlyField(agg.values.astype("float32"), srad.transform, srad.crs, srad_path, agg.incomplete_months)


def load_daymet(dem: Dem, years, *, lapse_tmin_table, lapse_tmax_table, base_elevation_path=None, cache_dir=None,
                client: DaymetClient | None = None, resampling: str = CLIMATE_RESAMPLING,
                radiation: bool = False) -> list[MonthlyClimate]:
    """DAYMET monthly climate on the DEM grid, one :class:`MonthlyClimate` per year
    (:func:`prepare_daymet`, then onto ``dem``'s cells)."""
    return [c.on_dem(dem) for c in prepare_daymet(
        dem, years, lapse_tmin_table=lapse_tmin_table, lapse_tmax_table=lapse_tmax_table,
        base_elevation_path=base_elevation_path, cache_dir=cache_dir, client=client, resampling=resampling,
        radiation=radiation)]


def prepare_daymet(dem, years, *, lapse_tmin_table, lapse_tmax_table, base_elevation_path=None, cache_dir=None,
                   client: DaymetClient | None = None, resampling: str = CLIMATE_RESAMPLING,
                   radiation: bool = False) -> list[GridClimate]:
    """DAYMET monthly climate on its 1 km grid for the whole DEM, one :class:`GridClimate` per year.

    Parameters
    ----------
    dem : Dem or eemt_flow.dem.raster.DemGrid
        The whole DEM (in memory or on disk): the region and box to fetch, and the
        elevations of the footprint-mean base elevation.
    years : iterable of int
        DAYMET years.
    lapse_tmin_table, lapse_tmax_table : array, shape (12,)
        Monthly lapse rates [°C km⁻¹].
    base_elevation_path : path-like, optional
        DAYMET 1 km DEM [m] (any CRS), resampled like the temperatures. If None,
        z_base is the mean of the DEM over each DAYMET cell footprint.
    cache_dir : path-like, optional
        Cache of responses (ignored when ``client`` is given).
    client : DaymetClient, optional
        Client to use; default a :class:`DaymetClient` with ``cache_dir``.
    resampling : str
        ``bilinear`` (default), ``nearest`` or ``cubic``, from the 1 km grid to the DEM.
    radiation : bool
        Also fetch ``srad`` and ``dayl`` and fill :attr:`MonthlyClimate.glob_wh_m2_day`
        (real-sky radiation).

    Returns
    -------
    list of GridClimate

    Raises
    ------
    UserError
        Outside DAYMET coverage (before any request), bad years, and every failure of
        :meth:`DaymetClient.fetch`.

    References
    ----------
    Thornton, M. M. et al. (2022), Daymet: Daily Surface Weather Data on a 1-km Grid for
    North America, Version 4 R1, ORNL DAAC, doi:10.3334/ORNLDAAC/2129; EEMT-SPEC §2, §3, §8.
    """
    checked_years = check_years(years)
    region = daymet_region(dem)
    box = request_box_lonlat(dem)
    elevation = None
    if base_elevation_path is not None:
        values, transform, crs = read_geotiff_grid(Path(base_elevation_path), what="DAYMET 1 km elevation")
        check_grid_covers_dem(dem, values.shape[1:], transform, crs, what=f"DAYMET 1 km elevation ({base_elevation_path})")
        elevation = MonthlyField(values[:1], transform, crs, Path(base_elevation_path))
    client = client or DaymetClient(cache_dir=cache_dir)
    base_text = f"base elevation {base_elevation_path}" if elevation is not None else "base elevation = DEM mean over each DAYMET cell"
    climates = []
    for year in checked_years:
        fields = {v: read_daymet_response(client.fetch(region, v, year, box), v, year) for v in DAYMET_VARIABLES}
        for v, field in fields.items():
            check_grid_covers_dem(dem, field.shape, field.transform, field.crs, what=f"{v} ({field.path})")
        source = (f"DAYMET V4 R1 daily (ORNL DAAC {DAYMET_DATASET_ID}), region {region}, {year}; monthly on the 1 km grid, "
                  f"{resampling} to the DEM; {base_text}")
        global_field = None
        if radiation:
            paths = [client.fetch(region, v, year, box) for v in DAYMET_RADIATION_VARIABLES]
            global_field = daymet_global_radiation_field(*paths, year)
            check_grid_covers_dem(dem, global_field.shape, global_field.transform, global_field.crs,
                                  what=f"DAYMET srad, dayl {year} ({global_field.path})")
            source += "; srad x dayl for real-sky radiation"
        climates.append(GridClimate(year, source, fields, base_elevations(fields, dem, elevation),
                                    lapse_tmin_table, lapse_tmax_table, resampling, global_field))
    return climates
