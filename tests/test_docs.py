"""docs/verifik.md, the Verifik compatibility table, stays a table that can
be trusted: every row has a verdict, every verdict but `same` a reason, and
every REST route FaceSearch serves (the proto's google.api.http rules) is in
it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from google.api import annotations_pb2

from facesearch.v1 import facesearch_pb2 as pb

VERIFIK = Path(__file__).resolve().parent.parent / "docs" / "verifik.md"
PREFIX = "/v2/face-recognition"
VERDICTS = {"same", "differs", "missing"}


def rows() -> list[list[str]]:
    """The table rows (route, field, Verifik, FaceSearch, verdict, why), headers and rules left out."""
    found = []
    for line in VERIFIK.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| route ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        found.append(cells)
    return found


def served_routes() -> set[str]:
    routes = set()
    for method in pb.DESCRIPTOR.services_by_name["FaceSearch"].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        routes.add(f"{verb.upper()} {getattr(rule, verb).removeprefix(PREFIX)}")
    return routes


def test_every_row_has_a_verdict_and_a_reason_unless_same():
    table = rows()
    assert len(table) > 80
    for cells in table:
        assert len(cells) == 6, cells
        route, field, _, _, verdict, why = cells
        assert verdict in VERDICTS, cells
        assert verdict == "same" or why, f"{route} {field}: {verdict} without a reason"
    counts = Counter(cells[4] for cells in table)
    print(f"\ndocs/verifik.md: {dict(counts)}")


def test_every_served_route_is_in_the_table():
    documented = {cells[0] for cells in rows()}
    assert served_routes() - documented == set()
