"""Fuzz every endpoint from the OpenAPI document (schemathesis against the live loopback
server): no 5xx, and every response matches the document (status, media type, headers, body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks
from test_server_support import running_server

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("config"), "stain", max_pixels=512 * 512, queue_size=4) as handle:
        yield handle


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case, live):
    case.call_and_validate(headers={"Authorization": f"Bearer {live.token}"}, checks=CHECKS, timeout=60)
