"""Syntax errors in a marketer's words, never Lark's terminal names.

`syntax_diagnostic` turns Lark's UnexpectedToken/UnexpectedCharacters into a
diagnostic that says what was expected where ("expected `say` after the
condition", "durations need a unit: write 30s"), using the parser's state to
know which rule and clause the writer was in. Common mistakes (`24 hours`,
`=`, `AND`, curly quotes...) get their own words first (`syntax_hints`).
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from functools import cache

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from politely import nodes as n
from politely.clauses import CLAUSES
from politely.diagnostics import Diagnostic, source_lines_of, token_span
from politely.parser import terminals
from politely.syntax_hints import ErrorSite, recognise

_CLAUSE_KEYWORDS = {spec.token: spec.keyword for spec in CLAUSES}
_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted text such as "Hi"',
    "NUMBER": "a number",
    "DURATION": "a duration such as 30s",
    "PERCENT": "a percentage such as 50%",
    "TIME": "a time such as 09:00",
    "DAY": "days such as mon-fri or weekdays",
    "COMPARATOR": "a comparison such as >= or ==",
    "INVITATIONS": "`invitations`",
    "SITEWIDE": "`sitewide`",
    "QUIET_AFTER": "`dismiss` or `chat`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "EQUAL": "`=`",
    "MINUS": "`-`",
    "$END": "the end of the file",
}
_ITEM_KEYWORDS = ("rule", "define", "policy")
_CLAUSE_WORDS = frozenset(w.split()[0] for w in _CLAUSE_KEYWORDS.values()) - {"session"}
_VALUE_TERMINALS = {"NUMBER", "DURATION", "PERCENT", "STRING", "TRUE", "FALSE"}
# Accepted together only where a clause may start (`session` alone also follows `per`).
_CLAUSE_START = frozenset({"ON", "WHEN", "SAY"})
# A keyword pattern in the grammar: `"rule"`, or a group of words `(?:dismiss|chat)`.
_KEYWORD_GROUP = re.compile(r"\((?:\?:)?([a-z|]+)\)")


@cache
def keyword_words() -> dict[str, tuple[str, ...]]:
    """Each keyword terminal's words, read from the grammar (INVITATIONS: two words)."""
    words: dict[str, tuple[str, ...]] = {}
    for terminal in terminals():
        value = terminal.pattern.value
        if terminal.pattern.type == "str" and value.isalpha():
            words[terminal.name] = (value,)
        elif terminal.pattern.type == "re" and (group := _KEYWORD_GROUP.match(value)):
            words[terminal.name] = tuple(group[1].split("|"))
    return words


def _at_clause_start(accepts: set[str] | frozenset[str]) -> bool:
    return accepts >= _CLAUSE_START


def fitting_words(accepts: set[str] | frozenset[str]) -> frozenset[str]:
    """The keywords that can stand where the parser stopped (`and`, `when`, `dismiss`)."""
    table = keyword_words()
    return frozenset(word for terminal in accepts for word in table.get(terminal, ()))


def _did_you_mean(word: str, accepts: set[str]) -> list[str]:
    """A keyword close to `word` that fits where it stands, as a hint."""
    guess = get_close_matches(word, sorted(fitting_words(accepts)), n=1)
    return [f"did you mean `{guess[0]}`?"] if guess else []


def _word(terminal: str) -> str:
    if terminal in _WORDS:
        return _WORDS[terminal]
    return f"`{terminal.lower()}`"


