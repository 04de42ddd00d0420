"""Lot operations on both databases (SQLite and PostgreSQL): units moved with bulk updates,
the `lot_link` rows with their unit ids (JSON), lineage read back by a trace, events numbered
per lot. The rules themselves are tested once, in tests/unit/controller/lots/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from controller.genealogy import store, trace
from controller.genealogy.db import Database
from controller.genealogy.models import LotLink
from controller.lots import LotRequest, LotService
from tests.unit.controller.lots.test_operations import OPS


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.close()


async def _held(service: LotService, lot_id: str, wafers: int) -> None:
    request = LotRequest(lot_id=lot_id, recipe="unit-flow", inputs={"wafers": wafers})
    await service.create(request, owner=None, recipe=OPS)

    def tx(s: Session) -> None:
        lot = store.get_lot(s, lot_id, for_update=True)
        store.set_lot(lot, state="held", hold_kind="operator", hold_reason="look", next_step=3)

    await service.db.run(tx)


async def test_split_merge_scrap_rework_and_the_trace(db: Database) -> None:
    service = LotService(db, station="st-1")
    await _held(service, "L1", 3)
    await _held(service, "L2", 2)
    await service.split("L1", ["L1-W02", "L1-W03"])
    await service.merge("L2", ["L1.1"])
    await service.scrap("L2", ["L1-W03"], "BROKEN")
    await service.rework("L2", "redo", comment="again")

    def read(s: Session) -> tuple[object, ...]:
        lots = {lot.id: (lot.state, lot.next_step) for lot in store.list_lots(s)}
        links = [(k.kind, k.parent_lot, k.child_lot, len(k.units)) for k in
                 s.query(LotLink).order_by(LotLink.id)]  # fmt: skip
        seqs = [e["seq"] for e in store.lot_events(s, "L2")]
        return lots, links, seqs, store.count_units(s, "L2")

    lots, links, seqs, counts = await db.run(read)
    assert lots == {"L1": ("held", 3), "L2": ("queued", 0), "L1.1": ("merged", 3)}
    assert links == [
        ("split", "L1", "L1.1", 2), ("merge", "L1.1", "L2", 2), ("rework", "L2", "L2", 5)
    ]  # fmt: skip
    assert seqs == list(range(1, len(seqs) + 1))
    assert (counts["wafer"], counts["panel"]) == (3, 2)  # W03 scrapped
    node = (await db.run(lambda s: trace.backward(s, "L1-W02")))[0]
    assert node.lot_id == "L2"
    assert [o["kind"] for o in node.operations] == ["split", "merge", "rework"]
