"""Settings: the `TAKEDOWN_*` environment variables, optionally a TOML file.

`load_settings()` is the only reader of the environment. Keys in the TOML file named by
`TAKEDOWN_CONFIG` are either the variable names (`TAKEDOWN_DB = "..."`) or the same names
without the prefix in lower case (`db = "..."`); the environment wins over the file.
Unknown keys are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import UsageError

PREFIX = "TAKEDOWN_"

# Every setting, its meaning and default as documented in README.md. A test checks
# that each one is documented there.
SETTINGS_DOC: dict[str, str] = {
    "HOME": "folder for the embedded database, logs, crawl state (default ./.takedown)",
    "DB": "SQLAlchemy URL (default sqlite:///$TAKEDOWN_HOME/takedown.db)",
    "GEOIP_COUNTRY": "GeoLite2-Country-layout .mmdb file (unset: country is null)",
    "GEOIP_ASN": "GeoLite2-ASN-layout .mmdb file (unset: asn is null)",
    "RDAP_URL": "base URL of an RDAP service for abuse contacts (unset: IANA bootstrap)",
    "SECRET_KEY": "review app session key; required for `review serve`",
    "REDIS_URL": "Redis URL: crawls share their frontier through Redis when set",
    "CONFIG": "a TOML file holding any of these keys (the environment wins)",
    "CATEGORIES": "comma-separated decision categories (default A,B,C)",
    "LOG_FORMAT": "`json` or `text` log lines (default text on a terminal, json otherwise)",
    "FLOOD_LIMIT": "distinct media one list entry may match in a crawl before quarantine",
    "OPERATOR_NAME": "the organisation named in notices",
    "OPERATOR_CONTACT": "the e-mail address notices come from and replies go to",
    "NOTICE_LEGAL_BASIS": "the legal basis paragraph printed in every notice",
    "NOTICE_APPEAL": "how a provider appeals a notice, printed in every notice",
    "RENOTICE_HOURS": "hours between re-notices while content stays up (default 24)",
    "ESCALATE_DAYS": "days after which a notice escalates upstream (default 7)",
    "DAILY_REVEAL_BUDGET": "reveals per analyst per day before a warning (default 50)",
    "FOUR_EYES": "`true`: a lead countersigns confirmations without an exact known match",
    "BENIGN_FOUR_EYES": "`true`: media benign-listed on Reject join the list only when a "
    "second analyst or a lead agrees",
    "ROUTING": "TOML file routing notices by hosting country: host, hotline or hold",
    "TRUSTED_FLAGGER": "the operator's trusted-flagger status, stated in every notice",
    "TRUSTED_FLAGGER_AUTHORITY": "the authority that granted the trusted-flagger status",
    "NOTICE_TEMPLATES": "folder of notice templates overriding the built-in ones",
    "URGENT_CONTACT": "law-enforcement address urgent referrals go to at once",
}


@dataclass(frozen=True)
class Settings:
    """Typed settings, read once. Paths are absolute."""

    home: Path
    db_url: str
    geoip_country: Path | None = None
    geoip_asn: Path | None = None
    rdap_url: str | None = None
    secret_key: str | None = None
    redis_url: str | None = None
    categories: tuple[str, ...] = ("A", "B", "C")
    log_format: str | None = None
    flood_limit: int = 500
    operator_name: str = "takedown-crawler operator"
    operator_contact: str = "hotline@example.org"
    notice_legal_basis: str = (
        "The material listed below appears to be child sexual abuse material, whose "
        "hosting and distribution are unlawful. We ask you to remove it without delay."
    )
    notice_appeal: str = "To dispute this notice, reply to this message quoting its serial."
    renotice_hours: int = 24
    escalate_days: int = 7
    daily_reveal_budget: int = 50
    four_eyes: bool = False
    benign_four_eyes: bool = False
    routing: Path | None = None
    trusted_flagger: str | None = None
    trusted_flagger_authority: str | None = None
    notice_templates: Path | None = None
    urgent_contact: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


def _read_file(path: Path) -> dict[str, str]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the settings file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = key.upper()
        name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        if name not in SETTINGS_DOC or name == "CONFIG":
            raise UsageError(f"{path}: unknown setting {key!r}")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{PREFIX}{name}: {value!r} is not a whole number") from None
    if number < 0:
        raise UsageError(f"{PREFIX}{name}: {value!r} must not be negative")
    return number


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise UsageError(f"{PREFIX}{name}: {value!r} is not true or false")


LOG_FORMATS = ("json", "text")


def _check_redis_url(value: str) -> None:
    """A URL the Redis client can use, or exit 2 naming the setting (never the password)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    ok = parts is not None and (
        (parts.scheme in ("redis", "rediss") and bool(parts.hostname))
        or (parts.scheme == "unix" and bool(parts.path))
    )
    if not ok:
        shown = value if parts is None or "@" not in parts.netloc else "(a URL with a password)"
        raise UsageError(
            f"{PREFIX}REDIS_URL: {shown[:80]!r} is not a redis://HOST[:PORT][/DB], "
            "rediss:// or unix:// URL"
        )


