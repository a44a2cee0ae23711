"""Tiled terrain kernels: the per-tile stages and the perimeter exchange solves.

Together they reproduce the whole-DEM reference of :mod:`eemt_flow.terrain` (filled
elevation bit for bit, specific catchment area to rounding) from tiles that each see
only their own cells plus a ring of one or two cells, and exchanges that see only the
tiles' perimeters. No file I/O here; :mod:`eemt_flow.terrain.stages` decides which
window each stage reads and where its results go.

The chain, per tile (t) and across tiles (x):

1. (t) :func:`fill_local` — Priority-Flood of the tile from its perimeter and its own
   outlets, labelling each cell with the perimeter cell whose flood reached it, and the
   spill graph between labels (Barnes 2016, §3).
2. (x) :func:`solve_fill` — the labels of all tiles joined by the perimeter adjacencies;
   a minimax Dijkstra from the outlets gives each label's spill level. The final level of
   a cell is ``max(local level, spill level of its label)``.
3. (t) :func:`flat_local` — on the final level F: the cells that drain (outlets, or a
   strictly lower neighbour), the in-tile distance to them, and the flats that cross
   the tile edge: their crossing cells and the in-tile distances between them.
4. (x) :func:`solve_flats` — shortest paths over the crossing cells of all tiles: the
   flat distance k of every crossing cell. A tile that is one open flat (inside a lake)
   lists no pairs; the exchange links its crossing cells at their Chebyshev distance.
5. (t) :func:`flat_finish` — k of every cell (a BFS seeded with the drains and the
   crossing cells), z = F raised by k ULPs.
6. (t) :func:`flow_local` — D-infinity on the tile plus a 2-cell ring of z: the local
   accumulation at the perimeter cells with no inflow (A0), and the linear transfer M
   from each ring cell that drains into the tile to the perimeter cells, by propagating
   a unit through its downstream footprint (Barnes 2017's perimeter idea, with
   D-infinity's proportional split: a transfer coefficient per reachable perimeter cell
   instead of a single link).
7. (x) :func:`solve_flow` — the perimeter cells of all tiles in descending z:
   ``acc(x) = A0(x) + Σ_u M[x, u]·acc(u)``; every u is strictly higher than x.
8. (t) :func:`flow_finish` — the tile's accumulation with the inflows of its ring cells.

References
----------
Barnes, R. (2016), Parallel priority-flood depression filling for trillion cell digital
elevation models on desktops or clusters, Computers & Geosciences 96:56–68.
Barnes, R. (2017), Parallel non-divergent flow accumulation for trillion cell digital
elevation models on desktops or clusters, Environmental Modelling & Software 92:202–212.
Tarboton, D. G. (1997), Water Resour. Res. 33:309–319.
"""

from __future__ import annotations

import numba
import numpy as np

from eemt_flow.terrain.dinf import _E1_DI, _E1_DJ, _E2_DI, _E2_DJ, _dinf_kernel
from eemt_flow.terrain.fill import _flood_levels, _outlets, raise_by_ulps
from eemt_flow.terrain.flats import _draining, _flat_distance_bfs
from eemt_flow.terrain.grid import NB_DI, NB_DJ, cell_sizes
from eemt_flow.terrain.heap import heap_grow, heap_pop, heap_push

OCEAN_LABEL = 1  # label of every cell that drains to a DEM outlet inside its own tile
FIRST_PERIMETER_LABEL = 2
UNREACHED = np.int64(2**62)  # "no path" in the integer flat distances


# ---------------------------------------------------------------------------
# Geometry helpers (pure numpy)
# ---------------------------------------------------------------------------
def perimeter_mask(height: int, width: int) -> np.ndarray:
    """Cells on the outer row/column of a height × width tile."""
    mask = np.zeros((height, width), dtype=bool)
    mask[0, :] = mask[-1, :] = True
    mask[:, 0] = mask[:, -1] = True
    return mask


def ring_mask(height: int, width: int, depth: int) -> np.ndarray:
    """Cells of the (height + 2·depth) × (width + 2·depth) padded tile outside the core."""
    mask = np.ones((height + 2 * depth, width + 2 * depth), dtype=bool)
    mask[depth:depth + height, depth:depth + width] = False
    return mask


def pad_with_ring(core: np.ndarray, ring_values: np.ndarray, depth: int) -> np.ndarray:
    """The core surrounded by ``ring_values`` (in :func:`ring_mask` order)."""
    h, w = core.shape
    pad = np.full((h + 2 * depth, w + 2 * depth), np.nan)
    pad[ring_mask(h, w, depth)] = ring_values
    pad[depth:depth + h, depth:depth + w] = core
    return pad


# ---------------------------------------------------------------------------
# Shortest paths over the exchange graphs (the heap: eemt_flow.terrain.heap)
# ---------------------------------------------------------------------------
@numba.njit(cache=True)
def _graph_dijkstra(indptr, indices, weights, dist0, minimax):
    """Shortest (sum) or bottleneck (minimax) distances on a CSR graph from initial values."""
    n = dist0.size
    dist = dist0.copy()
    done = np.zeros(n, dtype=np.bool_)
    cap = indices.size + n + 1
    hk = np.empty(cap)
    hs = np.zeros(cap, dtype=np.int64)
    hv = np.empty(cap, dtype=np.int64)
    size = 0
    for v in range(n):
        if dist[v] < np.inf:
            size = heap_push(hk, hs, hv, size, dist[v], 0, v)
    while size > 0:
        d, v, size = heap_pop(hk, hs, hv, size)
        if done[v] or d > dist[v]:
            continue
        done[v] = True
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            if minimax:
                nd = max(d, weights[e])
            else:
                nd = d + weights[e]
            if nd < dist[u]:
                dist[u] = nd
                size = heap_push(hk, hs, hv, size, nd, 0, u)
    return dist


