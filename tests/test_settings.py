import pytest
from pydantic import ValidationError

from backend.settings import DEV_BRIDGE_API_KEY, Settings, uri_tls_problems

STRONG = "k" * 40


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "fidus_env": "production",
        "mongodb_uri": "mongodb+srv://fidus:pw@cluster0.example-host.mongodb.net/",
        "jwt_secret": "J" * 48,
        "field_encryption_keys": "A" * 44,
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
