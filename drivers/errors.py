"""The one exception hierarchy of fabline: every error raised on purpose, in one place.

    FablineError                      category     CLI exit  HTTP
    ├── UsageError                    usage        2         400
    │   ├── ParameterError                                          a job, setpoint, option
    │   │   ├── UnitError                                           a missing/unknown unit
    │   │   └── NoToolFits                                          no tool set up for a step
    │   ├── RecipeError                                             FILE:LINE: path: reason
    │   ├── LineError                                               a line file
    │   ├── E142Error                                               a die map file
    │   └── SpcError                                                a chart, baseline, sample
    ├── Unauthorized                  unauthorized 8         401    not logged in, bad password
    ├── Forbidden                     forbidden    9         403    the role may not do that
    ├── NotFound                      not_found    5         404
    │   ├── LotNotFound
    │   ├── UnitNotFound
    │   └── RecipeNotFound
    ├── Conflict                      conflict     6         409
    │   ├── LotStateError                                           not in a state for that
    │   ├── LotBusy                                                 another controller drives it
    │   ├── StaleStep                                               a step run already finished
    │   ├── StationRunning                                          the station runs elsewhere
    │   ├── LeaseLost                                               a lot was taken over
    │   ├── StationConfigConflict                                   areas differ between stations
    │   └── FeedForwardError                                        a fed setpoint cannot run
    ├── Unavailable                   unavailable  7         503
    │   ├── DatabaseError                                           database unreachable/unusable
    │   └── BrokerUnavailable                                       MES broker unreachable
    ├── ToolError                     tool         1         502    tool id, command, code
    │   ├── ToolOffline, ToolTimeout, GarbledReply                  the link
    │   ├── ValueRefused ── ToolBusy                                the tool said no
    │   ├── JobNotFound, ToolAlarm, JobAborted                      the job
    └── GenealogyError                internal     70        500    a bug: planning went wrong

A command's outcome that is not an error has its own exit code: 3 the lot ended held, 4 it
waits at an external step (controller/cli/command.py). Tool failures carry the tool id and the
command or register involved so a message alone tells an engineer where to look.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Category(StrEnum):
    USAGE = "usage"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    TOOL = "tool"
    INTERNAL = "internal"


EXIT_CODES = {
    Category.USAGE: 2,
    Category.UNAUTHORIZED: 8,
    Category.FORBIDDEN: 9,
    Category.NOT_FOUND: 5,
    Category.CONFLICT: 6,
    Category.UNAVAILABLE: 7,
    Category.TOOL: 1,
    Category.INTERNAL: 70,
}
HTTP_STATUS = {
    Category.USAGE: 400,
    Category.UNAUTHORIZED: 401,
    Category.FORBIDDEN: 403,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.UNAVAILABLE: 503,
    Category.TOOL: 502,
    Category.INTERNAL: 500,
}


class FablineError(Exception):
    """Root of every error fabline raises on purpose."""

    category: ClassVar[Category] = Category.INTERNAL


# -- usage: the request itself is wrong ------------------------------------------------------


class UsageError(FablineError):
    """Bad usage or input: fix the request and try again."""

    category = Category.USAGE


class ParameterError(UsageError):
    """A job, setpoint or option was refused before anything was sent to a tool."""


class UnitError(ParameterError):
    """A value carries a unit that is missing, unknown or of the wrong dimension."""


class NoToolFits(ParameterError):
    """No tool of the line is set up for what the step needs."""


class RecipeError(UsageError):
    """A recipe cannot be loaded or expanded; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else "\n".join(problems))


class LineError(UsageError):
    """A line file is missing, unreadable or invalid."""


class E142Error(UsageError):
    """A die map cannot be written as, or read from, an E142 substrate map."""


class SpcError(UsageError):
    """A chart definition, baseline, sample or spec the SPC library refuses. The message names
    the chart (or the argument) and the reason, in one line."""


