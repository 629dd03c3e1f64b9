"""`politely serve`: check the sites, choose the store, run uvicorn over `create_app`."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

from fastapi import FastAPI

from politely.checker import check_sources
from politely.errors import RulesError, StoreError
from politely.service.app import TOKEN_ENV, Settings, create_app
from politely.service.config import discover_sites, read_rules
from politely.stores import open_store

PATH_ENV = "POLITELY_SERVE_PATH"
STORE_ENV = "POLITELY_SERVE_STORE"
SQLITE_FILE = "politely.sqlite3"


def choose_store(path: str, url: str | None) -> str:
    """The store URL to serve with. The default is a SQLite file in PATH; while this
    build has no SQLite store, the default falls back to memory:// (said on stderr)."""
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


def run(path: str, store: str | None, host: str, port: int, workers: int) -> int:
    import uvicorn

    for place in discover_sites(path).values():  # ConfigError names file, key and line
        result = check_sources(read_rules(place.folder))
        if not result.ok:
            raise RulesError(result.diagnostics, result.sources)
    url = choose_store(path, store)
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
    app: str | FastAPI = "politely.service.serve:app_from_env"
    if workers == 1:
        app = app_from_env()
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=workers > 1,
        access_log=False,
        log_config=None,
    )
    return 0


def app_from_env() -> FastAPI:
    """The app a uvicorn worker builds (the settings come from `run` via the environment)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return create_app(Settings(Path(os.environ[PATH_ENV]), store_url=os.environ[STORE_ENV]))
