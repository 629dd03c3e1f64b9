"""schemathesis over the service's OpenAPI schema, in process over ASGI: for a bounded
number of generated requests per operation (valid and invalid ones, with the admin
token), no 5xx, every status code declared, every response body as its schema says."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conftest import examples, require
from servicekit import ADMIN, PRICING, make_app, running, site_folder

schemathesis = require("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROOT = Path(tempfile.mkdtemp(prefix="politely-schema-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)
FOLDER = site_folder(ROOT, rules=PRICING)
# Generous limits: the test sends many requests from one address, for few visitors.
(FOLDER / "site.toml").write_text(
    '[rate_limits]\nper_address = "100000/minute"\nper_visitor = "100000/minute"\n',
    encoding="utf-8",
)
APP = make_app(FOLDER)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@SCHEMA.parametrize()
@settings(
    max_examples=examples(15),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case: Any) -> None:
    site = case.path_parameters.get("site") if case.path_parameters else None
    if isinstance(site, str) and len(site) % 4:
        case.path_parameters["site"] = "default"  # mostly the real site; now and then another
    case.call_and_validate(headers=ADMIN, checks=CHECKS)


@pytest.mark.anyio
async def test_the_benchmarks_bare_route_is_off_by_default_and_never_in_the_schema() -> None:
    event = {"event": "page_view", "visitor": "v1"}
    bare = make_app(FOLDER, bare_route=True)
    assert bare.openapi()["paths"] == APP.openapi()["paths"]
    async with running(bare) as http:
        answer = await http.post("/_bench/sites/default/events", json=event)
        assert answer.status_code == 200
        assert answer.json()["invitation"] is None
        assert (await http.post("/_bench/sites/default/events", json={})).status_code == 422
    async with running(make_app(FOLDER)) as http:
        assert (await http.post("/_bench/sites/default/events", json=event)).status_code == 404
