"""The machinery: job spec (:mod:`.spec`), planning and Makeflow rendering (:mod:`.plan`),
execution under makeflow (:mod:`.execute`), the task entry points (:mod:`.tasks`), the reducer
(:mod:`.reduce`), task logs (:mod:`.tasklog`), resource declarations (:mod:`.local_fit`) and the
EEMT inputs a task assembles (:mod:`.eemt_inputs`).

The science packages (:mod:`eemt_flow.model`, :mod:`eemt_flow.solar`, :mod:`eemt_flow.terrain`,
:mod:`eemt_flow.climate`) never import this package.
"""
