"""Solar engines; ``radiation``, ``horizons`` and ``sky_view_factor`` are the notebook API
(:mod:`eemt_flow.solar.api`).

They are loaded on first use, so importing an engine module does not import xarray.
"""

__all__ = ["radiation", "horizons", "sky_view_factor"]


def __getattr__(name):
    if name in __all__:
        from eemt_flow.solar import api

        return getattr(api, name)
    raise AttributeError(f"module 'eemt_flow.solar' has no attribute {name!r}")
