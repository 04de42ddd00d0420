"""A controller killed with SIGKILL in the middle of a step: `fabline resume` re-attaches to
the job by id and completes the lot; every step run is recorded once, no unit or edge is
lost or doubled, and the lot's MES events keep a gapless sequence."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FABLINE = str(Path(sys.executable).with_name("fabline"))


@dataclass
class Killed:
    """A `fabline run` SIGKILLed while its lot's post-mould cure runs: how to resume it."""

    db: Path
    common: list[str]  # --line and --db of the run
    env: dict[str, str]

    def resume(self, lot: str) -> dict[str, Any]:
        resumed = subprocess.run(
            [FABLINE, "resume", lot, *self.common, "--json"],
            capture_output=True, text=True, env=self.env, timeout=120, check=False,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        out: dict[str, Any] = json.loads(resumed.stdout)
        return out


@contextmanager
def killed_at_the_cure(tmp_path: Path, lot: str, strips: int) -> Iterator[Killed]:
    """A simulated line, and a run of a substrate-first lot of `strips` strips killed when
    its 8 h post-mould cure starts (~1 s at this time scale); the line is stopped after."""
    env = {**os.environ, "FABLINE_HOME": str(tmp_path), "FABLINE_LOG": "warning"}
    sim = subprocess.Popen(
        [FABLINE, "sim", "--json", "--time-scale", "30000", "--seed", "5"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert sim.stdout is not None and json.loads(sim.stdout.readline())["tools"]
        db = tmp_path / "crash.db"
        common = ["--line", str(tmp_path / "sim-line.json"), "--db", str(db)]
        run = subprocess.Popen(
            [FABLINE, "run", "substrate-first-fc-003-1", "--lot", lot, "-i", f"strips={strips}",
             *common],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert run.stdout is not None
        for out in run.stdout:
            if "post-mold-cure on MOLD-" in out:
                run.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(
                f"run ended before the step: {run.stderr.read() if run.stderr else ''}"
            )
        assert run.wait(timeout=10) == -signal.SIGKILL
        yield Killed(db, common, env)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=10)


def test_sigkill_mid_step_then_resume_completes(tmp_path: Path) -> None:
    with killed_at_the_cure(tmp_path, "K1", strips=1) as killed:
        db = killed.db
        with sqlite3.connect(db) as c:
            state, owner = c.execute("SELECT state, owner FROM lot WHERE id='K1'").fetchone()
            open_runs = c.execute(
                "SELECT step_id FROM step_run WHERE lot_id='K1' AND state='started'"
            ).fetchall()
        assert state == "running" and owner  # the dead controller still owns it
        assert open_runs == [("post-mold-cure",)]

        assert killed.resume("K1")["state"] == "completed"

        with sqlite3.connect(db) as c:
            per_step = c.execute(
                "SELECT step_index, count(*), min(state) FROM step_run WHERE lot_id='K1'"
                " GROUP BY step_index ORDER BY step_index"
            ).fetchall()
            steps = c.execute("SELECT step_count FROM lot WHERE id='K1'").fetchone()[0]
            orphans = c.execute(
                "SELECT count(*) FROM unit u WHERE u.lot_id='K1' AND u.created_step >= 0"
                " AND NOT EXISTS (SELECT 1 FROM edge e WHERE e.child_id = u.id)"
            ).fetchone()[0]
            doubled = c.execute(
                "SELECT count(*) FROM (SELECT 1 FROM edge GROUP BY parent_id, child_id, kind,"
                " step_run_id HAVING count(*) > 1)"
            ).fetchone()[0]
            seqs = [r[0] for r in c.execute("SELECT seq FROM outbox WHERE lot_id='K1' ORDER BY id")]
            packages = c.execute(
                "SELECT count(*) FROM unit WHERE lot_id='K1' AND kind='package'"
            ).fetchone()[0]
            skipped = c.execute(  # rework steps no queue-time limit routed the lot through
                "SELECT count(*) FROM outbox WHERE lot_id='K1' AND payload LIKE"
                ' \'%"type": "step_skipped"%\''
            ).fetchone()[0]
        assert skipped == 2
        assert len(per_step) == steps - skipped
        assert all(n == 1 and st == "done" for _, n, st in per_step)
        assert orphans == 0 and doubled == 0
        assert seqs == list(range(1, len(seqs) + 1))
        assert packages == 64


def test_sigkill_amid_a_steps_pieces_then_resume_runs_each_piece_once(tmp_path: Path) -> None:
    """Three strips, one job each: killed while the first strips' 8 h post-mould cures run
    on the line's two presses (the third not sent yet), `fabline resume` re-attaches the jobs
    by their ids, runs the rest and finishes the step once: one run per strip at every step,
    nothing doubled."""
    with killed_at_the_cure(tmp_path, "K3", strips=3) as killed:
        db = killed.db
        with sqlite3.connect(db) as c:
            open_runs = c.execute(
                "SELECT piece, job_id, tool_id FROM step_run WHERE lot_id='K3'"
                " AND state='started' ORDER BY id"
            ).fetchall()
        # the line has two presses: the first strips in slot order, one on each (the second
        # may not have gone out yet when the first reports), the third waiting for a press
        assert [p for p, _, _ in open_runs] in (["K3-S01"], ["K3-S01", "K3-S02"])
        assert len({t for _, _, t in open_runs}) == len(open_runs)
        started = {p: j for p, j, _ in open_runs}

        assert killed.resume("K3")["state"] == "completed"
        with sqlite3.connect(db) as c:
            per_piece = c.execute(
                "SELECT step_id, piece, count(*), min(state), group_concat(job_id) FROM step_run"
                " WHERE lot_id='K3' GROUP BY step_index, piece"
            ).fetchall()
            doubled = c.execute(
                "SELECT count(*) FROM (SELECT 1 FROM edge GROUP BY parent_id, child_id, kind,"
                " step_run_id HAVING count(*) > 1)"
            ).fetchone()[0]
            seqs = [r[0] for r in c.execute("SELECT seq FROM outbox WHERE lot_id='K3' ORDER BY id")]
            packages = c.execute(
                "SELECT count(*) FROM unit WHERE lot_id='K3' AND kind='package'"
            ).fetchone()[0]
        assert all(n == 1 and st == "done" for _, _, n, st, _ in per_piece), per_piece
        cures = {p: jobs for s, p, _, _, jobs in per_piece if s == "post-mold-cure"}
        assert set(cures) == {"K3-S01", "K3-S02", "K3-S03"}
        assert all(cures[p] == j for p, j in started.items())  # re-attached, not sent again
        assert doubled == 0
        assert seqs == list(range(1, len(seqs) + 1))
        assert packages == 3 * 64
