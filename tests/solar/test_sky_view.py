"""Sky view factor (Dozier & Frew 1990, Eq. 7b) against closed forms.

With ``H'`` the horizon's zenith angle along azimuth ``phi``, slope ``S`` and aspect ``A``,
the view factor is the mean over the directions of

    f(phi) = cos S sin^2 H' + sin S cos(phi - A) (H' - sin H' cos H')

which is ``2 * integral from H' = 0 to H'_phi of cos(incidence) sin H' dH'``: the cosine
weight of the visible sky at that azimuth, normalised so that a horizontal surface under
an open sky gets 1.

Two kinds of test:

* from horizons written down in closed form (flat ground, a uniform horizon, the V valley,
  the tilted plane). The azimuth integral is the mean over ``n`` equally spaced directions,
  the trapezoid rule of a smooth periodic function, which converges geometrically: with
  360 directions its error is below 1e-12 for every case here (36 directions already give
  1e-12 up to 35 degrees of slope), so these tests hold the result to 1e-12;
* through the real :func:`~eemt_flow.solar.horizon.horizon_angles` on synthetic DEMs. There
  the error is not the azimuth integral's but the horizons' own: r.horizon's sampling takes
  the cell whose centre is nearest to each point of the ray, so a sampled cell's direction
  can be off the ray's by up to half a cell at its distance. Each test bounds the view
  factor's error from the geometry of that sampling, and checks the horizons against it too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from eemt_flow.solar import horizon, sky_view
from eemt_flow.solar.horizon import EARTH_RADIUS_M
from eemt_flow.terrain.slope import slope_aspect

N_AZ = 360
CELL_M = 10.0


def azimuths_rad(n=N_AZ):
    """The horizons' azimuths: direction k at 2 pi k / n counter-clockwise from east."""
    return 2.0 * np.pi * np.arange(n) / n


def svf_of_one_cell(horizon_rad, slope_rad=0.0, aspect_rad=0.0):
    """The view factor of a single cell whose horizons (one per azimuth) are given."""
    hor = np.asarray(horizon_rad, dtype=np.float64)[:, None, None]
    return float(sky_view.sky_view_factor(hor, np.full((1, 1), slope_rad), np.full((1, 1), aspect_rad))[0, 0])


def plane_dem(n_cells, slope_rad, facing_rad, cell_m=CELL_M):
    """A plane of slope ``slope_rad`` facing (falling towards) azimuth ``facing_rad``, counter-clockwise
    from east; row 0 is north. Height rises along the uphill unit vector u = -(cos A, sin A)."""
    rows, cols = np.mgrid[0:n_cells, 0:n_cells]
    east_m, north_m = cols * cell_m, (n_cells - 1 - rows) * cell_m
    return -(east_m * math.cos(facing_rad) + north_m * math.sin(facing_rad)) * math.tan(slope_rad)


# --- closed forms from written-down horizons -------------------------------------------------

def test_open_flat_ground_is_one():
    """H = 0 everywhere, S = 0: f = cos 0 * sin^2(pi/2) = 1 for every azimuth, so V = 1."""
    hor = np.zeros((N_AZ, 3, 4))
    np.testing.assert_allclose(sky_view.sky_view_factor(hor, np.zeros((3, 4)), np.zeros((3, 4))), 1.0,
                               rtol=0, atol=1e-12)


