"""Diagnostics are data: a code, a place and words; one function renders them.

The CLI prints them, the HTTP service returns them as JSON, editors read the
JSON. Every diagnostic points at a span in a file (1-based line and column, end
exclusive) so the renderer can underline it:

    pricing.rules:3:10: error[type-mismatch]: `page.dwell` is a duration; write 30s, not 30
      3 |     when page.dwell >= 30
        |          ^^^^^^^^^^^^^^^^
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from politely.nodes import Span

Severity = Literal["error", "warning"]


class Diagnostic(msgspec.Struct, frozen=True):
    code: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: Severity = "error"
    hints: tuple[str, ...] = ()

    @classmethod
    def at(
        cls,
        span: Span,
        path: str,
        code: str,
        message: str,
        *,
        severity: Severity = "error",
        hints: Iterable[str] = (),
    ) -> Diagnostic:
        return cls(
            code=code,
            message=message,
            path=path,
            line=span.line,
            column=span.column,
            end_line=span.end_line,
            end_column=span.end_column,
            severity=severity,
            hints=tuple(hints),
        )

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        data = msgspec.structs.asdict(self)
        data["hints"] = list(self.hints)
        return data


def token_span(token: Any) -> Span:
    """The span of a Lark token (1-based, end exclusive)."""
    return tokens_span(token, token)


def tokens_span(first: Any, last: Any) -> Span:
    """The span from the token `first` to the token `last`, both included."""
    return Span(
        first.line or 1,
        first.column or 1,
        last.end_line or last.line or 1,
        last.end_column or last.column or 1,
        first.start_pos or 0,
        last.end_pos or 0,
    )


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """`path:line:col: severity[code]: message`, the source line and a caret run."""
    d = diagnostic
    head = f"{d.path}:{d.line}:{d.column}: {d.severity}[{d.code}]: {d.message}"
    lines = [head]
    source_lines = source_lines_of(source) if source is not None else []
    if 1 <= d.line <= len(source_lines):
        text = source_lines[d.line - 1].expandtabs(1)
        gutter = str(d.line)
        end = d.end_column if d.end_line == d.line else len(text) + 1
        width = max(1, min(end, len(text) + 1) - d.column)
        lines.append(f"  {gutter} | {text}")
        lines.append(f"  {' ' * len(gutter)} | {' ' * (d.column - 1)}{'^' * width}")
    lines.extend(f"  = help: {hint}" for hint in d.hints)
    return "\n".join(lines)


def source_lines_of(text: str) -> list[str]:
    """A file's lines as the parser counts them: split at \\n only.

    `str.splitlines` also splits at form feeds, lone carriage returns and
    Unicode line separators, which would put carets on the wrong line.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    return "\n\n".join(render(d, sources.get(d.path)) for d in diagnostics)


def summary(diagnostics: Iterable[Diagnostic]) -> str:
    items = list(diagnostics)
    errors = sum(d.is_error for d in items)
    warnings = len(items) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts) if parts else "no problems"
