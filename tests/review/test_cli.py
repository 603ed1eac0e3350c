"""O-07: `takedown review serve` refuses to start without TAKEDOWN_SECRET_KEY."""

from __future__ import annotations

from typing import Any


def test_serve_without_secret_key_exits_2(env: dict[str, str], cli: Any) -> None:
    code, _, err = cli("review", "serve", "--port", "0")
    assert code == 2
    assert "TAKEDOWN_SECRET_KEY" in err and "Traceback" not in err


def test_serve_with_short_key_exits_2(env: dict[str, str], cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TAKEDOWN_SECRET_KEY", "short")
    code, _, err = cli("review", "serve", "--port", "8123")
    assert code == 2 and "at least 16" in err


def test_serve_with_zero_workers_exits_2(env: dict[str, str], cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TAKEDOWN_SECRET_KEY", "a-long-enough-secret-key-123")
    code, _, err = cli("review", "serve", "--workers", "0")
    assert code == 2 and "--workers" in err and "Traceback" not in err


def test_default_workers_is_two_per_cpu_capped(monkeypatch: Any) -> None:
    from review import server

    for cpus, workers in ((None, 2), (1, 2), (2, 4), (3, 6), (4, 8), (32, 8)):
        monkeypatch.setattr(server.os, "cpu_count", lambda n=cpus: n)
        assert server.default_workers() == workers, cpus
    assert server.MAX_DEFAULT_WORKERS == 8 and server.DEFAULT_THREADS == 4