def test_flat_cell_under_a_uniform_horizon():
    """S = 0 reduces Eq. 7b to (1/2 pi) integral of cos^2 H dphi; H = 30 degrees all round:
    cos^2 30 = (sqrt(3)/2)^2 = 0.75. Byte horizons (r.sun's storage) decode to the same."""
    assert svf_of_one_cell(np.full(N_AZ, math.radians(30.0))) == pytest.approx(0.75, abs=1e-12)
    # H = 60 on the northern half (azimuths in (0, pi)), 0 elsewhere, 0 and pi on the boundary:
    # half the directions give cos^2 60 = 0.25, the other half 1, the two boundary ones
    # 1 (H = 0 there): V = (179 * 0.25 + 181 * 1) / 360 = 0.627083...
    phi = azimuths_rad()
    hor = np.where((phi > 0) & (phi < np.pi - 1e-9), math.radians(60.0), 0.0)
    assert svf_of_one_cell(hor) == pytest.approx((179 * 0.25 + 181 * 1.0) / 360, abs=1e-12)
    resolution = 1.0 / 150.0
    as_bytes = np.full((N_AZ, 1, 1), 78, dtype=np.uint8)  # 78 / 150 rad = 29.79 degrees
    got = sky_view.sky_view_factor(as_bytes, np.zeros((1, 1)), np.zeros((1, 1)), horizon_resolution_rad=resolution)
    assert got[0, 0] == pytest.approx(math.cos(78 / 150) ** 2, abs=1e-12)
    with pytest.raises(ValueError, match="horizon_resolution_rad"):
        sky_view.sky_view_factor(as_bytes, np.zeros((1, 1)), np.zeros((1, 1)))


@pytest.mark.parametrize("alpha_deg", [10.0, 20.0, 35.0, 60.0])
def test_v_valley_floor_is_cos_alpha(alpha_deg):
    """Floor of an infinite V valley along the x axis, walls z = |y| tan(alpha).

    Along azimuth phi the ray is at |y| = d |sin phi| after a distance d, so every point of
    the wall it meets is seen at tan H = d |sin phi| tan(alpha) / d = tan(alpha) |sin phi|:
    alpha straight across the valley, 0 along it. The floor is flat (S = 0), so

        V = (1/2 pi) integral of cos^2 H dphi = (1/2 pi) integral of dphi / (1 + k sin^2 phi),
        k = tan^2 alpha.

    With t = tan phi on (-pi/2, pi/2): dphi = dt / (1 + t^2), sin^2 phi = t^2 / (1 + t^2), so
    the half-period integral is integral of dt / (1 + (1 + k) t^2) = pi / sqrt(1 + k); the
    full period gives 2 pi / sqrt(1 + k), and V = 1 / sqrt(1 + tan^2 alpha) = cos(alpha).
    E.g. alpha = 20: V = 0.939693; alpha = 35: 0.819152.
    """
    alpha = math.radians(alpha_deg)
    hor = np.arctan(math.tan(alpha) * np.abs(np.sin(azimuths_rad())))
    assert svf_of_one_cell(hor) == pytest.approx(math.cos(alpha), abs=1e-12)
    if alpha_deg <= 35.0:  # the geometric convergence of the periodic trapezoid rule
        hor36 = np.arctan(math.tan(alpha) * np.abs(np.sin(azimuths_rad(36))))
        assert svf_of_one_cell(hor36) == pytest.approx(math.cos(alpha), abs=1e-12)


def plane_horizon_rad(phi_rad, slope_rad, facing_rad):
    """Horizon of an infinite tilted plane seen from a point on it.

    The plane rises along azimuth phi at tan e = tan S cos(phi - U), U = A + pi the uphill
    azimuth (:func:`sky_view.tangent_plane_elevation_rad`). Uphill (cos(phi - U) > 0) the plane
    itself is the horizon, H = e; downhill it falls below the horizontal and the horizon is
    the horizontal, H = 0 (horizon_angles clamps at 0: the sky ends at the horizontal).
    """
    return np.maximum(np.arctan(math.tan(slope_rad) * np.cos(phi_rad - (facing_rad + math.pi))), 0.0)