def _found(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "STRING":
        return f"the text {token}"
    return f"`{token}`"


def _join(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _context(error: UnexpectedInput) -> tuple[str | None, str | None]:
    """(the clause keyword being written, `rule NAME` / `policy` / `define NAME`)."""
    parser = getattr(error, "interactive_parser", None)
    stack = parser.parser_state.value_stack if parser is not None else []
    tokens: list[Token] = []
    for value in stack:
        if isinstance(value, Token):
            tokens.append(value)
        elif isinstance(value, Tree):
            tokens.extend(t for t in value.scan_values(lambda v: isinstance(v, Token)))
    clause = block = None
    for i, token in enumerate(tokens):
        if token.type in ("RULE", "DEFINE") and i + 1 < len(tokens):
            block, clause = f"{token.lower()} `{tokens[i + 1]}`", None
        elif token.type == "POLICY":
            block, clause = "the policy", None
        elif token.type in _CLAUSE_KEYWORDS:
            clause = _CLAUSE_KEYWORDS[token.type]
    return clause, block


def _syntax_message(error: UnexpectedToken) -> tuple[str, list[str]]:
    token = error.token
    accepts = set(error.accepts or error.expected)
    clause, block = _context(error)
    where = f" in {block}" if block else ""
    after_condition = {"AND", "OR"} <= accepts
    if accepts == {"WHEN"} and clause in ("only when", "never when"):
        word = clause.split()[0]
        return f"expected `when` after `{word}`", [f"write: {word} when <condition>"]
    if token.type == "NUMBER" and "DURATION" in accepts:
        return f"durations need a unit: write {token}s", [
            "units are s, m, h, d and w: 30s, 10m, 1h30m, 7d"
        ]
    if after_condition and token.type == "STRING" and clause == "when":
        return "expected `say` after the condition", ['write say "..." before the message']
    if "COMPARATOR" in accepts and token.type in _VALUE_TERMINALS:
        return (
            f"expected a comparison such as >= or == before {_found(token)}",
            ["compare with == != < <= > >=, or use in [...], matches, contains"],
        )
    if token.type in ("RULE", "DEFINE", "POLICY") and block and "RBRACE" in accepts:
        return f"{block} is not closed: is a `}}` missing before this `{token}`?", []
    if token.type == "$END":
        if block is not None and "RBRACE" in accepts:
            return f"the file ends inside {block}: is a `}}` missing?", []
        return f"the file ends too early{where}: expected {_join([_word(t) for t in accepts])}", []
    hints = _did_you_mean(str(token), accepts) if token.type == "NAME" else []
    if _at_clause_start(accepts) and token.type == "NAME" and not after_condition:
        return f"`{token}` does not start a clause{where}", [
            *hints,
            "clauses are on, when, say, priority, cooldown, at most, during"
            + (" (policy: at most, quiet, only when, never when, during, session timeout)"),
        ]
    if accepts <= {"RULE", "DEFINE", "POLICY", "$END"}:
        guess = get_close_matches(str(token), _ITEM_KEYWORDS)
        return f"expected `rule`, `define` or `policy`, found {_found(token)}", (
            [f"did you mean `{guess[0]}`?"] if guess else []
        )
    if after_condition:
        if block is None or block.startswith("define"):
            expected = "`and`, `or`, or the next `rule`, `define` or `policy`"
        else:
            expected = "`and`, `or`, the next clause or `}`"
        return f"expected {expected} after the condition, found {_found(token)}", hints
    if "COMPARATOR" in accepts and token.type != "COMPARATOR":
        return (
            f"expected a comparison after the field, found {_found(token)}",
            [*hints, "compare with == != < <= > >=, or use in [...], matches, contains"],
        )
    if token.type == "COMPARATOR" and "COMPARATOR" not in accepts:
        return f"unexpected `{token}`{where}: a comparison needs a field on its left", []
    clause_start = _at_clause_start(accepts)
    words = [_word(t) for t in sorted(accepts) if not (clause_start and t in _CLAUSE_KEYWORDS)]
    if clause_start:
        words.insert(0, "a clause")
    return f"expected {_join(words)}{where}, found {_found(token)}", hints


def glued_word_diagnostic(keyword: Token, word: str, path: str) -> Diagnostic:
    """A keyword read at the start of a longer word (`dismissal`): name the word."""
    start = token_span(keyword)
    return _glued(start.line, start.column, start.start_pos, keyword.value, word, path)


def _glued(line: int, column: int, pos: int, keyword: str, word: str, path: str) -> Diagnostic:
    span = n.Span(line, column, line, column + len(word), pos, pos + len(word))
    return Diagnostic.at(
        span,
        path,
        "syntax",
        f"`{word}` is not a word politely knows here",
        hints=[f"did you mean `{keyword}`?"],
    )


def _glued_in_text(text: str, token: Token, path: str) -> Diagnostic | None:
    """The error token continues a keyword (`dismiss` + `al`): report the whole word."""
    start = token.start_pos or 0
    if token.type == "$END" or start == 0 or not re.match(r"\w", text[start - 1 : start + 1]):
        return None
    if not re.match(r"\w", text[start]):
        return None
    word_start = start
    while word_start > 0 and re.match(r"\w", text[word_start - 1]):
        word_start -= 1
    end = re.compile(r"\w*").match(text, start).end()  # type: ignore[union-attr]
    keyword = text[word_start:start]
    if not keyword.isalpha():
        return None
    line = text.count("\n", 0, word_start) + 1
    column = word_start - (text.rfind("\n", 0, word_start) + 1) + 1
    return _glued(line, column, word_start, keyword, text[word_start:end], path)


def _dangling(text: str, token: Token) -> str | None:
    """The clause keyword just before the error, read as a name after `and`/`or`/`not`."""
    before = re.search(r"\b(and|or|not)\s+([a-z_]+)\s*$", text[: token.start_pos or 0])
    if before is not None and before.group(2) in _CLAUSE_WORDS:
        return (
            f"`{before.group(1)}` needs a condition after it, but `{before.group(2)}` "
            "starts a new clause"
        )
    return None


def syntax_diagnostic(error: UnexpectedInput, text: str, path: str) -> Diagnostic:
    """The diagnostic for a syntax error: a known mistake's own words, else what was expected."""
    if isinstance(error, UnexpectedToken):
        glued = _glued_in_text(text, error.token, path)
        if glued is not None:
            return glued
    hint = recognise(_site(error, text))
    if hint is not None:
        span = _span_between(text, hint.start, hint.end)
        return Diagnostic.at(span, path, "syntax", hint.message, hints=hint.hints)
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, text, path)
    if isinstance(error, UnexpectedToken):
        return _unexpected_token(error, text, path)
    line, column = error.line or 1, error.column or 1
    return Diagnostic.at(n.Span(line, column, line, column + 1), path, "syntax", str(error))


def _site(error: UnexpectedInput, text: str) -> ErrorSite:
    accepts = frozenset(_accepts(error))
    clause, _ = _context(error)
    if isinstance(error, UnexpectedToken):
        token: str | None = error.token.type
        at = len(text) if token == "$END" else error.token.start_pos or 0
    else:
        token, at = None, error.pos_in_stream or 0
    return ErrorSite(text, at, accepts, fitting_words(accepts), clause, token)


def _accepts(error: UnexpectedInput) -> set[str]:
    """The terminals the parser would have taken where it stopped."""
    if isinstance(error, UnexpectedToken):
        return set(error.accepts or error.expected)
    parser = getattr(error, "interactive_parser", None)
    if parser is not None:
        return set(parser.accepts())
    return set(getattr(error, "allowed", None) or ())


def _span_between(text: str, start: int, end: int) -> n.Span:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    end_line = line + text.count("\n", start, end)
    end_column = end - (text.rfind("\n", 0, end) + 1) + 1
    return n.Span(line, column, end_line, end_column, start, end)


def _unexpected_character(error: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    line, column = error.line or 1, error.column or 1
    position = error.pos_in_stream or 0
    char = text[position] if position < len(text) else ""
    span = n.Span(line, column, line, column + 1)
    if char == '"':
        end = len(source_lines_of(text)[line - 1]) + 1
        return Diagnostic.at(
            n.Span(line, column, line, end),
            path,
            "syntax",
            'this text never ends: add the closing `"` on the same line',
        )
    if char == "\t":
        char = "\\t"
    return Diagnostic.at(
        span,
        path,
        "syntax",
        f"unexpected character `{char}`",
        hints=["names use lowercase letters, digits and _; texts go in double quotes"],
    )


def _unexpected_token(error: UnexpectedToken, text: str, path: str) -> Diagnostic:
    token = error.token
    message, hints = _syntax_message(error)
    dangling = _dangling(text, token)
    if dangling is not None:
        message, hints = dangling, ["finish the condition, or remove the dangling word"]
    if token.type == "$END":
        lines = source_lines_of(text)
        while len(lines) > 1 and not lines[-1].strip():  # point after the last text
            lines.pop()
        line, column = len(lines), len(lines[-1].rstrip()) + 1
        span = n.Span(line, column, line, column + 1)
    else:
        span = token_span(token)
    return Diagnostic.at(span, path, "syntax", message, hints=hints)
