"""Settings: the configuration contract, its defaults, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import Programme, SettingsError, load_settings

TOKEN = "123456:ABC-def_ghi"


def load(tmp_path: Path, **env: str) -> object:
    return load_settings({"BOT_TOKEN": TOKEN, **env}, cwd=tmp_path)


def test_defaults_follow_the_contract(tmp_path: Path) -> None:
    settings = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert settings.bot_api_url == "https://api.telegram.org"
    assert settings.database_path == tmp_path / "data" / "bot.db"
    assert settings.moderator_chat_id is None
    assert settings.moderator_ids == frozenset()
    assert str(settings.timezone) == "Asia/Shanghai"
    assert settings.payout_schedule == "0 10 * * mon"
    assert settings.programme == Programme()


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BOT_TOKEN": TOKEN,
            "BOT_API_URL": "http://127.0.0.1:8081/",
            "DATABASE_URL": "sqlite:////var/lib/bot/x.db",
            "MODERATOR_CHAT_ID": "-1001234",
            "MODERATOR_IDS": "11, 12,13",
            "ADMIN_IDS": "1",
            "FINANCE_CHAT_ID": "-42",
            "TIMEZONE": "Asia/Urumqi",
            "PAYOUT_SCHEDULE": "30 9 1 * *",
        },
        cwd=tmp_path,
    )
    assert settings.bot_api_url == "http://127.0.0.1:8081"
    assert settings.database_path == Path("/var/lib/bot/x.db")
    assert settings.moderator_chat_id == -1001234
    assert settings.moderator_ids == {11, 12, 13}
    assert settings.admin_ids == {1}
    assert settings.finance_chat_id == -42
    assert str(settings.timezone) == "Asia/Urumqi"
    assert "day='1'" in str(settings.payout_trigger())


def test_dotenv_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nADMIN_IDS=5\nTIMEZONE=UTC\n")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.delenv("ADMIN_IDS", raising=False)
    monkeypatch.setenv("TIMEZONE", "Asia/Shanghai")
    settings = load_settings(cwd=tmp_path)
    assert settings.bot_token == TOKEN
    assert settings.admin_ids == {5}
    assert str(settings.timezone) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BOT_TOKEN": ""}, "BOT_TOKEN"),
        ({"BOT_TOKEN": "not a token"}, "BOT_TOKEN"),
        ({"MODERATOR_IDS": "12,abc"}, "MODERATOR_IDS"),
        ({"ADMIN_IDS": "-5"}, "ADMIN_IDS"),
        ({"MODERATOR_CHAT_ID": "chat"}, "MODERATOR_CHAT_ID"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"PAYOUT_SCHEDULE": "every monday"}, "PAYOUT_SCHEDULE"),
        ({"PAYOUT_SCHEDULE": "0 25 * * mon"}, "PAYOUT_SCHEDULE"),
        ({"DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
        ({"BOT_API_URL": "ftp://x"}, "BOT_API_URL"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, env: dict[str, str], setting: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN, **env}, cwd=tmp_path)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert TOKEN not in str(caught.value)


def test_malformed_token_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": "123:hunter2 value"}, cwd=tmp_path)
    assert "hunter2" not in str(caught.value)


def test_telegram_caps_default_to_telegrams_and_may_be_raised(tmp_path: Path) -> None:
    assert load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).rate_limits.group_messages == 20
    (tmp_path / "config.toml").write_text(
        "[telegram]\nmessages_per_second = 100\ngroup_messages_per_minute = 600\n",
        encoding="utf-8",
    )
    limits = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).rate_limits
    assert (limits.messages_per_second, limits.group_messages) == (100, 600)
    assert limits.group_window_seconds == 60


def test_config_toml_overrides_rules(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        """
[reports]
daily_cap = 3

[review]
tiers_yuan = [20, 80]
second_confirmation_yuan = 80

[points]
per_report = 5

[service_area]
box = [39.0, 115.0, 41.0, 117.5]

