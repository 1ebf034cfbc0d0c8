"""`relay deploy create|start|finish|run` and `relay build create`: the argument parser.

Only the standard library is imported here, so `--help` answers at once; the commands
themselves live in `relay.client.actions`."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from relay.client.handoff import FILE_NAME

TERMINAL = ("success", "build-error", "crashed-error", "timeout-error", "aborted")
IN_PROGRESS = ("queued", "building", "pushing", "starting")
FAILURES = ("build-error", "crashed-error", "timeout-error")
MAX_TIMEOUT = 3600

CONNECTION_HELP = """
connection: RELAY_URL and RELAY_TOKEN (or --url/--token); RELAY_SOFT=1 is --soft.
facts: commit SHA, branch, tag, commit time, author and repository from git in the
working directory; run URL, actor and refs from GitHub Actions, GitLab CI, CircleCI,
Jenkins, Buildkite, Azure Pipelines or Bitbucket Pipelines. Flags always win."""


def _meta(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"use key=value, not {text!r}")
    return key.strip(), value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise argparse.ArgumentTypeError(f"use a number of seconds above 0, at most {MAX_TIMEOUT}")
    return value


def _connection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--url", help="relay's base URL (default: $RELAY_URL)")
    g.add_argument("--token", help="API token (default: $RELAY_TOKEN); never printed")
    g.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per request (10)")
    g.add_argument("--retries", type=int, default=3, help="retries of a failed request (3)")
    g.add_argument(
        "--soft", action="store_true", help="warn and exit 0 when relay fails (or RELAY_SOFT=1)"
    )
    g.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    g.add_argument("--verbose", "-v", action="store_true", help="say what is sent and retried")
    g.add_argument("--no-facts", action="store_true", help="read nothing from git or the CI")


def _record(p: argparse.ArgumentParser, *, stage: bool, result: bool) -> None:
    p.add_argument("--component", "-C", help="component slug (default: $RELAY_COMPONENT)")
    p.add_argument("--version", help="default: the git tag, else the short commit SHA")
    if stage:
        p.add_argument("--stage", help="e.g. staging, production")
        p.add_argument("--host", help="the node deployed to")
    if result:
        p.add_argument("--result", help="free text, e.g. success, failure (default: success)")
        p.add_argument("--finished-at", help="ISO-8601 (default: relay's time)")
    p.add_argument("--code-name", help="a human name for the release")
    p.add_argument("--started-at", help="ISO-8601")
    p.add_argument("--commit-sha", help="default: git HEAD, else the CI's commit")
    p.add_argument("--branch", help="default: git's branch, else the CI's")
    p.add_argument("--tag", help="default: the tag on HEAD, else the CI's")
    p.add_argument("--committed-at", help="ISO-8601 commit time (default: from git)")
    p.add_argument(
        "--meta",
        type=_meta,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="meta_data entry, repeatable",
    )


def _id_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--id-file",
        default=FILE_NAME,
        help=f"where start leaves the id for finish (default: ./{FILE_NAME})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of `relay deploy …` and `relay build …`."""
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    groups = parser.add_subparsers(dest="noun", required=True)
    deploy = groups.add_parser(
        "deploy",
        help="report a deployment from a pipeline",
        epilog=CONNECTION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = deploy.add_subparsers(dest="verb", required=True)

    create = verbs.add_parser("create", help="record one finished deployment")
    _record(create, stage=True, result=True)
    create.add_argument("--status", choices=TERMINAL, help="default: derived from --result")
    _connection(create)

    start = verbs.add_parser("start", help="record a deployment in progress; prints its id")
    _record(start, stage=True, result=False)
    start.add_argument("--status", choices=IN_PROGRESS, default="building")
    _id_file(start)
    _connection(start)

    finish = verbs.add_parser("finish", help="end the deployment `start` began")
    finish.add_argument("--status", choices=TERMINAL, required=True)
    finish.add_argument("--id", help="default: from --id-file, else $RELAY_DEPLOYMENT_ID")
    finish.add_argument("--component", "-C", help="default: as start left it")
    finish.add_argument("--result", help="default: the status")
    finish.add_argument("--finished-at", help="ISO-8601 (default: relay's time)")
    finish.add_argument("--meta", type=_meta, action="append", default=[], metavar="KEY=VALUE")
    _id_file(finish)
    _connection(finish)

    run = verbs.add_parser(
        "run",
        help="wrap a command: start, stream its output, finish by its exit code",
        usage="relay deploy run [options] -- COMMAND [ARGS...]",
    )
    _record(run, stage=True, result=False)
    run.add_argument(
        "--failure-status",
        choices=FAILURES,
        default="build-error",
        help="status when the command fails (build-error)",
    )
    _connection(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")

    build = groups.add_parser(
        "build", help="report a build from a pipeline", epilog=CONNECTION_HELP
    )
    build_verbs = build.add_subparsers(dest="verb", required=True)
    build_create = build_verbs.add_parser("create", help="record one build")
    _record(build_create, stage=False, result=True)
    build_create.add_argument("--status", choices=TERMINAL, help="default: from --result")
    _connection(build_create)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run `relay deploy|build …` (argv without the program name)."""
    args = build_parser().parse_args(argv)
    if args.verb == "run":
        command = list(args.command)
        if command[:1] == ["--"]:
            command = command[1:]
        if not command:
            print("relay deploy run: give the command after --", file=sys.stderr)
            return 2
        args.command = command
    from relay.client.actions import dispatch

    return dispatch(args)
