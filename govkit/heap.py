"""The start-up heap out of the cyclic garbage collector's sight.

A component's process holds a large heap that lives as long as the process: modules, SQLAlchemy's
tables and compiled statements, protobuf descriptors, FastAPI's routes, models and schemas. Every
collection of the oldest generation walks all of it. The gateway allocates many objects per
request and so collects often: its collections were 9% of its busy samples under `py-spy --native`
(`bench/ceiling.py --profile DIR --native`), and the full ones showed as pauses in its tail, a p99
for `/me` of 43-60 ms that fell to 13-15 ms with the heap frozen (bench/README.md, "Fifth pass").
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what starting left behind, then move everything still alive to the permanent
    generation (`gc.freeze`): never walked again, never collected. Called once a component has
    started; what it allocates afterwards is collected as usual."""
    gc.collect()
    gc.freeze()
