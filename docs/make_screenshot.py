"""Make docs/demo.png: the demo shop with an invitation showing.

    python docs/make_screenshot.py [OUTPUT.png]

It serves the example shop's rules (`rules/`) in this process, on a free loopback
port, with a clock moved to a Tuesday at 10:00 in Berlin (inside the policy's
opening hours), types the admin token into the demo's back office, switches an
agent on, and visits home, the lamp and pricing like a new visitor. The
invitation comes after 30 seconds on pricing, through the tick its decision
asked for. The browser is Debian's Chromium (`apt-get install chromium`) driven
by Playwright for Python, as in the browser tests; about 40 seconds in all.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from politely.service import Settings, create_app

REPO = Path(__file__).resolve().parent.parent
TOKEN = "demo-screenshot-token"
TUESDAY_10_BERLIN = datetime(2026, 1, 6, 9, 0, 30, tzinfo=UTC).timestamp()
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(output: Path) -> None:
    offset = TUESDAY_10_BERLIN - time.time()
    settings = Settings(REPO / "rules", store_url="memory://", admin_token=TOKEN)
    app = create_app(settings, clock=lambda: time.time() + offset)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}/demo"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(f"{base}/")
            office = page.get_by_role("complementary", name="Back office")
            office.get_by_label("Admin token").fill(TOKEN)
            office.get_by_label("An agent is available").check()
            office.get_by_text("Sam is available").wait_for()
            page.get_by_role("navigation").get_by_role("link", name="Desk lamp").click()
            page.wait_for_timeout(1500)
            page.get_by_role("navigation").get_by_role("link", name="Pricing").click()
            bubble = page.get_by_role("dialog", name="Chat invitation")
            bubble.wait_for(timeout=90_000)
            page.wait_for_timeout(600)  # the slide-in animation
            page.screenshot(path=str(output))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "demo.png")
