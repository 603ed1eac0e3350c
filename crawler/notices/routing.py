"""Notice routing by hosting country (`TAKEDOWN_ROUTING`): host, partner hotline or hold.

The file is TOML, one rule per line so an error can name its line:

    default = "host"                      # countries with no rule (host if absent)

    [countries]                           # ISO 3166-1 alpha-2 codes
    GB = "hold"                           # law enforcement first: held until released
    FR = "host"                           # the hosting provider's abuse contact
    DE = { route = "hotline", name = "Example Hotline DE", email = "reports@hotline.example" }

    [legal_basis]                         # optional, per decision category
    A = "Section 184b of the Criminal Code ..."

Anything else (an unknown top-level key, country code, route, key in a rule, an address
that is not a plain `local@domain`, a category not in `TAKEDOWN_CATEGORIES`) is a
UsageError naming the file and line, raised before anything is written.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.notices.build import valid_address

ROUTES = ("host", "hotline", "hold")

# ISO 3166-1 alpha-2, officially assigned codes (from tzdata's iso3166.tab).
_ISO_TEXT = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_ISO_TEXT.split())
_TOP_KEYS = ("default", "countries", "legal_basis")
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")


@dataclass(frozen=True)
class Route:
    kind: str = "host"  # host | hotline | hold
    name: str | None = None  # the partner hotline's name (hotline only)
    email: str | None = None  # the partner hotline's address (hotline only)


@dataclass(frozen=True)
class Routing:
    default: Route = Route()
    countries: dict[str, Route] = field(default_factory=dict)
    legal_basis: dict[str, str] = field(default_factory=dict)

    def route_for(self, country: str | None) -> Route:
        return self.countries.get((country or "").upper(), self.default)

    def basis_for(self, category: str | None, fallback: str) -> str:
        return self.legal_basis.get(category or "", fallback)


def _line_of(text: str, table: str | None, key: str) -> int | None:
    """The 1-based line defining `key` in `[table]` (None: the top level)."""
    current: str | None = None
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip("\"' ")
            continue
        if current == table and pattern.match(line):
            return number
    return None


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, table: str | None, key: str, message: str) -> UsageError:
        line = _line_of(self.text, table, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return UsageError(f"{where}: {message}")

    def route(self, table: str | None, key: str, value: Any) -> Route:
        if isinstance(value, str):
            value = {"route": value}
        if not isinstance(value, dict):
            raise self.fail(table, key, f"{key}: a route name or a table, not {value!r:.60}")
        unknown = sorted(set(value) - {"route", "name", "email"})
        if unknown:
            raise self.fail(table, key, f"{key}: unknown key {unknown[0]!r:.60}")
        kind = value.get("route")
        if kind not in ROUTES:
            raise self.fail(
                table, key, f"{key}: unknown route {kind!r:.60} (host, hotline or hold)"
            )
        if kind != "hotline":
            if set(value) - {"route"}:
                raise self.fail(table, key, f"{key}: only a hotline route takes name and email")
            return Route(kind)
        name, email = value.get("name"), value.get("email")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise self.fail(table, key, f"{key}: a hotline needs a name (1-255 characters)")
        if _BAD_TEXT.search(name):
            raise self.fail(table, key, f"{key}: control or bidi characters in the name")
        if not isinstance(email, str) or not valid_address(email.strip()):
            raise self.fail(table, key, f"{key}: invalid address {email!r:.80}")
        return Route("hotline", name.strip(), email.strip().lower())


def parse_routing(path: Path, text: str, categories: tuple[str, ...]) -> Routing:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    reader = _Reader(path, text)
    for key in raw:
        if key not in _TOP_KEYS:
            raise reader.fail(None, key, f"unknown key {key!r:.60} ({', '.join(_TOP_KEYS)})")
    default = reader.route(None, "default", raw.get("default", "host"))
    table = raw.get("countries", {})
    if not isinstance(table, dict):
        raise reader.fail(None, "countries", "countries must be a table")
    countries: dict[str, Route] = {}
    for code, value in table.items():
        if code.upper() not in ISO_COUNTRIES:
            raise reader.fail("countries", code, f"unknown country code {code!r:.20}")
        countries[code.upper()] = reader.route("countries", code, value)
    bases = raw.get("legal_basis", {})
    if not isinstance(bases, dict):
        raise reader.fail(None, "legal_basis", "legal_basis must be a table")
    legal_basis: dict[str, str] = {}
    for category, value in bases.items():
        if category not in categories:
            raise reader.fail("legal_basis", category, f"unknown category {category!r:.40}")
        if not isinstance(value, str) or not value.strip():
            raise reader.fail("legal_basis", category, f"{category}: the legal basis is text")
        legal_basis[category] = value.strip()
    return Routing(default, countries, legal_basis)


def load_routing(cfg: Settings) -> Routing:
    """The routing of `cfg.routing`; every notice to the host when it is unset."""
    if cfg.routing is None:
        return Routing()
    try:
        text = cfg.routing.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{cfg.routing}: cannot read the routing file ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise UsageError(f"{cfg.routing}: not UTF-8 text") from None
    return parse_routing(cfg.routing, text, cfg.categories)
