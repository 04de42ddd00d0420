"""Interoperability with an independent SECS/GEM implementation, secsgem 0.3.0 (a test
dependency only: LGPL, thread-based; not the unrelated `secsgem-driver`).

- secsgem's host handler drives fabline's GEM dicing-saw simulator: establish
  communications, on-line, model name, a status variable, a process program, an event
  report subscribed the secsgem way, and remote commands.
- fabline's GEM host drives a secsgem equipment handler configured with the dicing saw's
  GEM vocabulary: connect (all of the establishment), identify, status, a control-state
  event report, an alarm report, and a remote command answered HCACK 4 and confirmed by
  its event.

secsgem runs its own threads; its blocking calls go through asyncio.to_thread so the
simulators on the test's event loop keep serving.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import secsgem.common
import secsgem.gem
import secsgem.hsms
import secsgem.secs
from secsgem.secs import variables as sv

from drivers.gem_driver import GemDriver
from drivers.interface import ControlState, ToolState
from drivers.interfaces import interface_for
from drivers.line import GemSettings, Line, ToolEntry
from drivers.protocols import gem_map as gm
from simulators.line import SimLine

# ASCII units ("um"), as a host that only speaks <A> would send them
DICE_PP = (
    "# fabline process program 1\nkind: dicing\noperation: dice\nblade: HUB_30\nmaterial: SI\n"
    "stack_thickness: 100 um\ncut_depth: 130 um\nfeed: 50 mm/s\ndie_x: 5 mm\ndie_y: 5 mm\n"
    "work_width: 100 mm\n"
)


def test_secsgem_is_the_real_package() -> None:
    assert hasattr(secsgem.gem, "GemHostHandler") and hasattr(secsgem.gem, "GemEquipmentHandler")


# -- secsgem host → fabline simulator ------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gem_line() -> AsyncIterator[SimLine]:
    spec = Line(tools=[ToolEntry(id="DICE-1", kind="dicing", protocol="gem")])
    async with SimLine(spec, time_scale=1e5, seed=9) as line:
        yield line


def _settings(port: int, mode: secsgem.hsms.HsmsConnectMode, device: Any) -> Any:
    return secsgem.hsms.HsmsSettings(
        address="127.0.0.1", port=port, connect_mode=mode, device_type=device, session_id=0,
        t3=5, t5=0.2, t6=5, t7=5,
    )  # fmt: skip


async def test_secsgem_host_drives_the_gem_simulator(gem_line: SimLine) -> None:
    port = gem_line.describe().tool("DICE-1").port
    host = secsgem.gem.GemHostHandler(
        _settings(port, secsgem.hsms.HsmsConnectMode.ACTIVE, secsgem.common.DeviceType.HOST)
    )
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    host.events.collection_event_received += lambda data: loop.call_soon_threadsafe(
        events.put_nowait, data
    )
    host.enable()
    try:
        assert await asyncio.to_thread(host.waitfor_communicating, 5)
        assert await asyncio.to_thread(host.go_online) == 0  # ONLACK: accepted
        reply = await asyncio.to_thread(host.are_you_there)
        mdln, softrev = host.settings.streams_functions.decode(reply).get()
        assert (mdln, softrev) == ("KERF-6000", "1.0.0")
        svs = (await asyncio.to_thread(host.request_svs, [2, 3])).get()  # control, process
        assert svs == [ControlState.REMOTE, ToolState.IDLE]

        ack = await asyncio.to_thread(host.send_process_program, "SG/dice/1", DICE_PP)
        assert ack == 0  # ACKC7
        ppid, body = await asyncio.to_thread(host.request_process_program, "SG/dice/1")
        assert (ppid, body) == ("SG/dice/1", DICE_PP)
        # DICE_COMPLETED (CEID 101) with EVENT_JOB_ID and RESULT_DIE_COUNT
        m = gm.gem_map(interface_for("dicing"))
        die_count = m.vid(gm.result_var("die_count"))
        await asyncio.to_thread(
            host.subscribe_collection_event, 101, [m.vid("EVENT_JOB_ID"), die_count], 7
        )
        rc = await asyncio.to_thread(host.send_remote_command, "PP-SELECT", [["PPID", "SG/dice/1"]])
        assert rc.HCACK.get() == 0
        rc = await asyncio.to_thread(host.send_remote_command, "START", [["JOBID", "SG-1"]])
        assert rc.HCACK.get() == 4  # done later, signalled by an event
        data = await asyncio.wait_for(events.get(), 5)
        assert data["ceid"].get() == 101
        values = {v["dvid"]: v["value"] for v in data["values"]}
        assert values[m.vid("EVENT_JOB_ID")] == "SG-1"
        assert values[die_count] > 100
        rc = await asyncio.to_thread(host.send_remote_command, "FLY", [])
        assert rc.HCACK.get() == 1  # no such command
    finally:
        await asyncio.to_thread(host.disable)


# -- fabline host → secsgem equipment -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SecsgemDicer(secsgem.gem.GemEquipmentHandler):  # type: ignore[misc]
    """A secsgem equipment handler that publishes the dicing saw's GEM vocabulary."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings, initial_control_state="HOST_OFFLINE")
        self._mdln, self._softrev = "KERF-SG", "0.3.0"
        iface = interface_for("dicing")
        m = gm.gem_map(iface)
        self.aborted = 0
        for builtin in (1001, 1002, 1003, 1004, 1005):  # secsgem's own SVIDs overlap our DVIDs
            self.status_variables.pop(builtin, None)
        self.values: dict[str, Any] = {
            "VENDOR": sv.String("SECSGEM-SIM"), "SERIAL_NUMBER": sv.String("SG-0001"),
            "PROCESS_STATE": sv.U1(0), "JOB_ID": sv.String(""), "PROGRESS": sv.F4(0.0),
            "ALARMS_SET": sv.Array(sv.U4, []), "WARNINGS_SET": sv.Array(sv.U4, []),
            "BLADE_WEAR_LEVEL": sv.F8(12.5), "BLADES_INSTALLED": sv.Array(sv.String, ["HUB_30"]),
            "EVENT_JOB_ID": sv.String("SG-J1"), "EVENT_JOB_STATE": sv.U1(5),
            "EVENT_ALARM": sv.U4(0), "EVENT_OPERATION": sv.String("dice"),
        }  # fmt: skip
        for v in m.svs:
            self.status_variables[v.vid] = secsgem.gem.StatusVariable(v.vid, v.name, "", sv.U4)
        for v in m.dvs:
            self.data_values[v.vid] = secsgem.gem.DataValue(v.vid, v.name, sv.F8)
        for v in m.ecs:
            default = 800.0 if v.name == "BLADE_WEAR_LIMIT" else 1.0
            self.equipment_constants[v.vid] = secsgem.gem.EquipmentConstant(
                v.vid, v.name, 0, 1e9, default, "", sv.F8
            )
        for e in m.events:
            self.collection_events[e.ceid] = secsgem.gem.CollectionEvent(e.ceid, e.name, [])
        for ce in (9001, 9002):  # what secsgem triggers on alarm set / clear
            self.collection_events[ce] = secsgem.gem.CollectionEvent(ce, f"ALARM_{ce}", [])
        for a in iface.alarms:
            self.alarms[a.code] = secsgem.gem.Alarm(a.code, a.name, a.text[:40],
                                                    gm.ALCD_ALARM, 9001, 9002)  # fmt: skip
        abort = m.event("JOB_ABORTED").ceid
        self.remote_commands["ABORT"] = secsgem.gem.RemoteCommand("ABORT", "Abort", [], abort)

    def on_sv_value_request(self, svid: Any, status_variable: Any) -> Any:
        if status_variable.name == "CONTROL_STATE":
            return sv.U1(self._get_control_state_id())
        return self.values.get(status_variable.name, sv.String(""))

    def on_dv_value_request(self, dvid: Any, data_value: Any) -> Any:
        return self.values.get(data_value.name, sv.F8(0.0))

    def _on_rcmd_ABORT(self) -> None:  # secsgem's callback naming
        self.aborted += 1


