"""All terrain maps of a whole DEM at once: the reference the tiled stages must equal.

Catchment area, the wetness index and its domain mean are global quantities: call
:func:`compute_terrain` on the **whole** DEM once and cut tiles from its outputs
(EEMT-SPEC §5, §7), or compute the same result tile by tile with
:mod:`eemt_flow.terrain.stages` (held to these functions by tests/terrain/test_terrain_tiled.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eemt_flow.model.constants import TAN_BETA_MIN
from eemt_flow.model.water import mcwi_alpha, wetness_index
from eemt_flow.terrain.dinf import dinf_specific_catchment_area
from eemt_flow.terrain.fill import fill_depressions
from eemt_flow.terrain.grid import as_dem
from eemt_flow.terrain.slope import aspect_north_deg, northness, slope_aspect


@dataclass(frozen=True)
class Terrain:
    """Terrain layers of a whole DEM (NaN = nodata in every float layer).

    Attributes
    ----------
    slope_deg : array
        Horn slope β [degrees].
    aspect_grass_deg : array
        Aspect counter-clockwise from east, 0 = flat [degrees] (input to r.sun).
    aspect_north_deg : array
        Aspect clockwise from north [degrees].
    northness : array
        cos(aspect_N)·sin β [-].
    filled_dem_m : array
        Filled elevation [m] (:func:`fill_depressions`).
    specific_catchment_area_m : array
        D-infinity specific catchment area a [m].
    wetness_index : array
        λ = ln(a / max(tan β, TAN_BETA_MIN)) [-].
    alpha : array
        MCWI factor α = max(λ / mean(λ), 0) [-].
    mean_wetness_index : float
        Domain mean of λ over all valid cells [-].
    """

    slope_deg: np.ndarray
    aspect_grass_deg: np.ndarray
    aspect_north_deg: np.ndarray
    northness: np.ndarray
    filled_dem_m: np.ndarray
    specific_catchment_area_m: np.ndarray
    wetness_index: np.ndarray
    alpha: np.ndarray
    mean_wetness_index: float


def compute_terrain(dem_m, cell_size_m, tan_beta_min=TAN_BETA_MIN) -> Terrain:
    """All terrain layers of a whole DEM: slope, aspect, northness, a, λ and α.

    The slope β of the wetness index is the Horn slope of the unfilled DEM (the same β as
    in northness and r.sun); flow routing uses the filled DEM.

    Parameters
    ----------
    dem_m : array, shape (rows, cols)
        The **whole** DEM [m], NaN = nodata, on a projected metric grid.
    cell_size_m : float or (float, float)
        Cell size [m], or (east-west, north-south).
    tan_beta_min : float
        Flat-cell guard of tan β in the wetness index [-].

    Returns
    -------
    Terrain

    Raises
    ------
    ValueError
        If the DEM has no valid cell or the domain mean of λ is ≤ 0.

    References
    ----------
    Horn (1981); Barnes et al. (2014); Tarboton (1997); Beven & Kirkby (1979);
    VZJ 2015 Eqs. 9–11, p. 8; EEMT-SPEC §3, §5.
    """
    dem = as_dem(dem_m)
    if not np.isfinite(dem).any():
        raise ValueError("compute_terrain: the DEM has no valid (finite) cell")
    if np.isinf(dem).any():
        raise ValueError("compute_terrain: the DEM contains ±inf; mark nodata with NaN")
    slope_deg, aspect_grass = slope_aspect(dem, cell_size_m)
    filled = fill_depressions(dem)
    sca = dinf_specific_catchment_area(filled, cell_size_m)
    lam = wetness_index(sca, np.deg2rad(slope_deg), tan_beta_min)
    alpha = mcwi_alpha(lam)
    return Terrain(
        slope_deg=slope_deg,
        aspect_grass_deg=aspect_grass,
        aspect_north_deg=aspect_north_deg(aspect_grass),
        northness=northness(aspect_grass, slope_deg),
        filled_dem_m=filled,
        specific_catchment_area_m=sca,
        wetness_index=lam,
        alpha=alpha,
        mean_wetness_index=float(np.nanmean(lam)),
    )
