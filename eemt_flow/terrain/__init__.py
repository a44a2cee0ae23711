"""Terrain: slope and aspect, depression filling, flats and D-infinity catchment area.

One module per published method (:mod:`.slope`, :mod:`.fill`, :mod:`.flats`, :mod:`.dinf`),
the whole-DEM reference that chains them (:mod:`.whole_dem`), the tiled kernels that reproduce
it tile by tile with exchanged perimeters (:mod:`.tiled`, Barnes 2016/2017) and the task
bodies that the Makeflow stages run (:mod:`.stages`). :mod:`.heap` is the one priority queue
that both the reference and the tiled kernels use.
"""
