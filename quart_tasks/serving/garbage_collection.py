"""The cycle collector's settings for a serving process.

With thousands of open streams, a broadcast allocates objects by the hundred
thousand within a fraction of a second. Under Python's default threshold (a
young collection every 700 allocations) objects still in flight get promoted
to the oldest generation, which then fills fast enough to be collected in
full every few seconds; each full pass walks every connection's objects and
stopped a worker holding 5,000 streams for about 250 ms. A young generation
of `GC_GEN0_THRESHOLD` objects lets them die young, and what exists once the
app has started is frozen out of the collector's walks altogether.
"""

from __future__ import annotations

import gc

from quart import Quart

_, OLDER_GENERATIONS_THRESHOLD, OLDEST_GENERATION_THRESHOLD = gc.get_threshold()


def init_garbage_collection(app: Quart) -> None:
    threshold: int = app.config["GC_GEN0_THRESHOLD"]
    if threshold <= 0:
        return

    @app.before_serving
    async def _tune_collector() -> None:
        gc.collect()  # so that no garbage is frozen
        gc.freeze()
        gc.set_threshold(threshold, OLDER_GENERATIONS_THRESHOLD, OLDEST_GENERATION_THRESHOLD)
