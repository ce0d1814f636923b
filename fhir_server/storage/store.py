"""The versioned resource store: the only code that speaks to MongoDB.

Layout
  <Type> collections  current version of each resource of that type:
      {_id: id, v: version, ts: lastUpdated, d: deleted?, raw: resource JSON bytes, idx: search index}
  history             every version of every resource, deletions as tombstones:
      {_id: "Type/id/version", t, i, v, ts, e: superseded-at, m: method, raw}
      Append-only types (ResourceStore.append_only: written once, never changed or deleted,
      as the audit trail) keep no copy there: their one version is their current document,
      and their history and vread are read from it.

The resource is stored as its serialized JSON (with meta already set), so a read
returns bytes without re-encoding, as HAPI and Blaze keep resource blobs; queries go
to the `idx` part and the metadata fields, never into the blob.

Atomicity. Every change runs inside `atomic(fn)`: on a replica set or sharded cluster
a MongoDB multi-document transaction; on the embedded engine under its process-wide
lock with an undo log replayed on failure, so a failed unit leaves nothing behind.
Updates are compare-and-set on the version (`replace_one({_id, v: expected})`), so two
writers that read the same version can never both win.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pymongo
from pymongo.errors import DuplicateKeyError

from .. import fhirtime
from ..errors import FHIRError
from .engine import Engine

HISTORY = "history"
# One counter per watched resource type, moved by every write of that type inside its atomic unit.
GENERATIONS = "generations"


class ConcurrentWrite(Exception):
    """A compare-and-set lost against another writer; the unit is retried."""


@dataclass(slots=True)
class Version:
    type: str
    id: str
    version: int
    last_updated: datetime
    deleted: bool
    raw: bytes | None
    method: str | None = None
    doc: dict | None = None  # the stored document, kept to undo a replace

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.id}"

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def resource(self) -> dict:
        return orjson.loads(self.raw)


def _current(rtype: str, doc: dict) -> Version:
    return Version(rtype, doc["_id"], doc["v"], doc["ts"], doc["d"], doc.get("raw"), doc=doc)


def _append_only_version(v: Version) -> Version:
    v.method = "POST"  # written once, by a create
    return v


def _historic(doc: dict) -> Version:
    return Version(doc["t"], doc["i"], doc["v"], doc["ts"], doc["raw"] is None, doc["raw"], doc["m"])


def _ordered_resource(resource: dict, meta: dict) -> dict:
    """resourceType, id and meta first, as every FHIR server writes them."""
    out = {"resourceType": resource["resourceType"]}
    if "id" in resource:
        out["id"] = resource["id"]
    out["meta"] = meta
    for k, val in resource.items():
        if k not in out:
            out[k] = val
    return out


def _with(query: dict, extra: dict | None) -> dict:
    """query AND extra, keeping query's keys at the top (the embedded _id fast path)."""
    if not extra:
        return query
    return {**query, "$and": [extra]}


class _Clock:
    """lastUpdated stamps that strictly increase within this process.

    Stored instants have millisecond precision; two writes in the same millisecond
    would tie and history (newest first) could list them in either order. Each stamp
    is max(now, previous + 1 ms), so one process's writes are totally ordered by
    time. (Writers in different processes are concurrent: any order is true.)
    """

    def __init__(self):
        self._last = None
        self._lock = threading.Lock()

    def tick(self) -> datetime:
        with self._lock:
            t = fhirtime.now()
            if self._last is not None and t <= self._last:
                t = self._last + timedelta(milliseconds=1)
            self._last = t
            return t


_clock = _Clock()