@numba.njit(cache=True)
def _flat_dijkstra(indptr, indices, weights, dist0, node_block, block_ptr, block_nodes, rows, cols):
    """Shortest distances on a CSR graph plus blocks whose nodes are all linked at Chebyshev distance."""
    n = dist0.size
    dist = dist0.copy()
    done = np.zeros(n, dtype=np.bool_)
    hk = np.empty(16)
    hs = np.zeros(16, dtype=np.int64)
    hv = np.empty(16, dtype=np.int64)
    size = 0
    for v in range(n):
        if dist[v] < np.inf:
            hk, hs, hv = heap_grow(hk, hs, hv, size)
            size = heap_push(hk, hs, hv, size, dist[v], 0, v)
    while size > 0:
        d, v, size = heap_pop(hk, hs, hv, size)
        if done[v] or d > dist[v]:
            continue
        done[v] = True
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            nd = d + weights[e]
            if nd < dist[u]:
                dist[u] = nd
                hk, hs, hv = heap_grow(hk, hs, hv, size)
                size = heap_push(hk, hs, hv, size, nd, 0, u)
        b = node_block[v]
        if b >= 0:
            for m in range(block_ptr[b], block_ptr[b + 1]):
                u = block_nodes[m]
                nd = d + max(abs(rows[u] - rows[v]), abs(cols[u] - cols[v]))
                if nd < dist[u]:
                    dist[u] = nd
                    hk, hs, hv = heap_grow(hk, hs, hv, size)
                    size = heap_push(hk, hs, hv, size, nd, 0, u)
    return dist


def _csr(n_nodes: int, a: np.ndarray, b: np.ndarray, w: np.ndarray):
    """Undirected CSR adjacency (both directions) of edges a–b with weights w."""
    src = np.concatenate([a, b]).astype(np.int64)
    dst = np.concatenate([b, a]).astype(np.int64)
    wt = np.concatenate([w, w]).astype(np.float64)
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), dst[order], wt[order]


