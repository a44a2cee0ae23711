"""The job specification: one typed, validated object for every parameter.

A job can come from a YAML file, from command-line flags, or from the web form; all three
build the same :class:`JobSpec`. Units are in the names (``step_minutes``, ``halo_m``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eemt_flow.dem.raster import DEFAULT_MAX_CELLS
from eemt_flow.errors import UserError, shown
from eemt_flow.model.calendar import month_of_doy
from eemt_flow.solar.clearsky import DEFAULT_ALBEDO, DEFAULT_LINKE
from eemt_flow.solar.parameters import (
    DEFAULT_HORIZON_STEP_DEG,
    DEFAULT_STEP_MINUTES,
    Albedo,
    Days,
    HorizonMethod,
    HorizonStepDeg,
    Linke,
    StepMinutes,
    all_days,
    format_days,
)

#: Default tile edge [cells] (core only; the halo comes on top).
DEFAULT_TILE_SIZE_CELLS = 500
#: Default Work Queue manager port.
DEFAULT_WQ_PORT = 9123

Executor = Literal["local", "wq", "slurm", "condor", "sge"]
#: EEMT model variants (EEMT-SPEC §4-6) and their names in output files.
MODEL_NAMES = {"trad": "TRAD", "topo": "TOPO", "topo-veg": "TOPO_VEG"}
Engine = Literal["fast", "grass"]
#: How climate grids (DAYMET, your own) are resampled onto the DEM (eemt_flow.climate.resample).
ClimateResampling = Literal["bilinear", "nearest", "cubic"]
#: Radiation EEMT-TOPO uses: r.sun's clear sky, or real sky from DAYMET's shortwave radiation.
Radiation = Literal["clear", "real"]
#: Form of the result maps: single COGs, or VRTs over block COGs (eemt_flow.workflow.vrt); auto: by size.
ResultsForm = Literal["cog", "vrt", "auto"]


def _month_of(doy: int) -> int:
    return int(month_of_doy(doy))


class JobSpec(BaseModel):
    """Every parameter of a job, validated, with units in the names."""

    model_config = ConfigDict(extra="forbid")

    dem: Path
    workdir: Path = Path("eemt-work")
    days: Days = Field(default_factory=all_days)
    step_minutes: StepMinutes = DEFAULT_STEP_MINUTES
    linke: Linke = DEFAULT_LINKE
    albedo: Albedo = DEFAULT_ALBEDO
    tile_size_cells: int = DEFAULT_TILE_SIZE_CELLS
    halo_m: float | None = None  # None: automatic, relief / tan(5°), capped
    horizon_step_deg: HorizonStepDeg = DEFAULT_HORIZON_STEP_DEG
    horizon_method: HorizonMethod = "auto"
    keep_daily: bool = False
    reproject: str | None = None
    max_cells: int = DEFAULT_MAX_CELLS
    engine: Engine = "fast"
    threads_per_task: int | None = None  # fast engine: threads (and declared CORES) per task
    executor: Executor = "local"
    jobs: int | None = None  # local executor: concurrent tasks; None = one per core
    port: int = DEFAULT_WQ_PORT
    password_file: Path | None = None
    batch_options: str | None = None
    # EEMT (EEMT-SPEC §2-6); without a climate source the job computes solar radiation only.
    climate: str | None = None
    models: list[str] = Field(default_factory=lambda: ["trad", "topo"])
    years: list[int] | None = None
    station_elevation_m: float | None = None
    lapse_tmin_c_per_km: float | list[float] = 6.49
    lapse_tmax_c_per_km: float | list[float] = 6.49
    ndvi: Path | None = None
    canopy_height: Path | None = None
    wind_speed: Path | None = None  # raster of wind speed at 2 m [m s-1] (TOPO, TOPO-VEG)
    npp: Path | None = None  # raster of annual NPP [g m-2 yr-1] replacing VZJ Eqs. 11/12 (TOPO, TOPO-VEG)
    model_parameters: dict[str, float | str | bool] = Field(default_factory=dict)  # ModelParameters fields
    cache_dir: Path | None = None
    climate_resampling: ClimateResampling = "bilinear"
    radiation: Radiation = "clear"
    results: ResultsForm = "auto"
    results_block_cells: int | None = None  # the VRT form's block edge; None: eemt_flow.workflow.vrt.default_block_cells
    exchange_group_tiles: int | None = None  # terrain exchange groups' members per side; None: stages.automatic_group_tiles

    @field_validator("tile_size_cells")
    @classmethod
    def _tile(cls, v):
        if v < 16:
            raise ValueError("tile size must be at least 16 cells")
        return v

    @field_validator("results_block_cells")
    @classmethod
    def _results_block(cls, v):
        if v is not None and (v < 16 or v % 2):
            raise ValueError("the VRT form's block edge must be an even number of cells, at least 16")
        return v

    @field_validator("exchange_group_tiles")
    @classmethod
    def _exchange_group(cls, v):
        if v is not None and v < 2:
            raise ValueError("an exchange group must be at least 2 tiles wide")
        return v

    @field_validator("halo_m")
    @classmethod
    def _halo(cls, v):
        if v is not None and v <= 0:
            raise ValueError("halo must be positive metres (or leave it out for the automatic halo)")
        return v

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, v):
        if v is not None and v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("reproject")
    @classmethod
    def _reproject(cls, v):
        if v is None:
            return v
        if not re.fullmatch(r"EPSG:\d{4,6}", v.strip(), flags=re.I):
            raise ValueError("give the target CRS as EPSG:XXXX, e.g. EPSG:32613 (UTM 13N)")
        return v.strip().upper()

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v):
        given = v.split(",") if isinstance(v, str) else v if isinstance(v, (list, tuple)) else [v]
        items = [str(m).strip().lower() for m in given if m is not None and str(m).strip()]
        unknown = [m for m in items if m not in MODEL_NAMES]
        if unknown or not items:
            raise ValueError(f"{shown(','.join(unknown) or v)}: choose from {', '.join(MODEL_NAMES)} (e.g. trad,topo)")
        return list(dict.fromkeys(items))

    @field_validator("years", mode="before")
    @classmethod
    def _years(cls, v):
        if v is None or isinstance(v, list):
            return v
        years = set()
        for item in str(v).split(","):
            m = re.fullmatch(r"\s*(\d{4})(?:-(\d{4}))?\s*", item)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise ValueError(f"{shown(item)} is not a year or a range of years (e.g. 2018-2020)")
            years.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
        return sorted(years)

    @field_validator("lapse_tmin_c_per_km", "lapse_tmax_c_per_km", mode="before")
    @classmethod
    def _lapse(cls, v):
        if isinstance(v, str):
            try:
                values = [float(x) for x in v.split(",")]
            except ValueError:
                raise ValueError(f"{shown(v)} is not a number or 12 comma-separated numbers (°C per km)") from None
            v = values[0] if len(values) == 1 else values
        if isinstance(v, list) and len(v) != 12:
            raise ValueError(f"give one lapse rate or 12 (Jan..Dec), not {len(v)}")
        return v

    @field_validator("model_parameters", mode="before")
    @classmethod
    def _model_parameters(cls, v):
        from eemt_flow.model.eemt import ModelParameters

        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("give a mapping of parameter: value (e.g. budyko_w: 2.6)")
        given = {str(k): x for k, x in v.items()}
        try:
            params = ModelParameters.from_mapping(given)
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        if params.hamon_mode == "daily":
            raise ValueError("hamon_mode 'daily' is not available in a job (the EEMT tasks receive monthly "
                             "climate only); use hamon_mode 'monthly', the default")
        return {k: getattr(params, k) for k in given}

    @model_validator(mode="after")
    def _executor(self):
        if self.batch_options and self.executor == "local":
            raise ValueError("--batch-options applies to the slurm, condor, sge or wq executors, not local")
        return self

    @model_validator(mode="after")
    def _eemt(self):
        if self.climate is None:
            return self
        if "topo-veg" in self.models and (self.ndvi is None or self.canopy_height is None):
            raise ValueError("the topo-veg model needs both --ndvi and --canopy-height rasters on the DEM grid")
        if self.radiation == "real" and not self.climate.strip().lower().startswith("daymet"):
            raise ValueError("--radiation real needs DAYMET's shortwave radiation (srad, dayl): use --climate daymet, "
                             "or --radiation clear")
        missing = sorted(set(range(1, 13)) - {_month_of(d) for d in self.days})
        if missing:
            raise ValueError(f"EEMT needs radiation for every month; --days misses month(s) "
                             f"{', '.join(map(str, missing))} (use 1-365, or e.g. one day per month)")
        return self

    @property
    def model_names(self) -> list[str]:
        """Output names of the selected models (TRAD, TOPO, TOPO_VEG)."""
        return [MODEL_NAMES[m] for m in self.models] if self.climate else []

    @property
    def step_hours(self) -> float:
        """r.sun's ``step`` [decimal hours]: step_minutes / 60 (15 min → 0.25 h)."""
        return self.step_minutes / 60.0

    def to_yaml_dict(self) -> dict:
        d = self.model_dump(mode="json")
        d["days"] = format_days(self.days)
        d["models"] = ",".join(self.models)
        return d


