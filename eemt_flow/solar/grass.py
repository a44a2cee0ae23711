"""The GRASS engine: r.slope.aspect + r.horizon once per tile, r.sun per day.

Every call runs in its own throw-away GRASS location (``grass --tmp-location``) created
inside the task's scratch directory, so concurrent tasks share no GRASS state.

Shadows come from r.horizon maps (negative angles clamped at 0, GRASS 8.2 bug
OSGeo/grass#2935) passed to r.sun with ``horizon_basename``/``horizon_step``; r.sun's
internal shadow search is never used for results, because in daily mode it stops shading
a cell for the rest of the day once its ray samples a null cell, so its output depends
on the map's extent (EEMT-SPEC §7).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from eemt_flow.dem.raster import write_geotiff
from eemt_flow.processes import children_end_with_me

#: Band order of the terrain file a terrain task writes.
TERRAIN_BANDS = ("slope_deg", "aspect_grass_deg")
#: Basename of the horizon maps inside a GRASS location.
HORIZON_BASENAME = "hor"
#: Export options for r.out.gdal (lossless, compact).
_GDAL_CREATEOPT = "COMPRESS=DEFLATE,BIGTIFF=IF_SAFER"


class GrassError(RuntimeError):
    """A GRASS module failed; the message carries the tail of its output."""


def grass_executable() -> str:
    exe = shutil.which("grass", path=os.environ.get("PATH", "") + ":/usr/bin")
    if exe is None:
        raise GrassError("GRASS GIS is not installed (the 'grass' command is missing); run scripts/bootstrap.sh")
    return exe


def grass_version() -> str:
    out = subprocess.run([grass_executable(), "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def run_in_location(georef: Path, script: str, scratch: Path | None = None) -> str:
    """Run a bash ``script`` inside a fresh temporary GRASS location made from ``georef``.

    The location (CRS and default region of ``georef``) lives in ``scratch`` and is removed
    when GRASS exits. Returns the script's standard output.
    """
    own_scratch = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="eemt-grass-")) if own_scratch else Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    script_path = scratch / "grass_script.sh"
    script_path.write_text("set -euo pipefail\n" + script)
    env = dict(os.environ)
    env["TMPDIR"] = str(scratch)
    env["GRASS_VERBOSE"] = "0"
    env["GRASS_MESSAGE_FORMAT"] = "plain"
    env.pop("PYTHONPATH", None)
    try:
        # A SIGTERM to the task (makeflow's abort, a batch scheduler) must end the GRASS
        # launcher, its shell and the module running under them, not only this process.
        with children_end_with_me():
            proc = subprocess.run(
                [grass_executable(), "--tmp-location", str(Path(georef).resolve()), "--exec", "bash", str(script_path)],
                capture_output=True,
                text=True,
                env=env,
                cwd=scratch,
                check=False,
            )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise GrassError(f"GRASS script failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout
    finally:
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _q(path: Path) -> str:
    return shlex.quote(str(Path(path).resolve()))


def _fmt(value: float) -> str:
    """A number as GRASS should see it (no trailing zeros, no exponent for usual values)."""
    return f"{value:.10g}"


def horizon_map_names(horizon_step_deg: float) -> list[str]:
    """Names r.horizon writes for a full circle at ``horizon_step_deg`` (``hor_000`` …).

    GRASS formats the angle with as many decimals as the step has, padded to 3 digits.
    """
    step = _fmt(horizon_step_deg)
    decimals = len(step.split(".")[1]) if "." in step else 0
    n = round(360 / horizon_step_deg)
    names = []
    for i in range(n):
        angle = i * horizon_step_deg
        if decimals:
            whole, frac = f"{angle:.{decimals}f}".split(".")
            names.append(f"{HORIZON_BASENAME}_{int(whole):03d}_{frac}")
        else:
            names.append(f"{HORIZON_BASENAME}_{int(round(angle)):03d}")
    return names


def _read_bands(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        data = src.read(masked=True).astype("float32")
    return data.filled(np.nan)


def compute_terrain(dem_tif: Path, terrain_tif: Path, horizons_tif: Path, *, search_distance_m: float,
                    horizon_step_deg: float, scratch: Path | None = None) -> None:
    """Slope and aspect (r.slope.aspect -e) and clamped horizon maps (r.horizon) of one tile.

    Writes ``terrain_tif`` (bands: slope [°], aspect [° CCW from east, GRASS]) and
    ``horizons_tif`` (one band per azimuth, radians ≥ 0, band descriptions = map names).
    """
    names = horizon_map_names(horizon_step_deg)
    work = Path(tempfile.mkdtemp(prefix="terrain-", dir=scratch))
    try:
        script = f"""
