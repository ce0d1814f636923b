"""Connecting to the database: a real MongoDB, or the embedded mongomock engine.

The embedded engine is mongomock, in-process. Two things make it fit for a server:

* One process-wide lock serialises every operation on it. mongomock mutates documents
  in place and its collections are not safe for concurrent threads; with the GIL there
  is little parallelism to lose, and the lock also gives transactions their isolation.
* An `_id` fast path. mongomock answers every query by filtering the whole collection,
  so an `_id` lookup costs O(n). The patch answers filters that pin `_id` (equality or
  `$in`) from the collection's own `_id` map and still applies the full filter to the
  candidates, so the result is exactly what the scan would return. This is purely an
  engine speed-up; queries stay plain MongoDB queries that a real server serves from
  its `_id` index.
"""

from __future__ import annotations

import threading

import pymongo

_PATCHED = False


def _patch_mongomock_id_lookup() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from mongomock import filtering
    from mongomock.collection import Collection

    original = Collection._iter_documents

    def _iter_documents(self, filter):  # noqa: A002 - mongomock's own signature
        if type(filter) is dict and "_id" in filter:
            ident = filter["_id"]
            if type(ident) is str:
                keys = (ident,)
            elif type(ident) is dict and len(ident) == 1 and type(ident.get("$in")) in (list, tuple):
                keys = tuple(dict.fromkeys(k for k in ident["$in"] if type(k) is str))
                if len(keys) != len(ident["$in"]):
                    return original(self, filter)
            else:
                return original(self, filter)
            store = self._store
            docs = [store[k] for k in keys if k in store]
            return (d for d in docs if filtering.filter_applies(filter, d))
        return original(self, filter)

    Collection._iter_documents = _iter_documents
    _PATCHED = True


class Engine:
    """A database handle plus what the store needs to know about its server."""

    def __init__(self, client, db, embedded: bool, transactions: bool):
        self.client = client
        self.db = db
        self.embedded = embedded
        self.transactions = transactions  # real multi-document transactions available
        # Embedded engine: every operation holds this lock (see module docstring).
        self.lock = threading.RLock() if embedded else None

    def close(self) -> None:
        self.client.close()


def connect(uri: str | None, db_name: str) -> Engine:
    if not uri:
        import mongomock

        _patch_mongomock_id_lookup()
        client = mongomock.MongoClient(tz_aware=True)
        return Engine(client, client[db_name], embedded=True, transactions=False)
    client = pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard")
    hello = client.admin.command("hello")
    # Multi-document transactions need a replica set member or a mongos router.
    transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
    return Engine(client, client[db_name], embedded=False, transactions=transactions)
