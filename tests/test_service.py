"""The HTTP service over the library: public events, private endpoints, auth, bad input."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import T0
from politely.cli import main
from servicekit import ADMIN, PRICING, TOKEN, FlakyStore, make_app, running, site_folder

pytestmark = pytest.mark.anyio
PUBLIC = {("post", "/v1/sites/{site}/events"), ("get", "/healthz"), ("get", "/readyz")}
PUBLIC.add(("get", "/metrics"))


async def test_an_event_without_visitor_gets_an_issued_id(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        first = await http.post("/v1/sites/default/events", json={"event": "page_view"})
        assert first.status_code == 200
        body = first.json()
        assert re.fullmatch(r"[0-9a-f]{32}", body["visitor"])
        assert body["invitation"] is None
        assert "degraded" not in body
        again = {"event": "page_view", "visitor": "v1", "url": "/"}
        second = (await http.post("/v1/sites/default/events", json=again)).json()
        assert "visitor" not in second  # only an issued id is returned


async def test_the_servers_clock_is_the_only_clock(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        sent = {"visitor": "v1", "event": "tick", "at": "2001-01-01T00:00:00Z"}
        answer = await http.post("/v1/sites/default/explain", json=sent, headers=ADMIN)
        assert answer.status_code == 200
        assert datetime.fromisoformat(answer.json()["at"]) == datetime.fromtimestamp(T0, UTC)


async def test_an_invitation_flows_through_agents_and_events(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path, rules=PRICING))) as http:
        agents = {"online": 2, "available": 1, "queue_length": 0, "queue_wait_seconds": 5}
        put = await http.put("/v1/sites/default/agents", json=agents, headers=ADMIN)
        assert put.json() == {"ok": True}
        event = {"visitor": "v1", "event": "page_view", "url": "/pricing"}
        decision = (await http.post("/v1/sites/default/events", json=event)).json()
        assert decision["invitation"]["rule"] == "pricing"
        stats = (await http.get("/v1/sites/default/stats", headers=ADMIN)).json()
        assert stats["rules"][0]["shown"] == 1
        forgot = await http.delete("/v1/sites/default/visitors/v1", headers=ADMIN)
        assert forgot.json() == {"ok": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "page_view", "visitor": "a b"}, "visitor"),
        ({"event": "page_view", "visitor": "v" * 201}, "visitor"),
        ({"event": "page_view", "visitor": "<script>"}, "visitor"),
        ({"event": "page_view", "scroll": 101}, "scroll"),
        ({"visitor": "v1"}, "event"),
        ({"event": "page_view", "colour": "red"}, "colour"),
        ([1, 2, 3], "body"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(
    tmp_path: Path, body: object, field: str
) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        answer = await http.post("/v1/sites/default/events", json=body)
        assert answer.status_code == 422
        assert field in answer.json()["detail"]


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b"", b"null", b'"x"']
)
async def test_malformed_bodies_never_500(tmp_path: Path, raw: bytes) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        answer = await http.post(
            "/v1/sites/default/events", content=raw, headers={"content-type": "application/json"}
        )
        assert answer.status_code in (400, 422)


async def test_unknown_site_is_404(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        answer = await http.post("/v1/sites/elsewhere/events", json={"event": "page_view"})
        assert answer.status_code == 404
        private = await http.get("/v1/sites/elsewhere/rules", headers=ADMIN)
        assert private.status_code == 404


async def test_every_private_route_refuses_without_the_token(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        schema = (await http.get("/openapi.json")).json()
        private = 0
        for path, operations in schema["paths"].items():
            url = path.replace("{site}", "default").replace("{visitor}", "v1")
            for method, operation in operations.items():
                if (method, path) in PUBLIC:
                    assert "security" not in operation
                    continue
                private += 1
                assert operation.get("security"), (method, path)
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                    answer = await http.request(method, url, headers=headers, json={})
                    assert answer.status_code == 401, (method, path, headers)
                    assert answer.headers["www-authenticate"] == "Bearer"
                # an unknown site is not revealed to a caller without the token
                other = url.replace("/default/", "/elsewhere/")
                assert (await http.request(method, other)).status_code == 401
        assert private == 10


def test_openapi_describes_the_decision(tmp_path: Path) -> None:
    app = make_app(site_folder(tmp_path))
    decision = app.openapi()["components"]["schemas"]["Decision"]
    assert {"invitation", "recheck_in", "chat", "ruleset", "degraded", "visitor"} <= set(
        decision["properties"]
    )


async def test_blocks_record_who_and_lift(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        body = {"reason": "abusive", "until": "2030-01-01T00:00:00Z"}
        headers = {**ADMIN, "X-Politely-Actor": "ann@example.com"}
        assert (await http.put("/v1/sites/default/blocks/v9", json=body, headers=headers)).json()
        listed = (await http.get("/v1/sites/default/blocks", headers=ADMIN)).json()["blocks"]
        assert [(b["visitor"], b["reason"], b["by"]) for b in listed] == [
            ("v9", "abusive", "ann@example.com")
        ]
        event = {"visitor": "v9", "event": "page_view"}
        assert (await http.post("/v1/sites/default/events", json=event)).json()["chat"] == "blocked"
        lifted = await http.delete("/v1/sites/default/blocks/v9", headers=ADMIN)
        assert lifted.json() == {"ok": True}
        assert (await http.get("/v1/sites/default/blocks", headers=ADMIN)).json()["blocks"] == []


async def test_a_rejected_upload_leaves_the_old_rules_serving(tmp_path: Path) -> None:
    folder = site_folder(tmp_path)
    async with running(make_app(folder)) as http:
        before = (await http.get("/v1/sites/default/rules", headers=ADMIN)).json()
        assert set(before["sources"]) == {"hello.rules"}
        bad = {"sources": {"hello.rules": 'rule r { when page.dwell >= 30 say "Hi" }'}}
        answer = await http.put("/v1/sites/default/rules", json=bad, headers=ADMIN)
        assert answer.status_code == 422
        diagnostic = answer.json()["diagnostics"][0]
        assert diagnostic["code"] == "type-mismatch"
        assert {"path", "line", "column", "code", "message", "help"} <= set(diagnostic)
        after = (await http.get("/v1/sites/default/rules", headers=ADMIN)).json()
        assert after == before
        decision = (await http.post("/v1/sites/default/events", json={"event": "tick"})).json()
        assert decision["ruleset"] == before["hash"]
        assert (folder / "hello.rules").read_text() == before["sources"]["hello.rules"]
        names = {"sources": {"../escape.rules": PRICING}}
        bad_name = await http.put("/v1/sites/default/rules", json=names, headers=ADMIN)
        assert bad_name.status_code == 422
        assert not (tmp_path.parent / "escape.rules").exists()


async def test_uploaded_rules_survive_a_restart(tmp_path: Path) -> None:
    folder = site_folder(tmp_path)
    upload = {"sources": {"pricing.rules": PRICING}}
    async with running(make_app(folder)) as http:
        answer = await http.put("/v1/sites/default/rules", json=upload, headers=ADMIN)
        assert answer.status_code == 200
        swapped = answer.json()["hash"]
        decision = (await http.post("/v1/sites/default/events", json={"event": "tick"})).json()
        assert decision["ruleset"] == swapped
    assert sorted(p.name for p in folder.iterdir()) == ["pricing.rules"]  # no temp files left
    async with running(make_app(folder)) as http:
        served = (await http.get("/v1/sites/default/rules", headers=ADMIN)).json()
        assert served == {"hash": swapped, "sources": {"pricing.rules": PRICING}}


async def test_reload_rereads_the_folder_with_the_same_checks(tmp_path: Path) -> None:
    folder = site_folder(tmp_path)
    async with running(make_app(folder)) as http:
        old = (await http.get("/v1/sites/default/rules", headers=ADMIN)).json()["hash"]
        (folder / "hello.rules").write_text("rule broken {", encoding="utf-8")
        refused = await http.post("/v1/sites/default/reload", headers=ADMIN)
        assert refused.status_code == 422
        assert refused.json()["diagnostics"][0]["code"] == "syntax"
        (folder / "hello.rules").write_text(PRICING, encoding="utf-8")
        done = await http.post("/v1/sites/default/reload", headers=ADMIN)
        assert done.status_code == 200
        assert done.json()["hash"] != old


async def test_a_folder_of_folders_is_one_site_per_folder(tmp_path: Path) -> None:
    site_folder(tmp_path / "shop")
    site_folder(tmp_path / "blog", rules=PRICING)
    (tmp_path / "empty").mkdir()
    async with running(make_app(tmp_path)) as http:
        ready = (await http.get("/readyz")).json()
        assert set(ready["sites"]) == {"shop", "blog"}
        assert (await http.post("/v1/sites/blog/events", json={"event": "tick"})).status_code == 200
        assert (await http.post("/v1/sites/default/events", json={})).status_code == 404


async def _chunks(size: int) -> AsyncIterator[bytes]:
    """A chunked event of about `size` bytes (padded with whitespace: props values
    are bounded, so a long one would be refused for itself, not for its size)."""
    yield b'{"event": "page_view",'
    for _ in range(size // 1024):
        yield b" " * 1024
    yield b'"props": {"x": "a"}}'


@pytest.mark.parametrize("chunked", [False, True])
async def test_bodies_over_the_limit_are_413_before_the_endpoint(
    tmp_path: Path, chunked: bool
) -> None:
    store = FlakyStore()
    async with running(make_app(site_folder(tmp_path), store=store)) as http:
        url = "/v1/sites/default/events"
        headers = {"content-type": "application/json"}
        if chunked:
            answer = await http.post(url, content=_chunks(70_000), headers=headers)
            assert "content-length" not in answer.request.headers
        else:
            body = json.dumps({"event": "page_view", "props": {"x": "a" * 70_000}})
            answer = await http.post(url, content=body, headers=headers)
        assert answer.status_code == 413
        assert store.loads == 0
        fits = await http.post(url, content=_chunks(1000), headers=headers)  # a small body
        assert fits.status_code == 200
        assert store.loads == 1


def test_serve_refuses_several_workers_with_the_memory_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site_folder(tmp_path)
    assert main(["serve", str(folder), "--store", "memory://", "--workers", "2"]) == 2
    assert "--workers > 1" in capsys.readouterr().err


def test_serve_reports_rule_errors_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site_folder(tmp_path, rules="rule broken {")
    assert main(["serve", str(folder), "--store", "memory://"]) == 1
    assert "error[syntax]" in capsys.readouterr().out


def test_serve_names_the_bad_key_of_site_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site_folder(tmp_path, toml='origins = []\n\n[rate_limits]\nper_adress = "5/minute"\n')
    assert main(["serve", str(folder), "--store", "memory://"]) == 1
    err = capsys.readouterr().err
    assert "site.toml:4: rate_limits.per_adress: unknown key" in err


async def test_an_app_serves_again_after_its_lifespan_ran_once(tmp_path: Path) -> None:
    """Tests and schemathesis start and stop one app several times: each run has its
    own store thread pool (and reopens its store), so it never degrades for that."""
    app = make_app(site_folder(tmp_path), store_url=f"sqlite:///{tmp_path}/state.db")
    for _ in range(2):
        async with running(app) as http:
            answer = await http.post("/v1/sites/default/events", json={"event": "page_view"})
            assert answer.status_code == 200
            assert "degraded" not in answer.json()


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/agents", {"online": 1, "available": 1, "queue_length": 10**9 + 1}, "queue_length"),
        ("/agents", {"online": 1, "available": 1, "queue_wait_seconds": 1e300}, "queue_wait"),
        ("/blocks/v1", {"reason": "spam", "until": "1969-01-01T00:00:00Z"}, "until"),
    ],
)
async def test_values_the_library_refuses_are_422_on_private_endpoints(
    tmp_path: Path, url: str, body: dict[str, object], field: str
) -> None:
    """Found by schemathesis: these were 500s (an EventError from the library)."""
    async with running(make_app(site_folder(tmp_path))) as http:
        answer = await http.put(f"/v1/sites/default{url}", json=body, headers=ADMIN)
        assert answer.status_code == 422
        assert field in answer.json()["detail"]


async def test_a_rules_upload_of_the_wrong_shape_is_422_as_declared(tmp_path: Path) -> None:
    """Found by schemathesis: the 422 of PUT .../rules is RulesProblem or InvalidRequest."""
    async with running(make_app(site_folder(tmp_path))) as http:
        answer = await http.put("/v1/sites/default/rules", content=b"\x00", headers=ADMIN)
        assert answer.status_code == 422
        assert "errors" in answer.json()
        schema = (await http.get("/openapi.json")).json()
        declared = schema["paths"]["/v1/sites/{site}/rules"]["put"]["responses"]["422"]
        refs = declared["content"]["application/json"]["schema"]["anyOf"]
        assert {r["$ref"].rsplit("/", 1)[1] for r in refs} == {"RulesProblem", "InvalidRequest"}


def test_serve_refuses_a_store_budget_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site_folder(tmp_path)
    assert main(["serve", str(folder), "--store", "memory://", "--store-budget", "0"]) == 2
    assert "--store-budget" in capsys.readouterr().err
