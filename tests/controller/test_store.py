"""The genealogy store's lot rows, on SQLite and PostgreSQL: a lot read in a transaction is
written back at commit with what changed, and not at all when the transaction fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.close()


def _new_lot(db: Database, lot_id: str) -> None:
    def tx(s: Session) -> None:
        store.save_recipe(s, hash="h" * 16, recipe_id="r", version=1, status="approved", text="")
        s.add(Lot(id=lot_id, recipe_id="r", recipe_version=1, recipe_hash="h" * 16, state="queued"))

    db.run_sync(tx)


def test_changes_to_a_lot_are_written_at_commit(db: Database) -> None:
    _new_lot(db, "S1")

    def change(s: Session) -> None:
        lot = store.get_lot(s, "S1", for_update=True)
        store.set_lot(lot, state="running", next_step=4, owner="host:1")
        lot.event_seq += 3

    db.run_sync(change)
    lot = db.run_sync(lambda s: store.get_lot(s, "S1"))
    assert (lot.state, lot.next_step, lot.owner, lot.event_seq) == ("running", 4, "host:1", 3)


def test_a_failed_transaction_writes_nothing(db: Database) -> None:
    _new_lot(db, "S2")

    def change_then_fail(s: Session) -> None:
        lot = store.get_lot(s, "S2", for_update=True)
        store.set_lot(lot, state="held", hold_reason="never")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.run_sync(change_then_fail)
    lot = db.run_sync(lambda s: store.get_lot(s, "S2"))
    assert (lot.state, lot.hold_reason) == ("queued", None)


def test_an_unknown_lot_is_a_clear_error(db: Database) -> None:
    with pytest.raises(store.LotNotFound, match="no lot 'NOPE'"):
        db.run_sync(lambda s: store.get_lot(s, "NOPE"))
