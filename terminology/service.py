"""The terminology engine: code systems, value set expansion, validation, concept maps.

Content comes from two places: the packaged resources (terminology/data, in memory once
per process) and, when a store reader is given, the CodeSystem/ValueSet/ConceptMap
resources in the store (the loaded copies and whatever users posted). Of one canonical
url the newest version by version order is used, unless a version is asked for; a store
copy of a version replaces the packaged one of the same version.

Compiled forms (a code system's concept index and hierarchy, a value set's expansion)
are cached by the identity of the resource version they were made from.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from fhir_server import i18n
from fhir_server.packages import version_key

from . import packaged as _packaged

CONTENT_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")
_CACHE_MAX = 256


class TerminologyError(Exception):
    """A request the terminology service cannot answer: `key` is an i18n message id."""

    def __init__(self, status: int, issue: str, key: str, expression: str | None = None, /, **params):
        super().__init__(key)
        self.status, self.issue, self.key, self.expression, self.params = status, issue, key, expression, params


@dataclass(frozen=True)
class Verdict:
    ok: bool | None  # None: the value set / code system is unknown to the server, or its content incomplete
    message: str | None = None  # English; `key` and `params` render it in another language (fhir_server.i18n)
    display: str | None = None
    key: str | None = None
    params: tuple = ()

    def text(self, lang: str = "en") -> str | None:
        return i18n.render(self.key, lang, dict(self.params)) if self.key else self.message


def verdict(ok: bool | None, key: str | None = None, shown: str | None = None, /, **params) -> Verdict:
    """A Verdict with the message `key` (params filled in) and the concept's display `shown`."""
    return Verdict(ok, i18n.render(key, "en", params) if key else None, shown, key, tuple(sorted(params.items())))


# -- where content comes from -----------------------------------------------------------------
def split_canonical(url: str) -> tuple[str, str | None]:
    """`url|version` -> (url, version)."""
    base, sep, version = url.partition("|")
    return base, (version or None) if sep else None


def _packaged_by_url() -> dict[tuple[str, str], list[dict]]:
    cached = getattr(_packaged_by_url, "_v", None)
    if cached is None:
        cached = {}
        for r in _packaged():
            if r.get("resourceType") in CONTENT_TYPES:
                cached.setdefault((r["resourceType"], r["url"]), []).append(r)
        _packaged_by_url._v = cached
    return cached


def versions(rtype: str, url: str, reader=None) -> list[dict]:
    """Every known version of a canonical resource, oldest first."""
    by_version: dict[str | None, dict] = {r.get("version"): r for r in _packaged_by_url().get((rtype, url), ())}
    if reader is not None:
        for v in reader.search(rtype, {"idx.url.u": url}, [("_id", 1)], 1000):
            r = _parsed(v)
            if r.get("url") == url:
                by_version[r.get("version")] = r
    return sorted(by_version.values(), key=lambda r: version_key(r.get("version")))


_parsed_cache: dict[tuple, dict] = {}


def _parsed(v) -> dict:
    """A stored version's resource, parsed once per (type, id, versionId): a store version
    never changes, and an NSI CodeSystem is hundreds of kilobytes of JSON."""
    key = (v.type, v.id, v.version, v.last_updated)
    hit = _parsed_cache.get(key)
    if hit is None:
        hit = v.resource()
        with _cache_lock:
            if len(_parsed_cache) >= _CACHE_MAX:
                _parsed_cache.clear()
            _parsed_cache[key] = hit
    return hit


def resolve(rtype: str, url: str, version: str | None = None, reader=None) -> dict | None:
    url, pinned = split_canonical(url)
    version = version or pinned
    found = versions(rtype, url, reader)
    if version is not None:
        found = [r for r in found if r.get("version") == version]
    return found[-1] if found else None


# -- compiled forms ---------------------------------------------------------------------------
_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()


def _identity(r: dict) -> tuple:
    meta = r.get("meta") or {}
    return (r.get("resourceType"), r.get("url"), r.get("version"), r.get("id"), meta.get("versionId"), meta.get("lastUpdated"))


def _cached(kind: str, r: dict, make, extra: tuple = ()):
    key = (kind, *_identity(r), extra)
    hit = _cache.get(key)
    if hit is None:
        hit = make(r)
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = hit
    return hit


@dataclass
class Concept:
    code: str
    display: str | None
    definition: str | None
    designations: list[dict]
    properties: list[dict]  # CodeSystem.concept.property entries other than parent/child
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


