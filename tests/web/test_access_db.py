"""Roles, hold codes, the audit trail and sessions on the real database (SQLite and
PostgreSQL): the lot service checks the actor's role and writes the audit row and its MES
event in the transaction of the effect; the audit table refuses changes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from controller.access import Actor, HoldCodes, Role
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.station_models import Audit
from controller.lots import HoldReason, LotRequest, LotService
from controller.station import users
from drivers.errors import Forbidden, LotStateError, ParameterError, Unauthorized

_ids = itertools.count(1)
OP, TECH, ENG = (Actor(f"{r}-x", r) for r in (Role.OPERATOR, Role.TECHNICIAN, Role.ENGINEER))
VIEWER = Actor("vic", Role.VIEWER)


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    d.migrate()
    yield d
    d.close()


@pytest.fixture(scope="module")
def service(db: Database) -> LotService:
    return LotService(db, station="st-a", holds=HoldCodes())


async def new_lot(service: LotService, actor: Actor = OP) -> str:
    lot = f"AC{next(_ids)}"
    request = LotRequest(lot_id=lot, recipe="wlcsp-002-42", inputs={"wafers": 1})
    await service.create(request, owner=None, actor=actor)  # nobody drives it: applied here
    return lot


def trail(s: Session, target: str) -> list[tuple[str, str, str, str | None]]:
    rows = s.query(Audit).filter(Audit.target == target).order_by(Audit.id).all()
    return [(a.actor, a.action, a.result, a.reason_code) for a in rows]


def kinds(s: Session, lot: str) -> list[tuple[int | None, str]]:
    return [(e["seq"], e["type"]) for e in store.lot_events(s, lot)]


async def test_a_viewer_cannot_hold_nothing_changes_and_the_denial_is_audited(
    service: LotService, db: Database
) -> None:
    lot = await new_lot(service)
    before = await db.run(lambda s: (store.get_lot(s, lot), kinds(s, lot)))
    with pytest.raises(Forbidden, match=r"viewer.*operator"):
        await service.hold(lot, HoldReason("operator", "x"), VIEWER.because("OP-CHECK", None))
    after = await db.run(lambda s: (store.get_lot(s, lot), kinds(s, lot)))
    assert after[0].state == "queued" and after[0].hold_reason is None
    assert after[1] == before[1]  # no lot event either
    assert (await db.run(lambda s: trail(s, lot)))[-1] == ("vic", "hold", "denied", "OP-CHECK")


async def test_hold_and_release_write_their_audit_row_and_event_with_the_effect(
    service: LotService, db: Database
) -> None:
    lot = await new_lot(service)
    why = HoldReason("operator", "QA-SUSPECT: scratches")
    await service.hold(lot, why, OP.because("QA-SUSPECT", "scratches"))
    held = await db.run(lambda s: store.get_lot(s, lot))
    assert (held.state, held.hold_code) == ("held", "QA-SUSPECT")
    with pytest.raises(Forbidden, match=r"QA-SUSPECT.*engineer"):
        await service.release(lot, "fine", actor=OP)
    with pytest.raises(Forbidden):
        await service.release(lot, "fine", actor=TECH)
    assert (await db.run(lambda s: store.get_lot(s, lot))).state == "held"
    await service.release(lot, "checked", actor=ENG.because(None, "checked"))
    done = await db.run(lambda s: store.get_lot(s, lot))
    assert (done.state, done.hold_code, done.hold_reason) == ("queued", None, None)
    assert await db.run(lambda s: trail(s, lot)) == [
        ("operator-x", "dispatch", "ok", None),
        ("operator-x", "hold", "ok", "QA-SUSPECT"),
        ("operator-x", "release", "denied", None),
        ("technician-x", "release", "denied", None),
        ("engineer-x", "release", "ok", None),
    ]
    # the lot's events: each ok action right after the change it made, gapless
    assert await db.run(lambda s: kinds(s, lot)) == [
        (1, "lot_created"), (2, "operator_action"), (3, "hold"), (4, "operator_action"),
        (5, "release"), (6, "operator_action"),
    ]  # fmt: skip


async def test_a_hold_code_may_let_an_operator_release_and_engine_holds_follow_their_kind(
    service: LotService, db: Database
) -> None:
    lot = await new_lot(service)
    await service.hold(lot, HoldReason("operator", "MAT-WAIT"), OP.because("MAT-WAIT", None))
    await service.release(lot, None, actor=OP)  # MAT-WAIT: an operator releases it
    # an out-of-spec hold the engine made: released by an engineer, even with an operator code
    await service.hold(lot, HoldReason("operator", "x"), OP.because("MAT-WAIT", None))

    def engine_hold(s: Session) -> None:
        got = store.get_lot(s, lot, for_update=True)
        store.set_lot(got, hold_kind="out_of_spec", hold_reason="thickness 7 um > 6 um")

    await db.run(engine_hold)
    with pytest.raises(Forbidden, match=r"OOS \(quality\)"):
        await service.release(lot, None, actor=TECH)
    await service.release(lot, None, actor=ENG)


async def test_refused_actions_are_audited_and_unknown_codes_refused(
    service: LotService, db: Database
) -> None:
    lot = await new_lot(service)
    with pytest.raises(ParameterError, match="unknown hold code 'NOPE'"):
        await service.hold(lot, HoldReason("operator", "x"), OP.because("NOPE", None))
    with pytest.raises(LotStateError):
        await service.release(lot, None, actor=ENG)  # not held
    with pytest.raises(Forbidden, match="engineer"):
        await service.abort(lot, HoldReason("operator", "x"), OP)
    assert [t[1:3] for t in await db.run(lambda s: trail(s, lot))][1:] == [
        ("hold", "refused"), ("release", "refused"), ("abort", "denied"),
    ]  # fmt: skip
    # MES and terminal actors are audited under their own names
    await service.hold(lot, HoldReason("mes", "MES hold"), Actor.mes("erp"))
    await service.abort(lot, HoldReason("operator", "scrap"), Actor.cli())
    names = [t[0] for t in await db.run(lambda s: trail(s, lot))]
    assert names[-2] == "mes:erp" and names[-1].startswith("cli:")


async def test_the_audit_trail_is_append_only_in_the_database(
    db: Database, service: LotService
) -> None:
    lot = await new_lot(service)
    for statement in ("UPDATE audit SET result = 'ok'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"):
            await db.run(lambda s, q=statement: s.execute(text(q)))  # type: ignore[misc]
    assert await db.run(lambda s: trail(s, lot))


async def test_users_log_in_with_their_password_only(db: Database) -> None:
    admin = Actor.cli()
    name = f"u{next(_ids)}"
    await db.run(lambda s: users.add_user(s, "st-a", admin, name, Role.OPERATOR, "correct horse"))
    stored = await db.run(
        lambda s: s.execute(
            text("SELECT password_hash FROM account WHERE name = :n"), {"n": name}
        ).scalar()
    )
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(Unauthorized, match="wrong user name or password"):
        await db.run(lambda s: users.login(s, name, "wrong horse", 1))
    with pytest.raises(Unauthorized, match="wrong user name or password"):
        await db.run(lambda s: users.login(s, "nobody-at-all", "correct horse", 1))
    done = await db.run(lambda s: users.login(s, name, "correct horse", 1))
    found: Any = await db.run(lambda s: users.session_user(s, done.token))
    assert found[0].name == name and found[1] == done.csrf
    assert await db.run(lambda s: users.session_user(s, done.token + "x")) is None
    with pytest.raises(Forbidden):
        await db.run(lambda s: users.add_user(s, "st-a", OP, "evil", Role.ADMIN, "password1"))
    await db.run(lambda s: users.change_user(s, "st-a", admin, name, disabled=True))
    assert await db.run(lambda s: users.session_user(s, done.token)) is None
    with pytest.raises(Unauthorized):
        await db.run(lambda s: users.login(s, name, "correct horse", 1))
