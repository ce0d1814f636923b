"""Connecting to the database: a real MongoDB, or the embedded mongomock engine.

The embedded engine is mongomock, in-process. Two things make it fit for a server:

* One process-wide lock serialises every operation on it. mongomock mutates documents
  in place and its collections are not safe for concurrent threads; with the GIL there
  is little parallelism to lose, and the lock also gives transactions their isolation.
* Candidate lookups. mongomock answers every query by filtering the whole collection,
  so any lookup costs O(n). The patch narrows the scan to candidates, then still
  applies the full filter to each, so the result is exactly what the scan would return:
  - filters that pin `_id` (equality or `$in`) take it from the collection's `_id` map;
  - filters with an equality on a search value (`idx.<code>.<field>`: a token code,
    a reference's type and id, a uri, an exact string; directly or inside `$elemMatch`,
    `$and`, or in every branch of an `$or`) take it from an inverted index of the
    stored search values, kept by the store on every write (`Engine.note_write`);
    so does `{"idx.<code>": {"$exists": true|false}}` (documents with / without values
    for a parameter).
  This is purely an engine speed-up; queries stay plain MongoDB queries that a real
  server serves from its indexes.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import pymongo

_PATCHED = False
ORIGINALS: dict = {}  # the mongomock functions the speed-ups below replace (tests compare them)
# Entry fields whose string values the inverted index holds (see search/index.py).
_POSTED = frozenset(("s", "c", "t", "i", "u", "e", "is", "ic", "ot"))


class SearchValueIndex:
    """Inverted index of one embedded collection: (code, field, value) -> ids."""

    def __init__(self):
        self.postings: dict[tuple, set] = defaultdict(set)
        self.keys_of: dict[str, list] = {}
        # ids by the search codes their document has values for, for {"idx.<code>": {"$exists": ...}}
        self.codes_of: dict[str, tuple] = {}
        self.having: dict[str, set] = defaultdict(set)

    @staticmethod
    def _keys(doc: dict) -> list:
        out = []
        for code, entries in (doc.get("idx") or {}).items():
            for e in entries:
                for f, v in e.items():
                    if isinstance(v, dict):  # a composite's component entry
                        out.extend((code, f"{f}.{g}", w) for g, w in v.items() if g in _POSTED and isinstance(w, str))
                    elif f in _POSTED and isinstance(v, str):
                        out.append((code, f, v))
        return out

    def put(self, rid: str, doc: dict | None) -> None:
        for key in self.keys_of.pop(rid, ()):
            ids = self.postings.get(key)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del self.postings[key]
        for code in self.codes_of.pop(rid, ()):
            self.having[code].discard(rid)
        if doc is not None:
            keys = self._keys(doc)
            for key in keys:
                self.postings[key].add(rid)
            self.keys_of[rid] = keys
            codes = tuple(doc.get("idx") or ())
            for code in codes:
                self.having[code].add(rid)
            self.codes_of[rid] = codes

    def _lookup(self, code: str, field: str, value) -> set | None:
        if isinstance(value, str):
            return self.postings.get((code, field, value), set())
        if isinstance(value, dict) and set(value) == {"$in"} and all(isinstance(v, str) for v in value["$in"]):
            out: set = set()
            for v in value["$in"]:
                out |= self.postings.get((code, field, v), set())
            return out
        return None

    # Once the candidates are this few, nested clauses ($and/$or) are not looked up: the full
    # filter is applied to each candidate anyway, so a superset is as good and cheaper than
    # intersecting with, say, an access filter's $or of $in over thousands of patients.
    FEW = 32

    def candidates(self, flt) -> set | None:
        """A superset of the ids matching `flt`, or None when no clause narrows it."""
        if not isinstance(flt, dict):
            return None
        # Plain clauses first: they are cheap and usually narrow; $and/$or after, if still needed.
        items = sorted(flt.items(), key=lambda kv: kv[0] in ("$and", "$or"))
        best: set | None = None
        for k, v in items:
            if best is not None and len(best) <= self.FEW and k in ("$and", "$or"):
                break  # plain clauses are single look-ups: always taken; nested ones may be wide
            got = None
            if k == "$and" and isinstance(v, list):
                got = self._all_of(v, best)
            elif k == "$or" and isinstance(v, list) and v:
                subs = [self.candidates(x) for x in v]
                got = set().union(*subs) if all(c is not None for c in subs) else None
            elif k.startswith("idx."):
                parts = k.split(".")
                if len(parts) >= 3:
                    got = self._lookup(parts[1], ".".join(parts[2:]), v)
                elif len(parts) == 2 and isinstance(v, dict) and set(v) == {"$elemMatch"}:
                    got = self._elem(parts[1], v["$elemMatch"])
                elif len(parts) == 2 and isinstance(v, dict) and set(v) == {"$exists"} and isinstance(v["$exists"], bool):
                    having = self.having.get(parts[1], set())
                    got = set(having) if v["$exists"] else set(self.codes_of) - having
            if got is not None:
                best = got if best is None else best & got
        return best

    def _all_of(self, subs: list, best: set | None) -> set | None:
        def nested(x) -> bool:
            return isinstance(x, dict) and any(k in ("$and", "$or") for k in x)

        for x in sorted(subs, key=nested):
            if best is not None and len(best) <= self.FEW and nested(x):
                break
            got = self.candidates(x)
            if got is not None:
                best = got if best is None else best & got
        return best

    def _elem(self, code: str, pred) -> set | None:
        if not isinstance(pred, dict):
            return None
        found = [c for c in (self._lookup(code, f, v) for f, v in pred.items() if not f.startswith("$")) if c is not None]
        return set.intersection(*found) if found else None


_LEAVES = frozenset((str, bytes, int, float, bool, type(None)))


def _fast_walk(original):
    """mongomock walks every document it stores, every filter and every update through
    helpers.patch_datetime_awareness_in_document (datetimes to naive UTC milliseconds), and
    every document it returns through make_datetime_timezone_aware_in_document, rebuilding
    each dict and list with isinstance checks at every level. This does the same with one
    exact type test per value: plain dicts and lists are rebuilt the same way, leaves of
    the common immutable types are returned as they are, and everything else (datetimes,
    OrderedDicts, other mappings, bson Timestamps) goes to the original, so every result
    equals the original's."""

    def patch(value):
        t = type(value)
        if t is dict:
            return {k: v if type(v) in _LEAVES else patch(v) for k, v in value.items()}
        if t is list or t is tuple:
            return [v if type(v) in _LEAVES else patch(v) for v in value]
        if t in _LEAVES:
            return value
        return original(value)

    return patch


