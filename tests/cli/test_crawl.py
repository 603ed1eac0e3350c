"""`takedown crawl` refusals that happen before Scrapy starts (in-process, both engines)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text


def _policy(tmp: Path, body: str = "") -> str:
    path = tmp / "policy.toml"
    path.write_text(body)
    return str(path)


def _runs(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM crawl_runs")).scalar() or 0)
    engine.dispose()
    return count


def test_c13_denied_only_seeds_exit_2_naming_them(cli, env, db_url, tmp_path) -> None:
    policy = _policy(tmp_path, '[scope]\ndeny_domains = ["bad.test"]\n')
    code, _, err = cli("crawl", "http://bad.test/", "http://x.bad.test/a", "--policy", policy)
    assert code == 2
    assert "http://bad.test/" in err and "http://x.bad.test/a" in err and "denied-domain" in err
    assert _runs(db_url) == 0


def test_c13_no_seeds_and_internal_seeds(cli, env, db_url, tmp_path) -> None:
    assert cli("crawl", "--policy", _policy(tmp_path))[0] == 2
    code, _, err = cli(
        "crawl", "http://127.0.0.1/", "http://0x7f000001/", "--policy", _policy(tmp_path)
    )
    assert code == 2 and "address refused" in err
    assert _runs(db_url) == 0


def test_c08_proxy_environment_refused(cli, env, db_url, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9/")
    code, _, err = cli("crawl", "http://site-a.test/", "--policy", _policy(tmp_path))
    assert code == 2 and "HTTPS_PROXY" in err
    assert _runs(db_url) == 0


def test_unknown_policy_key_exit_2(cli, env, tmp_path) -> None:
    code, _, err = cli(
        "crawl", "http://a.test/", "--policy", _policy(tmp_path, "[scope]\nnope = 1\n")
    )
    assert code == 2 and "nope" in err


def test_overrides_are_allowlisted(cli, env, tmp_path) -> None:
    code, _, err = cli(
        "crawl",
        "http://a.test/",
        "--policy",
        _policy(tmp_path),
        "-s",
        "TWISTED_DNS_RESOLVER=scrapy.resolver.CachingThreadedResolver",
    )
    assert code == 2 and "TWISTED_DNS_RESOLVER" in err