r.in.gdal -o --quiet input={_q(dem_tif)} output=dem
g.region raster=dem
r.slope.aspect -e --quiet elevation=dem slope=slope aspect=aspect
r.horizon --quiet elevation=dem step={_fmt(horizon_step_deg)} maxdistance={_fmt(search_distance_m)} output={HORIZON_BASENAME}
i.group --quiet group=terrain input=slope,aspect
r.out.gdal --quiet -c -f input=terrain output={_q(work / 'terrain.tif')} type=Float32 createopt={_GDAL_CREATEOPT}
i.group --quiet group=horizons input={','.join(names)}
r.out.gdal --quiet -c -f input=horizons output={_q(work / 'horizons.tif')} type=Float32 createopt={_GDAL_CREATEOPT}
"""
        run_in_location(dem_tif, script, work)
        with rasterio.open(dem_tif) as src:
            transform, crs = src.transform, src.crs
        terrain = _read_bands(work / "terrain.tif")
        write_geotiff(terrain_tif, terrain, transform, crs, descriptions=list(TERRAIN_BANDS))
        _clamp_horizons(work / "horizons.tif", Path(horizons_tif), names)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sky_view_factor(terrain_tif: Path, horizons_tif: Path) -> np.ndarray:
    """Sky view factor [-] of every cell of a tile window from its clamped r.horizon maps and
    r.slope.aspect's slope and aspect (:func:`compute_terrain`'s outputs), read one direction at
    a time (:func:`eemt_flow.solar.sky_view.sky_view_factor_by_direction`). r.horizon's
    directions and GRASS's aspect are both counter-clockwise from the grid's east, so no turn
    is needed. float32, NaN where the DEM is nodata."""
    from eemt_flow.solar.sky_view import sky_view_factor_by_direction

    terrain = _read_bands(terrain_tif)
    slope_rad, aspect_rad = np.deg2rad(terrain[0]), np.deg2rad(terrain[1])
    with rasterio.open(horizons_tif) as src:
        directions = (src.read(band, masked=True).astype("float32").filled(np.nan) for band in src.indexes)
        svf = sky_view_factor_by_direction(directions, src.count, np.nan_to_num(slope_rad), np.nan_to_num(aspect_rad))
    svf[~np.isfinite(slope_rad)] = np.nan
    return svf.astype(np.float32)


def _clamp_horizons(src_path: Path, dst_path: Path, names: list[str]) -> None:
    """Copy the horizon stack band by band, clamping angles at 0 and naming the bands.

    GRASS 8.2 r.horizon can write negative angles that r.sun mishandles (OSGeo/grass#2935).
    Band by band keeps memory at one map whatever the number of azimuths.
    """
    with rasterio.open(src_path) as src:
        profile = src.profile
        profile.update(driver="GTiff", dtype="float32", nodata=float("nan"), compress="deflate", predictor=3,
                       interleave="band", BIGTIFF="IF_SAFER")
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        part = dst_path.with_name(dst_path.name + ".part")
        with rasterio.open(part, "w", **profile) as dst:
            for band, name in enumerate(names, start=1):
                angle = src.read(band, masked=True).astype("float32").filled(np.nan)
                np.maximum(angle, 0.0, out=angle, where=np.isfinite(angle))
                dst.write(angle, band)
                dst.set_band_description(band, name)
    part.replace(dst_path)


def compute_days(dem_tif: Path, terrain_tif: Path, horizons_tif: Path, days: list[int], *, step_hours: float,
                 linke: float, albedo: float, horizon_step_deg: float,
                 scratch: Path | None = None) -> dict[str, np.ndarray]:
    """r.sun daily runs for ``days`` on one tile.

    Returns arrays of shape (len(days), rows, cols): ``glob_rad_wh_m2``, ``insol_time_h`` and
    the beam and reflected parts ``beam_rad_wh_m2``, ``refl_rad_wh_m2`` of the topographic run
    (real slope/aspect, shadows from the horizon maps), and ``flat_glob_rad_wh_m2`` and its
    beam part ``flat_beam_rad_wh_m2`` of the flat run (slope 0, aspect 0, no shadowing, same
    elevation).
    ``step_hours`` is r.sun's ``step`` in decimal hours.
    """
    with rasterio.open(horizons_tif) as src:
        names = list(src.descriptions)
    if len(names) != round(360 / horizon_step_deg) or any(n is None for n in names):
        raise GrassError(f"{horizons_tif}: expected {round(360 / horizon_step_deg)} named horizon bands")
    renames = ",".join(f"hz.{i},{name}" for i, name in enumerate(names, start=1))
    common = f"step={_fmt(step_hours)} linke_value={_fmt(linke)} albedo_value={_fmt(albedo)} nprocs=1"
    lines = [
        f"r.in.gdal -o --quiet input={_q(dem_tif)} output=dem",
        "g.region raster=dem",
        f"r.in.gdal -o --quiet input={_q(terrain_tif)} output=terr",
        f"r.in.gdal -o --quiet input={_q(horizons_tif)} output=hz",
        f"g.rename --quiet raster={renames}",
    ]
    outputs = []
    for day in days:
        lines.append(
            f"r.sun --quiet elevation=dem slope=terr.1 aspect=terr.2 horizon_basename={HORIZON_BASENAME} "
            f"horizon_step={_fmt(horizon_step_deg)} day={day} {common} glob_rad=g{day} insol_time=i{day} "
            f"beam_rad=b{day} refl_rad=r{day}"
        )
        lines.append(f"r.sun --quiet -p elevation=dem slope_value=0 aspect_value=0 day={day} {common} glob_rad=f{day} "
                     f"beam_rad=fb{day}")
    for prefix in ("g", "f", "i", "b", "r", "fb"):
        outputs += [f"{prefix}{d}" for d in days]
    work = Path(tempfile.mkdtemp(prefix="solar-", dir=scratch))
    try:
        lines.append(f"i.group --quiet group=daily input={','.join(outputs)}")
        lines.append(
            f"r.out.gdal --quiet -c -f input=daily output={_q(work / 'daily.tif')} type=Float32 createopt={_GDAL_CREATEOPT}"
        )
        run_in_location(dem_tif, "\n".join(lines) + "\n", work)
        data = _read_bands(work / "daily.tif")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(days)
    return {
        "glob_rad_wh_m2": data[0:n],
        "flat_glob_rad_wh_m2": data[n : 2 * n],
        "insol_time_h": data[2 * n : 3 * n],
        "beam_rad_wh_m2": data[3 * n : 4 * n],
        "refl_rad_wh_m2": data[4 * n : 5 * n],
        "flat_beam_rad_wh_m2": data[5 * n : 6 * n],
    }
