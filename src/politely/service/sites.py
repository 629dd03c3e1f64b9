"""A served site: its folder, its `site.toml`, and one reference to its running Engine.

A rules swap builds the new Engine completely, then replaces the one
reference: a request sees the old rules or the new ones, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from politely.checker import CheckResult, check_sources
from politely.compiler import compile_rules
from politely.diagnostics import Diagnostic
from politely.engine import Clock, Engine
from politely.errors import RulesError
from politely.service.config import (
    RULES_FILE,
    SiteConfig,
    SiteFolder,
    read_rules,
    read_site_config,
)
from politely.stores import Store


class Site:
    def __init__(self, place: SiteFolder, store: Store, clock: Clock | None) -> None:
        self.name = place.name
        self.folder = place.folder
        self.config: SiteConfig = place.config
        self.store = store
        self.clock = clock
        sources = read_rules(self.folder)
        self.engine = self.build(sources)[0]
        self.sources = sources

    def build(
        self, sources: Mapping[str, str], config: SiteConfig | None = None
    ) -> tuple[Engine, CheckResult]:
        """A new Engine for these sources; raises RulesError listing every diagnostic."""
        bad = [name for name in sources if not RULES_FILE.match(name)]
        if bad:
            raise RulesError([_bad_name(name) for name in bad], dict(sources))
        if not sources:
            raise RulesError([_bad_name("")], {})
        result = check_sources(sources)
        settings = config or self.config
        engine = Engine(
            compile_rules(result),
            store=self.store,
            clock=self.clock,
            trust_event_time=False,
            site=self.name,
            retention=settings.retention,
            agent_recheck=settings.agent_recheck,
        )
        return engine, result

    def swap(
        self, sources: Mapping[str, str], *, write: bool, config: SiteConfig | None = None
    ) -> CheckResult:
        """Check and compile, then serve the new rules (and save them when `write`)."""
        engine, result = self.build(sources, config)
        if write:
            write_rules(self.folder, sources)
        if config is not None:
            self.config = config
        self.engine = engine  # the one reference: atomic for every request after this line
        self.sources = dict(sources)
        return result

    def reload(self) -> CheckResult:
        """Read the folder again (rules and site.toml) with the same checks."""
        return self.swap(read_rules(self.folder), write=False, config=read_site_config(self.folder))


def _bad_name(name: str) -> Diagnostic:
    message = (
        f"{name!r} is not a rules file name: letters, digits, _ . - and the .rules suffix"
        if name
        else "a site needs at least one .rules file"
    )
    return Diagnostic(
        code="bad-file-name",
        message=message,
        path=name or "<site>",
        line=1,
        column=1,
        end_line=1,
        end_column=1,
    )


def write_rules(folder: Path, sources: Mapping[str, str]) -> None:
    """Write each file atomically (a temporary file, then os.replace), then remove
    the `.rules` files that are no longer part of the site."""
    for name, text in sources.items():
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    for old in folder.glob("*.rules"):
        if old.name not in sources:
            old.unlink(missing_ok=True)
