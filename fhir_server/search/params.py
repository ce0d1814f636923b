"""The search parameter table (resources/search_params.json) as typed objects.

Generated from the official R4 SearchParameters by tools/gen_search_params.py: for
each resource type and parameter code, its type, the JSON element paths it indexes
(with the FHIR datatype at the end of each path), reference targets, the modifiers
and prefixes this server implements, and the components of composites.
"""

from __future__ import annotations

import functools
import json
import pathlib
from dataclasses import dataclass

from resources import registry

_TABLE = pathlib.Path(registry.__file__).with_name("search_params.json")
# Parameters served from the stored document itself, not from its `idx` part.
STORED_FIELD = {"_id": "_id", "_lastUpdated": "ts"}


@dataclass(frozen=True, slots=True)
class Path:
    keys: tuple[str, ...]  # JSON keys from the resource root; arrays are walked implicitly
    type: str  # FHIR datatype at the end
    ref: tuple[str, ...] | None = None  # `.where(resolve() is X)`: only references to these types
    where: tuple[tuple[str, str], ...] | None = None  # `.where(system='phone')`
    where_depth: int | None = None  # the where() filters the values after this many keys (default: all)
    system: str | None = None  # a `code` element's implicit code system (its required binding)


@dataclass(frozen=True, slots=True)
class Component:
    code: str
    type: str
    paths: tuple[tuple[Path, ...], ...]  # per context


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str
    type: str
    url: str
    paths: tuple[Path, ...]
    modifiers: frozenset[str]
    comparators: frozenset[str]
    targets: tuple[str, ...] = ()
    contexts: tuple[tuple[str, ...], ...] = ()  # composites: element paths each combination is taken in
    components: tuple[Component, ...] = ()

    @property
    def field(self) -> str:
        """The stored field the parameter's values live in."""
        return STORED_FIELD.get(self.code) or f"idx.{self.code}"


def _path(raw: dict) -> Path:
    return Path(
        tuple(raw["p"].split(".")) if raw["p"] else (),
        raw["t"],
        tuple(raw["ref"]) if raw.get("ref") else None,
        tuple(sorted(raw["w"].items())) if raw.get("w") else None,
        raw.get("wd"),
        raw.get("sys"),
    )


def _param(code: str, raw: dict) -> SearchParam:
    comps = tuple(
        Component(c["code"], c["type"], tuple(tuple(_path(p) for p in per) for per in c["paths"])) for c in raw.get("components", ())
    )
    return SearchParam(
        code,
        raw["type"],
        raw["url"],
        tuple(_path(p) for p in raw["paths"]),
        frozenset(raw.get("modifier", ())),
        frozenset(raw.get("comparator", ())),
        tuple(raw.get("target", ())),
        tuple(tuple(c.split(".")) if c else () for c in raw.get("contexts", ())),
        comps,
    )


@functools.cache
def _table() -> dict[str, dict[str, SearchParam]]:
    raw = json.loads(_TABLE.read_text(encoding="utf-8"))["params"]
    return {
        rtype: {code: _param(code, p) for code, p in params.items()}
        for rtype, params in raw.items()
        if registry.is_supported(rtype)
    }


def params_of(rtype: str) -> dict[str, SearchParam]:
    return _table().get(rtype, {})


def lookup(rtype: str, code: str) -> SearchParam | None:
    return _table().get(rtype, {}).get(code)


def all_types() -> tuple[str, ...]:
    return tuple(_table())
