"""Commands from the MES: dispatch a lot, hold, release, abort.

Each command carries a command id and is answered on the replies topic with a
`command_reply` event, accepted or rejected with the reason. A repeated command id is
answered again from the record, never executed twice. Only configured MES clients may send
commands: the command's `hmac` must be HMAC-SHA256, keyed with the client's shared secret,
of the command's canonical JSON without the `hmac` field (docs/mes.md). The broker ACL
(deploy/mosquitto/) restricts who may publish to the command topic in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.orm import Session

from controller import lots
from controller.engine.engine import Engine
from controller.engine.lotspec import LotSpec, build_inputs, parse_input_arg, supply_sources
from controller.events import event
from controller.genealogy import store
from controller.genealogy.db import Database
from controller.genealogy.models import Lot, MesCommand
from controller.mes.config import MesConfig
from controller.mes.schema import COMMAND_SCHEMA
from controller.recipes import LoadedRecipe, RecipeError, catalog
from drivers.errors import FablineError

log = structlog.get_logger("fabline.mes")

COMMANDS = ("dispatch", "hold", "release", "abort")
FIELDS = {
    "schema",
    "command_id",
    "client",
    "command",
    "lot_id",
    "recipe",
    "options",
    "inputs",
    "priority",
    "reason",
    "hmac",
}


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical(command: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in command.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The command with its `hmac` (what an MES client does before publishing)."""
    mac = hmac.new(secret.encode(), canonical(command), hashlib.sha256).hexdigest()
    return {**command, "hmac": mac}


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
        await self.handle(raw)

    async def handle(self, raw: bytes) -> dict[str, Any]:
        """Answer one command; return the reply's data."""
        try:
            cmd = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return await self._reply(None, "rejected", "malformed JSON")
        if not isinstance(cmd, dict):
            return await self._reply(None, "rejected", "malformed JSON: not an object")
        ident = cmd.get("command_id") if isinstance(cmd.get("command_id"), str) else None
        if cmd.get("schema") != COMMAND_SCHEMA:
            return await self._reply(
                cmd,
                "rejected",
                f"wrong schema version {cmd.get('schema')!r} (expected {COMMAND_SCHEMA!r})",
            )
        if not ident or len(ident) > 64:
            return await self._reply(cmd, "rejected", "command_id missing or longer than 64")
        if not self._authorised(cmd):
            log.warning("mes.unauthorised", client=cmd.get("client"), command_id=ident)
            return await self._reply(cmd, "rejected", "not authorised")
        earlier = await self.db.run(lambda s: s.get(MesCommand, ident))
        if earlier is not None:
            return await self._reply(cmd, earlier.status, earlier.reason, repeat=True)
        try:
            message = await self._execute(cmd)
            status, reason = "accepted", message
        except Rejected as e:
            status, reason = "rejected", e.reason
        return await self._reply(cmd, status, reason, record=True)

    def _authorised(self, cmd: Mapping[str, Any]) -> bool:
        secret = self.config.clients.get(str(cmd.get("client")))
        mac = cmd.get("hmac")
        if secret is None or not isinstance(mac, str):
            return False
        expected = hmac.new(secret.encode(), canonical(cmd), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, mac)

    async def _execute(self, cmd: Mapping[str, Any]) -> str | None:
        unknown = set(cmd) - FIELDS
        if unknown:
            raise Rejected(f"unknown fields {', '.join(sorted(unknown))}")
        kind, lot_id = cmd.get("command"), cmd.get("lot_id")
        if kind not in COMMANDS:
            raise Rejected(f"unknown command {kind!r} (commands: {', '.join(COMMANDS)})")
        if not isinstance(lot_id, str) or not lot_id:
            raise Rejected("lot_id missing")
        reason = cmd.get("reason") if isinstance(cmd.get("reason"), str) else None
        try:
            if kind == "dispatch":
                return await self._dispatch(cmd, lot_id)
            if kind == "release":
                message = await lots.release(self.db, lot_id, reason)
                self.start_lot(lot_id)
                return message
            return await lots.request(self.db, lot_id, str(kind), reason or f"MES {kind}")
        except RecipeError as e:
            raise Rejected(e.problems[0]) from None
        except FablineError as e:
            raise Rejected(str(e)) from None

    async def _dispatch(self, cmd: Mapping[str, Any], lot_id: str) -> str:
        recipe = _find_recipe(cmd.get("recipe"))
        if recipe.recipe.status != "approved":
            raise Rejected(
                f"recipe {recipe.recipe.id} v{recipe.recipe.version} is not approved"
                f" ({recipe.recipe.status})"
            )
        options = cmd.get("options") or {}
        if not isinstance(options, dict):
            raise Rejected("options must be an object of strings")
        given: dict[str, Any] = {}
        for name, value in (cmd.get("inputs") or {}).items():
            if isinstance(value, list):
                given[name] = parse_input_arg(f"{name}={','.join(map(str, value))}")[1]
            else:
                given[name] = parse_input_arg(f"{name}={value}")[1]
        exists = await self.db.run(lambda s: s.get(Lot, lot_id))
        if exists is not None:
            raise Rejected(f"lot {lot_id} already exists ({exists.state})")
        spec = LotSpec(
            lot_id,
            recipe,
            {str(k): str(v) for k, v in options.items()},
            build_inputs(lot_id, recipe, given),
            int(cmd.get("priority") or 0),
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

        def text(key: str) -> str | None:
            value = cmd.get(key)
            return value if isinstance(value, str) else None

        ident, client, command, lot_id = (
            text(k) for k in ("command_id", "client", "command", "lot_id")
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


def _find_recipe(ref: Any) -> LoadedRecipe:
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise Rejected("recipe must be an object with an id (and a version or a hash)")
    version, digest = ref.get("version"), ref.get("hash")
    found = [r for r in catalog() if r.recipe.id == ref["id"]]
    if not found:
        raise Rejected(f"unknown recipe {ref['id']!r}")
    if digest is not None:
        found = [r for r in found if r.hash == digest]
        if not found:
            raise Rejected(f"recipe {ref['id']} has no version with hash {digest!r}")
    if version is not None:
        found = [r for r in found if r.recipe.version == version]
        if not found:
            raise Rejected(f"recipe {ref['id']} has no version {version!r}")
    return max(found, key=lambda r: r.recipe.version)
