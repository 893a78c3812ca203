"""Process-wide tuning for a serving worker: the cycle collector and log records.

Both change the whole process, so only a worker's entry point applies them
(`supervisor.run_worker`), once the app is loaded and before it serves; an
app built in a test or a script leaves the process as it found it.

The collector: with thousands of open streams, a broadcast allocates objects
by the hundred thousand within a fraction of a second. Under Python's default
threshold (a young collection every 700 allocations) objects still in flight
get promoted to the oldest generation, which then fills fast enough to be
collected in full every few seconds; each full pass walks every connection's
objects and stopped a worker holding 5,000 streams for about 250 ms. A young
generation of `GC_GEN0_THRESHOLD` objects lets them die young, and what exists
once the app is loaded is frozen out of the collector's walks altogether.

Log records: no line shows where in the source it was logged from, or the
thread or process that logged it, so records are not made to look them up
(the logging HOWTO's "Optimization" settings). Finding the caller walks the
stack on every call, which was most of what the access log's line cost.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

_, OLDER_GENERATIONS_THRESHOLD, OLDEST_GENERATION_THRESHOLD = gc.get_threshold()


@dataclass(frozen=True, slots=True)
class ProcessTuning:
    gc_gen0_threshold: int = 0
    """The young generation's threshold; 0 leaves the collector as it is."""

    def apply(self) -> None:
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        if self.gc_gen0_threshold > 0:
            gc.collect()  # so that no garbage is frozen
            gc.freeze()
            gc.set_threshold(
                self.gc_gen0_threshold, OLDER_GENERATIONS_THRESHOLD, OLDEST_GENERATION_THRESHOLD
            )


UNTUNED = ProcessTuning()
"""Log records spared their lookups, the collector left as it is."""
