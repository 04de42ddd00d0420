"""Lots: what a lot is to be (`LotRequest`), its lifecycle (`LotState`, transitions, hold
reasons), who drives it (lease), the one service every front door calls, and its JSON views."""

from controller.lots.lease import ME, alive, driven
from controller.lots.lifecycle import FINAL, HOLD_KINDS, STOPPED, HoldReason, LotState
from controller.lots.request import LotPlan, LotRequest, plan
from controller.lots.service import LotService, StopJob, stop_job_on
from controller.lots.views import LotDetail, LotView, StepRunView, ToolStatusView

__all__ = [
    "FINAL",
    "HOLD_KINDS",
    "ME",
    "STOPPED",
    "HoldReason",
    "LotDetail",
    "LotPlan",
    "LotRequest",
    "LotService",
    "LotState",
    "LotView",
    "StepRunView",
    "StopJob",
    "ToolStatusView",
    "alive",
    "driven",
    "plan",
    "stop_job_on",
]
