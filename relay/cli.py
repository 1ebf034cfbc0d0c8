"""The `relay` command: serve, worker, demo, check-config, migrate, tokens, forwarders,
badges; deploy and build (CI side). `relay --help` lists every subcommand with what it does.

Only light modules are imported here: `relay deploy …` and `relay build …` run in CI
jobs and must start at once, so each server command imports what it needs itself."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from relay import __version__
from relay.errors import ConfigError, RelayError

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from forwarders.base import ForwarderConfig
    from relay.settings import Settings
    from relay.store import Store

T = TypeVar("T")
# How pydantic serialises a SecretStr in JSON mode.
_PYDANTIC_MASK = "**********"
MAX_PROCESSES = 64
# Commands of the CI side (relay.client): dispatched before anything server-side loads.
CLIENT_COMMANDS = ("deploy", "build")


def _log() -> Any:
    import structlog

    return structlog.get_logger("relay.cli")


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for `server.event_loop` (None: the standard library's)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "server.event_loop is uvloop, but uvloop is not installed",
                details=[{"field": "server.event_loop", "message": "install uvloop"}],
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run_loop(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived command's `main` on the configured event loop."""
    import asyncio

    with asyncio.Runner(loop_factory=_loop_factory(settings.server.event_loop)) as runner:
        return runner.run(main)


