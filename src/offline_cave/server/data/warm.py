"""Build the in-memory indexes of every served datastack ahead of the first request.

The chunkedgraph indexes (supervoxel -> piece -> roots and back, the roots table and lineage:
a few seconds and ~250 MB for the default minnie65 sample) and the set of skeletonized nuclei
are otherwise read by the first request that needs them (the level-2 index too: the first
skeleton request needs it), and every client that arrives
meanwhile waits behind it: with a classroom starting a page together, the first students'
lookups took 5-8 s. :func:`warm_in_background` reads them in a daemon thread when the server
starts; a request that comes first simply waits for the same lock, as before.
"""

from __future__ import annotations

import logging
import threading
import time

from offline_cave.server.data.artefacts import cell_store
from offline_cave.server.data.level2 import level2_store
from offline_cave.server.data.store import Registry

log = logging.getLogger("offline_cave.server")


def warm(registry: Registry) -> None:
    """Read every datastack's indexes now (errors are logged: the request that needs a broken
    index will report it)."""
    for ds in registry.datastacks.values():
        t0 = time.perf_counter()
        try:
            ds.segments.warm()
            cell_store(ds).skeleton_nuclei()
            # skeleton version 4 (caveclient's default) asks the level-2 index whether a
            # cell has level-2 data: built on the first skeleton request, it held every
            # skeleton of a starting class behind one lock for seconds (bench_classroom)
            l2 = level2_store(ds)
            if l2.available():
                l2.index()
        except Exception:  # noqa: BLE001 - a warm-up never stops the server
            log.warning("could not read the indexes of %s ahead of time", ds.name,
                        exc_info=True)
            continue
        log.info("%s: indexes read in %.1f s", ds.name, time.perf_counter() - t0)


def warm_in_background(registry: Registry) -> threading.Thread:
    """Start :func:`warm` in a daemon thread; return the thread."""
    thread = threading.Thread(target=warm, args=(registry,), name="offline-cave-warm-up",
                              daemon=True)
    thread.start()
    return thread
