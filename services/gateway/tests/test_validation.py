import pytest
from google.protobuf import struct_pb2

from facesearch.indexer.v1 import indexer_pb2
from gateway import validation
from gateway.errors import ApiError


def value(**kind):
    return struct_pb2.Value(**kind)


def message_of(fn, *args):
    with pytest.raises(ApiError) as caught:
        fn(*args)
    return caught.value.message


@pytest.mark.parametrize(
    "given,expected",
    [
        (value(number_value=0.5), 0.5),
        (value(number_value=1), 1.0),
        (value(string_value="0.75"), 0.75),
        (value(string_value=" 0.9 "), 0.9),
    ],
)
def test_min_score_accepts_numbers_and_numeric_strings(given, expected):
    assert validation.min_score(given) == expected


@pytest.mark.parametrize(
    "given,message",
    [
        (value(), "min_score is required"),
        (value(null_value=0), "min_score is required"),
        (value(number_value=0.49), "min_score must be between 0.5 and 1, got 0.49"),
        (value(string_value="2"), "min_score must be between 0.5 and 1, got 2"),
        (value(string_value="inf"), "min_score must be between 0.5 and 1, got inf"),
        (value(string_value="x"), "min_score must be a number, got 'x'"),
        (value(bool_value=True), "min_score must be a number, got a bool"),
    ],
)
def test_min_score_rejects(given, message):
    assert message_of(validation.min_score, given) == message


def test_search_mode():
    assert validation.search_mode("FAST") == indexer_pb2.FAST
    assert validation.search_mode("ACCURATE") == indexer_pb2.ACCURATE
    assert message_of(validation.search_mode, "fast") == "search_mode must be FAST or ACCURATE, got 'fast'"


def test_max_results():
    assert validation.max_results(None) == 10
    assert validation.max_results(100) == 100
    assert message_of(validation.max_results, 0) == "max_results must be between 1 and 100, got 0"


def test_person_fields():
    assert validation.gender(" m ") == "M"
    assert validation.date_of_birth("1990-01-15") == "1990-01-15"
    assert validation.date_of_birth("1990-01-15T00:00:00Z") == "1990-01-15"
    assert "future" in message_of(validation.date_of_birth, "2999-01-01")
    assert message_of(validation.text, "x" * 300, "name", True, 256) == "name is longer than 256 characters"
    assert message_of(validation.object_id, "abc", "id") == "id must be 24 hexadecimal characters, got 'abc'"


def test_text_takes_any_script_but_no_control_characters():
    assert validation.text("  Zoë 王 Ñandú  ", "name") == "Zoë 王 Ñandú"
    for bad in ("a\x00b", "a\x1bb", "a\u0085b", "line\nbreak"):
        with pytest.raises(ApiError) as refused:
            validation.text(bad, "name")
        assert refused.value.reason == "invalid_name" and "control character" in refused.value.message
    assert validation.text("two\nlines\tok", "notes", multiline=True) == "two\nlines\tok"