def _print_config_error(exc: ConfigError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    for detail in exc.details:
        print(f"  {detail['field']}: {detail['message']}", file=sys.stderr)


def _load(args: argparse.Namespace) -> Settings:
    from relay.logging import capture_library_logs, configure
    from relay.settings import load_settings

    settings = load_settings(args.config)
    configure(settings.logging.level, settings.logging.format)
    capture_library_logs(settings.logging.level)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the API (and, once configured, the forwarders) until SIGINT/SIGTERM."""

    from relay.app import create_app

    settings = _load(args)
    app = create_app(settings, dispatch=not args.no_dispatch)
    host = args.host if args.host is not None else settings.server.host
    port = args.port if args.port is not None else settings.server.port  # --port 0 is valid
    log = _log()
    log.info("relay_starting", version=__version__, host=host, port=port)
    _run_loop(settings, _serve(app, host, port, settings))
    log.info("relay_stopped")
    return 0


class _Uploads:
    """Counts requests that may still be receiving their body.

    aiohttp's own shutdown ignores bytes arriving after it starts, so a POST whose body
    is still on the wire would never be answered: serving waits for these first."""

    def __init__(self) -> None:
        import asyncio

        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def track(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Track every request with a body (GET/HEAD and streams have none)."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return await handler(request)
        self.count += 1
        self.idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if not self.count:
                self.idle.set()


async def _serve(app: web.Application, host: str, port: int, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully: close the listener, answer the
    requests being handled, let sends finish within `grace`, release leases."""
    import asyncio
    import contextlib
    import signal

    from aiohttp import web

    uploads = _Uploads()

    @web.middleware
    async def track(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await uploads.track(request, handler)

    app.middlewares.insert(0, track)
    from relay.api.protocol import RelayRunner, handler_args

    wait = max(settings.delivery.shutdown_grace, 1.0)
    runner = RelayRunner(
        app,
        access_log=None,
        shutdown_timeout=wait,
        header_timeout=settings.server.header_timeout,
        **handler_args(settings),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=settings.server.backlog)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        _log().info("relay_stopping", requests_in_flight=uploads.count)
        await site.stop()  # no new connections from here on
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(uploads.idle.wait(), wait)
    finally:
        await runner.cleanup()  # waits for handlers, then stops dispatch (grace), store


def cmd_worker(args: argparse.Namespace) -> int:
    """Run only the delivery loop (no HTTP API) until SIGINT/SIGTERM."""

    from relay.worker import Children, Share, run_worker

    settings = _load(args)
    share = Share.parse(args.share) if args.share else Share(0, args.processes)
    children = None
    if share.index == 0 and share.count > 1:
        children = Children(args.config, share.count, settings.delivery.shutdown_grace)
        children.spawn()
    _run_loop(settings, run_worker(settings, share, children))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Show fan-out with local stand-ins for every target."""
    from relay.demo import main as demo

    return demo(sys.stdout)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file and explain every problem with its location."""
    import json

    from relay.settings import load_settings

    settings = load_settings(args.path)
    print(f"{args.path or 'config'}: OK")
    print(f"  storage: {settings.storage.url.split('://', 1)[0]}")
    print(f"  listen:  {settings.server.host}:{settings.server.port}")
    print(f"  tokens:  {', '.join(t.name for t in settings.tokens) or '(none in file)'}")
    if networks := settings.security.allow_networks:
        print(f"  allowed networks: {', '.join(networks)}")
    for f in settings.forwarders:
        state = "" if f.enabled else " (disabled)"
        print(f"  forwarder {f.name}: {f.type}{state}")
        for key, value in masked_config(f).items():
            print(f"    {key}: {value if isinstance(value, str) else json.dumps(value)}")
    return 0


def masked_config(config: ForwarderConfig) -> dict[str, Any]:
    """A forwarder's settings that differ from the defaults, every secret shown as ***."""
    from relay.logging import MASK

    secrets = [s for s in config.secrets() if s]

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, str):
            if value == _PYDANTIC_MASK or value in secrets:
                return MASK
            for secret in secrets:  # e.g. a secret in a URL's query
                value = value.replace(secret, MASK)
        return value

    dumped = config.model_dump(mode="json", exclude_defaults=True, exclude={"name", "type"})
    return {key: mask(value) for key, value in dumped.items()}


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from relay.store import open_store

    store = open_store(
        settings.storage.url,
        pool_min=settings.storage.pool_min,
        pool_max=settings.storage.pool_max,
    )
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending schema migrations and exit."""
    import asyncio

    settings = _load(args)

    async def noop(store: Store) -> None:
        await store.ping()

    asyncio.run(_with_store(settings, noop))
    print("migrations applied")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """Create, list or revoke API tokens kept in the database."""
    import asyncio

    from relay.auth import generate_token, new_token_record
    from relay.settings import SCOPES

    settings = _load(args)
    if args.action == "create":
        token = generate_token()
        record = new_token_record(args.name, token, args.scope or SCOPES[:2], args.component)
        asyncio.run(_with_store(settings, lambda s: s.add_token(record)))
        print(f"created token {args.name!r} ({', '.join(record.scopes)}); it is shown only once:")
        print(token)
        return 0
    if args.action == "revoke":
        done = asyncio.run(_with_store(settings, lambda s: s.revoke_token(args.name)))
        print(f"revoked {args.name!r}" if done else f"no active token named {args.name!r}")
        return 0 if done else 1
    tokens = asyncio.run(_with_store(settings, lambda s: s.list_tokens()))
    print(f"{'NAME':20} {'SCOPES':35} {'COMPONENTS':20} {'CREATED':20} STATE")
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        print(
            f"{t.name:20} {','.join(t.scopes):35} {','.join(t.components):20} "
            f"{t.created_at:%Y-%m-%d %H:%M:%S}  {state}"
        )
    for c in settings.tokens:
        scopes, globs = ",".join(c.scopes), ",".join(c.components)
        print(f"{c.name:20} {scopes:35} {globs:20} {'(config file)':20} active")
    return 0


def cmd_forwarders(args: argparse.Namespace) -> int:
    """Operate on a configured forwarder through the database (every instance sees it)."""
    import asyncio

    from relay.delivery.deliveries import resume_forwarder

    settings = _load(args)
    if args.name not in {f.name for f in settings.forwarders}:
        print(f"error: no forwarder named {args.name!r} in the configuration", file=sys.stderr)
        return 1
    moved = asyncio.run(_with_store(settings, lambda s: resume_forwarder(s, args.name)))
    print(f"resumed {args.name!r}: circuit closed, {moved} waiting deliveries due now")
    return 0


def badge_urls(base: str, component: str, stage: str | None, key: str) -> list[str]:
    """The lines `relay badges url` prints: SVG and JSON URLs, a Markdown line, and the
    shields.io endpoint URL."""
    from urllib.parse import quote, urlencode

    query = urlencode({**({"stage": stage} if stage else {}), "key": key})
    badge = f"{base.rstrip('/')}/components/{component}/badge"
    svg, endpoint = f"{badge}.svg?{query}", f"{badge}.json?{query}"
    alt = f"{component} {stage}" if stage else component
    return [
        f"svg       {svg}",
        f"json      {endpoint}",
        f"markdown  ![{alt}]({svg})",
        f"shields   https://img.shields.io/endpoint?url={quote(endpoint, safe='')}",
    ]


def cmd_badges(args: argparse.Namespace) -> int:
    """Print a component's badge URLs (with its badge key), or rotate the key secret."""
    import asyncio

    from relay.app import badge_config
    from relay.insights.badges import badge_key
    from relay.insights.service import InsightsService
    from relay.records.service import check_slug

    settings = _load(args)
    config = badge_config(settings)
    if args.action == "rotate":
        asyncio.run(_with_store(settings, lambda s: InsightsService(s, config).rotate()))
        print("rotated the badge key secret: every badge URL given out so far stops working")
        return 0
    check_slug(args.component)
    secret = asyncio.run(_with_store(settings, lambda s: InsightsService(s, config).badge_secret()))
    server = settings.server
    base = args.base_url or server.public_url or f"http://{server.host}:{server.port}"
    if not (args.base_url or server.public_url) and server.host in ("0.0.0.0", "::", ""):
        print(
            f"relay: warning: server.public_url is not set, so these URLs name {server.host!r}, "
            "which no browser elsewhere can open: pass --base-url https://relay.example.com",
            file=sys.stderr,
        )
    print(
        "\n".join(badge_urls(base, args.component, args.stage, badge_key(secret, args.component)))
    )
    return 0


def _processes(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"use 1 to {MAX_PROCESSES} processes")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `relay` command."""
    # The docstring's first paragraph: the rest is about how this module is built.
    parser = argparse.ArgumentParser(prog="relay", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config", "-c", help="TOML config (default: $RELAY_CONFIG or config/relay.toml)"
        )
        return p

    serve = with_config(sub.add_parser("serve", help="run the HTTP API"))
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument(
        "--no-dispatch", action="store_true", help="do not deliver (a `relay worker` does)"
    )
    serve.set_defaults(func=cmd_serve)

    worker = with_config(sub.add_parser("worker", help="run only the delivery loop"))
    worker.add_argument(
        "--processes",
        type=_processes,
        default=1,
        help="deliver from N processes, each with its share of every forwarder's concurrency",
    )
    worker.add_argument("--share", help=argparse.SUPPRESS)  # k/N: set for processes 1..N-1
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="fan one deployment out to local stand-in targets")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path", nargs="?", help="config file (default: config/relay.toml)")
    check.set_defaults(func=cmd_check_config)

    with_config(sub.add_parser("migrate", help="apply schema migrations")).set_defaults(
        func=cmd_migrate
    )

    tokens = with_config(sub.add_parser("tokens", help="manage API tokens"))
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("name")
    create.add_argument("--scope", action="append", choices=_scopes(), help="repeatable")
    create.add_argument("--component", action="append", default=None, help="glob, repeatable")
    actions.add_parser("list", help="list tokens (never their values)")
    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    tokens.set_defaults(func=cmd_tokens)

    forwarders = sub.add_parser("forwarders", help="operate on a forwarder")
    forwarder_actions = forwarders.add_subparsers(dest="action", required=True)
    resume = with_config(
        forwarder_actions.add_parser(
            "resume", help="its target is back: close the circuit, send what waits now"
        )
    )
    resume.add_argument("name")
    forwarders.set_defaults(func=cmd_forwarders)

    badges = with_config(sub.add_parser("badges", help="badge URLs and their key secret"))
    badge_actions = badges.add_subparsers(dest="action", required=True)
    url = badge_actions.add_parser("url", help="print a component's badge URLs with its key")
    url.add_argument("component")
    url.add_argument("--stage", help="the stage the badge shows (default: any)")
    url.add_argument("--base-url", help="default: server.public_url, else host and port")
    badge_actions.add_parser("rotate", help="new key secret: revokes every badge URL")
    badges.set_defaults(func=cmd_badges)

    # Listed here; `main` hands them to relay.client before this parser is built.
    sub.add_parser("deploy", help="CI side: report a deployment (relay deploy --help)")
    sub.add_parser("build", help="CI side: report a build (relay build --help)")
    return parser


def _scopes() -> list[str]:
    from relay.settings import SCOPES

    return list(SCOPES)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `relay` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in CLIENT_COMMANDS:
        from relay.client.commands import main as client_main

        return client_main(argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "action", None) == "create" and args.component is None:
        args.component = ["*"]
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        _print_config_error(exc)
        return 2
    except RelayError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
