"""remoco._sphinx_book: the book's pages list each inline script once (THEBE_JS_URL declared twice otherwise)."""

import pytest

J = pytest.importorskip("sphinx.builders.html._assets")._JavaScript


def test_dedupe_scripts_treats_none_and_empty_filename_as_the_same_inline_script():
    from remoco._sphinx_book import dedupe_scripts

    body = 'const THEBE_JS_URL = "x"'
    a, b = J(None, priority=500, body=body), J("", priority=500, body=body)
    other = J("", priority=500, body="const y = 1")
    f = J("_static/sphinx-thebe.js", priority=500, **{"async": "async"})
    assert dedupe_scripts([a, f, b, other, f]) == [a, f, other]
