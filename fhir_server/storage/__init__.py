"""Storage: the only package that imports pymongo."""

from .engine import Engine, connect
from .store import ConcurrentWrite, ResourceStore, Unit, Version

__all__ = ["ConcurrentWrite", "Engine", "ResourceStore", "Unit", "Version", "connect", "open_store"]


def open_store(settings, resource_types) -> ResourceStore:
    store = ResourceStore(connect(settings.mongodb_uri, settings.db_name))
    store.ensure_indexes(resource_types)
    return store