class CodeSystemIndex:
    """A code system's concepts by code, with the is-a hierarchy (concept nesting or the
    `parent` / `child` properties)."""

    def __init__(self, cs: dict):
        self.resource = cs
        self.url = cs.get("url")
        self.version = cs.get("version")
        self.name = cs.get("name") or cs.get("title") or self.url
        self.content = cs.get("content")
        self.case_sensitive = cs.get("caseSensitive", True)
        self.concepts: dict[str, Concept] = {}
        self._folded: dict[str, str] = {}
        self._walk(cs.get("concept") or (), None)
        for c in list(self.concepts.values()):
            for p in c.parents:
                if p in self.concepts and c.code not in self.concepts[p].children:
                    self.concepts[p].children.append(c.code)
            for ch in c.children:
                if ch in self.concepts and c.code not in self.concepts[ch].parents:
                    self.concepts[ch].parents.append(c.code)

    def _walk(self, concepts, parent: str | None) -> None:
        for raw in concepts:
            props = [p for p in raw.get("property") or () if p.get("code") not in ("parent", "child")]
            c = Concept(raw["code"], raw.get("display"), raw.get("definition"), list(raw.get("designation") or ()), props)
            for p in raw.get("property") or ():
                target = p.get("valueCode")
                if p.get("code") == "parent" and target:
                    c.parents.append(target)
                elif p.get("code") == "child" and target:
                    c.children.append(target)
            if parent is not None and parent not in c.parents:
                c.parents.append(parent)
            self.concepts[c.code] = c
            self._folded.setdefault(c.code.casefold(), c.code)
            self._walk(raw.get("concept") or (), c.code)

    def get(self, code: str) -> Concept | None:
        c = self.concepts.get(code)
        if c is None and not self.case_sensitive:
            real = self._folded.get(code.casefold())
            c = self.concepts.get(real) if real else None
        return c

    def descendants(self, code: str) -> list[str]:
        return self._reach(code, "children")

    def ancestors(self, code: str) -> list[str]:
        return self._reach(code, "parents")

    def _reach(self, code: str, link: str) -> list[str]:
        """Every concept reached from `code` along `link` (children or parents), `code` itself not included."""
        out, seen = [], {code}
        todo = list(getattr(self.concepts[code], link)) if code in self.concepts else []
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            out.append(c)
            todo.extend(getattr(self.concepts[c], link) if c in self.concepts else ())
        return out

    def property_value(self, c: Concept, code: str):
        for p in c.properties:
            if p.get("code") == code:
                for k, v in p.items():
                    if k.startswith("value"):
                        return v
        return None


def code_system(url: str, version: str | None = None, reader=None) -> CodeSystemIndex | None:
    cs = resolve("CodeSystem", url, version, reader)
    return _cached("cs", cs, CodeSystemIndex) if cs is not None else None


def code_system_of(resource: dict) -> CodeSystemIndex:
    return _cached("cs", resource, CodeSystemIndex)


_DISPLAY_FOLD = str.maketrans({"ё": "е", "Ё": "Е", "[": "(", "]": ")"})


def fold_display(text: str) -> str:
    """Displays compare without case, ё/е and [ ]/( ) differences (both spellings are in use
    in the Russian МКБ-10) and runs of whitespace."""
    return " ".join(text.translate(_DISPLAY_FOLD).casefold().split())


def display_matches(c: Concept, display: str) -> bool:
    wanted = fold_display(display)
    names = [c.display or ""] + [d.get("value") or "" for d in c.designations]
    return any(fold_display(n) == wanted for n in names)


# -- value sets -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    system: str
    version: str | None
    code: str
    display: str | None


