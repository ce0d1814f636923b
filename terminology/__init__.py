"""NSI terminology service: packaged Minzdrav NSI CodeSystems, ValueSets and ConceptMaps
(terminology/data/*.json) and the operations on them.

    from terminology import validate_code, concepts, CANONICAL
    validate_code(valueset=f"{CANONICAL}/ValueSet/icd10", code="E11.9")   -> Verdict(ok=True, ...)
    validate_code(system="urn:oid:1.2.643.5.1.13.13.11.1040", code="1")    -> Verdict(ok=True, display="Мужской")
    concepts("urn:oid:1.2.643.5.1.13.13.11.1005")                          -> [(code, display), ...]

`Verdict.ok is None` means the value set or code system is unknown to the server (the
caller cannot check the code). `reader` is a request's store reader: versions posted to
the server are then honoured (the newest by version order); with reader=None the
packaged content alone is used. The packaged resources are written into the store at
first start by fhir_server.packages (this module registers them).
"""

from __future__ import annotations

import functools
import json
import pathlib

from fhir_server import packages
from profiles_ru import CANONICAL  # the canonical base of this server's conformance resources

DATA = pathlib.Path(__file__).resolve().parent / "data"


@functools.cache
def packaged() -> tuple[dict, ...]:
    """The packaged resources (parsed once per process)."""
    return tuple(json.loads(p.read_text(encoding="utf-8")) for p in sorted(DATA.glob("*.json")))


packages.register(packaged)

from .service import Verdict, concepts, validate_code

__all__ = ["CANONICAL", "Verdict", "concepts", "packaged", "validate_code"]
