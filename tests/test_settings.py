import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from backend.settings import (
    DEV_BRIDGE_API_KEY,
    REPO_ROOT,
    Settings,
    describe_problems,
    uri_tls_problems,
)

STRONG = "k" * 40
FERNET_KEY = Fernet.generate_key().decode()


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "fidus_env": "production",
        "mongodb_uri": "mongodb+srv://fidus:pw@cluster0.example-host.mongodb.net/",
        "jwt_secret": "J" * 48,
        "field_encryption_keys": FERNET_KEY,
        "mt5_bridge_api_key": "B" * 40,
        "backup_encryption_key": "YmFja3VwLWtleS1mb3ItdGhlLXNldHRpbmdzLXRlc3Q=",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_database_name_follows_environment() -> None:
    assert Settings(_env_file=None, fidus_env="test").database_name == "fidus_test"  # type: ignore[call-arg, arg-type]
    assert Settings(_env_file=None, fidus_env="development").database_name == "fidus_development"  # type: ignore[call-arg, arg-type]
    assert production().database_name == "fidus_production"
    assert production(mongodb_database="fund_a").database_name == "fund_a"


def test_valid_production_settings_are_accepted() -> None:
    settings = production()
    assert settings.is_production
    assert not settings.uses_embedded_database


def test_production_without_uri_names_the_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        production(mongodb_uri=None)
    assert "MONGODB_URI is missing" in str(caught.value)


def test_production_lists_every_problem_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        production(jwt_secret="changeme", mt5_bridge_api_key=DEV_BRIDGE_API_KEY,
                   field_encryption_keys="short")
    message = str(caught.value)
    assert "JWT_SECRET is a placeholder value" in message
    assert "MT5_BRIDGE_API_KEY is a placeholder value" in message
    assert "FIELD_ENCRYPTION_KEYS[0] is too short" in message
    assert "FIELD_ENCRYPTION_KEYS[0] is not a Fernet key" in message


def test_production_requires_a_backup_key() -> None:
    with pytest.raises(ValidationError) as caught:
        production(backup_encryption_key="")
    assert "BACKUP_ENCRYPTION_KEY is missing" in str(caught.value)


def test_backup_interval_divides_a_day() -> None:
    with pytest.raises(ValidationError, match="must divide 24"):
        Settings(_env_file=None, backup_interval_hours=5)  # type: ignore[call-arg]
    assert Settings(_env_file=None, backup_interval_hours=6).backup_interval_hours == 6  # type: ignore[call-arg]


def test_production_refuses_remote_host_without_tls() -> None:
    with pytest.raises(ValidationError) as caught:
        production(mongodb_uri="mongodb://db1.internal:27017/")
    assert "non-loopback host without tls=true" in str(caught.value)
    assert production(mongodb_uri="mongodb://db1.internal:27017/?tls=true").is_production
    assert production(mongodb_uri="mongodb://127.0.0.1:27017/").is_production


def test_tls_cannot_be_disabled_for_srv() -> None:
    assert uri_tls_problems("mongodb+srv://h.example.net/?tls=false", production=False)
    assert not uri_tls_problems("mongodb://10.0.0.5:27017/", production=False)


def test_repr_shows_no_secret() -> None:
    settings = production(jwt_secret="S3cret-value-that-must-not-leak-0123456789")
    text = repr(settings) + str(settings)
    assert "S3cret-value" not in text
    assert "cluster0.example-host" not in text


def test_comma_separated_lists() -> None:
    settings = Settings(_env_file=None, google_admin_emails="a@fidus.test, b@fidus.test")  # type: ignore[call-arg]
    assert settings.google_admin_emails == ["a@fidus.test", "b@fidus.test"]


def test_staging_follows_production_rules_with_its_own_database() -> None:
    staging = production(fidus_env="staging")
    assert staging.is_production and not staging.uses_embedded_database
    assert staging.database_name == "fidus_staging"
    assert staging.logs_as_json
    with pytest.raises(ValidationError) as caught:
        production(fidus_env="staging", jwt_secret="changeme", mongodb_uri=None)
    message = describe_problems(caught.value)
    assert message.startswith("refusing to start in staging: ")
    assert "JWT_SECRET is a placeholder value" in message
    assert "MONGODB_URI is missing" in message


@pytest.mark.parametrize("option", ["tlsInsecure=true", "tlsAllowInvalidCertificates=true",
                                    "tlsallowinvalidhostnames=TRUE"])
@pytest.mark.parametrize("environment", ["production", "staging"])
def test_production_refuses_uris_that_turn_off_certificate_checks(option: str,
                                                                 environment: str) -> None:
    for uri in (f"mongodb+srv://fidus:pw@cluster0.example-host.mongodb.net/?{option}",
                f"mongodb://db1.internal:27017/?tls=true&{option}"):
        with pytest.raises(ValidationError) as caught:
            production(fidus_env=environment, mongodb_uri=uri)
        assert "MONGODB_URI turns off certificate checks" in describe_problems(caught.value)
    assert not uri_tls_problems(f"mongodb://127.0.0.1/?tls=true&{option}", production=False)
    assert production(mongodb_uri="mongodb://db1.internal/?tls=true&tlsInsecure=false")


def _start(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`python -m backend` in an empty directory (no .env), with only these settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("FIDUS_", "MONGODB_", "FIELD_", "JWT_", "LOG_"))}
    env.update({"PYTHONPATH": str(REPO_ROOT), "FIDUS_ENV": "test", **environment})
    return subprocess.run([sys.executable, "-m", "backend", "--port", "0"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("environment", "named"), [
    ({"FIDUS_BOOTSTRAP_ADMIN_EMAIL": "admin@probe.test",
      "FIDUS_BOOTSTRAP_ADMIN_PASSWORD": "a-long-passphrase"}, "FIDUS_BOOTSTRAP_ADMIN_EMAIL"),
    ({"FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"}, "FIELD_ENCRYPTION_KEYS[0]"),
    ({"FIDUS_BOOTSTRAP_ADMIN_EMAIL": "admin@fidus.example",
      "FIDUS_BOOTSTRAP_ADMIN_PASSWORD": "short"}, "FIDUS_BOOTSTRAP_ADMIN_PASSWORD"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
    ({"MONGODB_MAX_POOL_SIZE": "many"}, "MONGODB_MAX_POOL_SIZE"),
    ({"FIDUS_ENV": "qa"}, "FIDUS_ENV"),
    ({"MONGODB_URI": "mongodb://fidus:s3cr3t-pw@db1.internal:notaport/"}, "MONGODB_URI"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
        tmp_path: Path, environment: dict[str, str], named: str) -> None:
    started = _start(tmp_path, **environment)
    assert started.returncode == 2, started.stderr
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1, started.stderr
    assert lines[0].startswith("fidus: invalid settings: "), lines[0]
    assert named in lines[0], lines[0]
    assert "Traceback" not in started.stderr and "s3cr3t-pw" not in started.stderr
