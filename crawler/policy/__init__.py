"""The crawl policy file (TOML): typed, validated, immutable, with canonical text.

Pure apart from `load_policy` reading one file. The format, every key and its default
are fixed by the contract: docs/policy.md and docs/interface.md. Every problem raises
`PolicyError` with one line naming the file, the line when known, and the key, which
the CLI turns into exit 2.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from crawler.net.addresses import parse_network
from crawler.net.urls import InvalidURL, canonical_host, host_variants

FOLLOW_MODES = ("host", "registered-domain", "seed-prefix")
MEDIA_TYPES = ("image", "video")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message is one line a person can act on."""


@dataclass(frozen=True)
class ScopePolicy:
    follow: str = "registered-domain"
    extra_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    deny_url_patterns: tuple[str, ...] = ()
    max_depth: int = 3
    max_pages: int = 10000
    max_pages_per_host: int = 2000


@dataclass(frozen=True)
class MediaPolicy:
    fetch_offsite: bool = True
    max_bytes: int = 25000000
    max_pixels: int = 89478485
    types: tuple[str, ...] = MEDIA_TYPES
    video_max_frames: int = 3600
    archive_max_members: int = 2000
    archive_max_unpacked_bytes: int = 500000000
    archive_max_ratio: int = 100


@dataclass(frozen=True)
class PolitenessPolicy:
    obey_robots: bool = True
    user_agent: str = "takedown-crawler (+contact URL of the operator)"
    per_host_concurrency: int = 4
    delay_s: float = 0.0
    autothrottle: bool = True
    timeout_s: float = 20.0


@dataclass(frozen=True)
class NetworkPolicy:
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderPolicy:
    javascript: bool = False
    settle_ms: int = 500  # quiet period (no DOM change, no request) before the HTML is taken
    max_render_s: float = 15.0  # per-page budget: navigation, settling and one scroll


@dataclass(frozen=True)
class CrawlPolicy:
    scope: ScopePolicy = ScopePolicy()
    media: MediaPolicy = MediaPolicy()
    politeness: PolitenessPolicy = PolitenessPolicy()
    network: NetworkPolicy = NetworkPolicy()
    render: RenderPolicy = RenderPolicy()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain data (lists, not tuples), in contract order."""
        return {
            name: {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(section).items()}
            for name, section in _sections(self).items()
        }

    def to_toml(self) -> str:
        """Canonical TOML text: every section and key, contract order, stable for the
        crawl-run row; `parse_policy(p.to_toml()) == p`."""
        blocks = []
        for name, values in self.to_dict().items():
            lines = [f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)


SECTIONS: dict[str, type] = {
    "scope": ScopePolicy,
    "media": MediaPolicy,
    "politeness": PolitenessPolicy,
    "network": NetworkPolicy,
    "render": RenderPolicy,
}


def _sections(policy: CrawlPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in SECTIONS}


# --- loading -------------------------------------------------------------------------


def load_policy(path: Path | None) -> CrawlPolicy:
    """The policy in *path*, or the contract defaults when *path* is None."""
    if path is None:
        return CrawlPolicy()
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: policy file is not UTF-8 (byte {exc.start})") from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> CrawlPolicy:
    """Parse and validate policy TOML; *source* names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends "(at line N, column M)".
        raise PolicyError(f"{source}: invalid TOML: {exc}") from exc
    return policy_from_dict(data, source=source, text=text)


