"""The SearchParameter resources of the parameter table, readable at /fhir/SearchParameter.

The table (resources/search_params.json) carries, for each official R4 definition it
implements, the SearchParameter resource itself (trimmed; `base` limited to the types
the table covers). They are stored as ordinary resources the first time anything asks
for the SearchParameter type, so they can be read, searched and included like any
other; a store that already holds them is left as it is.
"""

from __future__ import annotations

import functools
import json
import threading

from .index import index_resource
from .params import _TABLE

_lock = threading.Lock()
TYPE = "SearchParameter"


@functools.cache
def resources() -> tuple[dict, ...]:
    defs = json.loads(_TABLE.read_text(encoding="utf-8"))["definitions"]
    return tuple(defs[url] for url in sorted(defs))


def ensure_loaded(store) -> None:
    """Store every table SearchParameter not stored yet (once per store; idempotent)."""
    if getattr(store, "_search_parameters_loaded", False):
        return
    with _lock:
        if getattr(store, "_search_parameters_loaded", False):
            return
        defs = resources()
        if store.read(TYPE, defs[-1]["id"]) is None:
            store.atomic(lambda unit: _load(unit, defs))
        store._search_parameters_loaded = True


def _load(unit, defs) -> None:
    for d in defs:
        if unit.current(TYPE, d["id"]) is None:
            unit.write(TYPE, d["id"], d, "PUT", None, index_resource(d))
