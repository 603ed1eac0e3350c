"""`takedown review ...`: the analyst review app's commands, and the demo's app.

`review` imports `crawler`, never the reverse (docs/architecture.md, "Import rules"):
the `takedown` command line finds this module by name at run time
(`crawler.cli.plugins`) and calls `register(app)`; `takedown demo` builds its app with
`demo_app`. `review serve` runs the app under gunicorn, several worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.config import Settings
from crawler.errors import UsageError

review_app = typer.Typer(help="The analyst review app.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Adds `takedown review ...` to the `takedown` app (called by `crawler.cli.plugins`)."""
    app.add_typer(review_app, name="review")


def demo_app(cfg: Settings, site_host: str) -> Any:
    """The review app of `takedown demo`: previews fetch from the synthetic site only."""
    from crawler.net.addresses import AddressPolicy
    from review.app import create_app
    from review.config import PreviewConfig

    preview = PreviewConfig(address_policy=AddressPolicy(False, (f"{site_host}/32",)))
    return create_app(cfg, {"preview": preview})


def _preview_config(policy_path: Path | None):  # type: ignore[no-untyped-def]
    """Preview fetches follow the crawl policy's [network] and [media] limits."""
    from crawler.net.addresses import AddressPolicy
    from review.config import PreviewConfig

    if policy_path is None:
        return PreviewConfig()
    from crawler.policy import PolicyError, load_policy

    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        raise UsageError(str(exc)) from exc
    network = AddressPolicy(policy.network.allow_private, policy.network.allowed_networks)
    return PreviewConfig(
        address_policy=network,
        max_bytes=policy.media.max_bytes,
        max_pixels=policy.media.max_pixels,
        timeout_s=policy.politeness.timeout_s,
        user_agent=policy.politeness.user_agent,
        use_run_policy=False,  # --policy overrides the rules each crawl run recorded
    )


@review_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="crawl policy file for every preview fetch [default: the network rules "
            "of the crawl run that saw the media]",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="app processes [default: two per CPU, at most 8]", show_default=False),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="threads per app process [default: 4]", show_default=False)
    ] = None,
    require_totp: Annotated[
        bool, typer.Option("--require-totp", help="users must set up one-time codes first")
    ] = False,
) -> None:
    """Serve the review app (behind a TLS reverse proxy in production: docs/review.md)."""
    # Imported here: importing review.cli must not import the crawler.cli package, whose
    # import registers review.cli's commands (crawler/cli/plugins.py).
    from crawler.cli._common import database, info, settings

    cfg = settings()
    if not cfg.secret_key:
        raise UsageError("TAKEDOWN_SECRET_KEY is not set: the review app will not start without it")
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: must be between 1 and 65535")
    from review.server import DEFAULT_THREADS, default_workers

    count = default_workers() if workers is None else workers
    threads = DEFAULT_THREADS if threads is None else threads
    if not 0 < count <= 64 or not 0 < threads <= 256:
        raise UsageError("--workers must be 1-64 and --threads 1-256")
    with database(cfg=cfg):
        pass  # reachable (exit 3) and migrated (exit 2) before we listen
    overrides = {"preview": _preview_config(policy), "require_totp": require_totp}
    factory = _app_factory(cfg, overrides)
    info(f"review app on http://{host}:{port}/ with {count} process(es) (Ctrl-C stops it)")
    from review.server import serve as run_server

    run_server(factory, host, port, count, threads)


def _app_factory(cfg: Any, overrides: dict[str, Any]) -> Callable[[], Any]:
    """Checks the app builds here (exit 2 on a bad setting); each worker builds its own."""
    from review.app import create_app

    try:
        create_app(cfg, overrides).extensions["review_db"].dispose()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return lambda: create_app(cfg, overrides)