def policy_from_dict(
    data: Mapping[str, Any], source: str = "<policy>", text: str | None = None
) -> CrawlPolicy:
    """Validate already-parsed data (a TOML table, a JSON column, a settings dict)."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: policy must be a table of sections")
    sections: dict[str, Any] = {}
    for name, values in data.items():
        where = _Where(source, text, name)
        if name not in SECTIONS:
            kind = "section" if isinstance(values, Mapping) else "top-level key"
            raise where.error(None, f"unknown {kind} {name!r}; sections are {_list(SECTIONS)}")
        if not isinstance(values, Mapping):
            raise where.error(None, f"[{name}] must be a table, got {_type_name(values)}")
        sections[name] = _build_section(SECTIONS[name], values, where)
    return CrawlPolicy(**sections)


class _Where:
    """Formats an error for one section, adding the line of a key when it can be found."""

    def __init__(self, source: str, text: str | None, section: str) -> None:
        self.source, self.text, self.section = source, text, section

    def error(self, key: str | None, message: str) -> PolicyError:
        line = _find_line(self.text, self.section, key)
        place = f"{self.source}:{line}" if line else self.source
        label = f"[{self.section}] {key}: " if key else ""
        return PolicyError(f"{place}: {label}{message}")


def _find_line(text: str | None, section: str, key: str | None) -> int | None:
    if text is None:
        return None
    current = ""
    key_re = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=") if key else None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if key_re is None and current == section:
                return number
        elif key_re is not None and current == section and key_re.match(line):
            return number
    return None


def _build_section(cls: type, values: Mapping[str, Any], where: _Where) -> Any:
    known = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise where.error(key, f"unknown key; [{where.section}] has {_list(known)}")
        try:
            kwargs[key] = _VALIDATORS[(where.section, key)](value)
        except (TypeError, ValueError) as exc:
            raise where.error(key, str(exc)) from exc
    return cls(**kwargs)


# --- value validators ----------------------------------------------------------------


def _integer(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # bool is an int subclass in Python; `max_depth = true` is still a mistake.
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return check


def _number(minimum: float, *, strict: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {_type_name(value)}")
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"greater than {minimum}" if strict else f"at least {minimum}"
            raise ValueError(f"must be a finite number {bound}, got {value}")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_type_name(value)}")
    return value


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {_type_name(value)}")
    return tuple(value)


def _follow(value: Any) -> str:
    if value not in FOLLOW_MODES:
        raise ValueError(f"must be one of {_list(FOLLOW_MODES)}, got {value!r}")
    return str(value)


def _deny_domains(value: Any) -> tuple[str, ...]:
    return _domains(value, variants=True)


def _extra_domains(value: Any) -> tuple[str, ...]:
    # Widening scope: only the spelling the downloader itself produces.
    return _domains(value, variants=False)


def _domains(value: Any, *, variants: bool) -> tuple[str, ...]:
    """Canonical hosts; with *variants*, a Unicode name that Scrapy and browsers encode
    differently (``straße.de``) is kept in both spellings so neither escapes a deny."""
    result: list[str] = []
    for entry in _string_list(value):
        # "*.example.com" and ".example.com" mean what "example.com" means here.
        name = entry.strip().removeprefix("*.").removeprefix(".")
        try:
            hosts = [canonical_host(name), *(sorted(host_variants(name)) if variants else [])]
        except InvalidURL as exc:
            raise ValueError(f"{entry!r} is not a domain name ({exc})") from exc
        result.extend(h for h in hosts if h not in result)
    return tuple(result)


def _patterns(value: Any) -> tuple[str, ...]:
    patterns = _string_list(value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return patterns


def _networks(value: Any) -> tuple[str, ...]:
    result = []
    for entry in _string_list(value):
        try:
            result.append(str(parse_network(entry)))
        except ValueError as exc:
            raise ValueError(f"invalid CIDR {entry!r}: {exc}") from exc
    return tuple(result)


def _media_types(value: Any) -> tuple[str, ...]:
    types = _string_list(value)
    unknown = [t for t in types if t not in MEDIA_TYPES]
    if unknown:
        raise ValueError(f"unknown media type {unknown[0]!r}; expected {_list(MEDIA_TYPES)}")
    return types


def _user_agent(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_type_name(value)}")
    if not value.strip() or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must be a non-empty single line without control characters")
    return value


_VALIDATORS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("scope", "follow"): _follow,
    ("scope", "extra_domains"): _extra_domains,
    ("scope", "deny_domains"): _deny_domains,
    ("scope", "deny_url_patterns"): _patterns,
    ("scope", "max_depth"): _integer(0),
    ("scope", "max_pages"): _integer(1),
    ("scope", "max_pages_per_host"): _integer(1),
    ("media", "fetch_offsite"): _boolean,
    ("media", "max_bytes"): _integer(1),
    ("media", "max_pixels"): _integer(1),
    ("media", "types"): _media_types,
    ("media", "video_max_frames"): _integer(1),
    ("media", "archive_max_members"): _integer(1),
    ("media", "archive_max_unpacked_bytes"): _integer(1),
    ("media", "archive_max_ratio"): _integer(1),
    ("politeness", "obey_robots"): _boolean,
    ("politeness", "user_agent"): _user_agent,
    ("politeness", "per_host_concurrency"): _integer(1),
    ("politeness", "delay_s"): _number(0.0),
    ("politeness", "autothrottle"): _boolean,
    ("politeness", "timeout_s"): _number(0.0, strict=True),
    ("network", "allow_private"): _boolean,
    ("network", "allowed_networks"): _networks,
    ("render", "javascript"): _boolean,
    ("render", "settle_ms"): _integer(0),
    ("render", "max_render_s"): _number(0.0, strict=True),
}


# --- helpers -------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, list | tuple):
        return "a list" if all(isinstance(v, str) for v in value) else "a list of non-strings"
    return names.get(type(value), f"a {type(value).__name__}")


def _list(items: Any) -> str:
    return ", ".join(str(i) for i in items)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml_string(value: str) -> str:
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
