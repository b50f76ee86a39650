"""The garbage collector's settings for the services' Python processes,
applied once a service is up (its modules imported, its data loaded).

Most of what is alive at that point lives as long as the process:
`gc.freeze` moves it out of the collector's reach, so no full collection
walks it again (what of it dies later is still freed by reference
counting). A search's containers are short-lived and nearly all freed by
reference counting: collecting the youngest generation once `YOUNG` more
have been allocated than freed, instead of CPython's 700, lets them go
before the collector looks at them. Cycles are still collected, a little
later."""

from __future__ import annotations

import gc

YOUNG = 10_000  # gen-0 threshold; the older generations' stay CPython's (10, 10)


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