# -- who is asking -----------------------------------------------------------------------------


class Unauthorized(FablineError):
    """Nobody is logged in (or the session expired, or the name or password is wrong)."""

    category = Category.UNAUTHORIZED


class Forbidden(FablineError):
    """The user is known, but their role may not do that (or a CSRF check failed)."""

    category = Category.FORBIDDEN


# -- not found -------------------------------------------------------------------------------


class NotFound(FablineError):
    category = Category.NOT_FOUND


class LotNotFound(NotFound):
    pass


class UnitNotFound(NotFound):
    pass


class RecipeNotFound(NotFound):
    pass


# -- conflict: right request, wrong moment --------------------------------------------------


class Conflict(FablineError):
    category = Category.CONFLICT


class LotStateError(Conflict):
    """The lot is not in a state that allows the command."""


class LotBusy(Conflict):
    """Another live controller is driving the lot."""


class StaleStep(Conflict):
    """A step run was already finished (by another controller, or twice): nothing applied."""


class StationRunning(Conflict):
    """Another live process already serves this station."""


class StationConfigConflict(Conflict):
    """A station's configuration contradicts the line's as recorded by the other stations."""


class LeaseLost(Conflict):
    """Another controller took over a lot this process was driving (controller/lots/lease.py):
    the write is refused and this process stops driving the lot."""


class FeedForwardError(Conflict):
    """A setpoint fed forward from the lot's measurements cannot be computed, or the tool
    would refuse it: the lot holds at that step."""


# -- unavailable: a service fabline needs is down --------------------------------------------


class Unavailable(FablineError):
    category = Category.UNAVAILABLE


class DatabaseError(Unavailable):
    """The genealogy database cannot be reached or used."""


class BrokerUnavailable(Unavailable):
    """The MES broker cannot be reached within the time given."""


# -- tools -----------------------------------------------------------------------------------


class ToolError(FablineError):
    """A tool (or its link) failed. `where` names the command or register involved; `code`
    is the tool's own error code when it gave one (SCPI error number, Modbus refusal)."""

    category = Category.TOOL

    def __init__(
        self, tool_id: str, detail: str, where: str | None = None, code: int | None = None
    ) -> None:
        self.tool_id = tool_id
        self.detail = detail
        self.where = where
        self.code = code
        at = f" [{where}]" if where else ""
        super().__init__(f"{tool_id}{at}: {detail}")


class ToolOffline(ToolError):
    """The tool cannot be reached (connection refused, dropped, or reconnect budget spent)."""


class ToolTimeout(ToolError):
    """The tool did not answer within the call's timeout."""


class GarbledReply(ToolError):
    """The tool answered with something that is not a valid reply."""


class ValueRefused(ToolError):
    """The tool itself refused a command or value (SCPI error queue, Modbus exception)."""


class ToolBusy(ValueRefused):
    """The tool refused a job because it is running another one or is in alarm."""


class JobNotFound(ToolError):
    """The tool has no record of the job id (e.g. it restarted since)."""


class ToolAlarm(ToolError):
    """The tool raised an alarm; `code` is the tool's own alarm code."""

    def __init__(self, tool_id: str, code: int, text: str, job_id: str | None = None) -> None:
        self.text = text
        self.job_id = job_id
        job = f" during job {job_id}" if job_id else ""
        super().__init__(tool_id, f"alarm {code} {text}{job}", code=code)


class JobAborted(ToolError):
    """The job ended in the aborted state."""


# -- internal ------------------------------------------------------------------------------


class GenealogyError(FablineError):
    """Genealogy planning met material it cannot account for: a bug, never bad input."""


def exit_code(e: FablineError) -> int:
    return EXIT_CODES[e.category]


def shown(value: object, limit: int = 60) -> str:
    """A value from outside as an error message may echo it: never more than `limit`
    characters (a refused 1 MB option must not come back whole)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"
