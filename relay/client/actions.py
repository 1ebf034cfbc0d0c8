"""What `relay deploy …` and `relay build …` do, once their arguments are parsed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from relay.client import handoff, runner
from relay.client.facts import gather, payload
from relay.client.output_log import OutputLog
from relay.client.transport import ClientError, Connection, Transport

USAGE = 2
FAILED = 1
FLUSH_TIMEOUT = 30.0  # at most this long, after the command, to send the rest of its output
PLACEHOLDER_ID = "<id>"  # what a dry run shows where relay would have answered an id
# Flags that are deployment fields of the same name (dashes become underscores).
FIELDS = (
    "version",
    "stage",
    "host",
    "result",
    "status",
    "code_name",
    "started_at",
    "finished_at",
    "commit_sha",
    "branch",
    "tag",
    "committed_at",
)


class UsageError(Exception):
    """Something the user must give or fix before anything is sent."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def connection(args: argparse.Namespace, env: Mapping[str, str]) -> Connection:
    """Where to send, from the flags, else the environment."""
    url = args.url or env.get("RELAY_URL") or ""
    if not url and not args.dry_run:
        raise UsageError("no relay URL: set RELAY_URL or pass --url")
    if url:
        check_url(url)
    # A secret stored with its newline is common; a header cannot carry one.
    token = (args.token or env.get("RELAY_TOKEN") or "").strip() or None
    if token is not None and not all(c.isascii() and c.isprintable() and c != " " for c in token):
        raise UsageError("the token may hold only printable ASCII characters, no spaces")
    return Connection(
        url=url or "$RELAY_URL",
        token=token,
        timeout=args.timeout,
        attempts=max(0, args.retries) + 1,
        dry_run=args.dry_run,
        verbose=args.verbose,
    )