def _fast_in(original):
    """mongomock's `$in` tests every document value against the list, after checking each
    listed value for being a regex - for every document it filters. An access filter's `$in`
    can hold thousands of patient ids, so this keeps, for the list being matched (the same
    object for every document of one query; mongomock copies filters per query), a set of
    its values when they are all strings, and answers string document values from it.
    Anything else goes to the original, so every answer equals the original's."""
    last: list = [None, None]  # [the list (kept alive, so `is` is sound), its set of strings]
    lock = threading.Lock()

    def in_op(doc_val, search_val):
        if type(search_val) is not list or len(search_val) < 8:
            return original(doc_val, search_val)
        with lock:
            if last[0] is search_val:
                values = last[1]
            else:
                values = frozenset(search_val) if all(type(x) is str for x in search_val) else None
                last[0], last[1] = search_val, values
        if values is None:
            return original(doc_val, search_val)
        if type(doc_val) is str:
            return doc_val in values
        if type(doc_val) is list and all(type(x) is str for x in doc_val):
            return any(x in values for x in doc_val)
        return original(doc_val, search_val)

    return in_op


def _patch_mongomock_id_lookup() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from mongomock import filtering, helpers
    from mongomock.collection import Collection

    ORIGINALS.update(patch=helpers.patch_datetime_awareness_in_document,
                     aware=helpers.make_datetime_timezone_aware_in_document, in_op=filtering._in_op)
    helpers.patch_datetime_awareness_in_document = _fast_walk(ORIGINALS["patch"])
    helpers.make_datetime_timezone_aware_in_document = _fast_walk(ORIGINALS["aware"])
    fast_in = _fast_in(ORIGINALS["in_op"])
    filtering._in_op = fast_in
    filtering._filterer_inst._operator_map["$in"] = fast_in  # $nin calls the module-level name

    original = Collection._iter_documents

    def _iter_documents(self, filter):  # noqa: A002 - mongomock's own signature
        accel = getattr(self._store, "fhir_search_values", None)
        if accel is not None and type(filter) is dict and "_id" not in filter:
            ids = accel.candidates(filter)
            if ids is not None:
                store = self._store
                docs = [store[k] for k in sorted(ids) if k in store]
                return (d for d in docs if filtering.filter_applies(filter, d))
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
        # Embedded engine: the store's write counters per watched type (Unit.generations); a
        # real MongoDB keeps them in a collection, shared by every server process.
        self.counters: dict[str, int] = {}

    def note_write(self, collection: str, rid: str, doc: dict | None) -> None:
        """Keep the embedded engine's inverted index of search values current."""
        if not self.embedded:
            return
        store = self.db[collection]._store
        accel = getattr(store, "fhir_search_values", None)
        if accel is None:
            accel = store.fhir_search_values = SearchValueIndex()
        accel.put(rid, doc)

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
