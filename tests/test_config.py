"""Settings: parsing, refusal of bad values, and the README documenting every variable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dakera_server.config import SETTINGS, Settings, environment_table
from dakera_server.errors import ConfigError
from tests.processes import BIN

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_match_the_declared_table() -> None:
    defaults = Settings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.attr) == setting.default, setting.env


def test_from_env_parses_types(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DAKERA_PORT": "4000", "DAKERA_AUTH_ENABLED": "false", "DAKERA_DATA_DIR": str(tmp_path)}
    )
    assert settings.port == 4000
    assert settings.auth_enabled is False
    assert settings.data_dir == tmp_path


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DAKERA_PORT": "eighty"}, "DAKERA_PORT"),
        ({"DAKERA_PORT": "70000"}, "DAKERA_PORT"),
        ({"DAKERA_AUTH_ENABLED": "maybe"}, "DAKERA_AUTH_ENABLED"),
        ({"DAKERA_EMBEDDING_PROVIDER": "openai"}, "DAKERA_EMBEDDING_URL"),
        ({"DAKERA_LOG_LEVEL": "loud"}, "DAKERA_LOG_LEVEL"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(
    env: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_bad_config_stops_startup_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN), "serve"],
        env={"DAKERA_PORT": "eighty", "DAKERA_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DAKERA_PORT" in lines[0]


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    assert environment_table() in text, "regenerate the README table: make docs"


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://root:hunter22@db/x",
        "hunter22",
        "postgresql:/hunter22@db",
        "postgresql://a b:hunter22@x",
    ],
)
def test_a_bad_storage_url_is_refused_without_echoing_it(raw: str) -> None:
    with pytest.raises(ConfigError, match="DAKERA_STORAGE_URL") as refused:
        Settings.from_env({"DAKERA_STORAGE_URL": raw})
    assert "hunter22" not in str(refused.value)


def test_the_storage_url_is_secret() -> None:
    url = "postgresql://dakera:hunter22@db.internal:5432/dakera"
    settings = Settings.from_env({"DAKERA_STORAGE_URL": url})
    assert settings.storage_url == url
    assert "hunter22" not in repr(settings)
    assert next(s for s in SETTINGS if s.env == "DAKERA_STORAGE_URL").secret
    assert Settings.from_env({"DAKERA_STORAGE_URL": "postgres://h/db"}).storage_url


def test_the_attachment_limit_has_two_names_that_must_agree() -> None:
    both = {"DAKERA_MAX_ATTACHMENT_BYTES": "1000", "DAKERA_ATTACHMENT_MAX_BYTES": "1000"}
    assert Settings.from_env(both).max_attachment_bytes == 1000
    assert Settings.from_env({"DAKERA_ATTACHMENT_MAX_BYTES": "77"}).max_attachment_bytes == 77
    with pytest.raises(ConfigError) as clash:
        Settings.from_env({**both, "DAKERA_ATTACHMENT_MAX_BYTES": "2000"})
    assert "DAKERA_MAX_ATTACHMENT_BYTES" in str(clash.value)
    assert "DAKERA_ATTACHMENT_MAX_BYTES" in str(clash.value)
