"""Tool inhibits: several at once, each released on its own, with who and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.equipment import E10Error, Inhibit, InhibitSource, Release, active

T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_inhibits_hold_until_each_is_released() -> None:
    spc = Inhibit(
        "I1",
        "DICE-1",
        T0,
        "SPC stacked-wlp-000-11/dice/kerf_offset@DICE-1: N5: ...",
        "spc",
        InhibitSource.SPC,
        "stacked-wlp-000-11/dice/kerf_offset@DICE-1",
    )
    manual = Inhibit("I2", "DICE-1", T0, "spindle noise", "eng-kim")
    other = Inhibit("I3", "PLAT-1", T0, "bath analysis due", "eng-kim")
    events: list[Inhibit | Release] = [spc, manual, other]
    assert active(events, "DICE-1") == [spc, manual]
    events.append(Release("I1", T0, "tech-ana", "blade changed, test cut 1.2 µm offset"))
    assert active(events, "DICE-1") == [manual]
    events.append(Release("I2", T0, "tech-ana", "spindle bearing checked"))
    assert active(events, "DICE-1") == [] and active(events) == [other]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([Release("I9", T0, "tech", "done")], "inhibit I9 is not in force"),
        ([Inhibit("I1", "T", T0, "r", "x"), Inhibit("I1", "T", T0, "r", "x")], "recorded twice"),
    ],
)
def test_bad_sequences_are_refused(events: list[Inhibit | Release], message: str) -> None:
    with pytest.raises(E10Error, match=message):
        active(events)


def test_reason_and_who_are_required() -> None:
    with pytest.raises(E10Error, match="inhibit of DICE-1 needs a reason and who"):
        Inhibit("I1", "DICE-1", T0, " ", "spc")
    with pytest.raises(E10Error, match="release of inhibit I1 needs who and what was done"):
        Release("I1", T0, "tech", "")