def check_url(url: str) -> None:
    """UsageError unless `url` is an http(s) URL urllib can send to. The message never
    repeats the URL: it may carry a password."""
    if not url.startswith(("http://", "https://")):
        raise UsageError("the relay URL must start with http:// or https://")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UsageError("the relay URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"the relay URL is not valid ({exc})") from None
    if not parts.hostname:
        raise UsageError("the relay URL names no host")
    if parts.username is not None or parts.password is not None:
        # urllib would not send them, and they would be printed in every error.
        raise UsageError("the relay URL may not carry a user or password: use RELAY_TOKEN")


def _component(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    component = args.component or env.get(handoff.COMPONENT_VAR)
    if not component:
        raise UsageError("no component: pass --component (or set RELAY_COMPONENT)")
    return str(component)


def _body(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The JSON body of a new deployment or build: flags over git over CI facts."""
    facts = {} if args.no_facts else gather(Path.cwd(), env)
    fields = {name: getattr(args, name, None) for name in FIELDS}
    body = payload(fields, dict(args.meta), facts)
    if "version" not in body:
        raise UsageError("no version: pass --version (git gives no tag or commit here)")
    return body


def _path(component: str, plural: str, *rest: str) -> str:
    """The API path; each given part (an --id too) is exactly one path segment."""
    parts = [component, plural, *rest]
    return "/components/" + "/".join(quote(part, safe="") for part in parts)


def _created_id(answer_body: Any) -> str:
    ident = answer_body.get("id") if isinstance(answer_body, dict) else None
    return ident if isinstance(ident, str) else PLACEHOLDER_ID


def _post_new(
    args: argparse.Namespace,
    transport: Transport,
    env: Mapping[str, str],
    plural: str = "deployments",
    **extra: Any,
) -> handoff.Started:
    """POST a new deployment or build (`extra` over its body's fields): its component and id."""
    component = _component(args, env)
    body = {**_body(args, env), **extra}
    answer = transport.request("POST", _path(component, plural), body)
    return handoff.Started(component, _created_id(answer.body))


def create(args: argparse.Namespace, transport: Transport, env: Mapping[str, str]) -> int:
    """Record one finished deployment or build; print its id."""
    plural = "deployments" if args.noun == "deploy" else "builds"
    print(_post_new(args, transport, env, plural).id, flush=True)
    return 0


def start(args: argparse.Namespace, transport: Transport, env: Mapping[str, str]) -> int:
    """Record a deployment in progress; print its id and leave it for `finish`."""
    started = _post_new(args, transport, env)
    print(started.id, flush=True)
    if not args.dry_run:
        try:
            places = handoff.leave(started, Path(args.id_file), env)
        except OSError as exc:
            _warn(f"could not leave the id for `finish` ({exc}); pass --id {started.id}")
            return 0
        print(f"relay: deployment {started.id} started; id in {', '.join(places)}", file=sys.stderr)
    return 0


def end(transport: Transport, started: handoff.Started, status: str, extra: dict[str, Any]) -> None:
    """PATCH the deployment to a terminal `status`; a 409 saying it is already there is
    a retry of ours that landed, not an error."""
    body = {"status": status, **{k: v for k, v in extra.items() if v not in (None, {})}}
    try:
        transport.request("PATCH", _path(started.component, "deployments", started.id), body)
    except ClientError as exc:
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        if exc.status == 409 and isinstance(error, dict) and error.get("current_status") == status:
            return
        raise


def finish(args: argparse.Namespace, transport: Transport, env: Mapping[str, str]) -> int:
    """End the deployment `start` began (or the one --id names)."""
    file = Path(args.id_file)
    started = handoff.find(args.id, args.component, file, env)
    if started is None:
        raise UsageError(
            "no deployment to finish: run `relay deploy start` first, or pass --id and --component"
        )
    extra = {"result": args.result, "finished_at": args.finished_at, "meta_data": dict(args.meta)}
    end(transport, started, args.status, extra)
    if not args.dry_run:
        handoff.forget(started, file)
    return 0


def run(args: argparse.Namespace, transport: Transport, env: Mapping[str, str]) -> int:
    """Start, run the command with its output streamed to the log, finish by its exit code.

    The command's exit code is always the answer; relay failing once the command has
    started only warns."""
    started = _post_new(args, transport, env, status="building")
    log = None
    if not args.dry_run:
        log = OutputLog(transport, _path(started.component, "deployments", started.id, "output"))

    def on_line(line: str) -> None:
        # The command inherits RELAY_TOKEN: a script that prints its environment must not
        # store the token in relay, where every events:read token could read it.
        if log is not None:
            log.add(transport.conn.masked(line))

    args.command_ran = True  # from here on, the command's exit code is the answer
    outcome = runner.run(args.command, on_line)
    if outcome.interrupted is not None:
        status = "aborted"
    else:
        status = "success" if outcome.code == 0 else args.failure_status
    meta = {**dict(args.meta), "exit_code": outcome.code}
    try:
        if log is not None and not log.close(FLUSH_TIMEOUT):
            failure = log.failure or "timed out"
            _warn(f"{log.unsent} output lines did not reach relay ({failure})")
        end(transport, started, status, {"meta_data": meta})
    except ClientError as exc:
        _warn(f"the deployment could not be finished as {status}: {exc}")
    except Exception as exc:  # a fault of ours must not change the command's exit code
        _warn(f"the deployment could not be finished as {status}: {_unexpected(exc)}")
    return outcome.code


def _unexpected(exc: BaseException) -> str:
    """A fault of ours, named by its type only: its text might hold a secret."""
    return f"unexpected {type(exc).__name__}"


def _warn(message: str) -> None:
    print(f"relay: warning: {message}", file=sys.stderr, flush=True)


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; a failure ends in one line on stderr. With --soft every
    failure only warns (a fork's job without RELAY_URL included), and `deploy run`
    still runs its command."""
    env = os.environ
    soft = args.soft or _truthy(env.get("RELAY_SOFT"))
    try:
        transport = Transport(connection(args, env))
        if args.verb == "run":
            return run(args, transport, env)
        commands: dict[str, Callable[[argparse.Namespace, Transport, Mapping[str, str]], int]]
        commands = {"create": create, "start": start, "finish": finish}
        return commands[args.verb](args, transport, env)
    except (UsageError, ClientError) as exc:
        if not soft:
            print(f"relay: error: {exc}", file=sys.stderr)
            return USAGE if isinstance(exc, UsageError) else FAILED
        return _soft_failure(args, str(exc))
    except Exception as exc:  # a fault of ours must not block a --soft deploy either
        if not soft or getattr(args, "command_ran", False):
            raise
        return _soft_failure(args, _unexpected(exc))


def _soft_failure(args: argparse.Namespace, why: str) -> int:
    """--soft: warn; `deploy run` runs its command unreported (relay was told nothing)."""
    if args.verb == "run":
        _warn(f"{why}; running the command without reporting it")
        return runner.run(args.command, lambda line: None).code
    _warn(f"{why} (--soft: not failing)")
    return 0
