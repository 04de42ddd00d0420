"""Raw-socket SCPI server implementing the fabline SCPI command set for a `SimTool`.

Headers match in short or long form, case-insensitively, with optional `[:NODE]`s; a unit
after `;` without a leading colon is resolved against the previous unit's path, as SCPI
requires. Errors go to a 32-entry queue read by `SYSTem:ERRor?`.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from drivers.interface import JobState
from drivers.protocols.modbus_map import Refusal
from drivers.protocols.scpi_syntax import NO_ERROR, quote, split_top, unquote
from simulators.faults import wire_text
from simulators.server import ToolServer
from simulators.tool import Refused, SimTool

QUEUE_MAX = 32

# SCPI error number and standard text for each refusal reason
SCPI_ERROR: dict[Refusal, tuple[int, str]] = {
    Refusal.OUT_OF_RANGE: (-222, "Data out of range"),
    Refusal.UNKNOWN_OPERATION: (-224, "Illegal parameter value"),
    Refusal.BAD_JOB_ID: (-224, "Illegal parameter value"),
    Refusal.BAD_COMMAND: (-224, "Illegal parameter value"),
    Refusal.BUSY: (-213, "Init ignored"),
    Refusal.IN_ALARM: (-200, "Execution error"),
    Refusal.CONSUMABLE_EXHAUSTED: (-200, "Execution error"),
    Refusal.NOT_SET_UP: (-241, "Hardware missing"),
    Refusal.DUPLICATE_JOB: (-221, "Settings conflict"),
    Refusal.RULE: (-221, "Settings conflict"),
    Refusal.NO_JOB: (-221, "Settings conflict"),
}


class ScpiError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool

    def matches(self, word: str) -> bool:
        w = word.upper()
        return w == self.short or w == self.long


def _compile(pattern: str) -> tuple[list[_Node], bool]:
    """ "SYSTem:ERRor[:NEXT]?" -> nodes, is_query."""
    query = pattern.endswith("?")
    nodes = []
    for m in re.finditer(r"(\[)?:?([A-Za-z*]+)\]?", pattern.rstrip("?")):
        word = m.group(2)
        short = "".join(c for c in word if c.isupper() or c == "*") or word.upper()
        nodes.append(_Node(short, word.upper(), bool(m.group(1))))
    return nodes, query


def _match(nodes: list[_Node], words: list[str]) -> bool:
    if not nodes:
        return not words
    head, rest = nodes[0], nodes[1:]
    if words and head.matches(words[0]) and _match(rest, words[1:]):
        return True
    return head.optional and _match(rest, words)


Handler = Callable[[list[str]], str | None]


class ScpiServer(ToolServer):
    protocol = "scpi"

    def __init__(self, tool: SimTool) -> None:
        super().__init__(tool)
        self.errors: deque[tuple[int, str]] = deque()
        self._commands: list[tuple[list[_Node], bool, Handler]] = []
        t = tool
        for pattern, handler in (
            ("*IDN?", lambda a: f"{t.vendor},{t.model},{t.serial},{t.revision}"),
            ("*RST", lambda a: t.reset()),
            ("*CLS", lambda a: self.errors.clear()),
            ("*OPC?", lambda a: "1"),
            ("SYSTem:ERRor[:NEXT]?", self._next_error),
            ("SYSTem:ERRor:COUNt?", lambda a: str(len(self.errors))),
            ("TOOL:STATe?", self._tool_state),
            ("TOOL:ALARm?", self._alarms),
            ("TOOL:ALARm:CLEar", lambda a: t.clear_alarms()),
            ("TOOL:CONSumable?", self._consumables),
            ("TOOL:CONSumable:REPLace", lambda a: t.replace_consumable(self._arg(a, 0, 1))),
            ("TOOL:SETup?", self._setup),
            ("JOB:NEW", self._job_new),
            ("JOB:PARameter", self._job_param),
            ("JOB:STARt", lambda a: t.start()),
            ("JOB:ABORt", lambda a: t.abort()),
            ("JOB:STATe?", self._job_state),
            ("JOB:RESult?", self._job_result),
            ("CARRier:MAP?", self._carrier_map),
        ):
            nodes, query = _compile(pattern)
            self._commands.append((nodes, query, handler))

    def garbled(self, data: bytes) -> bytes:
        # noise with the line terminator kept, so a reader sees one bad line, not a stall
        noise = super().garbled(data).replace(b"\n", b"\xfe")
        return noise[:-1] + b"\n"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                text = line.decode("ascii").strip()
            except UnicodeDecodeError:
                self._push(-102, "Syntax error; non-ASCII program message")
                continue
            if not text:
                continue
            replies = self.execute(text)
            if replies:
                await self.reply(writer, (";".join(replies) + "\n").encode("ascii"))

    def execute(self, message: str) -> list[str]:
        """Run every unit of a program message; return the query responses."""
        replies: list[str] = []
        try:
            units = split_top(message, ";")
        except ValueError:
            self._push(-102, "Syntax error; unterminated string")
            return replies
        path: list[str] = []
        for unit in units:
            if not unit:
                continue
            header, _, rest = unit.partition(" ")
            try:
                args = split_top(rest, ",") if rest.strip() else []
                handler, query, words = self._resolve(header, path)
                if not header.startswith("*"):
                    path = words[:-1]
                out = handler(args)
                if query:
                    replies.append(out if out is not None else "")
            except ScpiError as e:
                self._push(e.code, e.text)
            except Refused as e:
                code, std = SCPI_ERROR[e.reason]
                self._push(code, f"{std}; {e.text}")
            except ValueError as e:
                self._push(-102, f"Syntax error; {e}")
        return replies

    # -- parsing ----------------------------------------------------------------------------

    def _resolve(self, header: str, path: list[str]) -> tuple[Handler, bool, list[str]]:
        query = header.endswith("?")
        absolute = header.startswith(":") or header.startswith("*")
        words = [w for w in header.rstrip("?").lstrip(":").split(":") if w]
        candidates = [words] if absolute or not path else [path + words, words]
        for cand in candidates:
            for nodes, is_query, handler in self._commands:
                if is_query == query and _match(nodes, cand):
                    return handler, query, cand
        raise ScpiError(-113, f"Undefined header; {header}")

    @staticmethod
    def _arg(args: list[str], i: int, count: int) -> str:
        if len(args) < count:
            raise ScpiError(-109, "Missing parameter")
        if len(args) > count:
            raise ScpiError(-108, "Parameter not allowed")
        return unquote(args[i])

    def _push(self, code: int, text: str) -> None:
        if len(self.errors) >= QUEUE_MAX:
            self.errors[-1] = (-350, "Queue overflow")
            return
        self.errors.append((code, wire_text(text)))

    # -- handlers ---------------------------------------------------------------------------

    def _next_error(self, args: list[str]) -> str:
        if not self.errors:
            return NO_ERROR
        code, text = self.errors.popleft()
        return f"{code},{quote(text)}"

    def _tool_state(self, args: list[str]) -> str:
        t = self.tool
        job = t.current.job_id if t.current else ""
        return f"{t.state.name},{quote(job)},{t.progress():.1f}"

    def _alarms(self, args: list[str]) -> str:
        t = self.tool
        codes = t.alarms + t.warnings()
        items = [f"{c},{quote(wire_text(t.interface.alarm(c).text))}" for c in codes]
        return ",".join([str(len(codes)), *items])

    def _consumables(self, args: list[str]) -> str:
        t = self.tool
        items = [
            f"{c.name.upper()},{t.levels[c.name]:.6g},{c.limit:.6g}"
            for c in t.interface.consumables
        ]
        return ",".join([str(len(items)), *items])

    def _setup(self, args: list[str]) -> str:
        items = [f"{k.upper()},{quote(' '.join(v))}" for k, v in self.tool.setup.items()]
        return ",".join([str(len(items)), *items])

    def _job_new(self, args: list[str]) -> None:
        if len(args) != 2:
            raise ScpiError(-109 if len(args) < 2 else -108, 'JOB:NEW needs "<job id>",<operation>')
        self.tool.new_job(unquote(args[0]), unquote(args[1]))

    def _job_param(self, args: list[str]) -> None:
        if len(args) != 2:
            raise ScpiError(-109 if len(args) < 2 else -108, "JOB:PAR needs <name>,<value>")
        self.tool.set_param(unquote(args[0]), unquote(args[1]))

    def _job_state(self, args: list[str]) -> str:
        job = self.tool.job(self._arg(args, 0, 1))
        if job is None:
            return f"{JobState.UNKNOWN.name},0.0,0"
        return f"{job.state.name},{job.progress(self.tool.now()):.1f},{job.alarm}"

    def _carrier_map(self, args: list[str]) -> str:
        """`CARR:MAP? "FOUP-7","1111100..."` (slot states, slot 1 first: 0 empty, 1 one
        piece, 2 double, 3 cross-slotted) -> `"<id read from the tag>","<states mapped>"`."""
        carrier, expected = self._arg(args, 0, 2), self._arg(args, 1, 2)
        if not expected.isdigit() or len(expected) > 25 or set(expected) - set("0123"):
            raise ScpiError(-224, "Illegal parameter value; slot map is up to 25 of 0-3")
        read, slots = self.tool.read_carrier(carrier, [int(c) for c in expected])
        return f"{quote(read)},{quote(''.join(str(x) for x in slots))}"

    def _job_result(self, args: list[str]) -> str:
        job = self.tool.job(self._arg(args, 0, 1))
        if job is None:
            return f"{JobState.UNKNOWN.name},NONE,0,0"
        pairs = [f"{k.upper()},{v:.9g}" for k, v in job.results.items()]
        warnings = [str(len(job.warnings)), *map(str, job.warnings)]
        return ",".join([job.state.name, job.op.mnemonic, str(job.alarm), *warnings, *pairs])