@pytest.mark.parametrize("slope_deg", [5.0, 20.0, 35.0, 60.0, 85.0])
@pytest.mark.parametrize("facing_deg", [0.0, 37.3, 90.0, 200.0, 270.0])
def test_tilted_plane_is_one_plus_cos_over_two(slope_deg, facing_deg):
    """An infinite plane of slope S sees the sky above the horizontal: V = (1 + cos S) / 2.

    Nusselt's unit-sphere analogue: a view factor is the area of the visible sky projected
    onto the surface's own plane, divided by pi (the unit disk). Seen from the surface the
    horizontal plane is a great circle tilted by S, which projects onto an ellipse of
    semi-axes 1 and cos S. The sky above it projects onto half the disk (area pi/2) plus half
    the ellipse (pi cos S / 2): V = (pi/2 + pi cos S / 2) / pi = (1 + cos S) / 2.
    E.g. S = 20: (1 + 0.939693) / 2 = 0.969846; S = 35: 0.909576; S = 60: 0.75.
    """
    slope, facing = math.radians(slope_deg), math.radians(facing_deg)
    hor = plane_horizon_rad(azimuths_rad(), slope, facing)
    assert svf_of_one_cell(hor, slope, facing) == pytest.approx((1.0 + math.cos(slope)) / 2.0, abs=1e-12)
    # horizons below the plane (here: all 0, "open") are raised to the tangent plane first:
    # a surface sees nothing behind itself, so the result is the same
    assert svf_of_one_cell(np.zeros(N_AZ), slope, facing) == pytest.approx((1.0 + math.cos(slope)) / 2.0,
                                                                           abs=1e-12)


def test_the_whole_hemisphere_of_a_slope_is_one():
    """Were the sky to reach down to the plane's own tangent plane in every direction (below
    the horizontal downhill), the surface would see its whole hemisphere: V = 1. Checks the
    integrand's slope term with H' > pi/2, which the clamped horizons never reach."""
    slope, facing = math.radians(30.0), math.radians(120.0)
    phi = azimuths_rad()
    tangent = sky_view.tangent_plane_elevation_rad(phi, slope, facing)
    zenith = sky_view.HALF_PI_RAD - tangent
    f = (math.cos(slope) * np.sin(zenith) ** 2
         + math.sin(slope) * np.cos(phi - facing) * (zenith - np.sin(zenith) * np.cos(zenith)))
    assert f.mean() == pytest.approx(1.0, abs=1e-12)
    # the tangent plane rises S straight uphill (phi = A + pi), falls S downhill, 0 across
    np.testing.assert_allclose(sky_view.tangent_plane_elevation_rad(facing + np.array([math.pi, 0.0, math.pi / 2]),
                                                                    slope, facing), [slope, -slope, 0.0], atol=1e-12)


def test_nodata_and_shapes():
    hor = np.zeros((8, 2, 2))
    hor[:, 0, 1] = np.nan
    slope = np.zeros((2, 2))
    slope[1, 0] = np.nan
    out = sky_view.sky_view_factor(hor, slope, np.zeros((2, 2)))
    np.testing.assert_array_equal(np.isnan(out), [[False, True], [True, False]])
    with pytest.raises(ValueError, match="n_azimuths, rows, cols"):
        sky_view.sky_view_factor(np.zeros((8, 4)), np.zeros(4), np.zeros(4))


def test_kernel_equals_the_numpy_reference():
    """The numba kernel against the plain numpy loop, for float and byte horizons, with nodata,
    slopes to 80 degrees and every aspect (so the tangent-plane limit is often active)."""
    rng = np.random.default_rng(7)
    n_az, rows, cols = 72, 23, 31
    slope = rng.uniform(0.0, math.radians(80.0), (rows, cols))
    slope[0, :5] = 0.0
    aspect = rng.uniform(0.0, 2 * np.pi, (rows, cols))
    hor = rng.uniform(0.0, 0.6, (n_az, rows, cols)).astype(np.float32)
    hor[rng.random(hor.shape) < 0.3] = 0.0
    hor[:, 3, 4] = np.nan
    slope[5, 6] = np.nan
    fast = sky_view.sky_view_factor(hor, slope, aspect)
    slow = sky_view.sky_view_factor_reference(hor, slope, aspect)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    assert np.isnan(fast[3, 4]) and np.isnan(fast[5, 6]) and np.isfinite(fast).sum() == rows * cols - 2
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    as_bytes = rng.integers(0, 256, (n_az, rows, cols)).astype(np.uint8)
    res = 1.0 / 150.0
    np.testing.assert_allclose(sky_view.sky_view_factor(as_bytes, slope, aspect, horizon_resolution_rad=res),
                               sky_view.sky_view_factor_reference(as_bytes, slope, aspect, horizon_resolution_rad=res),
                               rtol=0, atol=1e-12)


