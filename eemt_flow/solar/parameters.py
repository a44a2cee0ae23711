"""The solar parameters every entry point shares: days, time step, sky, horizons, search distance.

One set of checks and defaults for the job specification (:mod:`eemt_flow.workflow.spec`,
which the command line, job files and the web service build) and for the notebook API
(:mod:`eemt_flow.solar.api`), so both accept and refuse the same values with the same words.
Units are in the names; r.sun's decimal hours appear only inside the r.sun call.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from eemt_flow.errors import shown
from eemt_flow.model.constants import DAYS_PER_YEAR
from eemt_flow.solar.clearsky import DEFAULT_ALBEDO, DEFAULT_LINKE

#: Default r.sun time step [minutes]; r.sun itself takes decimal hours (15 min = 0.25 h).
DEFAULT_STEP_MINUTES = 15.0
#: Longest time step accepted [minutes] (EEMT-SPEC §7: reject values above 1 h).
MAX_STEP_MINUTES = 60.0
#: Default horizon azimuth step [degrees] (EEMT-SPEC §7: r.horizon at 1°). The fast engine
#: samples terrain as r.horizon does, so 360 azimuths reproduce r.horizon's maps; finer
#: steps add directions r.sun never sees and do not bring it closer to r.sun.
DEFAULT_HORIZON_STEP_DEG = 1.0
#: Fast engine horizons: the cheaper method for the search distance, Dozier's hull, or the
#: stencil sweep that samples every ray like r.horizon (eemt_flow.solar.horizon).
HorizonMethod = Literal["auto", "hull", "sweep"]
#: Lowest solar altitude [degrees] whose shadows the automatic halo must hold.
AUTO_HALO_MIN_SUN_ALTITUDE_DEG = 5.0
#: Cap of the automatic halo [m]; beyond it the r.horizon search costs more than the
#: low-sun shadows it would add are worth.
AUTO_HALO_MAX_M = 10_000.0


def parse_days(text: str | int | list) -> list[int]:
    """Parse ``1-365``, ``172``, ``1,91,172`` or ``1-31,172`` into sorted unique DOYs."""
    if isinstance(text, int):
        items = [str(text)]
    elif isinstance(text, list):
        items = [str(x) for x in text]
    else:
        items = [p.strip() for p in str(text).split(",") if p.strip()]
    if not items:
        raise ValueError("no days given; use e.g. 1-365, 172 or 1,91,172")
    days: set[int] = set()
    for item in items:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise ValueError(f"{shown(item)} is not a day or a range of days (e.g. 1-365, 172, 1,91,172)")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if not (1 <= first <= last <= DAYS_PER_YEAR):
            raise ValueError(f"{shown(item)}: days must lie in 1-{DAYS_PER_YEAR}, first <= last")
        days.update(range(first, last + 1))
    return sorted(days)


def format_days(days: list[int]) -> str:
    """Inverse of :func:`parse_days`: compact ranges (``1-31,172``)."""
    parts, start, prev = [], None, None
    for d in days:
        if start is None:
            start = prev = d
        elif d == prev + 1:
            prev = d
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = d
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(parts)


def check_step_minutes(v: float) -> float:
    if not (0 < v <= MAX_STEP_MINUTES):
        raise ValueError(f"must be in (0, {MAX_STEP_MINUTES:g}] minutes (r.sun integrates the day in steps of this length)")
    return v


def check_linke(v: float) -> float:
    if not (0 < v <= 8):
        raise ValueError("Linke turbidity must be in (0, 8]; 3.0 is a clear rural sky")
    return v


def check_albedo(v: float) -> float:
    if not (0 <= v <= 1):
        raise ValueError("albedo must be in [0, 1]")
    return v


def check_horizon_step_deg(v: float) -> float:
    if not (0 < v <= 45) or abs(360 / v - round(360 / v)) > 1e-9:
        raise ValueError("horizon step must divide 360 degrees (e.g. 1, 2, 5) and be at most 45")
    return v


def auto_halo_m(relief_m: float, cell_size_m: tuple[float, float]) -> float:
    """Halo [m] that holds the shadows cast down to a 5° sun: relief / tan(5°), capped.

    A ridge of height ``relief_m`` above a cell casts its shadow up to relief / tan(h) away
    when the sun stands h above the horizon. Below 5° the beam is weak (air mass > 10),
    so those longer shadows change daily sums little. Rounded up to whole cells.
    """
    halo = relief_m / math.tan(math.radians(AUTO_HALO_MIN_SUN_ALTITUDE_DEG))
    cell = max(cell_size_m)
    halo = min(max(halo, cell), AUTO_HALO_MAX_M)
    return math.ceil(halo / cell) * cell


#: Field types that carry the checks, for every model that takes these parameters.
Days = Annotated[list[int], BeforeValidator(parse_days)]
StepMinutes = Annotated[float, AfterValidator(check_step_minutes)]
Linke = Annotated[float, AfterValidator(check_linke)]
Albedo = Annotated[float, AfterValidator(check_albedo)]
HorizonStepDeg = Annotated[float, AfterValidator(check_horizon_step_deg)]


def all_days() -> list[int]:
    """Every day of the (non-leap, solar) year: 1..365."""
    return list(range(1, DAYS_PER_YEAR + 1))


class SolarParameters(BaseModel):
    """The solar parameters of the notebook API, checked as a job's are."""

    model_config = ConfigDict(extra="forbid")

    days: Days = Field(default_factory=all_days)
    step_minutes: StepMinutes = DEFAULT_STEP_MINUTES
    linke: Linke = DEFAULT_LINKE
    albedo: Albedo = DEFAULT_ALBEDO
    horizon_step_deg: HorizonStepDeg = DEFAULT_HORIZON_STEP_DEG
    horizon_method: HorizonMethod = "auto"
