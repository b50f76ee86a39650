"""records.py: the signature's time as Verifik writes it, the same whether
given a moment or taken now (kept for the minute)."""

from datetime import UTC, datetime

from gateway.records import signature_time


def test_signature_time_is_written_as_verifik_writes_it():
    assert signature_time(datetime(2023, 9, 29, 23, 55, 59, tzinfo=UTC)) == "September 29, 2023 11:55 PM"
    assert signature_time(datetime(2024, 1, 2, 0, 5, tzinfo=UTC)) == "January 2, 2024 12:05 AM"
    assert signature_time(datetime(2024, 1, 2, 12, 0, tzinfo=UTC)) == "January 2, 2024 12:00 PM"


def test_now_is_the_current_minute():
    for _ in range(3):  # a minute may turn between the two reads
        before = signature_time(datetime.now(UTC))
        now = signature_time()
        if now == before == signature_time(datetime.now(UTC)):
            return
    raise AssertionError(f"{now!r} is not the current minute {before!r}")
