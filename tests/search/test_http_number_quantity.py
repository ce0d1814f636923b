"""Number and quantity search parameters over HTTP (R4 search.html 3.1.1.4.1, 3.1.1.4.6).

A number as written stands for a range by its precision: `10` is [9.5, 10.5), `10.4` is
[10.35, 10.45); eq/ne test that range, gt/lt/ge/le the exact value, ap is within 10%.
Quantities add [system]|[code]; UCUM quantities compare in canonical units, and a code
without a system matches the code or the unit.
"""

from __future__ import annotations

import pytest

from ._data import LOINC, UCUM, ids, mk, obs, private_client, qty

PROB = {"P10": 10, "P10_4": 10.4, "P10_5": 10.5, "P9_5": 9.5, "P9_49": 9.49, "P11_5": 11.5, "P100": 100, "P8_5": 8.5}


def _risk(p=None) -> dict:
    res = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/x"}}
    if p is not None:
        res["prediction"] = [{"outcome": {"text": "исход"}, "probabilityDecimal": p}]
    return res


def _risks(client) -> dict[str, str]:
    out = {k: mk(client, _risk(v)) for k, v in PROB.items()}
    out["NONE"] = mk(client, _risk())
    return out


def _check(client, keyed, rtype, query, expected):
    want = {keyed[k] for k in expected}
    got = ids(client, f"/fhir/{rtype}?{query}")
    back = {v: k for k, v in keyed.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


NUMBER_CASES = [
    # implicit precision: 10 is [9.5, 10.5)
    ("probability=10", {"P10", "P10_4", "P9_5"}),
    ("probability=eq10", {"P10", "P10_4", "P9_5"}),
    ("probability=10.0", {"P10"}),
    ("probability=10.4", {"P10_4"}),
    ("probability=10.40", {"P10_4"}),
    ("probability=10.5", {"P10_5"}),
    ("probability=9.5", {"P9_5", "P9_49"}),
    ("probability=100", {"P100"}),
    ("probability=100.4", set()),
    ("probability=ne10", {"P10_5", "P9_49", "P11_5", "P100", "P8_5"}),
    # other prefixes use the exact value
    ("probability=gt10", {"P10_4", "P10_5", "P11_5", "P100"}),
    ("probability=lt10", {"P9_5", "P9_49", "P8_5"}),
    ("probability=ge10", {"P10", "P10_4", "P10_5", "P11_5", "P100"}),
    ("probability=le10", {"P10", "P9_5", "P9_49", "P8_5"}),
    ("probability=gt10.4", {"P10_5", "P11_5", "P100"}),
    ("probability=sa10", {"P10_4", "P10_5", "P11_5", "P100"}),
    ("probability=eb10", {"P9_5", "P9_49", "P8_5"}),
    ("probability=ap10", {"P10", "P10_4", "P10_5", "P9_5", "P9_49"}),
    # OR / AND
    ("probability=10,100", {"P10", "P10_4", "P9_5", "P100"}),
    ("probability=gt9&probability=lt10.45", {"P10", "P10_4", "P9_5", "P9_49"}),
    ("probability:missing=true", {"NONE"}),
    ("probability:missing=false", set(PROB)),
]


@pytest.mark.parametrize("query,expected", NUMBER_CASES, ids=[q for q, _ in NUMBER_CASES])
def test_number(risks_ro, query, expected):
    client, risks = risks_ro
    _check(client, risks, "RiskAssessment", query, expected)


def test_integer_number(client):
    seq = lambda start: {  # noqa: E731
        "resourceType": "MolecularSequence",
        "coordinateSystem": 0,
        "variant": [{"start": start, "end": start + 1}],
    }
    a, b, c = mk(client, seq(100)), mk(client, seq(101)), mk(client, seq(1000))
    assert ids(client, "/fhir/MolecularSequence?variant-start=100") == {a}
    assert ids(client, "/fhir/MolecularSequence?variant-start=ge101") == {b, c}
    assert ids(client, "/fhir/MolecularSequence?variant-start=1e3") == {c}
    assert ids(client, "/fhir/MolecularSequence?variant-end=lt102") == {a}


QTY = {
    "Q1": qty(1, "g/dL", unit="g/dL"),
    "Q2": qty(10, "g/L", unit="g/L"),
    "Q3": qty(100, "mg/dL", unit="mg/dL"),  # = 1 g/L
    "Q4": qty(10, "g/L", system="urn:local:units", unit="грамм/литр"),
    "Q5": qty(10, unit="g/L", system=None),  # a unit only
    "Q6": qty(5.4, "mg", unit="мг"),
    "Q7": qty(10, "mmol/L", unit="mmol/L"),
}


def _quantities(client) -> dict[str, str]:
    out = {k: mk(client, obs(code="2345-7", valueQuantity=v)) for k, v in QTY.items()}
    out["NONE"] = mk(client, obs(code="2345-7", valueString="не измерено"))
    return out


QUANTITY_CASES = [
    # number only: any unit
    ("value-quantity=10", {"Q2", "Q4", "Q5", "Q7"}),
    ("value-quantity=gt9", {"Q2", "Q3", "Q4", "Q5", "Q7"}),
    ("value-quantity=le5.4", {"Q1", "Q6"}),
    ("value-quantity=lt5.4", {"Q1"}),
    ("value-quantity=ne10", {"Q1", "Q3", "Q6"}),
    ("value-quantity=ap10", {"Q2", "Q4", "Q5", "Q7"}),
    ("value-quantity=5.4", {"Q6"}),
    # UCUM in canonical units: 1 g/dL = 10 g/L = 10000 mg/L; 100 mg/dL = 1 g/L
    (f"value-quantity=10|{UCUM}|g/L", {"Q1", "Q2"}),
    (f"value-quantity=1|{UCUM}|g/dL", {"Q1", "Q2"}),
    (f"value-quantity=10000|{UCUM}|mg/L", {"Q1", "Q2"}),
    (f"value-quantity=100|{UCUM}|mg/dL", {"Q3"}),
    (f"value-quantity=1|{UCUM}|g/L", {"Q3"}),
    (f"value-quantity=gt5|{UCUM}|g/L", {"Q1", "Q2"}),
    (f"value-quantity=lt5000|{UCUM}|mg/L", {"Q3"}),
    (f"value-quantity=ge1|{UCUM}|g/L", {"Q1", "Q2", "Q3"}),
    (f"value-quantity=5.4|{UCUM}|mg", {"Q6"}),
    (f"value-quantity=0.0054|{UCUM}|g", {"Q6"}),
    (f"value-quantity=10|{UCUM}|mmol/L", {"Q7"}),
    (f"value-quantity=0.01|{UCUM}|mol/L", {"Q7"}),
    (f"value-quantity=10|{UCUM}|mg", set()),
    # a system of its own: no conversion
    ("value-quantity=10|urn:local:units|g/L", {"Q4"}),
    ("value-quantity=1|urn:local:units|g/dL", set()),
    # no system: the code matches Quantity.code or Quantity.unit
    ("value-quantity=10||g/L", {"Q2", "Q4", "Q5"}),
    ("value-quantity=5.4||mg", {"Q6"}),
    ("value-quantity=5.4||мг", {"Q6"}),
    ("value-quantity=1||g/L", set()),
    ("value-quantity=gt1||g/L", {"Q2", "Q4", "Q5"}),
    # OR, AND, missing
    (f"value-quantity=10|{UCUM}|mmol/L,5.4|{UCUM}|mg", {"Q6", "Q7"}),
    (f"value-quantity=ge5|{UCUM}|g/L&value-quantity=gt2", {"Q2"}),
    (f"value-quantity=ge5|{UCUM}|g/L&value-quantity=lt10.5", {"Q1", "Q2"}),
    ("value-quantity:missing=true", {"NONE"}),
    ("value-quantity:missing=false", set(QTY)),
]


@pytest.mark.parametrize("query,expected", QUANTITY_CASES, ids=[q for q, _ in QUANTITY_CASES])
def test_quantity(quantities_ro, query, expected):
    client, quantities = quantities_ro
    _check(client, quantities, "Observation", query, expected)


def test_quantity_on_components(client):
    bp = lambda sys_v, dia_v: obs(  # noqa: E731
        code="85354-9",
        component=[
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": qty(sys_v, "mm[Hg]")},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": qty(dia_v, "mm[Hg]")},
        ],
    )
    high = mk(client, bp(160, 100))
    normal = mk(client, bp(120, 80))
    assert ids(client, "/fhir/Observation?component-value-quantity=gt150") == {high}
    assert ids(client, "/fhir/Observation?component-value-quantity=80") == {normal}
    assert ids(client, f"/fhir/Observation?component-value-quantity=16|{UCUM}|cm[Hg]") == {high}
    assert ids(client, "/fhir/Observation?component-value-quantity=ge90&component-value-quantity=le120") == {normal, high}
    assert ids(client, "/fhir/Observation?value-quantity:missing=true") == {high, normal}


