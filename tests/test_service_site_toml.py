"""What `site.toml` changes in decisions, seen through the HTTP API: agent_recheck, retention."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from servicekit import ADMIN, Clock, make_app, running, site_folder

pytestmark = pytest.mark.anyio
GATED = """\
policy {
    only when agents.available > 0
}

rule pricing {
    when page.path matches "/pricing*"
    say "Comparing plans?"
}
"""
WELCOME_BACK = """\
rule back {
    when visitor.returning and agents.available > 0
    say "Welcome back!"
}
"""
NO_AGENT_FREE = {"online": 2, "available": 0}


@pytest.mark.parametrize(("toml", "expected"), [("agent_recheck = 10\n", 10), (None, 30)])
async def test_agent_recheck_is_the_recheck_while_only_agents_hold_back(
    tmp_path: Path, toml: str | None, expected: int
) -> None:
    async with running(make_app(site_folder(tmp_path, toml, rules=GATED))) as http:
        await http.put("/v1/sites/default/agents", json=NO_AGENT_FREE, headers=ADMIN)
        event = {"visitor": "v1", "event": "page_view", "url": "/pricing"}
        decision = (await http.post("/v1/sites/default/events", json=event)).json()
        assert decision["invitation"] is None
        assert decision["recheck_in"] == expected
        explained = await http.post("/v1/sites/default/explain", json=event, headers=ADMIN)
        assert explained.json()["decision"]["recheck_in"] == expected


async def test_a_reload_applies_a_new_agent_recheck(tmp_path: Path) -> None:
    folder = site_folder(tmp_path, "agent_recheck = 10\n", rules=GATED)
    async with running(make_app(folder)) as http:
        await http.put("/v1/sites/default/agents", json=NO_AGENT_FREE, headers=ADMIN)
        event = {"visitor": "v1", "event": "page_view", "url": "/pricing"}
        assert (await http.post("/v1/sites/default/events", json=event)).json()["recheck_in"] == 10
        (folder / "site.toml").write_text("agent_recheck = 45\n", encoding="utf-8")
        assert (await http.post("/v1/sites/default/reload", headers=ADMIN)).status_code == 200
        assert (await http.post("/v1/sites/default/events", json=event)).json()["recheck_in"] == 45


async def test_retention_forgets_idle_visitors_after_the_sites_setting(tmp_path: Path) -> None:
    """A visitor back after two days: a site keeping visitors one day sees a new
    visitor, a site with the default (30 days) a returning one. A retention below
    what the rules need (here a day: the default quiet period after a dismissal)
    is raised to it: two hours after, a site set to one hour still remembers."""
    site_folder(tmp_path / "hour", 'retention = "1h"\n', rules=WELCOME_BACK)
    site_folder(tmp_path / "day", "retention = 86400\n", rules=WELCOME_BACK)
    site_folder(tmp_path / "default", rules=WELCOME_BACK)
    clock = Clock()

    async def visit(http: httpx.AsyncClient, site: str, visitor: str) -> str | None:
        agents = {"online": 1, "available": 1}
        await http.put(f"/v1/sites/{site}/agents", json=agents, headers=ADMIN)
        event = {"visitor": visitor, "event": "page_view", "url": "/"}
        invitation = (await http.post(f"/v1/sites/{site}/events", json=event)).json()["invitation"]
        return None if invitation is None else str(invitation["rule"])

    async with running(make_app(tmp_path, clock=clock)) as http:
        for site in ("hour", "day", "default"):
            assert await visit(http, site, "v1") is None  # a first visit
        clock.now += 2 * 3600
        assert await visit(http, "hour", "v1") == "back"
        clock.now += 2 * 86400
        assert await visit(http, "day", "v1") is None
        assert await visit(http, "default", "v1") == "back"
