"""Tiled terrain equals the whole-DEM terrain: filled elevation bit for bit, catchment area
within 1e-6 relative per cell, on the real 10 m DEM, a synthetic DEM with nested
depressions, flats and a lake over several tiles, nodata holes and edges, and random DEMs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from eemt_flow.terrain import stages as S
from eemt_flow.terrain.fill import _count_undrained, fill_depressions, fill_levels_and_flat_distance, raise_by_ulps
from eemt_flow.terrain.whole_dem import compute_terrain

CELL = 10.0
SCA_RTOL = 1e-6  # issue 13: catchment area within 1e-6 relative per cell


def _write_dem(path: Path, dem: np.ndarray, cell=CELL) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=dem.shape[1], height=dem.shape[0], count=1,
                       dtype="float32", crs="EPSG:32612", transform=from_origin(500000.0, 4000000.0, cell, cell),
                       nodata=np.nan) as dst:
        dst.write(dem.astype(np.float32)[np.newaxis])
    return path


def _read_whole(path) -> tuple[np.ndarray, tuple[float, float]]:
    with rasterio.open(path) as src:
        return S.read_dem_window(src, 0, 0, src.height, src.width), (abs(src.transform.a), abs(src.transform.e))


def _assert_tiled_equals_whole(dem_path, tile_size_cells, workdir, group_tiles=None):
    dem, cell = _read_whole(dem_path)
    ref = compute_terrain(dem, cell)
    grid = S.run_tiled_terrain(dem_path, tile_size_cells, workdir, group_tiles=group_tiles)
    filled = S.read_mosaic(workdir, grid, "filled_m")
    assert np.array_equal(filled, ref.filled_dem_m, equal_nan=True)  # bit for bit (NaN where nodata)
    sca = S.read_mosaic(workdir, grid, "specific_catchment_area_m")
    assert np.array_equal(np.isnan(sca), np.isnan(dem))
    ok = ~np.isnan(dem)
    assert np.max(np.abs(sca[ok] / ref.specific_catchment_area_m[ok] - 1.0)) < SCA_RTOL
    for layer, ref_layer in (("wetness_index", ref.wetness_index), ("alpha", ref.alpha),
                             ("slope_deg", ref.slope_deg), ("aspect_grass_deg", ref.aspect_grass_deg),
                             ("northness", ref.northness)):
        got = S.read_mosaic(workdir, grid, layer)
        assert np.array_equal(np.isnan(got), np.isnan(ref_layer)), layer
        assert np.allclose(got[ok], ref_layer[ok], rtol=1e-9, atol=1e-12), layer
    mean = float(np.load(Path(workdir) / "terrain" / "wetness_mean.npz")["mean"])
    assert mean == pytest.approx(ref.mean_wetness_index, rel=1e-12)
    return grid, ref


# ---------------------------------------------------------------- the reference definition
def test_flat_lake_raised_by_path_distance_ulps():
    # 5 × 6 grid: a border at 10 m with one low outlet (2, 5) at 1 m, an interior 3 × 4 flat at 5 m.
    # F: every interior cell spills through (2, 5), so F = max(5, 1) = 5 everywhere inside (one flat).
    # Drains: (1,4), (2,4), (3,4) touch the outlet (2,5) (F = 1 < 5) -> k = 0; column 3 -> k = 1,
    # column 2 -> k = 2, column 1 -> k = 3 (8-connected steps). Border cells are outlets: unchanged.
    dem = np.full((5, 6), 10.0)
    dem[1:4, 1:5] = 5.0
    dem[2, 5] = 1.0
    z = fill_depressions(dem)
    expected = dem.copy()
    for col, k in ((4, 0), (3, 1), (2, 2), (1, 3)):
        v = 5.0
        for _ in range(k):
            v = np.nextafter(v, np.inf)
        expected[1:4, col] = v
    assert np.array_equal(z, expected)
    assert z[2, 1] > z[2, 2] > z[2, 3] > z[2, 4] == 5.0


def test_raise_by_ulps_equals_repeated_nextafter():
    levels = np.array([0.0, -0.0, 5e-324, -5e-324, -1.0, 1.0, -2.0**-1022, 1e300, 123.456, -7.5])
    for k in (0, 1, 2, 3, 17):
        expected = levels.copy()
        for _ in range(k):
            expected = np.nextafter(expected, np.inf)
        got = raise_by_ulps(levels, np.full(levels.shape, k))
        assert np.array_equal(got.view(np.int64), expected.view(np.int64)) or np.array_equal(got, expected), k


def _drains_everywhere(z):
    return _count_undrained(np.pad(z, 1, constant_values=np.nan)) == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 12), st.integers(3, 12), st.integers(0, 2**32 - 1))
def test_fill_depressions_every_cell_drains_property(rows, cols, seed):
    # Integer elevations 0..4 m: many depressions, ties and flats; some nodata holes.
    rng = np.random.default_rng(seed)
    dem = rng.integers(0, 5, size=(rows, cols)).astype(np.float32).astype(float)
    dem[rng.random((rows, cols)) < 0.1] = np.nan
    z = fill_depressions(dem)
    assert np.array_equal(np.isnan(z), np.isnan(dem))
    ok = ~np.isnan(dem)
    assert np.all(z[ok] >= dem[ok])
    # every valid cell is an outlet or has a strictly lower neighbour -> a strictly descending path to an outlet
    assert _drains_everywhere(z)
    # the fill level itself is the minimax level: no cell is raised above its lowest neighbour's level
    level, k = fill_levels_and_flat_distance(dem)
    assert np.array_equal(z, raise_by_ulps(level, k), equal_nan=True)


def test_float64_dem_with_tiny_drops_is_refused():
    # One row between 10 m borders: [5, 5, L, L, L] then an outlet at 0 m, L = 5 m − 1 ULP.
    # The lower flat drains east: its k = 2, 1, 0, so its first cell becomes L + 2 ULP = 5 m + 1 ULP;
    # the higher flat's last cell (k = 0, z = 5 m) then has no strictly lower neighbour.
    low = np.nextafter(5.0, -np.inf)
    dem = np.full((3, 7), 10.0)
    dem[1, 1:3] = 5.0
    dem[1, 3:6] = low
    dem[1, 6] = 0.0
    assert raise_by_ulps(np.array([low]), np.array([2]))[0] == np.nextafter(5.0, np.inf)
    with pytest.raises(ValueError, match="no lower neighbour"):
        fill_depressions(dem)


# ---------------------------------------------------------------- (a) the real 10 m DEM in 64-cell tiles
def test_tiled_equals_whole_mcn_10m_64_cell_tiles(mcn_dem, tmp_path):
    grid, _ = _assert_tiled_equals_whole(mcn_dem, 64, tmp_path)
    assert (grid.n_rows, grid.n_cols) == (4, 4)  # 211 × 228 cells: edge tiles of 19 and 36 cells


# ---------------------------------------------------------------- (b) synthetic: nested depressions, flats, a lake
def synthetic_dem(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Sloping, wavy terrain with noise, a wide bowl (a flat lake once filled) holding a nested
    pit, and a perfectly flat plateau; elevations rounded to cm and stored as float32."""
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[0:rows, 0:cols].astype(float)
    z = 500.0 - 0.05 * i - 0.03 * j + 8.0 * np.sin(i / 23.0) * np.cos(j / 31.0) + 3.0 * np.sin((i + j) / 11.0)
    z += rng.normal(0.0, 0.4, size=z.shape)
    z -= 15.0 * np.exp(-(np.hypot(i - rows * 0.45, j - cols * 0.5) / (0.25 * min(rows, cols))) ** 2)
    z -= 6.0 * np.exp(-(np.hypot(i - rows * 0.5, j - cols * 0.42) / (0.05 * min(rows, cols))) ** 2)
    z[int(rows * 0.1):int(rows * 0.3), int(cols * 0.6):int(cols * 0.9)] = 520.0
    return np.round(z, 2).astype(np.float32).astype(float)


