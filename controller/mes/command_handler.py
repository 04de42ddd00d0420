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

from controller.access import Actor
from controller.events import CommandReply, CommandReplyData
from controller.genealogy import store
from controller.genealogy.models import MesCommand
from controller.lots import HoldReason, LotService
from controller.mes.commands import (
    Abort,
    AnyCommand,
    Dispatch,
    Hold,
    Merge,
    Rejected,
    Release,
    Rework,
    Scrap,
    Split,
    authenticate,
    check_fresh,
    parse,
    validate,
)
from controller.mes.config import MesConfig
from drivers.errors import FablineError, RecipeError

log = structlog.get_logger("fabline.mes")

REASON_MAX = 500  # characters of a reply's reason (a refused value is never echoed whole)


class CommandHandler:
    """Takes the raw payloads of the command topic (the relay hands them over)."""

    def __init__(
        self,
        lots: LotService,
        config: MesConfig,
        take_up: Callable[[str], object],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.lots = lots
        self.db = lots.db
        self.config = config
        self.take_up = take_up  # run a dispatched or released lot (here, or in its area)
        self.wake = wake  # a reply is in the outbox: publish it now

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

    async def _execute(self, command: AnyCommand) -> str:
        lot_id = command.lot_id
        actor = Actor.mes(command.client)  # audited like a person's action
        try:
            match command:
                case Dispatch():
                    lot = await self.lots.create(command.request(), actor=actor)
                    self.take_up(lot_id)
                    return f"lot {lot_id} dispatched: {lot.recipe_id} v{lot.recipe_version}"
                case Release():
                    message = await self.lots.release(lot_id, command.reason, actor=actor)
                    self.take_up(lot_id)
                    return message
                case Abort():
                    why = HoldReason("mes", command.reason or "MES abort")
                    return await self.lots.abort(lot_id, why, actor=actor)
                case Hold():
                    why = HoldReason("mes", command.reason or "MES hold")
                    return await self.lots.hold(lot_id, why, actor=actor)
                case Split():
                    done = await self.lots.split(lot_id, command.units, command.into, actor)
                case Merge():
                    done = await self.lots.merge(lot_id, command.lots, actor)
                case Scrap():
                    who = actor.because(command.code, command.reason)
                    done = await self.lots.scrap(
                        lot_id, command.units, command.code, command.reason, who
                    )
                case Rework():
                    done = await self.lots.rework(
                        lot_id, command.route, units=command.units, child_id=command.into,
                        comment=command.reason, actor=actor.because(None, command.reason),
                    )  # fmt: skip
            for queued in done.lots:  # a lot queued by the operation runs on
                self.take_up(queued)
            return done.message
        except RecipeError as e:
            raise Rejected(e.problems[0]) from None
        except FablineError as e:
            raise Rejected(str(e)) from None

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
            reply = CommandReply(data=CommandReplyData(**data))
            store.add_events(s, self.config.station, [reply])

        await self.db.run(tx)
        self.wake()
        log.info("mes.command", **{k: v for k, v in data.items() if v is not None})
        return data


def _text(value: object, limit: int = 64) -> str | None:
    """A string field of an untrusted command as far as a reply may echo it."""
    return value[:limit] if isinstance(value, str) else None
