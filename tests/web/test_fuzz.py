"""A property-based fuzz of the station's HTTP API from its own OpenAPI document
(schemathesis): generated requests for every operation, logged in as an administrator (so
every route is reachable), never get a 500, and every error is one JSON message."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.web.station import Running

MAX_EXAMPLES = 12  # per operation: ~30 operations in well under a minute
SKIP = {"/api/events", "/api/logout"}  # a stream that never ends; the session under test


def test_no_generated_request_makes_the_station_fail(web_station: Running) -> None:
    admin = web_station.client("admin")
    schema = schemathesis.openapi.from_url(f"{web_station.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    tried = 0
    for op in operations:
        if op.path in SKIP:
            continue
        tried += 1

        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # report the failing request, unshrunk
        )
        def check(case: Any) -> None:
            what = f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:300]}"
            try:
                response = case.call(
                    base_url=web_station.url,
                    headers={"X-CSRF-Token": admin.csrf},
                    cookies=dict(admin.cookies),
                    timeout=20,
                )
            except Exception as e:
                raise AssertionError(f"{what}: {e}") from None
            assert response.status_code < 500, (what, response.text[:500])
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("error"), str) and body["error"], (what, body)

        check()
    assert tried >= 25, [op.path for op in operations]
