"""Terrain: Horn slope/aspect against real GRASS, sink filling, D-infinity catchment area on
analytic surfaces, wetness index and α on the real 10 m DEM."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from eemt_flow.terrain.dinf import dinf_flow_directions, dinf_specific_catchment_area
from eemt_flow.terrain.fill import fill_depressions
from eemt_flow.terrain.slope import aspect_north_deg, northness, slope_aspect
from eemt_flow.terrain.whole_dem import compute_terrain

CELL = 10.0


# ---------------------------------------------------------------- slope and aspect
def test_horn_hand_computed_3x3():
    # z = [[1,2,3],[4,5,6],[7,8,9]] m, 10 m cells, centre cell (GRASS r.slope.aspect formulas):
    # dx = ((c1 + 2c4 + c7) − (c3 + 2c6 + c9))/(8·10) = ((1 + 8 + 7) − (3 + 12 + 9))/80 = −8/80 = −0.1
    # dy = ((c7 + 2c8 + c9) − (c1 + 2c2 + c3))/(8·10) = ((7 + 16 + 9) − (1 + 4 + 3))/80 = 24/80 = 0.3
    # slope = atan(√(0.01 + 0.09)) = atan(0.3162278) = 17.548401°
    # aspect = atan2(0.3, −0.1) = 108.434949° (faces north-north-west: z rises to the east and south)
    dem = np.arange(1.0, 10.0).reshape(3, 3)
    slope, aspect = slope_aspect(dem, CELL)
    assert slope[1, 1] == pytest.approx(17.548401, abs=1e-6)
    assert aspect[1, 1] == pytest.approx(108.434949, abs=1e-6)


@pytest.mark.parametrize(
    "name, dz_drow, dz_dcol, aspect_grass, aspect_n, northness_sign",
    [
        # z rises southward (row index grows southward) -> the slope faces north
        ("north", 1.0, 0.0, 90.0, 0.0, 1),
        ("south", -1.0, 0.0, 270.0, 180.0, -1),
        # z rises westward -> faces east; GRASS writes east as 360, not 0
        ("east", 0.0, -1.0, 360.0, 90.0, 0),
        ("west", 0.0, 1.0, 180.0, 270.0, 0),
        ("north-east", 1.0, -1.0, 45.0, 45.0, 1),
    ],
)
def test_aspect_conventions_and_northness(name, dz_drow, dz_dcol, aspect_grass, aspect_n, northness_sign):
    # plane with 0.5 m rise per 10 m cell along each non-zero axis
    i, j = np.mgrid[0:7, 0:7].astype(float)
    dem = 100.0 + 0.5 * (dz_drow * i + dz_dcol * j)
    slope, aspect = slope_aspect(dem, CELL)
    aspect = aspect[2:-2, 2:-2]  # edge cells use the centre for missing neighbours (GRASS -e), so skip them
    slope = slope[2:-2, 2:-2]
    assert np.allclose(aspect, aspect_grass, atol=1e-9), name
    assert np.allclose(aspect_north_deg(aspect) % 360, aspect_n % 360, atol=1e-9)
    # β = atan(0.05·√(rises²)); n = cos(aspect_N)·sin β   (mistake §9.6: cos/sin swapped, radians in degree trig)
    beta = np.degrees(np.arctan(0.05 * np.hypot(dz_drow, dz_dcol)))
    assert np.allclose(slope, beta, atol=1e-9)
    n = northness(aspect, slope)
    expected = np.cos(np.radians(aspect_n)) * np.sin(np.radians(beta))
    assert np.allclose(n, expected, atol=1e-12)
    assert np.sign(np.round(n[1, 1], 12)) == northness_sign


def test_north_face_30_degrees_northness_half():
    # A 30° north-facing slope: n = cos(0°)·sin(30°) = 0.5 exactly (the swapped form gives cos 30°·sin 0° = 0)
    assert northness(90.0, 30.0) == pytest.approx(0.5, abs=1e-12)


def test_flat_cells_aspect_zero_northness_zero():
    slope, aspect = slope_aspect(np.full((5, 5), 42.0), CELL)
    assert np.all(slope == 0.0) and np.all(aspect == 0.0)
    assert np.all(northness(aspect, slope) == 0.0)


def _grass_slope_aspect(dem_path, out_dir):
    script = out_dir / "sa.sh"
    script.write_text(
        "set -e\n"
        f"r.in.gdal input={dem_path} output=dem --quiet\n"
        "g.region raster=dem\n"
        "r.slope.aspect -e elevation=dem slope=slope aspect=aspect precision=DCELL --quiet\n"
        f"r.out.gdal input=slope output={out_dir}/slope.tif type=Float64 -f --quiet\n"
        f"r.out.gdal input=aspect output={out_dir}/aspect.tif type=Float64 -f --quiet\n"
    )
    env = dict(os.environ, PATH="/usr/bin:/bin")
    subprocess.run(["grass", "--tmp-location", str(dem_path), "--exec", "bash", str(script)], check=True,
                   capture_output=True, timeout=120, env=env, cwd=out_dir)
    with rasterio.open(out_dir / "slope.tif") as s, rasterio.open(out_dir / "aspect.tif") as a:
        return s.read(1), a.read(1)


def test_slope_aspect_match_grass_r_slope_aspect_e(mcn_dem, tmp_path):
    if not (shutil.which("grass") or os.path.exists("/usr/bin/grass")):
        pytest.fail("GRASS GIS (grass) is required for this comparison")
    with rasterio.open(mcn_dem) as src:
        dem = src.read(1).astype(float)
        ew, ns = src.res
    assert np.isnan(dem).any()  # the real DEM has nodata: edge and nodata handling are exercised
    grass_slope, grass_aspect = _grass_slope_aspect(mcn_dem, tmp_path)
    slope, aspect = slope_aspect(dem, (ew, ns))
    assert np.array_equal(np.isnan(slope), np.isnan(grass_slope))
    assert np.array_equal(np.isnan(aspect), np.isnan(grass_aspect))
    assert np.array_equal(np.isnan(slope), np.isnan(dem))  # -e: only nodata is nodata
    ok = ~np.isnan(dem)
    assert np.max(np.abs(slope[ok] - grass_slope[ok])) < 1e-6
    d_aspect = np.abs(aspect[ok] - grass_aspect[ok])
    assert np.max(np.minimum(d_aspect, 360.0 - d_aspect)) < 1e-6


# ---------------------------------------------------------------- sink filling
def _has_strictly_lower_neighbour_or_is_outlet(z):
    nr, nc = z.shape
    pad = np.pad(z, 1, constant_values=np.nan)
    lower = np.zeros(z.shape, dtype=bool)
    touches_nodata = np.zeros(z.shape, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            nb = pad[1 + di:1 + di + nr, 1 + dj:1 + dj + nc]
            lower |= nb < z
            touches_nodata |= np.isnan(nb)
    valid = ~np.isnan(z)
    return np.all(lower[valid] | touches_nodata[valid])


def test_fill_depression_to_spill_level():
    # 7×7 plane draining east (0.1 m per cell) with a 2 m pit at (3, 3): z(3,3) = 100 − 0.3 − 2 = 97.7
    i, j = np.mgrid[0:7, 0:7]
    dem = 100.0 - 0.1 * j
    dem[3, 3] -= 2.0
    filled = fill_depressions(dem)
    # spill over the lowest neighbour, column 4 (z = 99.6): the pit is raised to just above 99.6
    assert filled[3, 3] == pytest.approx(99.6, abs=1e-9)
    assert filled[3, 3] > 99.6
    untouched = np.ones(dem.shape, dtype=bool)
    untouched[3, 3] = False
    assert np.array_equal(filled[untouched], dem[untouched])
    assert _has_strictly_lower_neighbour_or_is_outlet(filled)


def test_fill_real_dem_drains_everywhere(mcn_dem):
    with rasterio.open(mcn_dem) as src:
        dem = src.read(1).astype(float)
    filled = fill_depressions(dem)
    assert np.array_equal(np.isnan(filled), np.isnan(dem))
    ok = ~np.isnan(dem)
    assert np.all(filled[ok] >= dem[ok])
    assert _has_strictly_lower_neighbour_or_is_outlet(filled)


# ---------------------------------------------------------------- D-infinity on analytic surfaces
@pytest.mark.parametrize("direction", ["east", "west", "north", "south"])
def test_dinf_inclined_plane_specific_catchment_area(direction):
    """Plane draining along a grid axis: a = (k + 1)·cell, k = cells from the upslope edge.

    Derivation: on a plane every flow line is straight and parallel to the slope, so the
    specific catchment area (upslope area per unit contour width) at a point is its
    distance from the divide measured along the flow line. The divide is the upslope
    edge of the grid (x = 0 at the outer face of the first cell). D-infinity sends a
    cell's whole flow to the next cell downslope (angle on a cardinal direction), so cell
    k holds the area of the k + 1 cells of its row up to and including itself,
    (k + 1)·cell², divided by the contour width cell: a = (k + 1)·cell, which is the
    exact continuous value at the cell's downslope face x = (k + 1)·cell.
    """
    nr, nc = 12, 17
    i, j = np.mgrid[0:nr, 0:nc].astype(float)
    k, dem, angle = {
        "east": (j, 100.0 - 0.2 * j, 0.0),
        "west": (nc - 1 - j, 100.0 + 0.2 * j, np.pi),
        "north": (nr - 1 - i, 100.0 + 0.2 * i, np.pi / 2),
        "south": (i, 100.0 - 0.2 * i, 3 * np.pi / 2),
    }[direction]
    filled = fill_depressions(dem)
    assert np.array_equal(filled, dem)  # nothing to fill on a plane
    sca = dinf_specific_catchment_area(filled, CELL)
    assert np.allclose(sca, (k + 1) * CELL, rtol=1e-12)
    flow = dinf_flow_directions(filled, CELL)
    interior = k < k.max()  # the last cells are outlets (−1): no lower neighbour inside the grid
    assert np.allclose(flow[interior], angle, atol=1e-12)
    assert np.all(flow[~interior] == -1.0)


def test_dinf_diagonal_plane_angle():
    # z falls to the north-east: flow angle 45° counter-clockwise from east, all to the NE neighbour
    i, j = np.mgrid[0:9, 0:9].astype(float)
    dem = 100.0 + 0.1 * i - 0.1 * j
    flow = dinf_flow_directions(dem, CELL)
    assert np.allclose(flow[1:, :-1], np.pi / 4, atol=1e-12)


def test_dinf_outward_cone_half_radius():
    """Cone draining outward from its apex: a = (π r²)/(2π r) = r/2.

    Away from the edges and from the cardinal and diagonal lines through the apex, where
    D-infinity is known to concentrate flow (Prescott et al. 2025, Earth Surf. Dynam.
    13:239), D-infinity with contour width = cell size (TauDEM's convention) gives a median
    of 0.90·r/2 with ≈ 99 % of cells between 0.8 and 1.0 times r/2; the deficit grows towards the
    diagonals, where flow leaves a cell across two faces.
    """
    n, c = 101, 50
    i, j = np.mgrid[0:n, 0:n]
    r = np.hypot(i - c, j - c) * CELL
    dem = 1000.0 - 0.2 * r
    sca = dinf_specific_catchment_area(fill_depressions(dem), CELL)
    theta = np.degrees(np.arctan2(c - i, j - c)) % 45.0
    away_from_lines = (theta > 3.0) & (theta < 42.0)
    band = (r >= 15 * CELL) & (r <= 40 * CELL)
    ratio = sca[band & away_from_lines] / (r[band & away_from_lines] / 2.0)
    assert ratio.size > 2000
    assert 0.85 < np.median(ratio) < 0.95
    assert np.mean((ratio > 0.8) & (ratio < 1.0)) > 0.97
    assert np.all((ratio > 0.7) & (ratio < 1.1))
    # all cells of the band, lines included, stay within a factor 0.7..1.4 of r/2
    all_ratio = sca[band] / (r[band] / 2.0)
    assert np.all((all_ratio > 0.7) & (all_ratio < 1.4))
    # total area is conserved: everything leaves through the outlets
    flow = dinf_flow_directions(dem, CELL)
    assert np.sum(sca[flow == -1.0]) * CELL == pytest.approx(n * n * CELL**2)


# ---------------------------------------------------------------- wetness index and α on the whole DEM
def test_compute_terrain_real_dem(mcn_dem):
    with rasterio.open(mcn_dem) as src:
        dem = src.read(1).astype(float)
        cell = src.res
    terrain = compute_terrain(dem, cell)
    nodata = np.isnan(dem)
    for name in ("slope_deg", "aspect_grass_deg", "aspect_north_deg", "northness", "filled_dem_m",
                 "specific_catchment_area_m", "wetness_index", "alpha"):
        layer = getattr(terrain, name)
        assert layer.shape == dem.shape
        assert np.array_equal(np.isnan(layer), nodata), name  # no NaN outside nodata
    ok = ~nodata
    assert np.all(terrain.specific_catchment_area_m[ok] >= CELL - 1e-9)
    # every λ is positive here (a ≥ 10 m, tan β < 10), so no α is clamped and Σα = N valid cells exactly
    assert terrain.wetness_index[ok].min() > 0
    assert terrain.mean_wetness_index == pytest.approx(terrain.wetness_index[ok].mean())
    assert np.nansum(terrain.alpha) == pytest.approx(ok.sum(), rel=1e-12)
    # α is not ≡ 1 (mistake §9.3) and follows λ / mean(λ)
    assert np.nanstd(terrain.alpha) > 0.1
    assert np.allclose(terrain.alpha[ok], terrain.wetness_index[ok] / terrain.mean_wetness_index)
    assert np.all(np.abs(terrain.northness[ok]) <= 1.0)


def test_compute_terrain_nonpositive_mean_lambda_is_fatal():
    # 1 mm cells on a 45° plane: a = (j + 1)·0.001 m, tan β = 1 -> λ = ln(0.001·(j + 1)) < 0 for all 6 columns
    j = np.tile(np.arange(6, dtype=float), (5, 1))
    dem = 1.0 - 0.001 * j
    with pytest.raises(ValueError, match="mean of the wetness index"):
        compute_terrain(dem, 0.001)


def test_compute_terrain_rejects_empty_dem():
    with pytest.raises(ValueError, match="no valid"):
        compute_terrain(np.full((4, 4), np.nan), CELL)
