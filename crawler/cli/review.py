"""`takedown review serve`: the analyst review app under waitress, a production WSGI server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crawler.cli._common import database, info, settings
from crawler.errors import UsageError

review_app = typer.Typer(help="The analyst review app.", no_args_is_help=True)


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
    )


@review_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="crawl policy file for preview fetches")
    ] = None,
    threads: Annotated[int, typer.Option(help="worker threads")] = 8,
    require_totp: Annotated[
        bool, typer.Option("--require-totp", help="users must set up one-time codes first")
    ] = False,
) -> None:
    """Serve the review app (behind a TLS reverse proxy in production: docs/review.md)."""
    cfg = settings()
    if not cfg.secret_key:
        raise UsageError("TAKEDOWN_SECRET_KEY is not set: the review app will not start without it")
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: must be between 1 and 65535")
    import waitress

    from review.app import create_app

    with database(cfg=cfg):
        pass  # reachable (exit 3) and migrated (exit 2) before we listen
    try:
        app = create_app(cfg, {"preview": _preview_config(policy), "require_totp": require_totp})
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    info(f"review app on http://{host}:{port}/ (Ctrl-C stops it)")
    waitress.serve(app, host=host, port=port, threads=threads, ident="takedown-review")
