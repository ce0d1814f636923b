"""The embedded engine's speed-ups of mongomock internals answer exactly as the originals."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock import filtering, helpers

from fhir_server.storage.engine import ORIGINALS, _fast_in, _fast_walk, connect

_dates = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.binary(max_size=5),
    _dates, _dates.map(lambda d: d.replace(tzinfo=timezone(timedelta(hours=3)))),
)
_docs = st.recursive(
    _leaves,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.tuples(kids, kids),
        st.dictionaries(st.text(max_size=3), kids, max_size=4),
        st.dictionaries(st.text(max_size=3), kids, max_size=3).map(OrderedDict),
    ),
    max_leaves=25,
)


def _same(a, b) -> bool:
    return type(a) is type(b) and (
        all(_same(x, y) for x, y in zip(a, b, strict=True)) if isinstance(a, list)
        else (list(a) == list(b) and all(_same(a[k], b[k]) for k in a)) if isinstance(a, dict)
        else a == b
    )


connect(None, "patches")  # installs the patches; the originals are what they wrap
_ORIG_PATCH, _ORIG_AWARE, _ORIG_IN = ORIGINALS["patch"], ORIGINALS["aware"], ORIGINALS["in_op"]


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_document_walks_equal_mongomocks(doc):
    assert _same(_fast_walk(_ORIG_PATCH)(doc), _ORIG_PATCH(doc))
    assert _same(_fast_walk(_ORIG_AWARE)(doc), _ORIG_AWARE(doc))


_values = st.one_of(st.text(alphabet="ab", max_size=2), st.integers(0, 3), st.none(), st.just(filtering.NOTHING))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_values, st.lists(_values, max_size=4)),
       st.one_of(st.lists(st.text(alphabet="abc", max_size=2), min_size=8, max_size=20),  # the set path
                 st.lists(st.one_of(st.text(alphabet="abc", max_size=2), st.integers(0, 3), st.none()), max_size=12)))
def test_in_equals_mongomocks(doc_val, listed):
    fast = _fast_in(_ORIG_IN)
    expected = _ORIG_IN(doc_val, listed)
    assert fast(doc_val, listed) == expected
    assert fast(doc_val, listed) == expected  # the second time from its set


def test_patches_are_installed():
    assert helpers.patch_datetime_awareness_in_document is not _ORIG_PATCH
    assert filtering._in_op is not _ORIG_IN and filtering._filterer_inst._operator_map["$in"] is filtering._in_op