def _flat_tiles(dem, tile):
    """How many tiles the largest raised flat (cells with k > 0) touches, and its largest k."""
    level, k = fill_levels_and_flat_distance(dem)
    rows, cols = np.nonzero(k > 0)
    biggest = np.bincount(np.unique(level[rows, cols], return_inverse=True)[1]).argmax()
    sel = level[rows, cols] == np.unique(level[rows, cols])[biggest]
    return len({(r // tile, c // tile) for r, c in zip(rows[sel], cols[sel])}), int(k.max())


@pytest.mark.parametrize("tile", [32, 24])
def test_tiled_equals_whole_synthetic_lake_and_flats(tmp_path, tile):
    """With 24-cell tiles (7 × 8) the fill and flow exchanges run in groups of 2 × 2: three levels."""
    dem = synthetic_dem(150, 170)
    path = _write_dem(tmp_path / "dem.tif", dem)
    # the case exercises what it claims: a lake over many tiles, flat distances longer than a tile,
    # filled depressions, and uneven edge tiles (150 = 4·32 + 22 = 6·24 + 6, 170 = 5·32 + 10 = 7·24 + 2)
    n_tiles, k_max = _flat_tiles(dem, tile)
    assert n_tiles >= 4 and k_max > tile
    assert (fill_depressions(dem) > dem).sum() > 1000
    grid, ref = _assert_tiled_equals_whole(path, tile, tmp_path / "work", group_tiles=2 if tile == 24 else None)
    assert len(S.exchange_levels(grid)) == (3 if tile == 24 else 1)  # 7 × 8 tiles → 4 × 4 → 2 × 2 → 1
    assert len({t.height for t in grid.tiles}) == 2 and len({t.width for t in grid.tiles}) == 2
    # with 24-cell tiles the lake covers whole tiles: the exchange's Chebyshev shortcut is exercised
    open_flat = sum(bool(np.load(f)["open_flat"]) for f in (tmp_path / "work" / "terrain").glob("*/flat_graph.npz"))
    assert open_flat >= (1 if tile == 24 else 0)
    # drainage crosses many tile boundaries: the outlet cells collect the whole DEM
    assert np.nanmax(ref.specific_catchment_area_m) > 50 * tile * CELL


# ---------------------------------------------------------------- (c) nodata holes, nodata edges, an empty tile
def test_tiled_equals_whole_with_nodata(tmp_path):
    dem = synthetic_dem(150, 170, seed=3)
    i, j = np.mgrid[0:150, 0:170]
    dem[np.hypot(i - 70, j - 120) < 9] = np.nan  # a hole inside the domain
    dem[j < 3 + (i % 7)] = np.nan  # a ragged nodata west edge
    dem[:2, 40:90] = np.nan  # nodata along part of the north edge
    dem[32:64, 64:96] = np.nan  # tile (1, 2) of the 32-cell grid is all nodata
    dem[100:103, 10:13] = np.nan  # a small hole next to the bowl
    path = _write_dem(tmp_path / "dem.tif", dem)
    grid, _ = _assert_tiled_equals_whole(path, 32, tmp_path / "work")
    empty = S.read_mosaic(tmp_path / "work", grid, "filled_m")[32:64, 64:96]
    assert np.isnan(empty).all()


# ---------------------------------------------------------------- random DEMs and random tile sizes
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(4, 13), st.integers(4, 13), st.integers(2, 6), st.floats(0.0, 0.25), st.integers(0, 2**32 - 1),
       st.sampled_from([2, 3, 8]))
def test_tiled_equals_whole_random_property(tmp_path_factory, rows, cols, tile, nodata_fraction, seed, group):
    """Up to 7 × 7 tiles, exchanged in groups of 2 (up to 3 levels), 3, or 8 (one level)."""
    rng = np.random.default_rng(seed)
    dem = rng.integers(0, 6, size=(rows, cols)).astype(float)  # many ties: flats and depressions everywhere
    dem[rng.random((rows, cols)) < nodata_fraction] = np.nan
    dem[rows // 2, cols // 2] = 3.0  # at least one valid cell
    tmp = tmp_path_factory.mktemp("rand")
    _assert_tiled_equals_whole(_write_dem(tmp / "dem.tif", dem), tile, tmp / "work", group_tiles=group)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 14), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_terminal_tree_keeps_the_minimax_distances(n, n_edges, seed):
    """The fill exchange's contraction of a group: the tree on the terminals (Kruskal's merges)
    has the same bottleneck distance between every two terminals as the whole graph, computed
    here by a Floyd–Warshall over (min, max): d(a, b) = min over k of max(d(a, k), d(k, b))."""
    from eemt_flow.terrain.tiled import _terminal_tree

    rng = np.random.default_rng(seed)
    ea, eb = rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
    ew = rng.integers(0, 5, n_edges).astype(float)  # ties on purpose
    terminal = rng.random(n) < 0.5

    def bottleneck(a, b, w):
        d = np.full((n, n), np.inf)
        np.fill_diagonal(d, -np.inf)
        for x, y, v in zip(a, b, w):
            d[x, y] = d[y, x] = min(d[x, y], v) if x != y else -np.inf
        for k in range(n):
            d = np.minimum(d, np.maximum(d[:, k:k + 1], d[k:k + 1, :]))
        return d

    ta, tb, tw = _terminal_tree(n, ea.astype(np.int64), eb.astype(np.int64), ew, terminal)
    assert ta.size < max(terminal.sum(), 1)  # a forest on the terminals
    assert terminal[ta].all() and terminal[tb].all()
    t = np.flatnonzero(terminal)
    assert np.array_equal(bottleneck(ta, tb, tw)[np.ix_(t, t)], bottleneck(ea, eb, ew)[np.ix_(t, t)])


# ---------------------------------------------------------------- the stage list: rules name every file
def test_each_rule_runs_with_only_its_declared_inputs(mcn_dem, tmp_path):
    """Run every rule in a sandbox holding only its declared inputs (as on a Work Queue worker
    without a shared file system): it must succeed and write exactly its declared outputs."""
    dem, cell = _read_whole(mcn_dem)
    with rasterio.open(mcn_dem) as src:
        shape = (src.height, src.width)
    rules = S.stage_list(shape, 32, group_tiles=2, block_tiles=3)
    # 7 × 8 tiles of 32 cells; the fill and flow exchanges in groups of 2 × 2: 4 × 4 groups, 2 × 2, then the top;
    # the per-tile stages in blocks of 3 × 3 tiles: 3 × 3 blocks (the last row and column of blocks narrower)
    blocks = [r.tiles for r in rules if r.stage == "fill_local"]
    assert [len(b) for b in blocks] == [9, 9, 6, 9, 9, 6, 3, 3, 2]
    assert sorted(t.name for b in blocks for t in b) == sorted(t.name for t in S.terrain_grid(shape, 32).tiles)
    assert [r.stage for r in rules if not r.tiles] == (
        ["grid"] + ["fill_up"] * (16 + 4) + ["fill_exchange"] + ["fill_down"] * (4 + 16) + ["flat_exchange"]
        + ["flow_up"] * (16 + 4) + ["flow_exchange"] + ["flow_down"] * (4 + 16) + ["wetness_mean"])
    for r in rules:  # a group's task reads its members' graphs (at most 2 × 2) and its own files, nothing else
        if r.group is not None:
            assert len(r.inputs) <= 1 + 4 + 2, r.inputs
    # only the stages that need elevations read the DEM: by windows around their own tile
    assert {r.stage for r in rules if r.reads_dem} == {"grid", "fill_local", "flow_finish"}
    store = tmp_path / "store"
    store.mkdir()
    perimeter_cells = sum(2 * (t.height + t.width) for t in S.terrain_grid(shape, 32).tiles)  # 6,974 on 7 × 8 tiles
    for n, rule in enumerate(rules):
        box = tmp_path / f"box{n}"
        box.mkdir()
        for rel in rule.inputs:
            if rel == "DEM":
                continue
            assert (store / rel).exists(), f"{rule.stage} needs {rel} before it is made"
            (box / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(store / rel, box / rel)
        if rule.group is not None:  # declared from the perimeter cells its members' graphs hold, at most
            graphs = [p for p in rule.inputs if p.endswith("_graph.npz") and f"/{rule.group.name}/" not in p]
            held = sum(len(np.load(store / p)["perim_row"]) for p in graphs)
            assert held <= rule.group.member_perimeter_cells(shape)
            assert rule.memory_bytes == S.STAGE_BASE_BYTES + S.EXCHANGE_BYTES_PER_PERIMETER_CELL * \
                rule.group.member_perimeter_cells(shape)
        rule.call(mcn_dem, box)
        made = {str(p.relative_to(box)) for p in box.rglob("*") if p.is_file()} - set(rule.inputs)
        assert made == set(rule.outputs), rule.stage
        on_disk = sum(p.stat().st_size for p in box.rglob("*") if p.is_file())
        assert on_disk <= rule.disk_bytes - S.DISK_MARGIN_BYTES, (rule.stage, on_disk, rule.disk_bytes)  # even without the margin
        for rel in rule.outputs:
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(box / rel, store / rel)
        if not rule.tiles and rule.stage != "grid":  # exchanges read only small files, never the DEM,
            assert not any(p.endswith((".tif", "fill_state.npz")) or p == "DEM" for p in rule.inputs)  # a tile raster or state
            read_bytes = sum((store / p).stat().st_size for p in rule.inputs)
            assert read_bytes <= S.SMALL_FILE_BYTES_PER_PERIMETER_CELL * perimeter_cells, (rule.stage, read_bytes)
        elif rule.tiles:  # a block reads its tiles' own files and at most its neighbours' edge files
            own = {f"/{t.name}/" for t in rule.tiles}
            others = [p for p in rule.inputs if p not in ("DEM", "terrain/grid.json", "terrain/wetness_mean.npz")
                      and not any(o in f"/{p}" for o in own)]
            assert all(p.endswith(("filled_edge.npz", "fill_spill.npz")) for p in others), rule.stage
            r0, r1, c0, c1 = S.block_span(rule.tiles)
            assert len(others) <= 2 * (r1 - r0) + 2 * (c1 - c0) + 4  # the ring of tiles around the block
    ref = compute_terrain(dem, cell)
    grid = S.terrain_grid(shape, 32)
    assert np.array_equal(S.read_mosaic(store, grid, "filled_m"), ref.filled_dem_m, equal_nan=True)
    ok = ~np.isnan(dem)
    sca = S.read_mosaic(store, grid, "specific_catchment_area_m")
    assert np.max(np.abs(sca[ok] / ref.specific_catchment_area_m[ok] - 1.0)) < SCA_RTOL


def test_tile_size_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2 cells"):
        S.terrain_grid((10, 10), 1)


# ---------------------------------------------------------------- declared memory per tile stage
def test_tile_stage_peak_memory_within_declared_bytes_per_cell(tmp_path):
    """Each per-tile stage on a 700 × 700 tile, in a fresh subprocess: the rise of VmHWM over the
    resident size before the stage stays under TILE_STAGE_BYTES_PER_CELL × padded cells. A block
    of 2 × 2 tiles of 350 in one process stays under one such tile's: the tiles run one after the
    other, and nothing of one is kept for the next."""
    n = 700
    dem = synthetic_dem(n, n, seed=5)
    path = _write_dem(tmp_path / "dem.tif", dem)
    work, work_blocks = tmp_path / "work", tmp_path / "work-blocks"
    S.run_tiled_terrain(path, n, work)  # one tile: produces every stage's inputs
    S.run_tiled_terrain(path, n // 2, work_blocks, block_tiles=1)
    script = textwrap.dedent("""
        import sys
        from eemt_flow.terrain import stages as S
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        stage, dem, n, size, block, work, tiny = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), *sys.argv[6:]
        S.run_tiled_terrain(tiny, 4, work + "-tiny")  # compile and import everything first
        rule = next(r for r in S.stage_list((n, n), size, block_tiles=block) if r.stage == stage)
        before = status("VmRSS:")
        rule.call(dem, work)
        print(len(rule.tiles), rule.memory_bytes - S.STAGE_BASE_BYTES, status("VmHWM:") - before)
    """)
    tiny = _write_dem(tmp_path / "tiny.tif", synthetic_dem(9, 9))
    declared = S.TILE_STAGE_BYTES_PER_CELL * (n + 4) ** 2
    declared_half = S.TILE_STAGE_BYTES_PER_CELL * (n // 2 + 4) ** 2  # 120 B x 354^2 = 15.0 MB
    for stage in ("fill_local", "flat_local", "flat_finish", "flow_local", "flow_finish"):
        for size, block, wd, tiles, limit in ((n, 1, work, 1, declared), (n // 2, 2, work_blocks, 4, declared_half)):
            out = subprocess.run([sys.executable, "-c", script, stage, str(path), str(n), str(size), str(block),
                                  str(wd), str(tiny)], capture_output=True, text=True, check=True, timeout=300)
            n_tiles, rule_bytes, rise = (int(v) for v in out.stdout.split()[-3:])
            assert (n_tiles, rule_bytes) == (tiles, limit)
            assert 0 < rise <= limit, (stage, block, rise, limit)
