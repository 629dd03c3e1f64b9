"""`politely`: check, format, simulate and explain rules from the command line.

Exit codes: 0 success (warnings allowed), 1 a problem in the input (rule
errors, files that need formatting, a bad traffic line), 2 a usage error
(unknown option, a missing file, a folder where a file was expected, a file
that cannot be read). No input makes it print a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from politely.explain import Explanation
    from politely.models import AgentsUpdate
    from politely.ruleset import RuleSet
    from politely.simulate import Simulation, Step, TrafficFile
    from politely.state import Snapshot

from politely.checker import check_path, source_paths
from politely.diagnostics import render, summary
from politely.errors import PolitelyError, RulesError

USAGE_ERROR = 2


class _UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors; keep that
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


COMMANDS = ("check", "fmt", "simulate", "explain", "serve")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `command`, only that sub-command is built.

    A process runs one command, and building every sub-command's parser took a
    few milliseconds of `politely check`'s start-up. Messages read the same
    either way.
    """

    def wanted(name: str) -> bool:
        return command is None or command == name

    parser = _Parser(
        prog="politely",
        description="Proactive chat invitations that never pester visitors.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        # Built alone, a command's usage line still lists them all, as argparse would.
        metavar=None if command is None else "{" + ",".join(COMMANDS) + "}",
    )

    if wanted("check"):
        check = commands.add_parser("check", help="check rules for errors and pestering")
        check.add_argument("path", nargs="+", help="a .rules file or a site folder")
        check.add_argument("--format", choices=("text", "json"), default="text")

    if wanted("fmt"):
        fmt = commands.add_parser("fmt", help="write rules in the canonical layout")
        fmt.add_argument("path", nargs="+", help="a .rules file or a folder")
        fmt.add_argument("--check", action="store_true", help="list files that would change")
        fmt.add_argument(
            "--diff", action="store_true", help="print a unified diff of what would change"
        )

    if wanted("simulate"):
        simulate = commands.add_parser("simulate", help="replay traffic: what would fire")
        simulate.add_argument("path", help="a .rules file or a site folder")
        simulate.add_argument("traffic", help="a JSON Lines traffic file")
        simulate.add_argument("--json", action="store_true", help="one decision a line")
        _replay_options(simulate)

    if wanted("explain"):
        explain = commands.add_parser("explain", help="why each rule did or did not fire")
        explain.add_argument("path", help="a .rules file or a site folder")
        explain.add_argument("traffic", help="a JSON Lines traffic file")
        explain.add_argument("--visitor", required=True, help="the visitor to explain")
        _replay_options(explain)

    if wanted("serve"):
        serve = commands.add_parser("serve", help="run the HTTP service")
        serve.add_argument("path", help="a site folder, or a folder of site folders")
        serve.add_argument("--store", help="a store URL (default: a SQLite file in PATH)")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=8000)
        serve.add_argument("--workers", type=int, default=1)
        serve.add_argument(
            "--store-budget",
            type=float,
            default=0.1,
            metavar="SECONDS",
            help="how long an event waits for the store before a degraded answer (default 0.1)",
        )
    return parser