class Unit:
    """One atomic unit of work (see module docstring)."""

    def __init__(self, engine: Engine, session=None, undo: list | None = None, watched: frozenset = frozenset(),
                 append_only: frozenset = frozenset()):
        self.engine = engine
        self.db = engine.db
        self.session = session
        self.undo = undo
        self.watched = watched
        self.append_only = append_only

    def generations(self, types) -> tuple[int, ...]:
        """The write counters of `types` (0 for a type never written since it was watched)."""
        if self.engine.embedded:
            return tuple(self.engine.counters.get(t, 0) for t in types)
        found = {d["_id"]: d["n"] for d in self.db[GENERATIONS].find({"_id": {"$in": list(types)}}, session=self.session)}
        return tuple(found.get(t, 0) for t in types)

    def current(self, rtype: str, rid: str) -> Version | None:
        """The current version with its full stored document (for compare-and-set and undo)."""
        doc = self.db[rtype].find_one({"_id": rid}, session=self.session)
        return _current(rtype, doc) if doc else None

    def read(self, rtype: str, rid: str, extra: dict | None = None) -> Version | None:
        """The current version; with `extra` (an access filter) only when it matches it."""
        doc = self.db[rtype].find_one(_with({"_id": rid}, extra), {"idx": 0}, session=self.session)
        return _current(rtype, doc) if doc else None

    def vread(self, rtype: str, rid: str, version: int, extra: dict | None = None) -> Version | None:
        if rtype in self.append_only:
            cur = self.read(rtype, rid, extra) if version == 1 else None
            return _append_only_version(cur) if cur else None
        doc = self.db[HISTORY].find_one(_with({"_id": f"{rtype}/{rid}/{version}"}, extra), {"idx": 0}, session=self.session)
        return _historic(doc) if doc else None

    def history(
        self,
        rtype: str | None = None,
        rid: str | None = None,
        since: datetime | None = None,
        at: tuple[datetime, datetime] | None = None,
        count: int = 20,
        after: tuple[datetime, str] | None = None,
        extra: dict | None = None,
    ) -> tuple[list[Version], int]:
        """Versions newest first, `count` per page after the keyset cursor `after`; and the total.
        `extra` (an access filter over the versions' own search values) is ANDed in."""
        if rtype in self.append_only:
            return self._append_only_history(rtype, rid, since, at, count, after, extra)
        flt: dict = {}
        if extra:
            flt["$and"] = [extra]
        if rid is not None:
            cur = self.read(rtype, rid)
            if cur is None:
                return [], 0
            # The _id of every version is known: an _id lookup, not a scan.
            flt["_id"] = {"$in": [f"{rtype}/{rid}/{n}" for n in range(1, cur.version + 1)]}
        elif rtype is not None:
            flt["t"] = rtype
        else:
            # The audit trail records every read of the history itself: it is not part of
            # system history (AuditEvent's own type history has it).
            flt["t"] = {"$ne": "AuditEvent"}
        if since is not None:
            flt["ts"] = {"$gte": since}
        if at is not None:
            low, high = at
            flt.setdefault("ts", {})["$lt"] = high
            flt["$or"] = [{"e": None}, {"e": {"$gt": low}}]
        page = flt
        if after is not None:
            ts, key = after
            page = {"$and": [flt, {"$or": [{"ts": {"$lt": ts}}, {"ts": ts, "_id": {"$lt": key}}]}]}
        hist = self.db[HISTORY]
        total = hist.count_documents(flt, session=self.session)
        cursor = hist.find(page, {"idx": 0}, session=self.session).sort([("ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)])
        docs = list(cursor.limit(count))
        return [_historic(d) for d in docs], total

    def _append_only_history(self, rtype, rid, since, at, count, after, extra) -> tuple[list[Version], int]:
        """History of an append-only type from its current documents: each is version 1, never
        superseded, so `_at` only bounds the write time; the cursor key "Type/id/1" is the id."""
        flt: dict = {"d": False}
        if extra:
            flt["$and"] = [extra]
        if rid is not None:
            flt["_id"] = rid
        if since is not None:
            flt["ts"] = {"$gte": since}
        if at is not None:
            flt.setdefault("ts", {})["$lt"] = at[1]
        page = flt
        if after is not None:
            ts, key = after
            rid_after = key.split("/")[1] if key.count("/") == 2 else key
            page = {"$and": [flt, {"$or": [{"ts": {"$lt": ts}}, {"ts": ts, "_id": {"$lt": rid_after}}]}]}
        col = self.db[rtype]
        total = col.count_documents(flt, session=self.session)
        cursor = col.find(page, {"idx": 0}, session=self.session).sort([("ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)])
        return [_append_only_version(_current(rtype, d)) for d in cursor.limit(count)], total

    def search(self, rtype: str, flt: dict, sort: list[tuple[str, int]], limit: int) -> list[Version]:
        """Current, non-deleted versions matching a compiled search filter, sorted, at most `limit`."""
        cur = self.db[rtype].find({"d": False, **flt}, {"idx": 0}, session=self.session)
        return [_current(rtype, d) for d in cur.sort(sort).limit(limit)]

    def count(self, rtype: str, flt: dict) -> int:
        return self.db[rtype].count_documents({"d": False, **flt}, session=self.session)

    def ids(self, rtype: str, flt: dict) -> list[str]:
        """Ids of the current resources matching a filter (chains: an indexed projection)."""
        return [d["_id"] for d in self.db[rtype].find({"d": False, **flt}, {"_id": 1}, session=self.session)]

    def index_values(self, rtype: str, flt: dict, code: str) -> list:
        """The stored index entries of one parameter over the matching resources (_has, _revinclude)."""
        out = []
        for d in self.db[rtype].find({"d": False, **flt}, {f"idx.{code}": 1}, session=self.session):
            out.extend(d.get("idx", {}).get(code, ()))
        return out

    def find(self, rtype: str, query: dict, limit: int = 0) -> list[Version]:
        flt = {"d": False, **query}
        cur = self.db[rtype].find(flt, {"idx": 0}, session=self.session, limit=limit)
        return [_current(rtype, d) for d in cur]

    def write(
        self, rtype: str, rid: str, resource: dict | None, method: str, prev: Version | None, index: dict | None = None
    ) -> Version:
        """Store a new version (a tombstone when resource is None) after `prev`."""
        version = prev.version + 1 if prev else 1
        ts = _clock.tick()
        if prev and ts <= prev.last_updated:
            ts = prev.last_updated + timedelta(milliseconds=1)  # keep each resource's history strictly ordered
        raw = None
        if resource is not None:
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(version)
            meta["lastUpdated"] = fhirtime.format_instant(ts)
            resource = _ordered_resource(resource, meta)
            raw = orjson.dumps(resource)
        doc = {"_id": rid, "v": version, "ts": ts, "d": resource is None, "raw": raw, "idx": {}, "sk": {}}
        if index:
            doc.update(index)  # {"idx": search values, "sk": sort keys}
        col = self.db[rtype]
        if prev is None:
            try:
                col.insert_one(doc, session=self.session)
            except DuplicateKeyError:
                raise ConcurrentWrite(f"{rtype}/{rid}") from None
            self._log(col.delete_one, {"_id": rid})
            self._log(self.engine.note_write, rtype, rid, None)
        else:
            res = col.replace_one({"_id": rid, "v": prev.version}, doc, session=self.session)
            if res.matched_count != 1:
                raise ConcurrentWrite(f"{rtype}/{rid}")
            self._log(col.replace_one, {"_id": rid}, prev.doc)
            self._log(self.engine.note_write, rtype, rid, prev.doc)
        self.engine.note_write(rtype, rid, doc)
        if rtype in self.append_only:
            if prev is not None or resource is None:
                raise ValueError(f"{rtype} is append-only: written once, never changed or deleted")
            return Version(rtype, rid, version, ts, False, raw, method, doc)
        hist = self.db[HISTORY]
        key = f"{rtype}/{rid}"
        hdoc = {"_id": f"{key}/{version}", "t": rtype, "i": rid, "v": version, "ts": ts, "e": None, "m": method, "raw": raw}
        if index and index.get("idx"):
            hdoc["idx"] = index["idx"]  # each version's own search values: access filters apply to history too
        hist.insert_one(hdoc, session=self.session)
        self._log(hist.delete_one, {"_id": hdoc["_id"]})
        if prev is not None:
            hist.update_one({"_id": f"{key}/{prev.version}"}, {"$set": {"e": ts}}, session=self.session)
            self._log(hist.update_one, {"_id": f"{key}/{prev.version}"}, {"$set": {"e": None}})
        if rtype in self.watched:
            # Not undone on rollback: a counter that moved for nothing only costs a recomputation.
            # The embedded store lives in this process only, so its counters are plain ints here.
            if self.engine.embedded:
                self.engine.counters[rtype] = self.engine.counters.get(rtype, 0) + 1
            else:
                self.db[GENERATIONS].update_one({"_id": rtype}, {"$inc": {"n": 1}}, upsert=True, session=self.session)
        return Version(rtype, rid, version, ts, resource is None, raw, method, doc)

    # -- hash chains (the audit trail) ------------------------------------------------
    def chain_head(self, chain: str) -> tuple[int, str]:
        """(seq, hash) of a chain's last link; (0, genesis) for an empty chain."""
        head = self.db[chain].find_one({"_id": "head"}, session=self.session)
        return (head["seq"], head["hash"]) if head else (0, "0" * 64)

    def chain_link(self, chain: str, seq: int, prev: str, digest: str, ref: str) -> None:
        """Append link `seq` after `prev`: the head moves compare-and-set, so two writers
        that read the same head cannot both append (the loser retries)."""
        col = self.db[chain]
        if seq == 1:
            try:
                col.insert_one({"_id": "head", "seq": 1, "hash": digest}, session=self.session)
            except DuplicateKeyError:
                raise ConcurrentWrite(chain) from None
            self._log(col.delete_one, {"_id": "head"})
        else:
            res = col.update_one({"_id": "head", "seq": seq - 1, "hash": prev}, {"$set": {"seq": seq, "hash": digest}}, session=self.session)
            if res.modified_count != 1:
                raise ConcurrentWrite(chain)
            self._log(col.update_one, {"_id": "head"}, {"$set": {"seq": seq - 1, "hash": prev}})
        col.insert_one({"_id": seq, "ev": ref, "hash": digest}, session=self.session)
        self._log(col.delete_one, {"_id": seq})

    def _log(self, fn, *args):
        if self.undo is not None:
            self.undo.append((fn, args))

    def rollback(self) -> None:
        while self.undo:
            fn, args = self.undo.pop()
            fn(*args)


class ResourceStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.db = engine.db
        # Types whose writes move a generation counter (watch()), and a process-local memo for
        # the layers above, whose entries they validate against those counters.
        self.watched: frozenset[str] = frozenset()
        self.memo: dict = {}
        self.append_only_types: frozenset[str] = frozenset()

    def watch(self, *types: str) -> None:
        """Count the writes of `types` (Unit.generations), for caches that must never be stale."""
        self.watched = self.watched | frozenset(types)

    def append_only(self, *types: str) -> None:
        """Declare `types` written once and never changed: no history copies (module docstring)."""
        self.append_only_types = self.append_only_types | frozenset(types)
        with self._reading():
            for rtype in types:  # their history pages: newest first, ties by id
                self.db[rtype].create_index([("ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)], name="append_only_history")

    # -- setup ---------------------------------------------------------------------
    def ensure_indexes(self, resource_types) -> None:
        """Declared indexes, created idempotently (create_index is a no-op when present)."""
        with self._reading():
            hist = self.db[HISTORY]
            hist.create_index([("ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)], name="system_history")
            hist.create_index([("t", 1), ("ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)], name="type_history")
            hist.create_index([("t", 1), ("i", 1), ("v", pymongo.DESCENDING)], name="instance_history")
            if not self.engine.embedded:
                hist.create_index([("idx.$**", 1)], name="search_values")  # access filters on history
            for rtype in resource_types:
                col = self.db[rtype]
                col.create_index([("ts", pymongo.DESCENDING), ("_id", 1)], name="last_updated")
                if not self.engine.embedded:
                    # Every search parameter's values (idx.<code>.<field>) and sort keys are
                    # served by wildcard indexes (MongoDB 4.2+): one index per collection
                    # instead of one per parameter, which would pass the 64-index limit.
                    col.create_index([("idx.$**", 1)], name="search_values")
                    col.create_index([("sk.$**", 1)], name="sort_keys")

    # -- atomic units ----------------------------------------------------------------
    def atomic(self, fn, retries: int = 8):
        """Run fn(unit) as one atomic unit; retried when a compare-and-set loses."""
        for _ in range(retries):
            try:
                return self._run_once(fn)
            except ConcurrentWrite as lost:
                ref = str(lost)
        # Still losing after every retry: 409 Conflict, as HAPI answers a version conflict.
        raise FHIRError(409, "conflict", "concurrent-write", ref=ref)

    def _run_once(self, fn):
        eng = self.engine
        if eng.transactions:
            with eng.client.start_session() as session:
                return session.with_transaction(lambda s: fn(Unit(eng, session=s, watched=self.watched, append_only=self.append_only_types)))
        with eng.lock if eng.lock is not None else contextlib.nullcontext():
            unit = Unit(eng, undo=[], watched=self.watched, append_only=self.append_only_types)
            try:
                return fn(unit)
            except BaseException:
                unit.rollback()
                raise

    def _reading(self):
        return self.engine.lock if self.engine.lock is not None else contextlib.nullcontext()

    # -- reads (outside any unit) ---------------------------------------------------
    def reader(self) -> "_Reader":
        """A read-only view holding the embedded engine's lock per call."""
        return _Reader(self)

    def read(self, rtype: str, rid: str) -> Version | None:
        return self.reader().read(rtype, rid)

    def vread(self, rtype: str, rid: str, version: int) -> Version | None:
        return self.reader().vread(rtype, rid, version)

    def find(self, rtype: str, query: dict, limit: int = 0) -> list[Version]:
        return self.reader().find(rtype, query, limit)

    def history(self, *args, **kwargs):
        return self.reader().history(*args, **kwargs)

    def chain(self, chain: str) -> tuple[list[dict], dict | None]:
        """Every link of a chain in order, and its head."""
        with self._reading():
            col = self.db[chain]
            links = list(col.find({"_id": {"$ne": "head"}}).sort([("_id", 1)]))
            return links, col.find_one({"_id": "head"})

    # -- maintenance -----------------------------------------------------------------
    def reindex(self, resource_types, index_fn, batch: int = 500) -> dict[str, int]:
        """Recompute the stored search values (`idx`, `sk`) of every current version and every
        historic version of `resource_types` from their stored JSON with `index_fn`, writing
        only those that changed, without a new version: for data written before the search
        definitions or their normalisation changed. A current version written meanwhile is
        left as its writer indexed it (compare-and-set on the version).
        Returns {"checked": n, "changed": n}."""
        checked = changed = 0
        for rtype in resource_types:
            col = self.db[rtype]
            ids = [d["_id"] for d in col.find({"d": False}, {"_id": 1})]
            for start in range(0, len(ids), batch):
                with self._reading():
                    for doc in col.find({"_id": {"$in": ids[start:start + batch]}, "d": False}):
                        checked += 1
                        new = index_fn(orjson.loads(doc["raw"]))
                        if new.get("idx", {}) == doc.get("idx", {}) and new.get("sk", {}) == doc.get("sk", {}):
                            continue
                        res = col.update_one({"_id": doc["_id"], "v": doc["v"]}, {"$set": {"idx": new.get("idx", {}), "sk": new.get("sk", {})}})
                        if res.modified_count:
                            changed += 1
                            self.engine.note_write(rtype, doc["_id"], {**doc, **new})
            if rtype in self.append_only_types:
                continue
            hist = self.db[HISTORY]
            keys = [d["_id"] for d in hist.find({"t": rtype, "raw": {"$ne": None}}, {"_id": 1})]
            for start in range(0, len(keys), batch):
                with self._reading():
                    for doc in hist.find({"_id": {"$in": keys[start:start + batch]}}):
                        checked += 1
                        idx = index_fn(orjson.loads(doc["raw"])).get("idx") or {}
                        if idx != (doc.get("idx") or {}):
                            hist.update_one({"_id": doc["_id"]}, {"$set": {"idx": idx}} if idx else {"$unset": {"idx": ""}})
                            changed += 1
        return {"checked": checked, "changed": changed}

    @staticmethod
    def history_key(v: Version) -> tuple[datetime, str]:
        return v.last_updated, f"{v.type}/{v.id}/{v.version}"


class _Reader:
    """Unit reads outside any unit, each under the embedded engine's lock."""

    def __init__(self, store: ResourceStore):
        self._store = store
        self._unit = Unit(store.engine, append_only=store.append_only_types)

    def __getattr__(self, name):
        fn = getattr(self._unit, name)

        def locked(*args, **kwargs):
            with self._store._reading():
                return fn(*args, **kwargs)

        return locked