[[categories]]
key = "pothole"
zh = "坑洼"
en = "Pothole"
tier_yuan = 80
""",
        encoding="utf-8",
    )
    programme = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).programme
    assert programme.reports.daily_cap == 3
    assert programme.review.tiers_fen == (2000, 8000)
    assert programme.review.second_confirmation_fen == 8000
    assert programme.points.per_report == 5
    assert [c.key for c in programme.categories] == ["pothole"]
    assert programme.categories[0].default_reward_fen == 8000
    assert programme.service_area.contains(40.0, 116.4)
    assert not programme.service_area.contains(31.2, 121.5)


def test_places_and_points_limits_read_from_their_tables_or_the_older_care_table(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[places]\nnearby_max_km = 12\n[points]\ncodes_per_rider_per_day = 2\n", encoding="utf-8"
    )
    programme = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).programme
    assert (programme.places.nearby_max_km, programme.points.codes_per_rider_per_day) == (12, 2)

    config.write_text(
        "[care]\nnearby_max_km = 7\ncodes_per_rider_per_day = 3\n"
        "redemptions_per_merchant_per_hour = -1\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match=r"care\.redemptions_per_merchant_per_hour"):
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    config.write_text("[care]\nnearby_max_km = 7\ncodes_per_rider_per_day = 3\n", encoding="utf-8")
    programme = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).programme
    assert (programme.places.nearby_max_km, programme.points.codes_per_rider_per_day) == (7, 3)
    assert programme.points.redemptions_per_merchant_per_hour == 30


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ("[reports\n", "config.toml"),
        ("[reports]\ndaily_cap = 'ten'\n", "reports.daily_cap"),
        ("[reports]\ndaily_cap = -1\n", "reports.daily_cap"),
        ("[review]\ntiers_yuan = [100, 50]\n", "review.tiers_yuan"),
        ("[[categories]]\nkey = 'Bad Key'\nzh = 'x'\nen = 'x'\n", "categories[0].key"),
        (
            "[[categories]]\nkey = 'a'\nzh = 'x'\nen = 'x'\ntier_yuan = 7\n",
            "categories[0].tier_yuan",
        ),
        ("[service_area]\nbox = [1, 2]\n", "service_area"),
        ("[telegram]\ngroup_messages_per_minute = 0\n", "telegram.group_messages_per_minute"),
    ],
)
def test_bad_config_toml_names_the_key(tmp_path: Path, toml: str, setting: str) -> None:
    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert caught.value.setting == setting


def test_unreadable_config_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert caught.value.setting == "config.toml"


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        load_settings(
            {"BOT_TOKEN": TOKEN, "CONFIG_FILE": str(tmp_path / "nope.toml")}, cwd=tmp_path
        )


# --- Cases (即时办): departments, service levels, urgent categories --------------------------

DEPARTMENTS = """
[[categories]]
key = "wire"
zh = "电线"
en = "Fallen wire"
fix_hours = 4
urgent = true

[[categories]]
key = "pothole"
zh = "坑洼"
en = "Pothole"

[[departments]]
key = "power"
zh = "供电所"
en = "Power company"
chat_id = -1001
categories = ["wire"]

[[departments]]
key = "roads"
zh = "公路段"
en = "Roads office"
chat_id = -1002
categories = ["pothole"]
"""


def test_departments_route_categories(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(DEPARTMENTS, encoding="utf-8")
    programme = load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path).programme
    wire = programme.category("wire")
    assert wire is not None
    assert wire.fix_hours == 4
    assert wire.urgent
    pothole = programme.category("pothole")
    assert pothole is not None
    assert pothole.fix_hours == 72
    assert not pothole.urgent
    routed = programme.department_for("wire")
    assert routed is not None
    assert routed.key == "power"
    assert routed.chat_id == -1001
    assert programme.unrouted_categories() == []


def test_without_departments_nothing_is_routed_and_defaults_are_sensible() -> None:
    programme = Programme()
    assert programme.departments == ()
    assert programme.department_for("fire_risk") is None
    urgent = {c.key for c in programme.categories if c.urgent}
    assert urgent == {"traffic_accident", "fire_risk"}
    hours = {c.key: c.fix_hours for c in programme.categories}
    assert hours["fire_risk"] < hours["road_hazard"] < hours["public_facility"]


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        (
            "[[departments]]\nkey='x'\nzh='x'\nen='x'\nchat_id=-3\ncategories=['wire']\n",
            "departments[2].categories",
        ),
        (
            "[[departments]]\nkey='x'\nzh='x'\nen='x'\nchat_id=-3\ncategories=['nope']\n",
            "departments[2].categories",
        ),
        (
            "[[departments]]\nkey='x'\nzh='x'\nen='x'\nchat_id='g'\ncategories=[]\n",
            "departments[2].chat_id",
        ),
        (
            "[[departments]]\nkey='roads'\nzh='x'\nen='x'\nchat_id=-3\ncategories=[]\n",
            "departments",
        ),
    ],
)
def test_bad_departments_name_the_key(tmp_path: Path, extra: str, setting: str) -> None:
    (tmp_path / "config.toml").write_text(DEPARTMENTS + extra, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert caught.value.setting == setting


@pytest.mark.parametrize(
    ("field", "setting"), [("fix_hours = 0", "fix_hours"), ("urgent = 'yes'", "urgent")]
)
def test_bad_service_level_names_the_key(tmp_path: Path, field: str, setting: str) -> None:
    toml = f"[[categories]]\nkey = 'a'\nzh = 'x'\nen = 'x'\n{field}\n"
    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert caught.value.setting == f"categories[0].{setting}"


CHANNELS = """
[[departments]]
key = "water"
zh = "水务局"
en = "Water office"
send = "webhook"
url = "https://12345.county.example/hooks/cases"
secret_env = "WATER_SECRET"
categories = ["pothole"]

