"""Names of the solar maps that every engine yields, daily and summed over a month.

Kept apart from the engines so that a task can name them without loading numba or GRASS.
"""

#: Daily maps kept with keep_daily, in the order the monthly bands use.
DAILY_KEYS = ("glob_rad_wh_m2", "flat_glob_rad_wh_m2", "insol_time_h")
#: Band names of a tile's monthly solar file (sums over the month's requested days): the
#: daily maps', then the clear-sky components that real-sky radiation needs (the beam and
#: reflected parts of glob_rad, the beam part of flat_glob_rad; the rest is diffuse).
MONTHLY_BANDS = DAILY_KEYS + ("beam_rad_wh_m2", "refl_rad_wh_m2", "flat_beam_rad_wh_m2")