FACTORS = {"F100": 100, "F100_4": 100.4, "F100_5": 100.5, "F99_5": 99.5, "F99_4": 99.4, "F1000": 1000}


def _factors(client) -> dict[str, str]:
    item = lambda f: {  # noqa: E731
        "resourceType": "ChargeItem",
        "status": "billable",
        "code": {"text": "услуга"},
        "subject": {"reference": "Patient/x"},
        "factorOverride": f,
    }
    return {k: mk(client, item(v)) for k, v in FACTORS.items()}


FACTOR_CASES = [
    # search.html 3.1.1.4.1: 100 is [99.5, 100.5); 100.00 is [99.995, 100.005)
    ("factor-override=100", {"F100", "F100_4", "F99_5"}),
    ("factor-override=100.4", {"F100_4"}),
    ("factor-override=100.5", {"F100_5"}),
    ("factor-override=100.0", {"F100"}),
    ("factor-override=100.00", {"F100"}),
    ("factor-override=99.5", {"F99_5"}),
    # exponential notation counts significant figures: 1.00e2 is 100 to three, 1.0e3 1000 to two
    ("factor-override=1.00e2", {"F100", "F100_4", "F99_5"}),
    ("factor-override=1.004e+02", {"F100_4"}),
    ("factor-override=1.0e3", {"F1000"}),
    ("factor-override=ne1.00e2", {"F100_5", "F99_4", "F1000"}),
    ("factor-override=ne100", {"F100_5", "F99_4", "F1000"}),
    ("factor-override=lt100", {"F99_5", "F99_4"}),
    ("factor-override=le100", {"F100", "F99_5", "F99_4"}),
    ("factor-override=gt100", {"F100_4", "F100_5", "F1000"}),
    ("factor-override=ge100.4", {"F100_4", "F100_5", "F1000"}),
    ("factor-override=ap100", {"F100", "F100_4", "F100_5", "F99_5", "F99_4"}),
    ("factor-override=ap1000", {"F1000"}),
]


@pytest.mark.parametrize("query,expected", FACTOR_CASES, ids=[q for q, _ in FACTOR_CASES])
def test_number_implicit_precision_at_100(factors_ro, query, expected):
    client, factors = factors_ro
    _check(client, factors, "ChargeItem", query, expected)


@pytest.fixture(scope="module")
def risks_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _risks(c)


@pytest.fixture(scope="module")
def quantities_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _quantities(c)


@pytest.fixture(scope="module")
def factors_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _factors(c)
