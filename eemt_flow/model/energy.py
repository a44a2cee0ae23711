"""Energy terms of EEMT: ΔT, E_PPT, E_BIO (VZJ 2015 Eqs. 3–5)."""

from __future__ import annotations

import numpy as np

from eemt_flow.model.constants import C_W, G_PER_KG, H_BIO, KELVIN_OFFSET_K, T_REF


def delta_t_k(t_c, t_ref_k=T_REF):
    """Temperature excess of percolating water over the reference, floored at zero.

    ``ΔT = max(T + 273.15 − T_ref, 0)``  (= max(T, 0) for T_ref = 273.15 K)

    Parameters
    ----------
    t_c : array
        Air temperature T [°C].
    t_ref_k : float
        Reference temperature [K].

    Returns
    -------
    array
        ΔT [K].

    References
    ----------
    VZJ 2015 Eq. 4, p. 3; Biogeochem 2011 p. 20 (E_PPT = 0 when T < T_ref); EEMT-SPEC §1.1.
    """
    return np.maximum(np.asarray(t_c, dtype=float) + KELVIN_OFFSET_K - t_ref_k, 0.0)


def e_ppt_j_m2(water_mm, t_c, c_w_j_kg_k=C_W, t_ref_k=T_REF):
    """Energy carried by water passing into the subsurface.

    ``E_PPT = F · c_w · ΔT(T)``  (F in mm = kg m⁻²)

    Parameters
    ----------
    water_mm : array
        Water entering the subsurface F (TOPO) or Peff (TRAD) [mm month⁻¹].
    t_c : array
        Air temperature of the month [°C].
    c_w_j_kg_k : float
        Specific heat of water [J kg⁻¹ K⁻¹].
    t_ref_k : float
        Reference temperature [K].

    Returns
    -------
    array
        E_PPT [J m⁻² month⁻¹].

    References
    ----------
    VZJ 2015 Eq. 4, p. 3; SSSAJ 2005 Eq. 2, p. 1268; EEMT-SPEC §1.1 (mistake §9.14:
    ΔT missing, spurious ×10).
    """
    return np.asarray(water_mm, dtype=float) * c_w_j_kg_k * delta_t_k(t_c, t_ref_k)


def e_bio_j_m2(npp_g_m2, h_bio_j_kg=H_BIO):
    """Energy fixed in net primary production.

    ``E_BIO = NPP/1000 · h_BIO``  (NPP in g, h_BIO per kg)

    Parameters
    ----------
    npp_g_m2 : array
        Net primary production (dry matter) [g m⁻² per period].
    h_bio_j_kg : float
        Specific biomass enthalpy [J kg⁻¹].

    Returns
    -------
    array
        E_BIO [J m⁻² per period].

    References
    ----------
    VZJ 2015 Eq. 5, p. 3; HESS 2012 p. 728; EEMT-SPEC §1.1, §1.2 (mistake §9.4:
    g multiplied by a per-kg enthalpy).
    """
    return np.asarray(npp_g_m2, dtype=float) / G_PER_KG * h_bio_j_kg