#: Names accepted in YAML job files besides the field names (flag spellings).
YAML_ALIASES = {"tile_size": "tile_size_cells", "halo": "halo_m", "horizon_step": "horizon_step_deg",
                "model": "models", "station_elevation": "station_elevation_m", "lapse_tmin": "lapse_tmin_c_per_km",
                "lapse_tmax": "lapse_tmax_c_per_km", "results_block": "results_block_cells",
                "exchange_group": "exchange_group_tiles"}


#: Job file keys with no command-line option: errors name the key, not a flag.
FILE_ONLY_KEYS = {"model_parameters"}


def _nearest_key_hint(key: str) -> str:
    """`` (did you mean 'step_minutes'?)`` for the closest valid job-file key, or a pointer to the list."""
    import difflib

    valid = sorted(set(JobSpec.model_fields) | set(YAML_ALIASES))
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return "; the keys are the options of eemt-flow run --help, with _ for - (e.g. step_minutes)"


def load_yaml(path: Path) -> dict:
    """Read a YAML job file into a dict of JobSpec fields (relative paths resolved against it)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"job file {path} does not exist") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"job file {path} is not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"job file {path} must be a mapping of option: value")
    out = {}
    for written, value in data.items():
        key = str(written).replace("-", "_")
        if key not in JobSpec.model_fields and key not in YAML_ALIASES:
            raise UserError(f"{path}: unknown key {shown(written)}{_nearest_key_hint(key)}")
        out[YAML_ALIASES.get(key, key)] = value
    base = Path(path).resolve().parent
    for key in ("dem", "workdir", "password_file", "ndvi", "canopy_height", "wind_speed", "npp", "cache_dir"):
        if isinstance(out.get(key), str) and not Path(out[key]).is_absolute():
            out[key] = str(base / out[key])
    kind, sep, rest = str(out.get("climate") or "").partition(":")
    if sep and rest and not Path(rest).expanduser().is_absolute():
        out["climate"] = f"{kind}:{base / rest}"
    return out


def build_spec(values: dict) -> JobSpec:
    """Validate a dict of parameters into a JobSpec; one clear line on error."""
    try:
        return JobSpec(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "job"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown option"
        if err["type"] == "missing":
            msg = "is required" + (" (give --dem FILE)" if field == "dem" else "")
        if not err["loc"]:  # a check across options; its message names them
            raise UserError(msg) from None
        if field in FILE_ONLY_KEYS:
            raise UserError(f"{field}: {msg}") from None
        flag = "--" + {v: k for k, v in YAML_ALIASES.items()}.get(field, field).replace("_", "-")
        raise UserError(f"{flag}: {msg}") from None