def _neighbour_pairs(rows: np.ndarray, cols: np.ndarray, dem_shape) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i ≠ j, of 8-adjacent cells among the given global cells."""
    nr, nc = dem_shape
    g = rows.astype(np.int64) * nc + cols
    order = np.argsort(g, kind="stable")
    g_sorted = g[order]
    ii, jj = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    if g_sorted.size == 0:
        return ii[0], jj[0]
    for di, dj in zip(NB_DI, NB_DJ):
        r2, c2 = rows + di, cols + dj
        inside = (r2 >= 0) & (r2 < nr) & (c2 >= 0) & (c2 < nc)
        g2 = r2.astype(np.int64) * nc + c2
        pos = np.minimum(np.searchsorted(g_sorted, g2), g_sorted.size - 1)
        src = np.flatnonzero(inside & (g_sorted[pos] == g2))
        ii.append(src)
        jj.append(order[pos[src]])
    return np.concatenate(ii), np.concatenate(jj)


def lookup_cells(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, query_rows, query_cols, dem_shape,
                 missing=np.nan) -> np.ndarray:
    """Values of the cells (query_rows, query_cols) among the known cells (rows, cols); ``missing`` elsewhere."""
    nr, nc = dem_shape
    g = rows.astype(np.int64) * nc + cols
    order = np.argsort(g, kind="stable")
    g_sorted = g[order]
    qr = np.asarray(query_rows, dtype=np.int64)
    qc = np.asarray(query_cols, dtype=np.int64)
    inside = (qr >= 0) & (qr < nr) & (qc >= 0) & (qc < nc)
    gq = qr * nc + qc
    out = np.full(qr.shape, missing, dtype=np.result_type(values.dtype, np.asarray(missing).dtype))
    if g_sorted.size == 0:
        return out
    pos = np.minimum(np.searchsorted(g_sorted, gq), g_sorted.size - 1)
    hit = inside & (g_sorted[pos] == gq)
    out[hit] = values[order[pos[hit]]]
    return out


# ---------------------------------------------------------------------------
# 1. Fill: per-tile Priority-Flood with labels and the spill graph
# ---------------------------------------------------------------------------
@numba.njit(cache=True)
def _label_edges(level, label):
    """(label a, label b, max level) for every 8-adjacent pair of cells with different labels.

    Two passes (count, then fill) so the buffers are exactly as long as the edge list.
    """
    nr, nc = level.shape
    m = 0
    for sweep in range(2):
        if sweep == 1:
            la = np.empty(m, dtype=np.int64)
            lb = np.empty(m, dtype=np.int64)
            w = np.empty(m)
            m = 0
        # E, SW, S, SE: each unordered pair once
        for i in range(nr):
            for j in range(nc):
                a = label[i, j]
                if a <= 0:
                    continue
                for k in (4, 5, 6, 7):
                    ni = i + NB_DI[k]
                    nj = j + NB_DJ[k]
                    if ni >= nr or nj < 0 or nj >= nc:
                        continue
                    b = label[ni, nj]
                    if b <= 0 or b == a:
                        continue
                    if sweep == 1:
                        la[m] = min(a, b)
                        lb[m] = max(a, b)
                        w[m] = max(level[i, j], level[ni, nj])
                    m += 1
    return la, lb, w


def _unique_min_edges(la, lb, w):
    if la.size == 0:
        return la, lb, w
    order = np.lexsort((w, lb, la))
    la, lb, w = la[order], lb[order], w[order]
    first = np.ones(la.size, dtype=bool)
    first[1:] = (la[1:] != la[:-1]) | (lb[1:] != lb[:-1])
    return la[first], lb[first], w[first]


def fill_local(dem_pad: np.ndarray) -> dict:
    """Stage 1 of a tile: its Priority-Flood from its perimeter and its outlets.

    Parameters
    ----------
    dem_pad : array, shape (h + 2, w + 2)
        The tile's elevations [m] with a 1-cell ring of the neighbours', NaN = nodata or
        beyond the DEM (the ring only tells which tile cells are outlets).

    Returns
    -------
    dict
        ``level`` (h, w) local fill level [m]; ``label`` (h, w) int32: 0 nodata,
        :data:`OCEAN_LABEL` for cells that drain to an outlet of the tile, else
        :data:`FIRST_PERIMETER_LABEL` + the index of the perimeter seed;
        ``perim_index`` flat core index of the valid perimeter cells, ``perim_dem``,
        ``perim_label``; the spill graph ``edge_a``, ``edge_b``, ``edge_level``;
        ``n_labels``.
    """
    dem_pad = np.ascontiguousarray(dem_pad, dtype=np.float64)
    core = np.ascontiguousarray(dem_pad[1:-1, 1:-1])
    h, w = core.shape
    outlet = _outlets(dem_pad)
    valid = ~np.isnan(core)
    perim = np.flatnonzero((perimeter_mask(h, w) & valid).ravel())
    seed = np.zeros(h * w, dtype=np.int32)
    seed[perim] = FIRST_PERIMETER_LABEL + np.arange(perim.size, dtype=np.int32)
    seed[outlet.ravel()] = OCEAN_LABEL
    level, label = _flood_levels(core, seed.reshape(h, w))
    la, lb, lw = _unique_min_edges(*_label_edges(level, label))
    return dict(level=level, label=label, perim_index=perim.astype(np.int64), perim_dem=core.ravel()[perim],
                perim_label=label.ravel()[perim].astype(np.int64), edge_a=la, edge_b=lb, edge_level=lw,
                n_labels=int(FIRST_PERIMETER_LABEL + perim.size))


def group_edge(rows: np.ndarray, cols: np.ndarray, box: tuple[int, int, int, int], dem_shape) -> np.ndarray:
    """Which cells (rows, cols) lie on the edge of the group ``box`` that faces other groups.

    A side on the DEM's boundary faces nothing: no label spills and no flow arrives across
    it, so its cells are left out (the top group's members then hold the cut lines between
    them, not the DEM's whole outline).
    """
    r0, c0, h, w = box
    nr, nc = dem_shape
    return (((rows == r0) & (r0 > 0)) | ((rows == r0 + h - 1) & (r0 + h < nr))
            | ((cols == c0) & (c0 > 0)) | ((cols == c0 + w - 1) & (c0 + w < nc)))


def _fill_union(tiles: list[dict], dem_shape):
    """The label graph of several tiles' (or groups') fill graphs joined by their perimeter adjacencies.

    Node ``offsets[ti] + label`` is label ``label`` of part ``ti``; every part's
    :data:`OCEAN_LABEL` is the one node ``ocean`` (the last). Returns (n_nodes, ocean,
    offsets, edge a, edge b, edge level, and per perimeter cell of all parts: row, col,
    elevation, node).
    """
    offsets = np.cumsum([0] + [int(t["n_labels"]) for t in tiles])
    n_nodes = int(offsets[-1]) + 1
    ocean = n_nodes - 1

    def node(ti, lab):
        lab = np.asarray(lab, dtype=np.int64)
        return np.where(lab == OCEAN_LABEL, ocean, offsets[ti] + lab)
    ea, eb, ew = [], [], []
    rows, cols, dems, nodes = [], [], [], []
    for ti, t in enumerate(tiles):
        ea.append(node(ti, t["edge_a"]))
        eb.append(node(ti, t["edge_b"]))
        ew.append(np.asarray(t["edge_level"], dtype=np.float64))
        rows.append(t["perim_row"])
        cols.append(t["perim_col"])
        dems.append(t["perim_dem"])
        nodes.append(node(ti, t["perim_label"]))
    rows = np.concatenate(rows).astype(np.int64)
    cols = np.concatenate(cols).astype(np.int64)
    dems = np.concatenate(dems).astype(np.float64)
    nodes = np.concatenate(nodes).astype(np.int64)
    i, j = _neighbour_pairs(rows, cols, dem_shape)
    cross = nodes[i] != nodes[j]
    i, j = i[cross], j[cross]
    ea.append(nodes[i])
    eb.append(nodes[j])
    ew.append(np.maximum(dems[i], dems[j]))
    return (n_nodes, ocean, offsets, np.concatenate(ea), np.concatenate(eb), np.concatenate(ew),
            rows, cols, dems, nodes)


def solve_fill(tiles: list[dict], dem_shape, known: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """Exchange 1: the spill level of every label of every tile.

    Parameters
    ----------
    tiles : list of dict
        Per tile (or group, :func:`contract_fill`): ``perim_row``, ``perim_col`` (global),
        ``perim_dem``, ``perim_label``, ``edge_a``, ``edge_b``, ``edge_level``,
        ``n_labels`` (from :func:`fill_local`).
    dem_shape : (rows, cols)
    known : (part, label, spill) arrays, optional
        Spill levels already solved outside these parts [m]: the group's terminals
        (:func:`contract_fill`), whose levels its parent solved. A path from a label to an
        outlet leaves the group through one of them, so the minimax search seeded with
        them (and the outlets at −inf) gives the whole DEM's spill levels.

    Returns
    -------
    list of dict
        Per tile: ``spill`` (n_labels,) [m], −inf for the ocean label, and
        ``perim_level``, the final fill level of its perimeter cells [m].
    """
    n_nodes, ocean, offsets, ea, eb, ew, _, _, dems, nodes = _fill_union(tiles, dem_shape)
    indptr, indices, weights = _csr(n_nodes, ea, eb, ew)
    dist0 = np.full(n_nodes, np.inf)
    dist0[ocean] = -np.inf
    if known is not None:
        part, label, level = (np.asarray(a) for a in known)
        dist0[offsets[part.astype(np.int64)] + label.astype(np.int64)] = level
    spill = _graph_dijkstra(indptr, indices, weights, dist0, True)
    out = []
    start = 0
    for ti, t in enumerate(tiles):
        n_p = len(t["perim_dem"])
        s = spill[offsets[ti]:offsets[ti + 1]].copy()
        s[OCEAN_LABEL] = -np.inf
        level = np.maximum(dems[start:start + n_p], spill[nodes[start:start + n_p]])
        out.append(dict(spill=s, perim_level=level))
        start += n_p
    return out


@numba.njit(cache=True)
def _find(parent, v):
    root = v
    while parent[root] != root:
        root = parent[root]
    while parent[v] != root:
        parent[v], v = root, parent[v]
    return root


@numba.njit(cache=True)
def _terminal_tree(n_nodes, ea, eb, ew, terminal):
    """Kruskal's merges restricted to the terminals: a tree on them with the same minimax distances.

    Edges are merged in increasing level; when two components that each hold a terminal
    merge at level w, their representative terminals are joined at w. For terminals a, b
    the tree path's largest edge is the level at which Kruskal first connected them, which
    is their minimax (bottleneck) distance in the graph (the minimum spanning forest holds
    every bottleneck path).
    """
    parent = np.arange(n_nodes)
    rep = np.where(terminal, np.arange(n_nodes), -1)
    order = np.argsort(ew, kind="mergesort")
    ta = np.empty(n_nodes, dtype=np.int64)
    tb = np.empty(n_nodes, dtype=np.int64)
    tw = np.empty(n_nodes)
    m = 0
    for e in order:
        ra = _find(parent, ea[e])
        rb = _find(parent, eb[e])
        if ra == rb:
            continue
        parent[rb] = ra
        if rep[ra] >= 0 and rep[rb] >= 0:
            ta[m] = rep[ra]
            tb[m] = rep[rb]
            tw[m] = ew[e]
            m += 1
        elif rep[ra] < 0:
            rep[ra] = rep[rb]
    return ta[:m], tb[:m], tw[:m]


def contract_fill(parts: list[dict], dem_shape, box: tuple[int, int, int, int]) -> dict:
    """The fill graph of a group of tiles (or of groups), in a tile's format, on the group's edge only.

    Parameters
    ----------
    parts : list of dict
        The members' fill graphs (:func:`fill_local` with global perimeter positions, or
        this function's output).
    dem_shape : (rows, cols)
    box : (row, col, height, width)
        The group's cells.

    Returns
    -------
    dict
        A fill graph (``perim_row``, ``perim_col``, ``perim_dem``, ``perim_label``,
        ``edge_a``, ``edge_b``, ``edge_level``, ``n_labels``) whose perimeter is the
        members' perimeter cells on the group's edge (:func:`group_edge`), whose labels are their nodes (the
        terminals, the ocean as :data:`OCEAN_LABEL`) and whose edges are the terminal tree
        (:func:`_terminal_tree`): the same minimax distances between them as the members'
        joined graph, so an exchange over groups gives the same spill levels as one over
        all tiles. Its size grows with the group's perimeter, not its area. Also
        ``terminal_part`` and ``terminal_label`` (the member and member label of each
        label from :data:`FIRST_PERIMETER_LABEL` on), which :func:`solve_fill` takes back
        as ``known``.
    """
    n_nodes, ocean, offsets, ea, eb, ew, rows, cols, dems, nodes = _fill_union(parts, dem_shape)
    edge = group_edge(rows, cols, box, dem_shape)
    terminal_nodes = np.unique(nodes[edge & (nodes != ocean)])
    terminal = np.zeros(n_nodes, dtype=bool)
    terminal[terminal_nodes] = True
    terminal[ocean] = True
    label_of = np.full(n_nodes, -1, dtype=np.int64)
    label_of[terminal_nodes] = FIRST_PERIMETER_LABEL + np.arange(terminal_nodes.size)
    label_of[ocean] = OCEAN_LABEL
    ta, tb, tw = _terminal_tree(n_nodes, ea.astype(np.int64), eb.astype(np.int64), ew.astype(np.float64), terminal)
    la, lb = label_of[ta], label_of[tb]
    part = np.searchsorted(offsets, terminal_nodes, side="right") - 1
    return dict(perim_row=rows[edge], perim_col=cols[edge], perim_dem=dems[edge], perim_label=label_of[nodes[edge]],
                edge_a=np.minimum(la, lb), edge_b=np.maximum(la, lb), edge_level=tw,
                n_labels=np.int64(FIRST_PERIMETER_LABEL + terminal_nodes.size),
                terminal_part=part.astype(np.int64), terminal_label=(terminal_nodes - offsets[part]).astype(np.int64))


def fill_finish(level_local: np.ndarray, label: np.ndarray, spill: np.ndarray) -> np.ndarray:
    """The final fill level F of a tile: ``max(local level, spill level of the label)``."""
    lab = np.where(label > 0, label, OCEAN_LABEL)
    return np.where(label > 0, np.maximum(level_local, spill[lab]), np.nan)


# ---------------------------------------------------------------------------
# 2. Flats: distance to the drains across tiles
# ---------------------------------------------------------------------------
@numba.njit(cache=True)
def _crossing_cells(level_pad):
    """Core perimeter cells with a ring neighbour (another tile's cell) of the same level."""
    nr = level_pad.shape[0] - 2
    nc = level_pad.shape[1] - 2
    out = np.zeros((nr, nc), dtype=np.bool_)
    for i in range(nr):
        for j in range(nc):
            if not (i == 0 or j == 0 or i == nr - 1 or j == nc - 1):
                continue
            f = level_pad[i + 1, j + 1]
            if np.isnan(f):
                continue
            for k in range(8):
                pi = i + 1 + NB_DI[k]
                pj = j + 1 + NB_DJ[k]
                if pi == 0 or pj == 0 or pi == nr + 1 or pj == nc + 1:
                    if level_pad[pi, pj] == f:
                        out[i, j] = True
                        break
    return out


@numba.njit(cache=True)
def _crossing_pair_distances(level, cross):
    """In-tile 8-connected distances between crossing cells of the same flat (a < b).

    A pair is left out when a shortest path between them passes through another crossing
    cell c: d(a, b) = d(a, c) + d(c, b) is then implied by the pairs (a, c) and (c, b) (by
    induction on the distance), so the exchange's shortest paths are unchanged. Along a
    straight tile edge in an open flat this keeps O(crossing cells) pairs instead of
    O(crossing cells²). The search still expands every cell of the flat: cutting it at
    such cells would leave cells reached only by detours, whose (redundant) pairs cost
    more than the search saved (50x more pairs on the 2000² test DEM).
    """
    nr, nc = level.shape
    n = nr * nc
    flat = level.ravel()
    slot = np.full(n, -1, dtype=np.int64)
    for q in range(cross.size):
        slot[cross[q]] = q
    stamp = np.full(n, -1, dtype=np.int64)
    dist = np.zeros(n, dtype=np.int64)
    via = np.zeros(n, dtype=np.bool_)
    queue = np.empty(n, dtype=np.int64)
    pa = []
    pb = []
    pd = []
    for q in range(cross.size):
        src = cross[q]
        head = 0
        tail = 1
        queue[0] = src
        stamp[src] = q
        dist[src] = 0
        via[src] = False
        while head < tail:
            c = queue[head]
            head += 1
            s = slot[c]
            if s > q and not via[c]:
                pa.append(q)
                pb.append(s)
                pd.append(dist[c])
            # a path onwards from c passes through a crossing cell other than the source
            onward_via = via[c] or (s >= 0 and c != src)
            ci = c // nc
            cj = c - ci * nc
            for k in range(8):
                ni = ci + NB_DI[k]
                nj = cj + NB_DJ[k]
                if ni < 0 or nj < 0 or ni >= nr or nj >= nc:
                    continue
                nb = ni * nc + nj
                if flat[nb] != flat[src]:
                    continue
                if stamp[nb] == q:
                    if dist[nb] == dist[c] + 1 and onward_via:
                        via[nb] = True
                    continue
                stamp[nb] = q
                dist[nb] = dist[c] + 1
                via[nb] = onward_via
                queue[tail] = nb
                tail += 1
    a = np.empty(len(pa), dtype=np.int64)
    b = np.empty(len(pa), dtype=np.int64)
    d = np.empty(len(pa), dtype=np.int64)
    for m in range(len(pa)):
        a[m] = pa[m]
        b[m] = pb[m]
        d[m] = pd[m]
    return a, b, d


def flat_local(level: np.ndarray, level_ring: np.ndarray) -> dict:
    """Stage 3 of a tile: the drains, and the flats crossing its edge.

    Parameters
    ----------
    level : array, shape (h, w)
        Final fill level F of the tile [m] (:func:`fill_finish`).
    level_ring : array
        F of the 1-cell ring (:func:`ring_mask` order), NaN beyond the DEM or on nodata.

    Returns
    -------
    dict
        ``cross_index`` flat core index of the crossing cells, ``cross_level``,
        ``cross_drain_distance`` (in-tile distance to a drain, :data:`UNREACHED` if none),
        ``pair_a``, ``pair_b``, ``pair_distance`` (in-tile distances between crossing
        cells of the same flat); ``open_flat`` True when the whole tile is one flat with
        no nodata (a tile inside a lake): the distances are then the Chebyshev distances
        between the cells, which the exchange computes itself, and no pairs are listed
        (the pair search would cost O(perimeter × tile cells)).
    """
    level = np.ascontiguousarray(level, dtype=np.float64)
    level_pad = pad_with_ring(level, level_ring, 1)
    cross = np.flatnonzero(_crossing_cells(level_pad).ravel()).astype(np.int64)
    d_local = _flat_distance_bfs(level, _draining(level_pad)).ravel()[cross]
    flat = level.ravel()
    open_flat = bool(cross.size > 0 and not np.isnan(flat[0]) and np.all(flat == flat[0]))
    if open_flat:
        a = b = d = np.empty(0, dtype=np.int64)
    else:
        a, b, d = _crossing_pair_distances(level, cross)
    return dict(cross_index=cross, cross_level=flat[cross], cross_drain_distance=np.where(d_local < 0, UNREACHED, d_local),
                pair_a=a, pair_b=b, pair_distance=d, open_flat=open_flat)


def solve_flats(tiles: list[dict], dem_shape) -> list[np.ndarray]:
    """Exchange 2: the flat distance k of every crossing cell of every tile.

    Parameters
    ----------
    tiles : list of dict
        Per tile: ``cross_row``, ``cross_col`` (global), ``cross_level``,
        ``cross_drain_distance``, ``pair_a``, ``pair_b``, ``pair_distance``.

    Returns
    -------
    list of int64 arrays
        k per crossing cell, per tile.
    """
    sizes = [len(t["cross_level"]) for t in tiles]
    offsets = np.cumsum([0] + sizes)
    n = int(offsets[-1])
    rows = np.concatenate([t["cross_row"] for t in tiles] + [np.empty(0, np.int64)]).astype(np.int64)
    cols = np.concatenate([t["cross_col"] for t in tiles] + [np.empty(0, np.int64)]).astype(np.int64)
    level = np.concatenate([t["cross_level"] for t in tiles] + [np.empty(0)]).astype(np.float64)
    owner = np.repeat(np.arange(len(tiles)), sizes)
    ea = [offsets[ti] + np.asarray(t["pair_a"], dtype=np.int64) for ti, t in enumerate(tiles)]
    eb = [offsets[ti] + np.asarray(t["pair_b"], dtype=np.int64) for ti, t in enumerate(tiles)]
    ew = [np.asarray(t["pair_distance"], dtype=np.float64) for t in tiles]
    i, j = _neighbour_pairs(rows, cols, dem_shape)
    keep = (owner[i] != owner[j]) & (level[i] == level[j])
    ea.append(i[keep])
    eb.append(j[keep])
    ew.append(np.ones(int(keep.sum())))
    indptr, indices, weights = _csr(n, np.concatenate(ea), np.concatenate(eb), np.concatenate(ew))
    d0 = np.concatenate([np.asarray(t["cross_drain_distance"], dtype=np.int64) for t in tiles]
                        + [np.empty(0, np.int64)])
    dist0 = np.where(d0 >= UNREACHED, np.inf, d0.astype(np.float64))
    # open-flat tiles: every crossing cell reaches every other one at the Chebyshev distance
    node_block = np.full(n, -1, dtype=np.int64)
    block_ptr = [0]
    for ti, t in enumerate(tiles):
        if bool(t.get("open_flat", False)) and sizes[ti] > 0:
            node_block[offsets[ti]:offsets[ti + 1]] = len(block_ptr) - 1
            block_ptr.append(block_ptr[-1] + sizes[ti])
    block_nodes = np.flatnonzero(node_block >= 0).astype(np.int64)  # grouped by tile, in block order
    k = _flat_dijkstra(indptr, indices, weights, dist0, node_block, np.asarray(block_ptr, dtype=np.int64),
                       block_nodes, rows, cols)
    if np.isinf(k).any():
        raise RuntimeError("solve_flats: a flat crossing tiles has no drain (the fill exchange is inconsistent)")
    k = k.astype(np.int64)
    return [k[offsets[ti]:offsets[ti + 1]] for ti in range(len(tiles))]


@numba.njit(cache=True)
def _seeded_bfs(level, seed_cells, seed_dist):
    """Unit-weight shortest distances within flats from seeds with given start distances."""
    nr, nc = level.shape
    n = nr * nc
    flat = level.ravel()
    dist = np.full(n, UNREACHED, dtype=np.int64)
    for s in range(seed_cells.size):
        c = seed_cells[s]
        if seed_dist[s] < dist[c]:
            dist[c] = seed_dist[s]
    order = np.argsort(seed_dist, kind="mergesort")
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    sp = 0
    done = np.zeros(n, dtype=np.bool_)
    while head < tail or sp < order.size:
        take_seed = False
        if sp < order.size:
            if head >= tail or seed_dist[order[sp]] <= dist[queue[head]]:
                take_seed = True
        if take_seed:
            c = seed_cells[order[sp]]
            sp += 1
        else:
            c = queue[head]
            head += 1
        if done[c]:
            continue
        done[c] = True
        ci = c // nc
        cj = c - ci * nc
        for k in range(8):
            ni = ci + NB_DI[k]
            nj = cj + NB_DJ[k]
            if ni < 0 or nj < 0 or ni >= nr or nj >= nc:
                continue
            nb = ni * nc + nj
            if flat[nb] != flat[c] or dist[c] + 1 >= dist[nb]:
                continue
            dist[nb] = dist[c] + 1
            queue[tail] = nb
            tail += 1
    return dist.reshape((nr, nc))


def flat_finish(level: np.ndarray, level_ring: np.ndarray, cross_index: np.ndarray,
                cross_k: np.ndarray) -> np.ndarray:
    """Stage 5 of a tile: the filled elevation z = F raised by k ULPs [m] (float64)."""
    level = np.ascontiguousarray(level, dtype=np.float64)
    drains = np.flatnonzero(_draining(pad_with_ring(level, level_ring, 1)).ravel())
    seeds = np.concatenate([drains, np.asarray(cross_index, dtype=np.int64)]).astype(np.int64)
    seed_dist = np.concatenate([np.zeros(drains.size, np.int64), np.asarray(cross_k, dtype=np.int64)])
    k = _seeded_bfs(level, seeds, seed_dist)
    valid = ~np.isnan(level)
    if (k[valid] >= UNREACHED).any():
        raise RuntimeError("flat_finish: a flat cell has no drain (the flat exchange is inconsistent)")
    return raise_by_ulps(level, np.where(valid, k, 0))


# ---------------------------------------------------------------------------
# 3. D-infinity accumulation across tiles
# ---------------------------------------------------------------------------
@numba.njit(cache=True)
def _split(facet, r_in_facet, pi, pj, ew, ns):
    """Receivers (padded positions) and proportions of the cell at (pi, pj)."""
    k = facet[pi, pj]
    if _E1_DJ[k] != 0:
        r_max = np.arctan2(ns, ew)
    else:
        r_max = np.arctan2(ew, ns)
    p2 = r_in_facet[pi, pj] / r_max
    p1 = 1.0 - p2
    return pi + _E1_DI[k], pj + _E1_DJ[k], p1, pi + _E2_DI[k], pj + _E2_DJ[k], p2


@numba.njit(cache=True)
def _in_core(pi, pj, d, h, w):
    return d <= pi < d + h and d <= pj < d + w


@numba.njit(cache=True)
def _ring_sources(z_pad, facet, d, h, w):
    """Padded flat indices of ring-1 cells that send flow into the core."""
    hp, wp = z_pad.shape
    out = []
    for pi in range(d - 1, d + h + 1):
        for pj in range(d - 1, d + w + 1):
            if _in_core(pi, pj, d, h, w) or pi < 0 or pj < 0 or pi >= hp or pj >= wp:
                continue
            if np.isnan(z_pad[pi, pj]) or facet[pi, pj] < 0:
                continue
            k = facet[pi, pj]
            if _in_core(pi + _E1_DI[k], pj + _E1_DJ[k], d, h, w) or _in_core(pi + _E2_DI[k], pj + _E2_DJ[k], d, h, w):
                out.append(pi * wp + pj)
    res = np.empty(len(out), dtype=np.int64)
    for m in range(len(out)):
        res[m] = out[m]
    return res


@numba.njit(cache=True)
def _accumulate_core(z_pad, facet, r_in_facet, order, d, h, w, sources, source_acc, ew, ns):
    """Cell counts of the core: one per cell plus the inflow of the ring sources."""
    wp = z_pad.shape[1]
    acc = np.zeros((h, w))
    for s in range(sources.size):
        pi = sources[s] // wp
        pj = sources[s] - pi * wp
        i1, j1, p1, i2, j2, p2 = _split(facet, r_in_facet, pi, pj, ew, ns)
        if p1 > 0.0 and _in_core(i1, j1, d, h, w):
            acc[i1 - d, j1 - d] += p1 * source_acc[s]
        if p2 > 0.0 and _in_core(i2, j2, d, h, w):
            acc[i2 - d, j2 - d] += p2 * source_acc[s]
    for idx in range(order.size):
        c = order[idx]
        i = c // w
        j = c - i * w
        acc[i, j] += 1.0
        if facet[i + d, j + d] < 0:
            continue
        i1, j1, p1, i2, j2, p2 = _split(facet, r_in_facet, i + d, j + d, ew, ns)
        if p1 > 0.0 and _in_core(i1, j1, d, h, w):
            acc[i1 - d, j1 - d] += p1 * acc[i, j]
        if p2 > 0.0 and _in_core(i2, j2, d, h, w):
            acc[i2 - d, j2 - d] += p2 * acc[i, j]
    return acc


@numba.njit(cache=True)
def _transfer(z_pad, facet, r_in_facet, d, h, w, sources, perim_slot, ew, ns):
    """M[x, u]: the share of a unit leaving ring source u that passes perimeter cell x."""
    wp = z_pad.shape[1]
    n = h * w
    value = np.zeros(n)
    stamp = np.full(n, -1, dtype=np.int64)
    hk = np.empty(n)
    hs = np.zeros(n, dtype=np.int64)
    hv = np.empty(n, dtype=np.int64)
    mx = []
    mu = []
    mv = []
    for s in range(sources.size):
        size = 0
        pi = sources[s] // wp
        pj = sources[s] - pi * wp
        i1, j1, p1, i2, j2, p2 = _split(facet, r_in_facet, pi, pj, ew, ns)
        for t in range(2):
            ri, rj, p = (i1, j1, p1) if t == 0 else (i2, j2, p2)
            if p > 0.0 and _in_core(ri, rj, d, h, w):
                c = (ri - d) * w + rj - d
                if stamp[c] != s:
                    stamp[c] = s
                    value[c] = 0.0
                    size = heap_push(hk, hs, hv, size, -z_pad[ri, rj], 0, c)
                value[c] += p
        while size > 0:
            _, c, size = heap_pop(hk, hs, hv, size)
            if perim_slot[c] >= 0:
                mx.append(perim_slot[c])
                mu.append(s)
                mv.append(value[c])
            i = c // w
            j = c - i * w
            if facet[i + d, j + d] < 0:
                continue
            i1, j1, p1, i2, j2, p2 = _split(facet, r_in_facet, i + d, j + d, ew, ns)
            for t in range(2):
                ri, rj, p = (i1, j1, p1) if t == 0 else (i2, j2, p2)
                if p > 0.0 and _in_core(ri, rj, d, h, w):
                    c2 = (ri - d) * w + rj - d
                    if stamp[c2] != s:
                        stamp[c2] = s
                        value[c2] = 0.0
                        size = heap_push(hk, hs, hv, size, -z_pad[ri, rj], 0, c2)
                    value[c2] += p * value[c]
    a = np.empty(len(mx), dtype=np.int64)
    b = np.empty(len(mx), dtype=np.int64)
    v = np.empty(len(mx))
    for m in range(len(mx)):
        a[m] = mx[m]
        b[m] = mu[m]
        v[m] = mv[m]
    return a, b, v


def _descending_order(z_core: np.ndarray) -> np.ndarray:
    flat = z_core.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    return valid[np.argsort(-flat[valid], kind="stable")].astype(np.int64)


def _directions(z_pad: np.ndarray, cell_size_m):
    ew, ns = cell_sizes(cell_size_m)
    z_pad = np.ascontiguousarray(z_pad, dtype=np.float64)
    facet, r = _dinf_kernel(z_pad, ew, ns)
    return z_pad, facet, r, ew, ns


def flow_local(z_pad: np.ndarray, cell_size_m) -> dict:
    """Stage 6 of a tile: the perimeter summary of its D-infinity accumulation.

    Parameters
    ----------
    z_pad : array, shape (h + 4, w + 4)
        Filled elevation [m] of the tile with a 2-cell ring of the neighbours' (NaN beyond
        the DEM): the ring-1 cells' flow directions need their own neighbours.
    cell_size_m : float or (float, float)

    Returns
    -------
    dict
        ``perim_index`` flat core index of the valid perimeter cells, ``perim_z``,
        ``perim_acc0`` (cell counts with no inflow); ``source_pad_index`` padded flat
        index of the ring cells draining into the tile; the transfer ``m_perim``,
        ``m_source``, ``m_value``.
    """
    d = 2
    z_pad, facet, r, ew, ns = _directions(z_pad, cell_size_m)
    h, w = z_pad.shape[0] - 2 * d, z_pad.shape[1] - 2 * d
    core = z_pad[d:d + h, d:d + w]
    sources = _ring_sources(z_pad, facet, d, h, w)
    order = _descending_order(core)
    acc0 = _accumulate_core(z_pad, facet, r, order, d, h, w, sources, np.zeros(sources.size), ew, ns)
    perim = np.flatnonzero((perimeter_mask(h, w) & ~np.isnan(core)).ravel()).astype(np.int64)
    slot = np.full(h * w, -1, dtype=np.int64)
    slot[perim] = np.arange(perim.size)
    mx, mu, mv = _transfer(z_pad, facet, r, d, h, w, sources, slot, ew, ns)
    return dict(perim_index=perim, perim_z=core.ravel()[perim], perim_acc0=acc0.ravel()[perim],
                source_pad_index=sources, m_perim=mx, m_source=mu, m_value=mv)


@numba.njit(cache=True)
def _forward_substitute(order, acc0, indptr, sources, values):
    acc = acc0.copy()
    for idx in range(order.size):
        x = order[idx]
        s = acc0[x]
        for e in range(indptr[x], indptr[x + 1]):
            s += values[e] * acc[sources[e]]
        acc[x] = s
    return acc


def _flow_union(tiles: list[dict], dem_shape, known=None):
    """The perimeter cells of several tiles (or groups) as one node list, with their transfers.

    ``known`` (rows, cols, acc): cells outside these parts whose accumulation is given; they
    join as nodes with no inflow, above every other (z = +inf). Returns (z, acc0, transfer
    target x, source u, value v, each part's source nodes, the number of part nodes, and
    the positions of every node) — or, when ``known`` is None, sources that are no node are
    -1 (outside the parts).
    """
    cat = lambda key, dt: np.concatenate([np.asarray(t[key], dtype=dt) for t in tiles] + [np.empty(0, dt)])  # noqa: E731
    rows, cols = cat("perim_row", np.int64), cat("perim_col", np.int64)
    z, acc0 = cat("perim_z", np.float64), cat("perim_acc0", np.float64)
    n_part = z.size
    if known is not None:
        k_rows, k_cols, k_acc = (np.asarray(a) for a in known)
        rows = np.concatenate([rows, k_rows.astype(np.int64)])
        cols = np.concatenate([cols, k_cols.astype(np.int64)])
        z = np.concatenate([z, np.full(k_acc.size, np.inf)])
        acc0 = np.concatenate([acc0, k_acc.astype(np.float64)])
    offsets = np.cumsum([0] + [len(t["perim_z"]) for t in tiles])
    gid = np.arange(z.size, dtype=np.int64)
    xs, us, vs, src_nodes = [], [], [], []
    for ti, t in enumerate(tiles):
        src = lookup_cells(rows, cols, gid, t["source_row"], t["source_col"], dem_shape, missing=-1)
        if known is not None and (src < 0).any():
            raise RuntimeError("solve_flow: a ring source is not a perimeter cell of any tile")
        src_nodes.append(src)
        xs.append(offsets[ti] + np.asarray(t["m_perim"], dtype=np.int64))
        us.append(src[np.asarray(t["m_source"], dtype=np.int64)])
        vs.append(np.asarray(t["m_value"], dtype=np.float64))
    x = np.concatenate(xs + [np.empty(0, np.int64)])
    u = np.concatenate(us + [np.empty(0, np.int64)])
    v = np.concatenate(vs + [np.empty(0)])
    return z, acc0, x, u, v, src_nodes, n_part, rows, cols


def solve_flow(tiles: list[dict], dem_shape, known=None) -> list[np.ndarray]:
    """Exchange 3: the cell count (accumulation) of every perimeter cell of every tile.

    Parameters
    ----------
    tiles : list of dict
        Per tile (or group, :func:`contract_flow`): ``perim_row``, ``perim_col`` (global),
        ``perim_z``, ``perim_acc0``, ``source_row``, ``source_col`` (global), ``m_perim``,
        ``m_source``, ``m_value``.
    known : (rows, cols, acc), optional
        The accumulation of the sources outside these parts (a group's, solved above).

    Returns
    -------
    list of arrays
        Per tile, the accumulation of each of its ring sources (what its finishing stage
        adds to its cells).
    """
    z, acc0, x, u, v, src_nodes, _, _, _ = _flow_union(tiles, dem_shape, known if known is not None else
                                                        (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)))
    n = z.size
    order_e = np.argsort(x, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, x + 1, 1)
    indptr = np.cumsum(indptr)
    order = np.argsort(-z, kind="stable").astype(np.int64)
    acc = _forward_substitute(order, acc0, indptr, u[order_e], v[order_e])
    return [acc[s] for s in src_nodes]


