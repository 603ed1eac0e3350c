"""Settings: environment, TOML file, precedence, errors, and documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import SETTINGS_DOC, load_settings
from crawler.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_follow_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_settings({})
    assert cfg.home == tmp_path / ".takedown"
    assert cfg.db_url == f"sqlite:///{tmp_path / '.takedown' / 'takedown.db'}"
    assert cfg.geoip_country is None and cfg.rdap_url is None and cfg.secret_key is None
    assert cfg.categories == ("A", "B", "C")


def test_file_then_environment_wins(tmp_path: Path) -> None:
    conf = tmp_path / "td.toml"
    conf.write_text(
        'TAKEDOWN_DB = "sqlite:///from-file.db"\nredis_url = "redis://127.0.0.1:6379/0"\nfour_eyes = true\n'
    )
    cfg = load_settings({"TAKEDOWN_CONFIG": str(conf), "TAKEDOWN_DB": "sqlite:///from-env.db"})
    assert cfg.db_url == "sqlite:///from-env.db"
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"
    assert cfg.four_eyes is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAKEDOWN_FLOOD_LIMIT": "many"}, "TAKEDOWN_FLOOD_LIMIT"),
        ({"TAKEDOWN_FOUR_EYES": "perhaps"}, "TAKEDOWN_FOUR_EYES"),
        ({"TAKEDOWN_CATEGORIES": " , "}, "TAKEDOWN_CATEGORIES"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_settings(env)


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "td.toml"
    conf.write_text('TAKEDOWN_DATABASE = "x"\n')
    with pytest.raises(UsageError, match="unknown setting 'TAKEDOWN_DATABASE'"):
        load_settings({"TAKEDOWN_CONFIG": str(conf)})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS_DOC if f"TAKEDOWN_{name}" not in readme]
    assert missing == []