def _replay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agents",
        metavar="SPEC",
        help="a constant agent status, e.g. online=3,available=1,queue_length=0,queue_wait=20",
    )
    parser.add_argument(
        "--ticks",
        action="store_true",
        help="also send the ticks each decision asks for, as the website snippet does",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    asked = argv[0] if argv and argv[0] in COMMANDS else None  # else: help, or a mistake
    args = build_parser(asked).parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "check":
            return _check(args.path, args.format, out)
        if args.command == "fmt":
            return _fmt(args.path, args.check, out, diff=args.diff)
        if args.command == "simulate":
            return _simulate(args, out)
        if args.command == "explain":
            return _explain(args, out)
        if args.command == "serve":
            try:  # lazily: `politely check` stays fast
                from politely.service.serve import run
            except ImportError as error:
                raise _UsageError(
                    f"serve needs the service extra ({error.name} is missing): "
                    "pip install 'politely[serve]'"
                ) from error
            return run(
                args.path,
                args.store,
                args.host,
                args.port,
                args.workers,
                store_budget=args.store_budget,
            )
    except FileNotFoundError as error:
        # open() names the file apart from the message; read_sources puts both in args[0]
        message = f"{error.filename}: {error.strerror}" if error.filename else error.args[0]
        print(f"politely: {message}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # `politely explain ... | head` closed our output: fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except IsADirectoryError as error:
        print(f"politely: {error.filename}: is a folder, not a file", file=sys.stderr)
        return USAGE_ERROR
    except OSError as error:  # permissions, a device, a file gone while read
        where = f"{error.filename}: " if error.filename else ""
        print(f"politely: {where}{error.strerror or error}", file=sys.stderr)
        return USAGE_ERROR
    except _UsageError as error:
        print(f"politely: {error}", file=sys.stderr)
        return USAGE_ERROR
    except RulesError as error:
        _print_diagnostics(error, out)
        return 1
    except PolitelyError as error:
        print(f"politely: {error}", file=sys.stderr)
        return 1
    return USAGE_ERROR


def _print_diagnostics(error: RulesError, out: IO[str]) -> None:
    for diagnostic in error.diagnostics:
        print(render(diagnostic, error.sources.get(diagnostic.path)), file=out)
        print(file=out)
    print(summary(error.diagnostics), file=out)


# --- check ---------------------------------------------------------------------------


def _check(paths: list[str], output: str, out: IO[str]) -> int:
    results = [check_path(p) for p in paths]
    diagnostics = [d for r in results for d in r.diagnostics]
    errors = sum(d.is_error for d in diagnostics)
    if output == "json":
        import json  # here: a plain `politely check` never needs it

        json.dump(
            {
                "diagnostics": [d.to_dict() for d in diagnostics],
                "errors": errors,
                "warnings": len(diagnostics) - errors,
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        for result in results:
            for diagnostic in result.diagnostics:
                print(render(diagnostic, result.sources.get(diagnostic.path)), file=out)
                print(file=out)
        rules = sum(len(r.rules) for r in results)
        files = sum(len(r.sources) for r in results)
        print(
            f"{rules} rule{'s' * (rules != 1)} in {files} file{'s' * (files != 1)}: "
            f"{summary(diagnostics)}",
            file=out,
        )
    return 1 if errors else 0


# --- fmt -----------------------------------------------------------------------------------


def _fmt(paths: list[str], check_only: bool, out: IO[str], *, diff: bool = False) -> int:
    """Rewrite files canonically; with `check_only`, only say which would change.

    With `diff`, write nothing and print a unified diff of each change on
    stdout; the list of files then goes to stderr, so the output is a patch."""
    import difflib

    from politely.errors import FormatError
    from politely.formatter import format_source

    listing = sys.stderr if diff else out

    changed: list[str] = []
    failed = False
    for path in paths:
        for file in source_paths(path):
            name = str(file)
            try:
                text = file.read_bytes().decode("utf-8")
            except UnicodeDecodeError as error:
                print(f"{name}: not UTF-8 (byte {error.start}); left as it is", file=sys.stderr)
                failed = True
                continue
            try:
                formatted = format_source(text, name)
            except FormatError as error:
                print(render(error.diagnostic, text), file=sys.stderr)
                failed = True
                continue
            if formatted == text:
                continue
            changed.append(name)
            if diff:
                for hunk_line in difflib.unified_diff(
                    text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    f"{name}\t(as it is)",
                    f"{name}\t(formatted)",
                ):
                    out.write(hunk_line)
                    if not hunk_line.endswith("\n"):  # the file's last line had no line break
                        out.write("\n\\ No newline at end of file\n")
            elif not check_only:
                Path(name).write_text(formatted, encoding="utf-8")
    writes = not check_only and not diff
    for name in changed:
        print(f"{'reformatted' if writes else 'would reformat'} {name}", file=listing)
    if not writes and not changed and not failed:
        print("all files are formatted", file=listing)
    return 1 if failed or (check_only and changed) else 0


# --- simulate and explain -------------------------------------------------------------------


def _agents(spec: str | None) -> AgentsUpdate | None:
    if spec is None:
        return None
    from pydantic import ValidationError

    from politely.durations import parse_duration
    from politely.engine import describe_validation
    from politely.models import AgentsUpdate

    values: dict[str, Any] = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key == "queue_wait" and value and not value.replace(".", "", 1).isdigit():
            seconds = parse_duration(value)
            if seconds is None:
                raise _UsageError(f"--agents: queue_wait={value} is not a duration such as 30s")
            values[key] = seconds
        else:
            values[key] = value
    try:
        return AgentsUpdate.model_validate(values)
    except ValidationError as error:
        raise _UsageError(f"--agents: {describe_validation(error)}") from error


def _compiled(path: str) -> RuleSet:
    from politely.compiler import compile_rules

    return compile_rules(check_path(path))


def _traffic(path: str, *, read_ahead: bool = True) -> TrafficFile:
    """The traffic file; read ahead, it says on stderr when it is out of time order."""
    from politely.simulate import TrafficFile

    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)
    traffic = TrafficFile(path, read_ahead=read_ahead)
    if not traffic.in_order:
        _say_out_of_order(traffic)
    return traffic


def _say_out_of_order(traffic: TrafficFile) -> None:
    print(
        f"politely: {traffic.path}:{traffic.first_out_of_order}: lines are not in time order; "
        "replaying them sorted by `at` (lines with the same time keep their order)",
        file=sys.stderr,
    )


def _simulate(args: argparse.Namespace, out: IO[str]) -> int:
    from politely.simulate import OutOfOrderError, render_summary

    rules = _compiled(args.path)
    agents = _agents(args.agents)
    # The summary shows nothing until the end: it reads the file once, and starts
    # again, sorted, at a line out of order. `--json` shows decisions as they come
    # and `--ticks` needs each visitor's last time: they read the file ahead.
    traffic = _traffic(args.traffic, read_ahead=args.json or args.ticks)
    try:
        simulation: Simulation | None = _replay(args, rules, agents, traffic, out)
    except OutOfOrderError:
        simulation = None  # (replayed again below: the error's frames let the first one go)
    if simulation is None:
        _say_out_of_order(traffic)
        simulation = _replay(args, rules, agents, traffic, out)
    if not args.json:
        print(render_summary(simulation.summary, simulation.stats()), file=out)
    return 0


def _replay(
    args: argparse.Namespace,
    rules: RuleSet,
    agents: AgentsUpdate | None,
    traffic: TrafficFile,
    out: IO[str],
) -> Simulation:
    """A new simulation of the traffic, run to its end (with `--json`, each decision
    printed as it comes)."""
    from politely.simulate import DecisionLines, Simulation

    # The summary never shows recheck_in: the engine need not find it.
    simulation = Simulation(rules, agents=agents, follow_ticks=args.ticks, recheck=args.json)
    last_seen = traffic.last_seen if args.ticks else None
    steps = simulation.run(traffic, last_seen, source=args.traffic)
    progress = _Progress(traffic)
    if progress.enabled:
        steps = progress.follow(steps)
    try:
        if args.json:
            line = DecisionLines()
            write = out.write
            for step in steps:
                write(line(step))
        else:
            for _ in steps:
                pass
    finally:
        progress.done()
    return simulation


def _explain(args: argparse.Namespace, out: IO[str]) -> int:
    from politely.explain import explain
    from politely.simulate import Simulation

    rules = _compiled(args.path)
    agents = _agents(args.agents)
    traffic = _traffic(args.traffic)
    simulation = Simulation(rules, agents=agents, follow_ticks=args.ticks)
    last_seen = traffic.last_seen if args.ticks else None
    found = 0

    def show(step: Step, snapshot: Snapshot) -> None:
        nonlocal found
        if step.event.visitor != args.visitor:
            return
        found += 1
        report = explain(rules, snapshot, step.event, step.at, applied=step.verdict)
        print(_explain_text(report, step), file=out)

    for _ in simulation.run(traffic, last_seen, on_step=show, source=args.traffic):
        pass
    if not found:
        print(f"politely: no events of visitor {args.visitor!r} in {args.traffic}", file=sys.stderr)
        return 1
    return 0


def _explain_text(report: Explanation, step: Step) -> str:
    from politely.simulate import iso

    event = step.event
    what = event.event + (f" {event.url}" if event.url else "")
    where = f"line {step.line}" if step.line is not None else "sent tick"
    decision = report.decision
    if decision.invitation is not None:
        answer = f'invite with {decision.invitation.rule}: "{decision.invitation.message}"'
    else:
        answer = "no invitation"
    if decision.recheck_in is not None:
        answer += f", ask again in {decision.recheck_in}s"
    if decision.chat != "available":
        answer += f" (chat: {decision.chat})"
    lines = [f"{iso(step.at)}  {what}  ({where})  → {answer}"]
    width = max((len(r.rule) for r in report.rules), default=0)
    for rule in report.rules:
        text = f"  {rule.rule:<{width}}  {rule.status.replace('_', ' ')}: {rule.detail}"
        if rule.could_fire_in is not None:
            text += f"; could fire in {rule.could_fire_in}s"
        lines.append(text)
    return "\n".join(lines) + "\n"


class _Progress:
    """A percentage on stderr for long traffic files, only on a terminal."""

    def __init__(self, traffic: TrafficFile) -> None:
        self.enabled = sys.stderr.isatty() and os.path.getsize(traffic.file) > 1_000_000
        self.traffic = traffic
        self.shown = -1

    def follow(self, steps: Iterator[Step]) -> Iterator[Step]:
        """The steps, updating the percentage as the file's events go by."""
        for step in steps:
            if step.line is not None:
                self.update()
            yield step

    def update(self) -> None:
        percent = int(self.traffic.progress() * 100)
        if percent != self.shown:
            self.shown = percent
            sys.stderr.write(f"\rsimulating: {percent}%")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 20 + "\r")
