"""Statistical process control: control charts with frozen limits, Western Electric and Nelson
run rules, OCAP actions, capability, and chart rendering. Pure: no database, engine or tool
imports; the engine calls `evaluate_point` on each new result. See docs/spc.md."""

from controller.spc.capability import Capability, SpecLimits, capability, within_sigma
from controller.spc.charts import (
    CONSTANTS,
    ChartDefinition,
    ChartKey,
    ChartType,
    ControlLimits,
    LimitsSource,
    OcapAction,
    RuleSet,
    SubgroupConstants,
    engineer_limits,
    phase_one,
)
from controller.spc.monitor import (
    ChartPoint,
    OcapDecision,
    SpreadViolation,
    evaluate_point,
    evaluate_series,
    ocap,
)
from controller.spc.render import render_svg, render_terminal
from controller.spc.rules import (
    NELSON,
    RULES,
    WESTERN_ELECTRIC,
    Rule,
    RuleId,
    Violation,
    Zones,
    check_point,
    evaluate,
    window,
)
from drivers.errors import SpcError

__all__ = [
    "CONSTANTS",
    "NELSON",
    "RULES",
    "WESTERN_ELECTRIC",
    "Capability",
    "ChartDefinition",
    "ChartKey",
    "ChartPoint",
    "ChartType",
    "ControlLimits",
    "LimitsSource",
    "OcapAction",
    "OcapDecision",
    "Rule",
    "RuleId",
    "RuleSet",
    "SpcError",
    "SpecLimits",
    "SpreadViolation",
    "SubgroupConstants",
    "Violation",
    "Zones",
    "capability",
    "check_point",
    "engineer_limits",
    "evaluate",
    "evaluate_point",
    "evaluate_series",
    "ocap",
    "phase_one",
    "render_svg",
    "render_terminal",
    "window",
    "within_sigma",
]