def contract_flow(parts: list[dict], dem_shape, box: tuple[int, int, int, int]) -> dict:
    """The flow graph of a group of tiles (or of groups), in a tile's format, on the group's edge only.

    Every perimeter cell x of the members satisfies ``acc(x) = A0(x) + Σ_u M[x, u]·acc(u)``
    with u strictly higher; substituting the members' own cells in descending z leaves each
    cell an affine function of the group's outside sources (the members' sources that are no
    member's perimeter cell). Kept for the cells on the group's edge: their ``perim_acc0``
    and the transfer ``m_perim``, ``m_source``, ``m_value`` from the outside sources
    (``source_row``, ``source_col``), the same relation a tile's :func:`flow_local` gives, so
    the exchange over groups is the exchange over tiles (to rounding: sums reordered).
    """
    z, acc0, x, u, v, src_nodes, n, rows, cols = _flow_union(parts, dem_shape)
    edge = group_edge(rows, cols, box, dem_shape)
    # the outside sources, numbered in the order of their cells
    src_rows = np.concatenate([np.asarray(t["source_row"], dtype=np.int64) for t in parts] + [np.empty(0, np.int64)])
    src_cols = np.concatenate([np.asarray(t["source_col"], dtype=np.int64) for t in parts] + [np.empty(0, np.int64)])
    ext = np.concatenate(src_nodes + [np.empty(0, np.int64)]) < 0
    nc = dem_shape[1]
    ext_g = np.unique(src_rows[ext] * nc + src_cols[ext])
    # each transfer's outside source number (used where u < 0): the source cell of that entry
    ent_rows, ent_cols = [], []
    for t in parts:
        ms = np.asarray(t["m_source"], dtype=np.int64)
        ent_rows.append(np.asarray(t["source_row"], dtype=np.int64)[ms])
        ent_cols.append(np.asarray(t["source_col"], dtype=np.int64)[ms])
    ent_g = np.concatenate(ent_rows + [np.empty(0, np.int64)]) * nc + np.concatenate(ent_cols + [np.empty(0, np.int64)])
    ext_of_entry = np.searchsorted(ext_g, ent_g)
    order_e = np.argsort(x, kind="stable")
    x, u, v, ext_of_entry = x[order_e], u[order_e], v[order_e], ext_of_entry[order_e]
    outside = u < 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, x + 1, 1)
    indptr = np.cumsum(indptr)
    uses = np.bincount(u[~outside], minlength=n) + edge  # readers left of each cell's affine form
    const = acc0.copy()
    coef: list = [None] * n
    for c in np.argsort(-z, kind="stable"):
        row: dict = {}
        s = acc0[c]
        for e in range(indptr[c], indptr[c + 1]):
            if outside[e]:
                k = int(ext_of_entry[e])
                row[k] = row.get(k, 0.0) + v[e]
                continue
            src = int(u[e])
            s += v[e] * const[src]
            for k, cu in coef[src].items():
                row[k] = row.get(k, 0.0) + v[e] * cu
            uses[src] -= 1
            if uses[src] == 0:
                coef[src] = None
        const[c] = s
        coef[c] = row if uses[c] > 0 else None
    cells = np.flatnonzero(edge)
    mp, ms, mv = [], [], []
    for q, c in enumerate(cells):
        for k, value in sorted(coef[c].items()):
            mp.append(q)
            ms.append(k)
            mv.append(value)
    return dict(perim_row=rows[cells], perim_col=cols[cells], perim_z=z[cells], perim_acc0=const[cells],
                source_row=ext_g // nc, source_col=ext_g % nc, m_perim=np.asarray(mp, dtype=np.int64),
                m_source=np.asarray(ms, dtype=np.int64), m_value=np.asarray(mv, dtype=np.float64))


def flow_finish(z_pad: np.ndarray, cell_size_m, source_acc: np.ndarray) -> np.ndarray:
    """Stage 8 of a tile: its specific catchment area a [m] (NaN on nodata).

    ``source_acc`` holds the cell counts of the ring sources in :func:`flow_local`'s order.
    """
    d = 2
    z_pad, facet, r, ew, ns = _directions(z_pad, cell_size_m)
    h, w = z_pad.shape[0] - 2 * d, z_pad.shape[1] - 2 * d
    core = z_pad[d:d + h, d:d + w]
    sources = _ring_sources(z_pad, facet, d, h, w)
    acc = _accumulate_core(z_pad, facet, r, _descending_order(core), d, h, w, sources,
                           np.asarray(source_acc, dtype=np.float64), ew, ns)
    acc[np.isnan(core)] = np.nan
    return acc * (ew * ns) / np.sqrt(ew * ns)
