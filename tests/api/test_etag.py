"""The ETag helpers at the edge: the value given, the one read back from If-Match, and the
answer tagged with its object's version. Pure: no database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import Response

from api.deps import UNKNOWN_ETAG, etag, parse_if_match, tagged


@pytest.mark.parametrize(
    ("version", "header"),
    [(0, '"0"'), (1, '"1"'), (42, '"42"'), (10**17, '"100000000000000000"')],
)
def test_an_etag_is_the_version_in_quotes(version, header):
    assert etag(version) == header


@pytest.mark.parametrize(
    ("if_match", "expected"),
    [
        (None, None),
        ("*", None),
        (" * ", None),
        ('"3"', 3),
        ("3", 3),
        ('W/"3"', 3),
        (' "12" ', 12),
        ('"0"', 0),
        ('"abc"', UNKNOWN_ETAG),
        ('""', UNKNOWN_ETAG),
        ('"-1"', UNKNOWN_ETAG),
        ('"3.0"', UNKNOWN_ETAG),
        ('"' + "9" * 19 + '"', UNKNOWN_ETAG),
        ('"' + "9" * 18 + '"', int("9" * 18)),
    ],
)
def test_if_match_is_read_back_as_a_version(if_match, expected):
    assert parse_if_match(if_match) == expected


@dataclass
class _Versioned:
    version: int


@pytest.mark.parametrize("version", [0, 1, 7, 123456])
def test_tagged_sets_the_etag_and_answers_the_same_object(version):
    response = Response()
    obj = _Versioned(version)
    assert tagged(response, obj) is obj
    assert response.headers["ETag"] == f'"{version}"'
    assert parse_if_match(response.headers["ETag"]) == version
