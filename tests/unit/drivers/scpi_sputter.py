"""Literal SCPI lines of the sputter (docs/tools/scpi-commands.md, docs/tools/sputter.md),
shared by the unit tests of the driver surface and of the SCPI driver.

The replies are what the simulator sends (captured over a socket), less the `;0,"No error"`
unit the transport strips."""

from __future__ import annotations

from drivers.base import Job

STATUS = "TOOL:STAT?;:TOOL:ALAR?;:TOOL:CONS?;:TOOL:SET?"
CONSUMABLES = (
    "8,TARGET_CU,0,2000,TARGET_AL,0,2000,TARGET_ALCU,0,2000,TARGET_ALSI,0,2000,"
    "TARGET_TI,0,2000,TARGET_TIW,0,2000,TARGET_NIV,0,2000,TARGET_AU,0,2000"
)
IDLE = f'IDLE,"",0.0;0;{CONSUMABLES};1,TARGETS,"CU AL ALCU TI TIW"'


def status(targets: str, state: str = 'IDLE,"",0.0', alarms: str = "0") -> str:
    """A status reply with these targets installed."""
    return f'{state};{alarms};{CONSUMABLES};1,TARGETS,"{targets}"'


JOB = Job("J1", "deposit", {"target": "CU", "thickness": "300 nm", "power": "5 kW"})
START = (
    'JOB:NEW "J1",DEPOSIT;:JOB:PAR TARGET,CU;:JOB:PAR THICKNESS,300;:JOB:PAR POWER,5;'
    ":JOB:PAR PRESSURE,4;:JOB:PAR CHUCK_TEMP,25;:JOB:STAR"
)
STATE = 'JOB:STAT? "J1"'
RESULT = 'JOB:RES? "J1"'
DONE = (
    "COMPLETE,DEPOSIT,0,0,THICKNESS,297.784493,WIW,2.38232034,SHEET_RESISTANCE,60.1406327,"
    "STRESS,101.459376,RATE,206.794787,ARC_COUNT,0,ENERGY,0.12,DURATION,1.44"
)
