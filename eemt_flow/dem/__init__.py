"""The DEM: reading and checking it (:mod:`.raster`), scanning a large one block by block
(:mod:`.scan`), tiling it with halos (:mod:`.tiles`), its geography (:mod:`.geography`) and the
built-in example (:mod:`.example`).

It sits below the science and the machinery alike: it imports only :mod:`eemt_flow.model` and
:mod:`eemt_flow.errors`.
"""