async def test_fabline_host_drives_a_secsgem_equipment() -> None:
    port = _free_port()
    eq = SecsgemDicer(
        _settings(port, secsgem.hsms.HsmsConnectMode.PASSIVE, secsgem.common.DeviceType.EQUIPMENT)
    )
    eq.enable()
    # secsgem 0.3.0 has no S2F31 in its message table: it separates on one, so no clock set
    settings = GemSettings(set_clock=False)
    d = GemDriver("SG-1", interface_for("dicing"), "127.0.0.1", port, settings, timeout=3.0)
    try:
        ident = await d.connect()  # S1F13, S1F17, S2F33/35/37, S5F3, S2F13, S1F3 ...
        assert (ident.model, ident.revision) == ("KERF-SG", "0.3.0")
        assert (ident.vendor, ident.serial) == ("SECSGEM-SIM", "SG-0001")
        st = await d.status()
        assert st.control is ControlState.REMOTE and st.state is ToolState.IDLE
        assert st.consumables[0].level == 12.5 and st.consumables[0].limit == 800.0
        assert st.setup == {"blades": ("HUB_30",)}

        # an event report: the operator switches the tool to local (CEID 2, CONTROL_STATE)
        local = d.expect_event("CONTROL_LOCAL")
        await asyncio.to_thread(eq.control_switch_online_local)
        await asyncio.wait_for(local, 5)
        assert d.control is ControlState.LOCAL
        remote = d.expect_event("CONTROL_REMOTE")
        await asyncio.to_thread(eq.control_switch_online_remote)
        await asyncio.wait_for(remote, 5)
        assert d.control is ControlState.REMOTE

        # an alarm report (S5F1), acknowledged
        await asyncio.to_thread(eq.set_alarm, 401)
        assert (401, True) in d.alarm_reports

        # a remote command: secsgem answers HCACK 4 and signals JOB_ABORTED when done
        await d.abort()
        assert eq.aborted == 1
        # secsgem dispatches data on a thread of its own but handles separate.req at once: a
        # message of ours still queued there when the separate arrives makes it answer
        # "not selected" on a closed link and hang. One more round trip lets its dispatcher
        # drain (it answers in order).
        await d.status()
    finally:
        # secsgem first: once our side closes, its passive server starts listening again, and
        # a disable() that closes that socket before the listener's first select() leaves
        # disable() waiting forever (secsgem 0.3.0)
        await asyncio.to_thread(eq.disable)
        await d.close()