@dataclass
class Expansion:
    entries: list[Entry]
    used: list[tuple[str, str]]  # ("used-codesystem", "url|version") parameters
    partial: frozenset = frozenset()  # systems included from content that is not complete
    by_key: dict = field(default_factory=dict)

    def __post_init__(self):
        self.by_key = {(e.system, e.code): e for e in self.entries}
        self._folded: list[tuple[Entry, str, str]] | None = None

    def folded(self) -> list[tuple[Entry, str, str]]:
        """(entry, folded display, case-folded code), made once: what $expand's filter compares."""
        if self._folded is None:
            from fhir_server.search.index import fold

            self._folded = [(e, fold(e.display or ""), e.code.casefold()) for e in self.entries]
        return self._folded

    def find(self, system: str | None, code: str) -> Entry | None:
        if system is not None:
            return self.by_key.get((system, code))
        for e in self.entries:
            if e.code == code:
                return e
        return None

    def codes_by_system(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.entries:
            out.setdefault(e.system, []).append(e.code)
        return out


def _filter_codes(cs: CodeSystemIndex, flt: dict, where: str) -> set[str]:
    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
    if prop == "concept" and op in ("is-a", "descendent-of", "is-not-a"):
        if value not in cs.concepts:
            return set()
        below = set(cs.descendants(value))
        if op == "is-a":
            return below | {value}
        if op == "descendent-of":
            return below
        return set(cs.concepts) - below - {value}
    if op == "=":
        if prop in ("code", "concept"):
            return {value} if value in cs.concepts else set()
        return {c.code for c in cs.concepts.values() if str(cs.property_value(c, prop)) == value}
    if op == "in" and prop in ("code", "concept"):
        wanted = {v.strip() for v in (value or "").split(",")}
        return wanted & set(cs.concepts)
    raise TerminologyError(422, "not-supported", "tx-filter-unsupported", where, op=str(op), property=str(prop))


def _include(part: dict, reader, where: str, stack: tuple, partial: set | None = None) -> tuple[list[Entry], list[tuple[str, str]]]:
    partial = set() if partial is None else partial
    used: list[tuple[str, str]] = []
    sets: list[dict[tuple[str, str], Entry]] = []
    system = part.get("system")
    if system:
        cs = code_system(system, part.get("version"), reader)
        if part.get("concept"):
            chosen = []
            for k in part["concept"]:
                c = cs.get(k["code"]) if cs else None
                if cs is not None and c is None and cs.content in (None, "complete"):
                    continue  # not in this version of the code system (a fragment may just lack it)
                chosen.append(Entry(system, cs.version if cs else part.get("version"), k["code"], k.get("display") or (c.display if c else None)))
        else:
            if cs is None:
                raise TerminologyError(404, "not-found", "tx-unknown-codesystem", where, url=system)
            codes = list(cs.concepts)
            for flt in part.get("filter") or ():
                keep = _filter_codes(cs, flt, where)
                codes = [c for c in codes if c in keep]
            chosen = [Entry(system, cs.version, c, cs.concepts[c].display) for c in codes]
            if cs.content != "complete":
                partial.add(system)
        if cs is not None:
            used.append(("used-codesystem", f"{cs.url}|{cs.version}" if cs.version else cs.url))
        sets.append({(e.system, e.code): e for e in chosen})
    for vs_url in part.get("valueSet") or ():
        if vs_url in stack:
            raise TerminologyError(422, "processing", "tx-valueset-cycle", where, url=vs_url)
        vs = resolve("ValueSet", vs_url, None, reader)
        if vs is None:
            raise TerminologyError(404, "not-found", "tx-unknown-valueset", where, url=vs_url)
        sub = expand_resource(vs, reader, stack + (vs_url,))
        used.extend(sub.used)
        partial.update(sub.partial)
        sets.append({(e.system, e.code): e for e in sub.entries})
    if not sets:
        return [], used
    keys = set(sets[0])
    for s in sets[1:]:
        keys &= set(s)
    return [e for k, e in sets[0].items() if k in keys], used


def expand_resource(vs: dict, reader=None, stack: tuple = ()) -> Expansion:
    """The whole (unfiltered) expansion of a ValueSet resource, cached by the identity of
    the value set and of the code system / value set versions its compose resolves to."""
    return _cached("vs", vs, lambda r: _expand(r, reader, stack), _dependencies(vs, reader))


def _dependencies(vs: dict, reader, seen: frozenset = frozenset()) -> tuple:
    compose = vs.get("compose") or {}
    seen = seen | {vs.get("url")}
    out = []
    for part in [*(compose.get("include") or ()), *(compose.get("exclude") or ())]:
        if part.get("system"):
            r = resolve("CodeSystem", part["system"], part.get("version"), reader)
            out.append(_identity(r) if r else (part["system"],))
        for url in part.get("valueSet") or ():
            r = resolve("ValueSet", url, None, reader) if url not in seen else None
            out.append((_identity(r), _dependencies(r, reader, seen)) if r else (url,))
    return tuple(out)


def _expand(vs: dict, reader, stack: tuple) -> Expansion:
    compose = vs.get("compose")
    if not compose:
        contains = (vs.get("expansion") or {}).get("contains")
        if contains is None:
            raise TerminologyError(422, "processing", "tx-valueset-no-content", None, url=vs.get("url"))
        return Expansion([Entry(c.get("system"), c.get("version"), c.get("code"), c.get("display")) for c in _flatten(contains)], [])
    entries: dict[tuple[str, str], Entry] = {}
    used: list[tuple[str, str]] = []
    partial: set = set()
    for i, part in enumerate(compose.get("include") or ()):
        got, u = _include(part, reader, f"ValueSet.compose.include[{i}]", stack + (vs.get("url"),), partial)
        used.extend(u)
        for e in got:
            entries.setdefault((e.system, e.code), e)
    for i, part in enumerate(compose.get("exclude") or ()):
        got, _ = _include(part, reader, f"ValueSet.compose.exclude[{i}]", stack + (vs.get("url"),))
        for e in got:
            entries.pop((e.system, e.code), None)
    return Expansion(list(entries.values()), list(dict.fromkeys(used)), frozenset(partial))


def _flatten(contains):
    for c in contains:
        if c.get("code"):
            yield c
        yield from _flatten(c.get("contains") or ())


def value_set(url: str, version: str | None = None, reader=None) -> dict | None:
    return resolve("ValueSet", url, version, reader)


def expansion(url: str, version: str | None = None, reader=None) -> Expansion | None:
    vs = value_set(url, version, reader)
    return expand_resource(vs, reader) if vs is not None else None


# -- the Python API -----------------------------------------------------------------------------
# The syntax of a code system's codes, where it is fixed: a code outside a packaged fragment
# that does not even have this form is not in the code system (МКБ-10: letter, two digits,
# optional .d or .dd; chapters and blocks are ranges A00-B99).
CODE_SYNTAX = {
    "urn:oid:1.2.643.5.1.13.13.11.1005": re.compile(r"^[A-Z][0-9]{2}(?:\.[0-9]{1,2}|-[A-Z][0-9]{2})?$"),
}


def _malformed(system: str | None, code: str) -> bool:
    syntax = CODE_SYNTAX.get(system or "")
    return syntax is not None and not syntax.match(code)



def check_in_code_system(cs: CodeSystemIndex, code: str, display: str | None) -> Verdict:
    c = cs.get(code)
    if c is None:
        if cs.content not in (None, "complete") and not _malformed(cs.url, code):
            return verdict(None, "tx-code-unchecked", code=code, url=cs.url, content=cs.content)
        return verdict(False, "tx-code-unknown", code=code, url=cs.url)
    if display is not None and not display_matches(c, display):
        return verdict(False, "tx-display-wrong", c.display, display=display, code=code, url=cs.url, expected=c.display or "")
    return verdict(True, None, c.display)


def check_in_expansion(exp: Expansion, vs_url: str, system: str | None, code: str, display: str | None, reader=None, system_version=None) -> Verdict:
    e = exp.find(system, code)
    if e is None:
        if ((system in exp.partial) if system is not None else bool(exp.partial)) and not _malformed(system, code):
            return verdict(None, "tx-code-unchecked-vs", code=code, url=vs_url)
        return verdict(False, "tx-code-not-in-vs", code=f"{system}|{code}" if system else code, url=vs_url)
    cs = code_system(e.system, system_version, reader)
    c = cs.get(e.code) if cs is not None else None
    if c is not None:
        if display is not None and not display_matches(c, display):
            return verdict(False, "tx-display-wrong", c.display, display=display, code=code, url=e.system, expected=c.display or "")
        return verdict(True, None, c.display)
    if display is not None and e.display is not None and fold_display(display) != fold_display(e.display):
        return verdict(False, "tx-display-wrong", e.display, display=display, code=code, url=e.system, expected=e.display)
    return verdict(True, None, e.display)


def validate_code(*, valueset: str | None = None, system: str | None = None, code: str, display: str | None = None, reader=None) -> Verdict:
    """Is `code` (of `system`) in the value set `valueset`, or in the code system `system`?"""
    if valueset is not None:
        try:
            exp = expansion(valueset, None, reader)
        except TerminologyError as exc:
            return verdict(None, exc.key, **exc.params)  # cannot be expanded here: cannot check
        if exp is None:
            return verdict(None, "tx-unknown-valueset", url=valueset)
        return check_in_expansion(exp, valueset, system, code, display, reader)
    if system is None:
        raise ValueError("validate_code needs a valueset or a system")
    cs = code_system(system, None, reader)
    if cs is None:
        return verdict(None, "tx-unknown-codesystem", url=system)
    return check_in_code_system(cs, code, display)


def concepts(system: str) -> list[tuple[str, str]]:
    """(code, display) of every concept of a packaged code system, in its order."""
    cs = code_system(system)
    if cs is None:
        raise KeyError(system)
    return [(c.code, c.display or "") for c in cs.concepts.values()]
