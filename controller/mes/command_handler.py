"""The station's side of MES commands: check, de-duplicate, execute, answer.

Every payload on the command topic gets exactly one `command_reply` on the replies topic
(accepted, or rejected with one line saying why), except when the database itself is down,
which is logged. A command id seen before is answered again from the record, never executed
twice. Nothing a payload contains can stop the station from taking the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from controller import lots
from controller.engine.engine import Engine
from controller.engine.lotspec import (
    InputUnit,
    LotSpec,
    build_inputs,
    supply_sources,
    unit_list,
)
from controller.events import event
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, MesCommand
from controller.mes.commands import (
    Abort,
    Dispatch,
    Hold,
    Rejected,
    Release,
    authenticate,
    check_fresh,
    parse,
    validate,
)
from controller.mes.config import MesConfig
from controller.recipes import LoadedRecipe, RecipeError, catalog
from drivers.errors import FablineError

log = structlog.get_logger("fabline.mes")

REASON_MAX = 500  # characters of a reply's reason (a refused value is never echoed whole)


class CommandHandler:
    def __init__(
        self,
        db: Database,
        config: MesConfig,
        engine: Engine,
        start_lot: Callable[[str], None],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.engine = engine
        self.start_lot = start_lot  # run a dispatched or released lot in the background
        self.wake = wake

    async def __call__(self, raw: bytes) -> None:
        try:
            await self.handle(raw)
        except Exception:  # the reply itself failed (database down): the loop goes on
            log.exception("mes.command_unanswered", size=len(raw))

    async def handle(self, raw: bytes) -> dict[str, Any]:
        """Answer one payload; return the reply's data."""
        cmd: Mapping[str, Any] | None = None
        try:
            cmd = parse(raw)
            authenticate(cmd, self.config.clients, self.config.site, self.config.station)
        except Rejected as e:
            client = cmd.get("client") if cmd else None
            log.warning("mes.command_rejected", reason=e.reason, client=_text(client))
            return await self._reply(cmd, "rejected", e.reason)
        ident = str(cmd["command_id"])
        earlier = await self.db.run(lambda s: s.get(MesCommand, ident))
        if earlier is not None:
            return await self._reply(cmd, earlier.status, earlier.reason, repeat=True)
        try:
            command = validate(cmd)
            check_fresh(command, datetime.now(UTC), self.config.command_ttl)
            status, reason = "accepted", await self._execute(command)
        except Rejected as e:
            status, reason = "rejected", e.reason
        except Exception as e:
            log.exception("mes.command_failed", command_id=ident)
            status, reason = "rejected", f"internal error ({type(e).__name__}); see station log"
        return await self._reply(cmd, status, reason, record=True)

    async def _execute(self, command: Dispatch | Hold | Release | Abort) -> str:
        reason = command.reason
        try:
            match command:
                case Dispatch():
                    return await self._dispatch(command)
                case Release():
                    message = await lots.release(self.db, command.lot_id, reason)
                    self.start_lot(command.lot_id)
                    return message
                case Abort():
                    return await lots.abort(
                        self.db, command.lot_id, reason or "MES abort", self._stop_job
                    )
                case Hold():
                    return await lots.request(self.db, command.lot_id, "hold", reason or "MES hold")
        except RecipeError as e:
            raise Rejected(e.problems[0]) from None
        except FablineError as e:
            raise Rejected(str(e)) from None

    async def _stop_job(self, tool_id: str, job_id: str) -> str:
        driver = self.engine.pool.drivers.get(tool_id)
        if driver is None:
            return f"tool {tool_id} is not on this station's line: job {job_id} not stopped"
        return await lots.stop_job_on(driver, job_id)

    async def _dispatch(self, command: Dispatch) -> str:
        recipe = _find_recipe(command)
        if recipe.recipe.status != "approved":
            raise Rejected(
                f"recipe {recipe.recipe.id} v{recipe.recipe.version} is not approved"
                f" ({recipe.recipe.status})"
            )
        lot_id = command.lot_id
        given: dict[str, str | int | list[InputUnit]] = {}
        for name, value in command.inputs.items():
            if isinstance(value, int):
                given[name] = value
            else:
                given[name] = unit_list(name, [value] if isinstance(value, str) else value)
        exists = await self.db.run(lambda s: s.get(Lot, lot_id))
        if exists is not None:
            raise Rejected(f"lot {lot_id} already exists ({exists.state})")
        spec = LotSpec(
            lot_id,
            recipe,
            dict(command.options),
            build_inputs(lot_id, recipe, given),
            command.priority,
            supply_sources(lot_id, recipe, given),
        )
        await self.engine.create_lot(spec)
        self.start_lot(lot_id)
        return f"lot {lot_id} dispatched: {recipe.recipe.id} v{recipe.recipe.version}"

    async def _reply(
        self,
        cmd: Mapping[str, Any] | None,
        status: str,
        reason: str | None,
        *,
        repeat: bool = False,
        record: bool = False,
    ) -> dict[str, Any]:
        cmd = cmd or {}
        if reason is not None and len(reason) > REASON_MAX:
            reason = reason[: REASON_MAX - 1] + "…"
        ident, client, command, lot_id = (
            _text(cmd.get(k)) for k in ("command_id", "client", "command", "lot_id")
        )
        data = {
            "command_id": ident,
            "client": client,
            "command": command,
            "lot_id": lot_id,
            "status": status,
            "reason": reason,
            "repeat": repeat,
        }

        def tx(s: Session) -> None:
            if record and ident:
                s.add(
                    MesCommand(
                        command_id=ident,
                        client=client,
                        command=command,
                        lot_id=lot_id,
                        status=status,
                        reason=reason,
                    )
                )
            store.add_events(s, self.config.station, [event("command_reply", data=data)])

        await self.db.run(tx)
        self.wake()
        log.info("mes.command", **{k: v for k, v in data.items() if v is not None})
        return data


def _text(value: object, limit: int = 64) -> str | None:
    """A string field of an untrusted command as far as a reply may echo it."""
    return value[:limit] if isinstance(value, str) else None


def _find_recipe(command: Dispatch) -> LoadedRecipe:
    ref = command.recipe
    found = [r for r in catalog() if r.recipe.id == ref.id]
    if not found:
        raise Rejected(f"unknown recipe {ref.id!r}")
    if ref.hash is not None:
        found = [r for r in found if r.hash == ref.hash]
        if not found:
            raise Rejected(f"recipe {ref.id} has no version with hash {ref.hash!r}")
    if ref.version is not None:
        found = [r for r in found if r.recipe.version == ref.version]
        if not found:
            raise Rejected(f"recipe {ref.id} has no version {ref.version}")
    return max(found, key=lambda r: r.recipe.version)
