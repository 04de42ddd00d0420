"""The one exception hierarchy of fabline.

Every failure a caller can see is a `FablineError`; tool failures carry the tool id and the
command or register involved so a message alone tells an engineer where to look.
"""

from __future__ import annotations


class FablineError(Exception):
    """Root of every error fabline raises on purpose."""


class ParameterError(FablineError):
    """A job, setpoint or option was refused before anything was sent to a tool."""


class UnitError(ParameterError):
    """A value carries a unit that is missing, unknown or of the wrong dimension."""


class ToolError(FablineError):
    """A tool (or its link) failed. `where` names the command or register involved; `code`
    is the tool's own error code when it gave one (SCPI error number, Modbus refusal)."""

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
