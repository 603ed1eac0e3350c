"""`takedown demo`, step by step: each step a small function the CLI and tests share."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from crawler.accounts.passwords import hash_password
from crawler.accounts.users import add_user
from crawler.config import Settings
from crawler.db.audit import Event, record
from crawler.db.migrate import upgrade
from crawler.db.models import User
from crawler.db.session import Database
from crawler.demo.site import AS_NUMBER, AS_ORG, COUNTRY, DemoSite
from crawler.errors import TakedownError
from crawler.media import hashlists
from crawler.net.mmdb_files import write_asn_db, write_country_db

KNOWN_LIST = "demo-known"
BENIGN_LIST = "demo-benign"
ANALYST = "demo-analyst"
LEAD = "demo-lead"


@dataclass
class Demo:
    site: DemoSite
    base_url: str
    site_host: str
    folder: Path

    @property
    def policy_path(self) -> Path:
        return self.folder / "policy.toml"

    def crawl_env(self) -> dict[str, str]:
        """Attribution for the demo site: its own GeoIP files and RDAP answers."""
        return {
            "TAKEDOWN_RDAP_URL": self.base_url + "rdap",
            "TAKEDOWN_GEOIP_COUNTRY": str(self.folder / "geo-country.mmdb"),
            "TAKEDOWN_GEOIP_ASN": str(self.folder / "geo-asn.mmdb"),
        }


def start_site(cfg: Settings, site_host: str, site_port: int) -> Demo:
    """Serve the synthetic site; a taken port falls back to a free one."""
    site = DemoSite()
    try:
        base = site.start(site_host, site_port)
    except OSError:
        base = site.start(site_host, 0)
    folder = cfg.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    return Demo(site, base, site_host, folder)


def write_policy(demo: Demo) -> None:
    # The demo loosens nothing but its own site's address (docs/hazards.md O-07).
    demo.policy_path.write_text(
        "[network]\n"
        f'allowed_networks = ["{demo.site_host}/32"]\n\n'
        "[politeness]\n"
        'user_agent = "takedown-crawler demo (+https://github.com/takedown-crawler)"\n'
    )


def write_geoip(demo: Demo) -> None:
    """Small GeoIP files placing the demo site with its made-up provider."""
    network = f"{demo.site_host}/32"
    write_country_db(demo.folder / "geo-country.mmdb", {network: COUNTRY})
    write_asn_db(demo.folder / "geo-asn.mmdb", {network: (AS_NUMBER, AS_ORG)})


def import_lists(db: Database, demo: Demo) -> tuple[int, int]:
    """The demo's known list (some of the site's images) and benign list (its logo)."""
    site = demo.site
    known = hashlists.parse_rows(site.csv(site.known_rows), "demo known list")
    benign = hashlists.parse_rows(site.csv(site.benign_rows), "demo benign list")
    # One transaction per list: on PostgreSQL each import stages its rows in a temporary
    # table dropped at commit, so two imports in one transaction collide (DuplicateTable).
    with db.session() as session:
        a = hashlists.import_rows(session, KNOWN_LIST, known, kind="known")
        record(
            session, Event("demo", "hashlist.import", "hash_list", a.list_id, {"added": a.added})
        )
    with db.session() as session:
        b = hashlists.import_rows(session, BENIGN_LIST, benign, kind="benign")
        record(
            session, Event("demo", "hashlist.import", "hash_list", b.list_id, {"added": b.added})
        )
    return a.added, b.added


def crawl(cfg: Settings, demo: Demo) -> int:
    """Crawl the site in a child process (Twisted's reactor runs once per process)."""
    env = dict(os.environ, TAKEDOWN_HOME=str(cfg.home), TAKEDOWN_DB=cfg.db_url)
    env.update(demo.crawl_env())
    command = [sys.executable, "-m", "crawler", "crawl", demo.base_url]
    command += ["--policy", str(demo.policy_path), "--name", "demo"]
    child = subprocess.Popen(command, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        child.wait(timeout=30)
        raise


def one_time_account(db: Database, username: str, role: str) -> str:
    """Create the account, or give it a fresh password; returns the password once."""
    password = secrets.token_urlsafe(12)
    with db.session() as session:
        user = session.execute(select(User).where(User.username == username)).scalar()
        if user is None:
            add_user(session, username, role, password, actor="demo")
        else:
            user.password_hash = hash_password(password)
            user.session_version += 1  # every older session of this account ends now
            record(
                session,
                Event("demo", "user.password-reset", "user", user.id, {"username": username}),
            )
    return password


def prepare(cfg: Settings, site_host: str = "127.0.0.2", site_port: int = 8081) -> Demo:
    """Everything up to the crawl: schema, site, policy, lists."""
    db = Database(cfg.db_url)
    try:
        upgrade(db)
        demo = start_site(cfg, site_host, site_port)
        write_policy(demo)
        write_geoip(demo)
        import_lists(db, demo)
    finally:
        db.dispose()
    return demo


def ensure_crawled(cfg: Settings, demo: Demo) -> None:
    code = crawl(cfg, demo)
    if code != 0:
        raise TakedownError(f"the demo crawl failed (exit {code}); see the lines above")
