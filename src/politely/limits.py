"""The bounds of the language: whatever `politely check` accepts, the engine runs.

Each bound is far beyond what a site needs and well inside what the engine
handles: dates stay within the calendar, numbers stay exact, generated Python
stays within the interpreter's nesting limits, and checking a file takes time
in proportion to its size. The checker and the parser report a value past a
bound as an error at its place, with the bound in the help text;
docs/language.md lists them.

    >>> MAX_DURATION // 86400, MAX_DEPTH
    (3650, 32)
"""

from __future__ import annotations

from politely.durations import DAY

# The longest duration anywhere (conditions, caps, cooldowns, quiet periods,
# the session timeout): ten years of 365 days, far enough for any cap and
# close enough that "now plus a duration" is always a date.
MAX_DURATION = 3650 * DAY

# Digits before the decimal point of a number or percent: 999,999,999,999,999
# at most, so every whole number is exact as a float too.
MAX_DIGITS = 15

# `not`, and `and`/`or` groups inside one another, counted with defines
# written out: the generated Python stays far from the interpreter's limit
# of 200 nested parentheses.
MAX_DEPTH = 32
DEPTH_HELP = (
    f"conditions nest at most {MAX_DEPTH} levels: each `not`, and each `and` or `or` "
    "inside another, is one level"
)

# Defines using defines using defines...: how long such a chain may be.
MAX_DEFINE_CHAIN = 32

# Tests in one condition with its defines written out (a define used twice
# counts twice): keeps the generated code of a rule small.
MAX_TESTS = 1000

# Characters in one rules file; a bigger site splits its rules over files.
MAX_FILE_CHARS = 1_000_000
FILE_HELP = "split the rules over several .rules files in the same folder"

# Syntax errors reported per file; the rest are counted ("and 12 more").
MAX_SYNTAX_ERRORS = 50
