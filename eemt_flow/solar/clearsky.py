"""r.sun's clear-sky atmosphere: air mass, Rayleigh optical thickness, diffuse transmission.

Pure functions of the sun position and the Linke turbidity, one equation each, as GRASS
8.2.1 ``r.sun`` evaluates them; the fast engine's float32 day kernel restates them so that
they vectorise, and the tests hold it to these.

References
----------
.. [1] Šúri, M., Hofierka, J. (2004). A new GIS-based solar radiation model and its
   application to photovoltaic assessments. Transactions in GIS 8(2), 175-190:
   beam Eqs. (7)-(10), diffuse Eqs. (11)-(18), reflected Eqs. (19)-(20).
.. [2] Kasten, F., Young, A. T. (1989). Revised optical air mass tables and
   approximation formula. Applied Optics 28, 4735-4738 (air mass, [1] Eq. 9).
.. [3] Kasten, F. (1996). The Linke turbidity factor based on improved values of the
   integral Rayleigh optical thickness. Solar Energy 56, 239-244 ([1] Eq. 10).
.. [4] Muneer, T. (1990). Solar radiation model for Europe. Building Services
   Engineering Research and Technology 11, 153-163 (diffuse on inclined surfaces).
"""

from __future__ import annotations

import numpy as np

# --- model constants (r.sun 8.2.1, [1]) ------------------------------------------------
#: Scale height of the elevation correction p/p0 = exp(-z / 8434.5) [m] ([1] Eq. 8).
AIR_MASS_SCALE_HEIGHT_M = 8434.5
#: Linke turbidity to optical-thickness factor, 1 / 0.8662 = 1.1545 ([1] Eq. 7).
LINKE_FACTOR = 0.8662
#: Solar altitude below which Muneer's low-sun diffuse form is used [rad] ([1] Eq. 16).
LOW_SUN_ALTITUDE_RAD = 0.1
#: Muneer's N for surfaces in shadow, diffuse Eq. (15) of [1] [-].
MUNEER_N_SHADOW = 0.252271
#: Earth radius used for the curvature drop of distant terrain [m] (r.horizon).
#: Largest Linke turbidity the kernel's exponential is accurate for [-].
MAX_LINKE = 10.0
#: Default clear-sky parameters (EEMT-SPEC §7).
DEFAULT_LINKE = 3.0
DEFAULT_ALBEDO = 0.2


def relative_air_mass_sea_level(altitude_rad):
    """Kasten & Young relative optical air mass with r.sun's refraction correction, at sea level.

    ``m0 = 1 / (sin(h0ref) + 0.50572 (h0ref_deg + 6.07995)^-1.6364)`` with
    ``h0ref = h0 + 0.061359 (0.1594 + 1.123 h0 + 0.065656 h0^2) / (1 + 28.9344 h0 + 277.3971 h0^2)``.
    Multiply by ``exp(-z / 8434.5)`` for a site at elevation z.

    Parameters
    ----------
    altitude_rad : array_like, geometric solar altitude h0 [rad], > -0.009

    Returns
    -------
    ndarray, relative optical air mass at sea level [-]

    References
    ----------
    Šúri & Hofierka (2004), Eqs. (8)-(9); Kasten & Young (1989).
    """
    h = np.asarray(altitude_rad, dtype=np.float64)
    refraction = 0.061359 * (0.1594 + h * (1.123 + 0.065656 * h)) / (1.0 + h * (28.9344 + 277.3971 * h))
    h_ref = h + refraction
    return 1.0 / (np.sin(h_ref) + 0.50572 * (np.rad2deg(h_ref) + 6.07995) ** -1.6364)


def rayleigh_optical_thickness(air_mass):
    """Rayleigh optical thickness at air mass m (Kasten 1996), as r.sun evaluates it.

    ``1/dR = 6.6296 + 1.7513 m - 0.1202 m^2 + 0.0065 m^3 - 0.00013 m^4`` for m <= 20,
    ``1/dR = 10.4 + 0.718 m`` above.

    Parameters
    ----------
    air_mass : array_like, relative optical air mass m [-]

    Returns
    -------
    ndarray, Rayleigh optical thickness dR [-]

    References
    ----------
    Šúri & Hofierka (2004), Eq. (10); Kasten (1996).
    """
    m = np.asarray(air_mass, dtype=np.float64)
    low = 1.0 / (6.6296 + m * (1.7513 + m * (-0.1202 + m * (0.0065 - m * 0.00013))))
    return np.where(m <= 20.0, low, 1.0 / (10.4 + 0.718 * m))


def diffuse_coefficients(linke):
    """Coefficients of the clear-sky diffuse transmission ``Dh = G0 Tn (A1 + A2 sin h0 + A3 sin^2 h0)``.

    Parameters
    ----------
    linke : float, Linke turbidity factor TL (air mass 2) [-]

    Returns
    -------
    tuple of float, (Tn, A1, A2, A3) [-]

    References
    ----------
    Šúri & Hofierka (2004), Eqs. (11)-(13) (A1 bounded so that A1 Tn >= 0.0022).
    """
    tl = float(linke)
    tn = -0.015843 + tl * (0.030543 + 0.0003797 * tl)
    a1 = 0.26463 + tl * (-0.061581 + 0.0031408 * tl)
    if a1 * tn < 0.0022:
        a1 = 0.0022 / tn
    a2 = 2.04020 + tl * (0.018945 - 0.011161 * tl)
    a3 = -1.3025 + tl * (0.039231 + 0.0085079 * tl)
    return tn, a1, a2, a3
