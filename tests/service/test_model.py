"""service.model: a hit kept as a row answers as the Hit it was made from."""

from __future__ import annotations

from service.model import Hit, hits_of, row_dict, rows_of


def test_a_row_answers_as_its_hit() -> None:
    hits = (Hit(7, "a title", 0.875, "sports/yoga"), Hit(9, "another", 0.5, "misc"))
    rows = rows_of(hits)
    assert [row_dict(r) for r in rows] == [h.as_dict() for h in hits]
    assert hits_of(rows) == hits