[[departments]]
key = "grid"
zh = "网格中心"
en = "Grid centre"
send = "open311"
url = "https://grid.county.example/open311/v2/"
api_key_env = "GRID_KEY"
service_codes = { pothole = "ROAD-01" }
categories = []

[[departments]]
key = "town"
zh = "镇政府"
en = "Town office"
send = "email"
email = "ban@town.example"
categories = []
"""
CHANNEL_ENV = {
    "WATER_SECRET": "water-secret-0123456789",
    "GRID_KEY": "grid-api-key-0123456789",
    "SMTP_HOST": "smtp.county.example",
    "SMTP_USER": "bot@county.example",
    "SMTP_PASSWORD": "mail-password",
    "PUBLIC_URL": "https://bot.county.example/",
}


def test_each_department_names_its_channel_and_secrets_come_from_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text(
        DEPARTMENTS.split("[[departments]]")[0] + CHANNELS, encoding="utf-8"
    )
    settings = load_settings({"BOT_TOKEN": TOKEN, **CHANNEL_ENV}, cwd=tmp_path)
    water, grid, town = settings.programme.departments
    assert (water.send, water.chat_id, water.channel.secret) == (
        "webhook",
        None,
        "water-secret-0123456789",
    )
    assert grid.channel.url == "https://grid.county.example/open311/v2"
    assert grid.channel.service_code("pothole") == "ROAD-01"
    assert grid.channel.service_code("wire") == "wire"
    assert town.channel.email == "ban@town.example"
    assert settings.smtp is not None
    assert (settings.smtp.port, settings.smtp.tls, settings.smtp.sender) == (
        587,
        "starttls",
        "bot@county.example",
    )
    assert settings.web.public_url == "https://bot.county.example"
    assert settings.serves_web
    assert "water-secret" not in repr(settings)
    assert "mail-password" not in repr(settings)


@pytest.mark.parametrize(
    ("drop", "setting"),
    [
        ("WATER_SECRET", "WATER_SECRET"),
        ("GRID_KEY", "GRID_KEY"),
        ("SMTP_HOST", "SMTP_HOST"),
        ("PUBLIC_URL", "PUBLIC_URL"),
        ("SMTP_PASSWORD", "SMTP_PASSWORD"),
    ],
)
def test_a_channel_without_what_it_needs_names_the_setting(
    tmp_path: Path, drop: str, setting: str
) -> None:
    (tmp_path / "config.toml").write_text(
        DEPARTMENTS.split("[[departments]]")[0] + CHANNELS, encoding="utf-8"
    )
    env = {k: v for k, v in CHANNEL_ENV.items() if k != drop}
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN, **env}, cwd=tmp_path)
    assert caught.value.setting == setting


@pytest.mark.parametrize(
    ("entry", "setting"),
    [
        ("send = 'fax'", "departments[0].send"),
        ("send = 'email'\nemail = 'nobody'", "departments[0].email"),
        ("send = 'webhook'\nurl = 'ftp://x'", "departments[0].url"),
        (
            "send = 'webhook'\nurl = 'https://x.example'\nsecret_env = 'lower'",
            "departments[0].secret_env",
        ),
        ("send = 'telegram'", "departments[0].chat_id"),
    ],
)
def test_bad_channels_name_the_key(tmp_path: Path, entry: str, setting: str) -> None:
    toml = f"[[departments]]\nkey='x'\nzh='x'\nen='x'\ncategories=[]\n{entry}\n"
    (tmp_path / "config.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"BOT_TOKEN": TOKEN}, cwd=tmp_path)
    assert caught.value.setting == setting
