"""Rows and recipes the controller's unit tests build on: a tiny recipe loaded from text (no
catalog, no tool steps to validate), and lot rows written directly."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, utcnow
from controller.recipes import LoadedRecipe
from controller.recipes.catalog import load_text

STATION = "st-1"

# The option `layout` binds claim 000:11 to its value `stacked`: with the default value no
# claim is in force, so the one external step expands cleanly; `stacked` brings in a claim
# this flow cannot meet (a recipe the catalog check would refuse).
TINY = """\
id: unit-flow
version: VERSION
title: a flow for the unit tests
status: STATUS
claims: [{seed: "000", claims: [11]}]
inputs:
  wafers: {kind: wafer, count: 1..4}
  panels: {kind: panel, per: wafers}
  dies: {kind: die, supply: true}
options:
  layout:
    claim: "000:11"
    default: plain
    values:
      plain: {}
      stacked: {claims: ["000:11"]}
steps:
  - {id: fab, external: front-end fab, returns: [wafer_map]}
"""


def tiny_text(status: str = "approved", version: int = 3) -> str:
    return TINY.replace("VERSION", str(version)).replace("STATUS", status)


@cache
def tiny_recipe(status: str = "approved", version: int = 3) -> LoadedRecipe:
    return load_text(tiny_text(status, version), Path("unit-flow.yaml"))


def add_lot(s: Session, lot_id: str, state: str = "queued", **fields: Any) -> None:
    """A lot row of the tiny recipe (its recipe version saved first, for the foreign key). An
    owner given holds a lease a minute long unless the test says otherwise."""
    r = tiny_recipe()
    store.save_recipe(
        s,
        hash=r.hash,
        recipe_id=r.recipe.id,
        version=r.recipe.version,
        status="approved",
        text=r.text,
    )
    fields.setdefault("station", STATION)
    if fields.get("owner"):
        fields.setdefault("lease_expires", utcnow() + timedelta(minutes=1))
    s.add(
        Lot(
            id=lot_id,
            recipe_id=r.recipe.id,
            recipe_version=r.recipe.version,
            recipe_hash=r.hash,
            state=state,
            **fields,
        )
    )


def new_lot(db: Database, lot_id: str, state: str = "queued", **fields: Any) -> None:
    db.run_sync(lambda s: add_lot(s, lot_id, state, **fields))


def get_lot(db: Database, lot_id: str) -> Lot:
    return db.run_sync(lambda s: store.get_lot(s, lot_id))


def events(db: Database, lot_id: str) -> list[dict[str, Any]]:
    """The lot's events in the outbox, in the order written."""
    return db.run_sync(lambda s: store.lot_events(s, lot_id))


def database_from(template: Path) -> Database:
    """A migrated database of one's own, in memory, loaded from `template`."""
    database = Database("sqlite:///:memory:")

    def load() -> None:  # in the DB thread: an in-memory database is its connection's
        source = sqlite3.connect(template)
        raw = database.engine.raw_connection()
        try:
            source.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()
            source.close()

    database.run_sync_raw(load)
    return database
