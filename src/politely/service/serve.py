"""`politely serve`: check the sites, choose the store, run uvicorn over `create_app`.

With `--workers N` (N > 1) uvicorn runs N processes, each building its app from
the environment `run` leaves (`app_from_env`). Their metrics are summed in
prometheus multiprocess mode: in `PROMETHEUS_MULTIPROC_DIR` when it is set
(its `*.db` files from an earlier run are removed at start), else in a
temporary folder made for the run and removed after it.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from fastapi import FastAPI

from politely.checker import check_sources
from politely.errors import RulesError, StoreError
from politely.service.app import TOKEN_ENV, Settings, create_app
from politely.service.config import discover_sites, read_rules
from politely.stores import open_store

PATH_ENV = "POLITELY_SERVE_PATH"
STORE_ENV = "POLITELY_SERVE_STORE"
BUDGET_ENV = "POLITELY_SERVE_STORE_BUDGET"
BARE_ENV = "POLITELY_BENCH_BARE"  # "1": the benchmark's hidden constant-decision route
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SQLITE_FILE = "politely.sqlite3"


def choose_store(path: str, url: str | None) -> str:
    """The store URL to serve with. The default is a SQLite file in PATH; when that
    file cannot be opened (a read-only folder), memory://, said on stderr."""
    if url is not None:
        open_store(url).close()  # an explicit store that cannot open is an error
        return url
    default = f"sqlite:///{Path(path).resolve() / SQLITE_FILE}"
    try:
        open_store(default).close()
    except StoreError as error:
        print(f"politely: {default} unavailable ({error}); using memory://", file=sys.stderr)
        return "memory://"
    return default


def run(
    path: str,
    store: str | None,
    host: str,
    port: int,
    workers: int,
    *,
    store_budget: float = 0.1,
) -> int:
    import uvicorn

    for place in discover_sites(path).values():  # ConfigError names file, key and line
        result = check_sources(read_rules(place.folder))
        if not result.ok:
            raise RulesError(result.diagnostics, result.sources)
    url = choose_store(path, store)
    if not 0 < store_budget <= 60:
        print("politely: --store-budget is seconds, above 0 and at most 60", file=sys.stderr)
        return 2
    if workers > 1 and url.startswith("memory:"):
        print(
            "politely: --workers > 1 needs a shared store; memory:// keeps state per "
            "process, so each worker would decide alone (use --store sqlite:///... or redis://)",
            file=sys.stderr,
        )
        return 2
    print(f"politely: store {url}", file=sys.stderr)
    if not os.environ.get(TOKEN_ENV):
        os.environ[TOKEN_ENV] = secrets.token_urlsafe(32)  # workers inherit it
        print(
            f"politely: admin token (generated, shown once): {os.environ[TOKEN_ENV]}",
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ[PATH_ENV] = str(Path(path).resolve())
    os.environ[STORE_ENV] = url
    os.environ[BUDGET_ENV] = repr(store_budget)
    made: str | None = None
    if workers > 1:
        made = _multiprocess_metrics()
    app: str | FastAPI = "politely.service.serve:app_from_env"
    if workers == 1:
        app = app_from_env()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            workers=workers,
            factory=workers > 1,
            access_log=False,
            log_config=None,
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


def _multiprocess_metrics() -> str | None:
    """Prepare prometheus multiprocess mode for the workers; the folder made, if any.

    Set before any worker imports prometheus_client (the workers are spawned, so
    they read it from the environment at import)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # values of an earlier run would add up
            stale.unlink(missing_ok=True)
        print(f"politely: metrics of the workers summed in {folder}", file=sys.stderr)
        return None
    made = tempfile.mkdtemp(prefix="politely-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def app_from_env() -> FastAPI:
    """The app a uvicorn worker builds (the settings come from `run` via the environment)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings = Settings(
        Path(os.environ[PATH_ENV]),
        store_url=os.environ[STORE_ENV],
        store_budget=float(os.environ.get(BUDGET_ENV, "0.1")),
        bare_route=os.environ.get(BARE_ENV) == "1",
    )
    app = create_app(settings)
    # Everything loaded so far (the framework, the sites' compiled rules: a
    # large site is a million objects) lives as long as the process: never walk
    # it again, so no collection pauses a request for it. The process is ours.
    gc.collect()
    gc.freeze()
    return app
