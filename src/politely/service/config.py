"""What `politely serve` reads: the sites of a folder and each site's `site.toml`.

A folder holding `*.rules` files is one site named `default`; a folder holding
folders is one site per folder that holds `*.rules` files, named after it.

    >>> parse_site_toml('origins = ["https://shop.example"]\\nagent_recheck = 15\\n').agent_recheck
    15
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from limits import RateLimitItem, parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from politely.durations import parse_duration
from politely.engine import DEFAULT_RETENTION
from politely.errors import PolitelyError

SITE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
RULES_FILE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.rules$")
DEFAULT_SITE = "default"


class ConfigError(PolitelyError):
    """A site folder or `site.toml` the service cannot serve; the message says where."""


class RateLimits(BaseModel):
    """Limits of the public events endpoint, in the `limits` notation: `120/minute`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_address: str = "600/minute"  # offices and mobile carriers share addresses
    per_visitor: str = "120/minute"

    @field_validator("per_address", "per_visitor")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a rate such as 120/minute") from error
        return value

    def items(self) -> tuple[RateLimitItem, RateLimitItem]:
        return _parsed(self.per_address), _parsed(self.per_visitor)


@lru_cache(maxsize=256)
def _parsed(rate: str) -> RateLimitItem:
    """A rate parsed once, not on every request (parsing costs more than counting)."""
    return parse(rate)


class SiteConfig(BaseModel):
    """A site's `site.toml`; every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origins: tuple[Annotated[str, Field(pattern=r"^https?://[^/\s]+$")], ...] = ()
    retention: float = DEFAULT_RETENTION  # seconds, or a duration such as "30d"
    agent_recheck: Annotated[int, Field(ge=1, le=3600)] = 30
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            seconds = parse_duration(value)
            if seconds is None:
                raise ValueError(f"{value!r} is not a duration such as 30d")
            return seconds
        return value

    @field_validator("retention")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("retention must be positive")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as error:
                raise ValueError(f"{item!r} is not an IP address or network") from error
        return value

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.trusted_proxies)


@lru_cache(maxsize=256)
def _networks(items: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def parse_site_toml(text: str, path: str = "site.toml") -> SiteConfig:
    """Validate a `site.toml`; raises ConfigError naming the file, key and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from error
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            keys = [str(part) for part in item["loc"] if isinstance(part, str)]
            key = ".".join(keys) or "site.toml"
            line = _line_of(text, keys)
            where = f"{path}:{line}" if line else path
            message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append(f"{where}: {key}: {message}")
        raise ConfigError("\n".join(problems)) from error


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line where a (possibly nested) key is written, for error messages."""
    if not keys:
        return None
    table: list[str] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", line)
        if header:
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            if table == keys:
                return number
            continue
        match = re.match(r'^"?([A-Za-z0-9_.-]+?)"?\s*=', line)
        if match and [*table, *match.group(1).split(".")] == keys:
            return number
    return _line_of(text, keys[:-1]) if len(keys) > 1 else None


@dataclass
class SiteFolder:
    name: str
    folder: Path
    config: SiteConfig = field(default_factory=SiteConfig)


def discover_sites(path: str | Path) -> dict[str, SiteFolder]:
    """The sites under PATH, by name; raises ConfigError when there is none."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    if any(root.glob("*.rules")):
        folders = {DEFAULT_SITE: root}
    else:
        folders = {
            child.name: child
            for child in sorted(root.iterdir())
            if child.is_dir() and any(child.glob("*.rules"))
        }
    if not folders:
        raise ConfigError(f"{root}: no *.rules files, and no folder holding any")
    sites = {}
    for name, folder in folders.items():
        if not SITE_NAME.match(name):
            raise ConfigError(f"{folder}: a site name uses only A-Z a-z 0-9 _ . - (1-100)")
        sites[name] = SiteFolder(name, folder, read_site_config(folder))
    return sites


def read_site_config(folder: Path) -> SiteConfig:
    file = folder / "site.toml"
    if not file.is_file():
        return SiteConfig()
    return parse_site_toml(file.read_text(encoding="utf-8"), str(file))


def read_rules(folder: Path) -> dict[str, str]:
    """The folder's `*.rules` files by file name (the names the API uses)."""
    return {
        file.name: file.read_bytes().decode("utf-8", errors="replace")
        for file in sorted(folder.glob("*.rules"), key=lambda p: p.name)
    }
