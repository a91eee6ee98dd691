"""The JSON and SARIF reports' text: orjson's speed, json's bytes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.report._common import json_document

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(_DOCS)
def test_json_document_is_byte_for_byte_what_json_dumps_writes(doc):
    """For any JSON-like document, json_document gives json.dumps(indent=2)'s exact text."""
    expected = json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    assert json_document(doc) == expected
