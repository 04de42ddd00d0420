"""Mutants of the driver half: each must make tests/unit/drivers fail, or a test cannot fail.

    .venv/bin/python -m tests.unit.drivers.mutants            # all, ~2 min
    .venv/bin/python -m tests.unit.drivers.mutants budget     # those whose name holds "budget"

Each mutant is one small edit of a source file (a policy step skipped, a check dropped, a
factor changed). The edit is made in a temporary copy of the tree, never in the checkout, and
`pytest tests/unit/drivers` runs there; the first failing test is printed. When the code a mutant
targets changes, the mutant no longer applies and says so: update or drop it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# (name, file, text, replacement)
MUTANTS = [
    (
        "start resends blindly",
        "drivers/base.py",
        "            if not await self._has_job(job.job_id, op):\n                raise",
        "            await self._start(job.job_id, op, values)",
    ),
    ("no operation check", "drivers/base.py", " and known.operation == op.name", ""),
    (
        "refusal always counts as started",
        "drivers/base.py",
        "            if not ours:\n                raise\n",
        "            pass\n",
    ),
    (
        "check failure after refusal propagates",
        "drivers/base.py",
        "                ours = False",
        "                raise",
    ),
    (
        "link budget ignored",
        "drivers/base.py",
        "raise\n                p = None",
        "pass\n                p = None",
    ),
    (
        "budget not restarted by a good poll",
        "drivers/base.py",
        "\n                last_ok = self.clock()",
        "",
    ),
    (
        "lost result not retried",
        "drivers/base.py",
        "GarbledReply):\n                        # the job is over",
        "KeyError):\n                        # the job is over",
    ),
    (
        "wait timeout ignored",
        "drivers/base.py",
        "if deadline is not None and self.clock() > deadline:",
        "if False:",
    ),
    (
        "progress reported on every poll",
        "drivers/base.py",
        " and (p.state, p.progress) != last_seen",
        "",
    ),
    (
        "cached setup not used",
        "drivers/base.py",
        "            if self._setup is not None:\n                missing",
        "            if False:\n                missing",
    ),
    (
        "tool id not in op error",
        "drivers/base.py",
        "        try:\n            op = self.interface.operation(job.operation)\n",
        "        op = self.interface.operation(job.operation)\n        try:\n",
    ),
    (
        "no HARDWARE_MISSING re-read",
        "drivers/scpi_driver.py",
        "                    await self.status()\n",
        "                    pass\n",
    ),
    (
        "re-read errors propagate (scpi)",
        "drivers/scpi_driver.py",
        "with contextlib.suppress(ToolOffline, ToolTimeout, GarbledReply):",
        "if True:",
    ),
    (
        "no reply-unit count check",
        "drivers/scpi_driver.py",
        "        if len(units) != expected:",
        "        if False:",
    ),
    (
        "no query lock",
        "drivers/modbus_driver.py",
        "        async with self._query_lock:",
        "        if True:",
    ),
    (
        "IDLE fast path",
        "drivers/modbus_driver.py",
        "    ToolState.SETUP: JobState.SETUP,",
        "    ToolState.SETUP: JobState.SETUP,\n    ToolState.IDLE: JobState.UNKNOWN,",
    ),
    (
        "ALARM fast path",
        "drivers/modbus_driver.py",
        "    ToolState.SETUP: JobState.SETUP,",
        "    ToolState.SETUP: JobState.SETUP,\n    ToolState.ALARM: JobState.ALARM,",
    ),
    (
        "no NOT_SET_UP re-read",
        "drivers/modbus_driver.py",
        "                await self.status()\n        cls",
        "                pass\n        cls",
    ),
    (
        "re-read errors propagate (modbus)",
        "drivers/modbus_driver.py",
        "with contextlib.suppress(ToolOffline, ToolTimeout, GarbledReply):",
        "if True:",
    ),
    (
        "busy refusal not ToolBusy",
        "drivers/modbus_driver.py",
        "cls = ToolBusy if code in (mm.Refusal.BUSY, mm.Refusal.IN_ALARM) else ValueRefused",
        "cls = ValueRefused",
    ),
    (
        "no query echo check",
        "drivers/modbus_driver.py",
        "        if echo != job_id:",
        "        if False:",
    ),
    (
        "progress not per mille",
        "drivers/modbus_driver.py",
        "r[mm.IR_PROGRESS] / 10.0, r[mm.IR_ALARM_CODE]",
        "r[mm.IR_PROGRESS] / 1.0, r[mm.IR_ALARM_CODE]",
    ),
    ("Torr factor off", "drivers/units.py", '"Torr": 133.322,', '"Torr": 133.0,'),
    (
        "no °C/K offset",
        "drivers/units.py",
        'Unit("K", "temperature", 1.0, -273.15)',
        'Unit("K", "temperature", 1.0, 0.0)',
    ),
    (
        "no 12-digit rounding",
        "drivers/units.py",
        'return float(f"{(base - dst.offset) / dst.factor:.12g}")',
        "return (base - dst.offset) / dst.factor",
    ),
    (
        "bare number accepted for a length",
        "drivers/units.py",
        'if q.unit == "" and unit(target).dimension != "dimensionless":',
        "if False:",
    ),
    ("inf accepted", "drivers/units.py", "    if not math.isfinite(value):", "    if False:"),
    (
        "window exclusive",
        "drivers/interface.py",
        "        if lo <= x <= hi:",
        "        if lo < x < hi:",
    ),
    ("window checks unset", "drivers/interface.py", "        if x == unset:", "        if False:"),
    (
        "integer not enforced",
        "drivers/interface.py",
        "if self.integer and value != int(value):",
        "if False:",
    ),
    (
        "rules not checked",
        "drivers/interface.py",
        "            reason = rule.check(values)",
        "            reason = None",
    ),
    (
        "unknown names ignored",
        "drivers/interface.py",
        "            self.param(name)  # unknown names are an error",
        "            pass",
    ),
    (
        "choices case-sensitive",
        "drivers/interface.py",
        "text = str(raw).strip().upper()",
        "text = str(raw).strip()",
    ),
    (
        "f32 little-endian words",
        "drivers/protocols/modbus_map.py",
        'return list(struct.unpack(">HH", struct.pack(">f", value)))',
        'return list(struct.unpack("<HH", struct.pack("<f", value)))',
    ),
    (
        "strings low byte first",
        "drivers/protocols/modbus_map.py",
        'return list(struct.unpack(f">{n_regs}H", raw))',
        'return list(struct.unpack(f"<{n_regs}H", raw))',
    ),
    (
        "quote without doubling",
        "drivers/protocols/scpi_syntax.py",
        """return '"' + text.replace('"', '""') + '"'""",
        """return '"' + text + '"'""",
    ),
    (
        "backoff never caps",
        "drivers/transport/backoff.py",
        "return min(self.maximum, self.initial * self.factor**attempt)",
        "return self.initial * self.factor**attempt",
    ),
    (
        "retry sleeps past the deadline",
        "drivers/transport/backoff.py",
        "            if time.monotonic() + pause >= deadline:\n                raise",
        "            if time.monotonic() >= deadline:\n                raise",
    ),
    (
        "fake ignores wrong messages",
        "drivers/testing/transcript.py",
        "        if request != expected:",
        "        if False:",
    ),
    (
        "fake forgets unsent steps",
        "drivers/testing/transcript.py",
        "        if not self.done:",
        "        if False:",
    ),
    (
        "fake forgets swallowed mismatch",
        "drivers/testing/transcript.py",
        "            raise self._problem\n        if not self.done:",
        "            pass\n        if not self.done:",
    ),
]


def main(words: list[str]) -> int:
    chosen = [m for m in MUTANTS if all(w in m[0] for w in words)]
    missed = 0
    with tempfile.TemporaryDirectory(prefix="fabline-mutants-") as tmp:
        copy = Path(tmp)
        for part in ("drivers", "simulators", "controller", "tests", "pyproject.toml"):
            src = ROOT / part
            if src.is_dir():
                shutil.copytree(src, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, copy / part)
        for name, path, old, new in chosen:
            target = copy / path
            text = target.read_text(encoding="utf-8")
            if text.count(old) != 1:
                print(f"STALE   {name}: the text to mutate is not in {path} once")
                missed += 1
                continue
            target.write_text(text.replace(old, new), encoding="utf-8")
            try:
                run = subprocess.run(
                    [sys.executable, "-m", "pytest", "tests/unit/drivers", "-q", "-x", "-rf",
                     "-p", "no:cacheprovider"],
                    cwd=copy, capture_output=True, text=True, check=False,
                )  # fmt: skip
            finally:
                target.write_text(text, encoding="utf-8")
            failed = [
                ln[7:].split(" - ")[0] for ln in run.stdout.splitlines() if ln.startswith("FAILED ")
            ]
            if run.returncode == 0:
                missed += 1
            print(
                f"{'CAUGHT' if run.returncode else 'MISSED'}  {name}: {failed[0] if failed else ''}"
            )
    print(f"{len(chosen) - missed} of {len(chosen)} mutants caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