def _merged(env: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    config = env.get(PREFIX + "CONFIG")
    if config:
        values.update(_read_file(Path(config)))
    for name in SETTINGS_DOC:
        if (PREFIX + name) in env and name != "CONFIG":
            values[name] = env[PREFIX + name]
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting once from `env` (default: the process environment)."""
    values = _merged(os.environ if env is None else env)
    home = Path(values.get("HOME") or "./.takedown").expanduser().resolve()
    db_url = values.get("DB") or f"sqlite:///{home / 'takedown.db'}"
    kwargs: dict[str, Any] = {"home": home, "db_url": db_url}
    for name in ("GEOIP_COUNTRY", "GEOIP_ASN", "ROUTING", "NOTICE_TEMPLATES"):
        if values.get(name):
            kwargs[name.lower()] = Path(values[name]).expanduser().resolve()
    for name in (
        "RDAP_URL",
        "SECRET_KEY",
        "REDIS_URL",
        "LOG_FORMAT",
        "TRUSTED_FLAGGER",
        "TRUSTED_FLAGGER_AUTHORITY",
        "URGENT_CONTACT",
    ):
        if values.get(name):
            kwargs[name.lower()] = values[name]
    if "log_format" in kwargs and kwargs["log_format"] not in LOG_FORMATS:
        raise UsageError(f"{PREFIX}LOG_FORMAT: {kwargs['log_format'][:40]!r} is not json or text")
    if "redis_url" in kwargs:
        _check_redis_url(kwargs["redis_url"])
    for name in ("OPERATOR_NAME", "OPERATOR_CONTACT", "NOTICE_LEGAL_BASIS", "NOTICE_APPEAL"):
        if values.get(name):
            kwargs[name.lower()] = values[name]
    for name in ("FLOOD_LIMIT", "RENOTICE_HOURS", "ESCALATE_DAYS", "DAILY_REVEAL_BUDGET"):
        if values.get(name):
            kwargs[name.lower()] = _int(name, values[name])
    if values.get("FOUR_EYES"):
        kwargs["four_eyes"] = _bool("FOUR_EYES", values["FOUR_EYES"])
    if values.get("BENIGN_FOUR_EYES"):
        kwargs["benign_four_eyes"] = _bool("BENIGN_FOUR_EYES", values["BENIGN_FOUR_EYES"])
    if values.get("CATEGORIES"):
        cats = tuple(c.strip() for c in values["CATEGORIES"].split(",") if c.strip())
        if not cats:
            raise UsageError(f"{PREFIX}CATEGORIES: no category given")
        kwargs["categories"] = cats
    known = {f.name for f in fields(Settings)}
    assert set(kwargs) <= known
    return Settings(**kwargs)