# --- through the real horizons -------------------------------------------------------------

def test_flat_dem_through_horizon_angles_is_one():
    """On a flat DEM every sample is level, (z - z0) / d - d / 2R < 0, so horizon_angles clamps
    each horizon at 0 and V = 1 exactly (float32 zeros)."""
    dem = np.full((40, 50), 1500.0)
    hor = horizon.horizon_angles(dem, CELL_M, N_AZ, 300.0)
    slope, aspect = slope_aspect(dem, CELL_M)
    svf = sky_view.sky_view_factor(hor, np.deg2rad(slope), np.deg2rad(aspect))
    np.testing.assert_allclose(svf, 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("facing", ["south", "west", "north-east", "east-south-east"])
def test_a_plane_dem_pins_the_conventions(facing):
    """A plane of 35 degrees facing a known direction: Horn's aspect (GRASS, counter-clockwise
    from east) is the azimuth the plane faces, in the horizons' own convention (direction k at
    k * 360 / n counter-clockwise from east), so the one goes into Eq. 7b with the other as is.

    A south-facing plane rises to the north: GRASS aspect 270, horizon highest towards k = 90
    (north), 0 towards k = 270 (south). Taking the aspect as clockwise from north (south =
    180, read as west-facing counter-clockwise from east) raises the horizon to a wrong tangent
    plane and loses several per cent of the sky.
    """
    facing_deg = {"south": 270.0, "west": 180.0, "north-east": 45.0, "east-south-east": 337.5}[facing]
    slope = math.radians(35.0)
    dem = plane_dem(61, slope, math.radians(facing_deg))
    s_deg, a_deg = slope_aspect(dem, CELL_M)
    assert s_deg[30, 30] == pytest.approx(35.0, abs=1e-9)
    assert a_deg[30, 30] == pytest.approx(facing_deg, abs=1e-9)
    hor = horizon.horizon_angles(dem, CELL_M, N_AZ, 200.0, window=(30, 30, 1, 1))
    # nearest the uphill azimuth the horizon is the plane's (no higher than S: nothing on
    # the plane rises more steeply), straight downhill the horizontal
    uphill_k = round((facing_deg + 180.0) % 360.0)
    downhill_k = round(facing_deg) % 360
    plane_k = math.atan(math.tan(slope) * math.cos(math.radians(uphill_k - facing_deg - 180.0)))
    assert plane_k - 1e-6 <= float(hor[uphill_k, 0, 0]) <= slope + 1e-6
    assert float(hor[downhill_k, 0, 0]) == 0.0
    right = float(sky_view.sky_view_factor(hor, np.full((1, 1), slope), np.deg2rad(a_deg[30:31, 30:31]))[0, 0])
    closed = (1.0 + math.cos(slope)) / 2.0
    assert abs(right - closed) < 5e-3
    north_cw = (90.0 - facing_deg) % 360.0  # the same aspect, clockwise from north
    wrong = float(sky_view.sky_view_factor(hor, np.full((1, 1), slope),
                                           np.full((1, 1), math.radians(north_cw)))[0, 0])
    if abs(((north_cw - facing_deg + 180.0) % 360.0) - 180.0) > 1.0:  # the two conventions differ here
        assert closed - wrong > 0.03, (right, wrong)


@pytest.mark.parametrize("slope_deg", [20.0, 35.0, 50.0])
@pytest.mark.parametrize("facing_deg", [270.0, 180.0, 45.0, 337.5])
def test_tilted_plane_dem_through_horizon_angles(slope_deg, facing_deg):
    """Cells inside a tilted plane DEM against (1 + cos S) / 2, with a bound from the sampling.

    Every sampled cell lies on the plane, at tan = tan S cos(theta_j - U) for its direction
    theta_j, which is off the ray's by up to half a cell at its distance. The maximum over the
    ray therefore can only be at or above the plane's horizon H_phi (far samples' directions
    tend to phi; the Earth-curvature drop d / 2R, < 2e-5 here, is undone by the tangent-plane
    limit), and is well above it across the slope, where near cells sit nearer uphill than
    the ray (measured: up to 7 degrees at 35 degrees of slope facing south).

    Raising the horizon of azimuth phi from H_phi by dH removes
    f's share 2 * integral from H_phi to H_phi + dH of cos(incidence(h)) cos h dh. In the
    vertical plane of phi, cos(incidence(h)) = cos(h - H_phi) c0 + sin(h - H_phi) (n . w),
    c0 = cos(incidence(H_phi)), |n . w| <= 1: so |df| <= 2 c0 dH + dH^2. Uphill the horizon is
    the tangent plane, c0 = 0, and the error is of second order; downhill it is the
    horizontal, c0 = sin S cos(phi - A), which is small where sampling raises the horizon
    there (just downhill of the cross-slope directions, where a near neighbour is uphill).
    The test checks |V - (1 + cos S)/2| <= mean(2 c0 dH + dH^2) and the sign (V is only ever
    too low).
    """
    slope, facing = math.radians(slope_deg), math.radians(facing_deg)
    n_cells = 81
    dem = plane_dem(n_cells, slope, facing)
    max_distance_m = 300.0  # 30 cells: every ray of the 21 x 21 centre cells stays in the grid
    window = (30, 30, 21, 21)
    hor = horizon.horizon_angles(dem, CELL_M, N_AZ, max_distance_m, window=window).astype(np.float64)
    s_deg, a_deg = (a[30:51, 30:51] for a in slope_aspect(dem, CELL_M))
    svf = sky_view.sky_view_factor(hor, np.deg2rad(s_deg), np.deg2rad(a_deg))
    closed = (1.0 + math.cos(slope)) / 2.0
    exact = plane_horizon_rad(azimuths_rad(), slope, facing)[:, None, None]
    # the horizons after the tangent-plane limit, against the plane's
    tangent = sky_view.tangent_plane_elevation_rad(azimuths_rad()[:, None, None], slope, facing)
    d_hor = np.maximum(hor, tangent) - exact
    assert d_hor.min() >= -1e-6  # float32 angles
    phi = azimuths_rad()[:, None, None]
    c0 = np.where(exact > 0.0, 0.0, np.maximum(math.sin(slope) * np.cos(phi - facing), 0.0))
    bound = (2.0 * c0 * d_hor + d_hor ** 2).mean(axis=0)
    err = svf - closed
    print(f"plane S={slope_deg:g} facing {facing_deg:g}: V - (1+cos S)/2 from {err.min():.2e} to {err.max():.2e}, "
          f"bound {bound.max():.2e}, horizon error up to {np.degrees(d_hor.max()):.2f} degrees")
    assert np.all(err <= 1e-6)
    assert np.all(-err <= bound + 1e-6)
    assert np.all(-err < 1e-2)  # the sampling error, measured: 3e-4 (20, facing S) to 6e-3 (50, NE)


def trough_dem(alpha, crest_cells, floor_half_cells, length_cells, cell_m):
    """A long valley along the columns: flat floor of half-width w, walls of slope alpha up to
    crests at W cells from the axis, a plateau beyond; the axis is the centre row."""
    rows = 2 * crest_cells + 5
    across_m = np.abs(np.arange(rows) - rows // 2)[:, None] * cell_m * np.ones((1, length_cells))
    wall_m = np.clip(across_m - floor_half_cells * cell_m, 0.0, (crest_cells - floor_half_cells) * cell_m)
    return wall_m * math.tan(alpha)


@pytest.mark.parametrize("alpha_deg", [20.0, 35.0, 50.0])
def test_valley_floor_through_horizon_angles(alpha_deg):
    """The floor of a long valley whose walls' crests are far: cos(alpha') through horizon_angles.

    Walls of slope alpha rise from a flat floor of half-width w to crests at W from the axis.
    From the axis along azimuth phi the ray reaches the wall at lateral distance d |sin phi|,
    where the terrain stands (d |sin phi| - w) tan(alpha) high: its angle
    tan = (|sin phi| - w / d) tan(alpha) grows with d up to the crest (d = W / |sin phi|) and
    falls beyond it over the plateau. So the horizon is the crest,

        tan H = tan(alpha) (W - w) / W |sin phi| = tan(alpha') |sin phi|,

    the V valley's with alpha' (test_v_valley_floor_is_cos_alpha): V = cos(alpha'). (A V
    valley whose walls rise straight from the cell, w = 0, is no test of the view factor: its
    nearest cells set the horizon, and r.horizon's nearest-cell sampling raises it by up to
    4 degrees at 20 degrees of slope, 1 % of V; far crests make the sampling error small.)

    Error bound, W = 200 cells, search distance D = 1000 cells:

    * where the ray reaches the crest (|sin phi| >= W / D), the sampled crest cell is within
      about one cell of the ray's crest point, W / |sin phi| away: tan H is off by a relative
      eps <= 1 / W (measured: -0.02 / W to 0.5 / W), less the curvature drop D / 2R;
    * where it does not (within asin(W / D) = 11.5 degrees of the valley's axis), the horizon
      lies between 0 and that (the last sample, at or beyond D, may still be a crest cell),
      so cos^2 H is off by at most sin^2 H_phi.

    The bound is the mean over phi of the largest change of cos^2 H these allow (0.8e-3 at 20
    degrees to 4.1e-3 at 50); the errors measured are -0.7e-4 to -3.1e-4.
    """
    alpha = math.radians(alpha_deg)
    crest, floor, distance_cells, cell_m = 200, 4, 1000, 1.0
    dem = trough_dem(alpha, crest, floor, 2 * distance_cells + 1, cell_m)
    centre = (dem.shape[0] // 2, distance_cells)
    max_distance_m = distance_cells * cell_m
    hor = horizon.horizon_angles(dem, cell_m, N_AZ, max_distance_m, window=centre + (1, 1), method="sweep")
    slope, aspect = (a[centre[0]:centre[0] + 1, centre[1]:centre[1] + 1] for a in slope_aspect(dem, cell_m))
    assert slope[0, 0] == 0.0  # a flat floor
    svf = float(sky_view.sky_view_factor(hor, np.deg2rad(slope), np.deg2rad(aspect))[0, 0])
    alpha_eff = math.atan(math.tan(alpha) * (crest - floor) / crest)
    closed = math.cos(alpha_eff)

    phi = azimuths_rad()
    t_exact = math.tan(alpha_eff) * np.abs(np.sin(phi))
    t_hor = np.tan(hor[:, 0, 0].astype(np.float64))
    reached = np.abs(np.sin(phi)) >= crest / distance_cells
    eps, drop = 1.0 / crest, max_distance_m / (2.0 * EARTH_RADIUS_M)
    # the horizons obey the sampling's bounds
    assert np.all(np.abs(t_hor - t_exact)[reached] <= eps * t_exact[reached] + drop + 1e-6)
    assert np.all(t_hor[~reached] <= t_exact[~reached] * (1 + eps) + 1e-6)

    def cos2(t):
        return 1.0 / (1.0 + t * t)

    raised = cos2(t_exact) - cos2(t_exact * (1 + eps) + drop)  # cos^2 decreases with t
    lowered = np.where(reached, cos2(np.maximum(t_exact * (1 - eps) - drop, 0.0)), 1.0) - cos2(t_exact)
    worst = np.maximum(raised, lowered)
    bound = worst.mean()
    print(f"valley alpha={alpha_deg:g} (alpha'={math.degrees(alpha_eff):.3f}): V {svf:.6f}, cos(alpha') "
          f"{closed:.6f}, error {svf - closed:.2e}, bound {bound:.2e}")
    assert abs(svf - closed) <= bound
    assert bound < 5e-3


def test_grid_aspect_to_geographic_azimuth_inverts_grid_direction():
    """The aspect is a grid direction, the horizons' azimuths geographic (meridian convergence,
    r.horizon's ellipsoid factor): geographic_azimuth_rad is grid_direction's inverse."""
    axes = np.array([[0.99988304, -0.01529429], [0.01526406, 0.99548104]])  # the example DEM's, UTM 13N
    rng = np.random.default_rng(1)
    for a in rng.uniform(0, 2 * np.pi, 50):
        phi = float(horizon.geographic_azimuth_rad(a, axes))
        d_row, d_col = horizon.grid_direction(phi, axes)
        assert d_col == pytest.approx(math.cos(a), abs=2e-7) and -d_row == pytest.approx(math.sin(a), abs=2e-7)
    # grid north is true north without axes; the convergence here is about -0.88 degree
    assert float(horizon.geographic_azimuth_rad(1.0, None)) == pytest.approx(1.0, abs=1e-15)
    assert math.degrees(float(horizon.geographic_azimuth_rad(0.0, axes))) == pytest.approx(0.876, abs=0.01)


@pytest.mark.parametrize("facing_deg", [45.0, 200.0])
def test_grass_engine_tilted_plane_is_one_plus_cos_over_two(facing_deg, tmp_path):
    """The GRASS engine's sky view factor (real r.horizon and r.slope.aspect, their maps read
    one direction at a time) on a plane of slope 30 degrees facing north-east and south-south-
    west: (1 + cos 30) / 2 = (1 + 0.866025) / 2 = 0.933013 in the cells whose 150 m search stays
    on the plane. The facings are not symmetric about either axis, so r.horizon's directions
    (counter-clockwise from east, 5 degrees apart) and GRASS's aspect are both pinned: a
    mirrored direction puts the uphill horizon (30 degrees) across the slope, where the plane
    is level, and lowers V far below the closed form."""
    import rasterio

    from eemt_flow.dem.raster import write_geotiff
    from eemt_flow.solar import grass

    slope = math.radians(30.0)
    dem = plane_dem(41, slope, math.radians(facing_deg)) + 2000.0
    dem_tif = tmp_path / "plane.tif"
    write_geotiff(dem_tif, dem.astype(np.float32), rasterio.Affine(CELL_M, 0, 350000.0, 0, -CELL_M, 4000000.0),
                  rasterio.crs.CRS.from_epsg(32613))
    grass.compute_terrain(dem_tif, tmp_path / "terrain.tif", tmp_path / "horizons.tif", search_distance_m=150.0,
                          horizon_step_deg=5.0)
    svf = grass.sky_view_factor(tmp_path / "terrain.tif", tmp_path / "horizons.tif")
    assert svf.shape == dem.shape and svf.dtype == np.float32
    inner = svf[16:25, 16:25].astype(np.float64)  # 15 cells (150 m) from every edge
    closed = (1.0 + math.cos(slope)) / 2.0
    err = inner - closed
    print(f"GRASS plane facing {facing_deg:g}: V - (1+cos S)/2 from {err.min():.2e} to {err.max():.2e}")
    assert np.all(err <= 1e-4)  # r.horizon's samples lie on the plane: the horizon can only be raised
    assert np.all(-err < 1e-2)
