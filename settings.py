"""Typed settings: the environment (and a `.env` file) plus an optional `config.toml`.

The environment carries what differs between deployments (token, chats, ids, schedule); the
TOML file carries the programme's rules (categories, reward tiers, points, service area, caps).
Every problem becomes one `SettingsError` naming the setting; `bot.py` prints it and exits 2.
The token's value never appears in an error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from dotenv import dotenv_values

from services.geo import ServiceArea
from services.towns import Towns, TownsError
from services.workdays import Span, Unit

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Rules = TypeVar("_Rules", bound="DataclassInstance")

TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]{1,200}$")
DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_DATABASE_URL = "sqlite:///data/bot.db"
LOG_LEVELS = ("debug", "info", "warning", "error")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


@dataclass(frozen=True)
class Category:
    """A report category shown as a button, with the reward tier moderators see marked."""

    key: str
    name_zh: str
    name_en: str
    default_reward_fen: int
    fix_hours: int = 72  # the service level of its cases: due this long after dispatch
    urgent: bool = False  # emergency numbers first, jumps the review queue
    fix_workdays: int | None = None  # set: due at the end of the Nth working day instead
    accept_hours: int | None = None  # 签收: the department must accept within this
    accept_workdays: int | None = None  # ... or by the end of the Nth working day

    def name(self, language: str) -> str:
        return self.name_zh if language == "zh" else self.name_en

    @property
    def fix(self) -> Span:
        """How long a department has to fix it, from dispatch."""
        if self.fix_workdays is not None:
            return Span(self.fix_workdays, Unit.WORKDAYS)
        return Span(self.fix_hours, Unit.HOURS)

    @property
    def accept(self) -> Span:
        """How long a department has to accept it (签收), from dispatch: unless set, a quarter
        of the hours to fix (at least one), or one working day when fixing counts working days."""
        if self.accept_workdays is not None:
            return Span(self.accept_workdays, Unit.WORKDAYS)
        if self.accept_hours is not None:
            return Span(self.accept_hours, Unit.HOURS)
        if self.fix_workdays is not None:
            return Span(1, Unit.WORKDAYS)
        return Span(max(1, self.fix_hours // 4), Unit.HOURS)


DEFAULT_CATEGORIES = (
    Category("road_hazard", "道路隐患", "Road hazard", 10000, fix_hours=24),
    Category("traffic_accident", "交通事故", "Traffic accident", 10000, fix_hours=2, urgent=True),
    Category("fire_risk", "火灾隐患", "Fire risk", 15000, fix_hours=4, urgent=True),
    Category("public_order", "治安问题", "Public order", 10000, fix_hours=24),
    Category("public_facility", "公共设施损坏", "Damaged public facility", 5000, fix_hours=72),
    Category("sanitation", "环境卫生", "Environment and sanitation", 5000, fix_hours=48),
    Category("other", "其他", "Other", 5000, fix_hours=72),
)


@dataclass(frozen=True)
class Channel:
    """How a department receives its cases (`send`) and takes them back: its Telegram group,
    e-mail, a signed webhook or an Open311 (GeoReport v2) endpoint."""

    send: str = "telegram"  # one of SEND_METHODS
    email: str | None = None  # email: the department's address
    url: str | None = None  # webhook: the receiver; open311: the endpoint's root
    # webhook: signs what is sent and what comes back; from the environment variable that
    # `secret_env` names, never from config.toml itself
    secret: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)  # open311, from `api_key_env`
    service_codes: tuple[tuple[str, str], ...] = ()  # open311: category -> service_code

    def service_code(self, category: str | None) -> str:
        """The Open311 service_code of a category (the category's key unless mapped)."""
        return dict(self.service_codes).get(category or "", category or "other")


SEND_METHODS = ("telegram", "email", "webhook", "open311")


@dataclass(frozen=True)
class Department:
    """A body that fixes hazards of some categories; its staff work in the chat `chat_id`
    (a Telegram group), or in their own system that `channel` reaches."""

    key: str
    name_zh: str
    name_en: str
    chat_id: int | None
    categories: tuple[str, ...]
    towns: tuple[str, ...] = ()  # empty: county-wide; else only these towns (乡镇/街道)
    channel: Channel = field(default_factory=Channel)

    @property
    def send(self) -> str:
        return self.channel.send

    def name(self, language: str) -> str:
        return self.name_zh if language == "zh" else self.name_en

    def handles(self, category: str | None, town: str | None) -> bool:
        return category in self.categories and (not self.towns or town in self.towns)


@dataclass(frozen=True)
class ReportRules:
    """`[reports]`: what a rider's report may hold."""

    daily_cap: int = 10
    max_photos: int = 5
    description_max_chars: int = 500
    photo_max_pixels: int = 50_000_000
    photo_decode_mb: int = 64  # PNG, WebP, progressive JPEG: pixel limit = this / cost per pixel
    photos_per_hour: int = 20  # per rider, across drafts (cancelled ones too)
    photo_fresh_hours: int = 24
    location_mismatch_m: int = 500
    draft_expiry_hours: int = 24


@dataclass(frozen=True)
class ReviewRules:
    """`[review]`: reward tiers and the moderators' 24-hour promise."""

    tiers_fen: tuple[int, ...] = (5000, 10000, 15000, 20000)
    second_confirmation_fen: int = 20000
    duplicate_radius_m: int = 200
    deadline_hours: int = 24
    digest_after_hours: int = 2
    escalate_after_hours: int = 20
    question_remind_hours: int = 6
    question_expiry_hours: int = 24


@dataclass(frozen=True)
class PointsRules:
    """`[points]`: points earned per report and spent at merchants."""

    per_report: int = 10
    per_10_yuan: int = 1
    codes_per_rider_per_day: int = 5
    redemptions_per_merchant_per_hour: int = 30


@dataclass(frozen=True)
class PayoutRules:
    """`[payout]`: the smallest payout and the reward budget (None: no budget)."""

    minimum_fen: int = 0
    budget_month_fen: int | None = None
    budget_year_fen: int | None = None


@dataclass(frozen=True)
class RetentionRules:
    """`[retention]`: how long report photos are kept."""

    photo_days: int = 90


@dataclass(frozen=True)
class PlacesRules:
    """`[places]`: stations and merchants near the rider."""

    nearby_max_km: int = 30


@dataclass(frozen=True)
class CaseRules:
    """`[cases]`: a case's life after "fixed"."""

    confirm_days: int = 3  # the rider's silence after "fixed" confirms it (as 基本满意)
    supervision_reply_hours: int = 24  # 督办: the department's reply is due within this
    urge_after_hours: int = 24  # 催办: an overdue case is urged this long after its due time


@dataclass(frozen=True)
class DeliveryRules:
    """`[delivery]`: handing cases to departments' own systems (e-mail, webhook, Open311)."""

    retry_seconds: int = 30  # the first retry; each later one waits twice as long
    retry_max_seconds: int = 300  # at most this between attempts, however long it is down
    alert_after: int = 5  # failed attempts before admins are told "not delivered"
    timeout_seconds: int = 20  # one attempt
    poll_seconds: int = 300  # Open311: how often the endpoint's requests are read back


@dataclass(frozen=True)
class DigestRules:
    """`[digest]`: the weekly digest of last week."""

    weekday: int = 0  # 0 = Monday (Python's numbering)
    time: tuple[int, int] = (9, 0)  # hour, minute in TIMEZONE
    enabled: bool = True


@dataclass(frozen=True)
class ExportRules:
    """`[export]`: how the register (台账) is written."""

    english_headers: bool = False  # a row of English headers under the Chinese ones


TILE_SOURCES = ("none", "osm", "amap", "tianditu")


@dataclass(frozen=True)
class DashboardRules:
    """`[dashboard]`: the county office's page. `tiles` is the map under the cases: none
    (the towns' outlines only, so it works without internet), OpenStreetMap, Amap (高德) or
    Tianditu (天地图, which needs the browser key `tianditu_key`)."""

    tiles: str = "none"
    tianditu_key: str = ""
    link_hours: int = 24  # how long an admin's /dashboard link opens the page


@dataclass(frozen=True)
class Programme:
    """The programme's rules from `config.toml`, nested as its tables are; every field has a
    built-in default. No departments means approved reports do not become cases."""

    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    departments: tuple[Department, ...] = ()
    service_area: ServiceArea = field(default_factory=ServiceArea.everywhere)
    reports: ReportRules = field(default_factory=ReportRules)
    review: ReviewRules = field(default_factory=ReviewRules)
    points: PointsRules = field(default_factory=PointsRules)
    payout: PayoutRules = field(default_factory=PayoutRules)
    retention: RetentionRules = field(default_factory=RetentionRules)
    places: PlacesRules = field(default_factory=PlacesRules)
    cases: CaseRules = field(default_factory=CaseRules)
    delivery: DeliveryRules = field(default_factory=DeliveryRules)
    digest: DigestRules = field(default_factory=DigestRules)
    export: ExportRules = field(default_factory=ExportRules)
    dashboard: DashboardRules = field(default_factory=DashboardRules)
    towns: Towns = field(default_factory=Towns.none)

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)

    def department(self, key: str) -> Department | None:
        return next((d for d in self.departments if d.key == key), None)

    def department_for(self, category: str | None, town: str | None = None) -> Department | None:
        """Who handles `category` in `town`, most specific first: a department of that town,
        else a county-wide one (None: not routed)."""
        handling = [d for d in self.departments if d.handles(category, town)]
        return min(handling, key=lambda d: not d.towns, default=None)

    def unrouted_categories(self) -> list[str]:
        """'<category>' (nowhere) or '<category> @ <town>' for each category and town (未分区,
        outside every town, included as '-') no department handles; only a problem once
        departments exist."""
        towns: list[str | None] = [*self.towns.names, None]
        missing = []
        for category in self.categories:
            gaps = [t for t in towns if self.department_for(category.key, t) is None]
            if len(gaps) == len(towns):
                missing.append(category.key)
            else:
                missing += [f"{category.key} @ {t or '-'}" for t in gaps]
        return missing


@dataclass(frozen=True)
class RateLimits:
    """Telegram's caps, which the bot's rate limiter keeps to (tests shrink the windows)."""

    messages_per_second: int = 30
    group_messages: int = 20
    group_window_seconds: float = 60.0
    # About one message a second into one private chat; Telegram lets short bursts through,
    # so a rider's quick steps are not slowed, only a long run of messages is.
    private_messages: int = 10
    private_window_seconds: float = 10.0
    # A user's updates waiting beyond this many are dropped, with one "slow down" answer.
    max_queued_updates: int = 20
    max_retries: int = 5
    network_retries: int = 3


@dataclass(frozen=True)
class Webhook:
    """Webhook mode: Telegram posts updates to `url`; the bot's web server (`Web`) listens
    behind a reverse proxy."""

    url: str
    secret: str = field(repr=False)

    @property
    def path(self) -> str:
        """The path part of the public URL, which the proxy forwards unchanged."""
        return self.url.split("://", 1)[1].partition("/")[2]


@dataclass(frozen=True)
class Web:
    """The bot's own web server: Telegram's webhook, departments' updates, the e-mail
    channel's pages and case photos. `public_url` is where departments reach it."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8443
    public_url: str | None = None


@dataclass(frozen=True)
class Smtp:
    """The mail server the e-mail channel sends through."""

    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: str = "starttls"  # starttls, tls (implicit, port 465) or none (a relay on localhost)


@dataclass(frozen=True)
class Settings:
    bot_token: str = field(repr=False)
    bot_api_url: str = DEFAULT_API_URL
    database_path: Path = Path("data/bot.db")
    database_url: str | None = field(default=None, repr=False)
    """A postgresql:// URL (it may carry a password); None: SQLite at `database_path`."""
    moderator_chat_id: int | None = None
    moderator_ids: frozenset[int] = frozenset()
    admin_ids: frozenset[int] = frozenset()
    finance_chat_id: int | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    payout_schedule: str = "0 10 * * mon"
    programme: Programme = field(default_factory=Programme)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    webhook: Webhook | None = None
    backup_dir: Path = Path("data/backups")
    backups_kept: int = 14
    log_format: str = "text"
    log_level: str = "info"
    card_secret: str | None = field(default=None, repr=False)  # CARD_SECRET: signs 联新卡 QRs
    web: Web = field(default_factory=Web)
    smtp: Smtp | None = None
    # From HTTPS_PROXY / ALL_PROXY (HTTP_PROXY for an http:// BOT_API_URL), unless NO_PROXY
    # names the Bot API's host. It may carry a password, so it stays out of repr().
    proxy: str | None = field(default=None, repr=False)

    @property
    def serves_web(self) -> bool:
        """Whether the web server runs: for Telegram's webhook, the county office's page, or
        a department that sends its updates back (webhook) or closes cases from an e-mail's
        page."""
        sends = {d.send for d in self.programme.departments}
        return (
            self.webhook is not None
            or self.web.public_url is not None  # the county office's page (/dashboard)
            or bool(sends & {"email", "webhook"})
        )

    @property
    def link_key(self) -> bytes:
        """Signs the links the bot hands out (e-mail pages, case photos); from the token, so a
        new token voids every link."""
        return hashlib.sha256(b"suishoupai links\0" + self.bot_token.encode()).digest()

    @property
    def database(self) -> Path | str:
        """What `storage.db.Database` opens: the PostgreSQL URL if set, else the SQLite file."""
        return self.database_url or self.database_path

    def payout_trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.payout_schedule, timezone=self.timezone)


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings from `environ` (default: the process environment over `cwd/.env`)."""
    cwd = cwd or Path.cwd()
    if environ is None:
        env_file = cwd / ".env"
        from_file = dotenv_values(env_file) if env_file.is_file() else {}
        environ = {**{k: v for k, v in from_file.items() if v is not None}, **os.environ}

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    token = get("BOT_TOKEN")
    if not token:
        raise SettingsError("BOT_TOKEN", "missing; set it to the token from @BotFather")
    if not TOKEN_PATTERN.fullmatch(token):
        raise SettingsError("BOT_TOKEN", "malformed; expected digits, a colon and the secret")

    timezone = _timezone(get("TIMEZONE") or "Asia/Shanghai")
    schedule = get("PAYOUT_SCHEDULE") or "0 10 * * mon"
    try:
        CronTrigger.from_crontab(schedule, timezone=timezone)
    except ValueError as exc:
        raise SettingsError("PAYOUT_SCHEDULE", f"not a 5-field cron expression ({exc})") from None

    config_path = Path(get("CONFIG_FILE") or cwd / "config.toml")
    api_url = _api_url(get("BOT_API_URL") or DEFAULT_API_URL)
    database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
    config = _ConfigReader(
        read_config(config_path, required=bool(get("CONFIG_FILE"))), config_path.parent, get
    )
    programme = config.programme()
    webhook = _webhook(get("WEBHOOK_URL"), get("WEBHOOK_SECRET"))
    web = _web(get("WEB_LISTEN") or get("WEBHOOK_LISTEN"), get("PUBLIC_URL"))
    smtp = _smtp(get)
    _check_channels(programme, web, smtp)
    return Settings(
        bot_token=token,
        bot_api_url=api_url,
        database_path=_database_path(database_url, cwd),
        database_url=database_url
        if database_url.startswith(("postgresql://", "postgres://"))
        else None,
        moderator_chat_id=_optional_id("MODERATOR_CHAT_ID", get("MODERATOR_CHAT_ID")),
        moderator_ids=_id_list("MODERATOR_IDS", get("MODERATOR_IDS")),
        admin_ids=_id_list("ADMIN_IDS", get("ADMIN_IDS")),
        finance_chat_id=_optional_id("FINANCE_CHAT_ID", get("FINANCE_CHAT_ID")),
        timezone=timezone,
        payout_schedule=schedule,
        programme=programme,
        rate_limits=config.rate_limits(),
        webhook=webhook,
        web=web,
        smtp=smtp,
        backup_dir=_folder("BACKUP_DIR", get("BACKUP_DIR") or "data/backups", cwd),
        backups_kept=_positive("BACKUPS_KEPT", get("BACKUPS_KEPT") or "14"),
        log_format=_choice("LOG_FORMAT", get("LOG_FORMAT") or "text", ("text", "json")),
        log_level=_choice("LOG_LEVEL", (get("LOG_LEVEL") or "info").lower(), LOG_LEVELS),
        proxy=_proxy(api_url, get),
        card_secret=_card_secret(get("CARD_SECRET")),
    )


def _listen(name: str, value: str) -> tuple[str, int]:
    host, _, port = (value or "127.0.0.1:8443").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(name, f"expected host:port, got {value!r}")
    return host, int(port)


def _web(listen: str, public_url: str) -> Web:
    """WEB_LISTEN (WEBHOOK_LISTEN, its older name) and PUBLIC_URL."""
    host, port = _listen("WEB_LISTEN", listen)
    if public_url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", public_url):
        raise SettingsError("PUBLIC_URL", f"expected an http(s):// URL, got {public_url!r}")
    return Web(host, port, public_url.rstrip("/") or None)


def _smtp(get: Callable[[str], str]) -> Smtp | None:
    """SMTP_HOST and its companions; None when unset."""
    host = get("SMTP_HOST")
    if not host:
        return None
    tls = _choice("SMTP_TLS", (get("SMTP_TLS") or "starttls").lower(), ("starttls", "tls", "none"))
    port = _positive("SMTP_PORT", get("SMTP_PORT") or ("465" if tls == "tls" else "587"))
    sender = get("SMTP_FROM") or get("SMTP_USER")
    if "@" not in sender:
        raise SettingsError("SMTP_FROM", "expected the address cases are sent from")
    user = get("SMTP_USER") or None
    password = get("SMTP_PASSWORD") or None
    if (user is None) != (password is None):
        raise SettingsError("SMTP_PASSWORD", "SMTP_USER and SMTP_PASSWORD go together")
    return Smtp(host, port, sender, user, password, tls)


def _check_channels(programme: Programme, web: Web, smtp: Smtp | None) -> None:
    """What each department's channel needs from the environment is there."""
    for department in programme.departments:
        name = f"departments.{department.key}"
        if department.send == "email" and smtp is None:
            raise SettingsError("SMTP_HOST", f"{name} sends by e-mail; set the mail server")
        if department.send == "email" and web.public_url is None:
            raise SettingsError(
                "PUBLIC_URL", f"{name} sends by e-mail, whose links need the bot's public URL"
            )


def _card_secret(value: str) -> str | None:
    """CARD_SECRET: needed only for the 联新卡; at least 16 characters when set."""
    if not value:
        return None
    if len(value) < 16:
        raise SettingsError("CARD_SECRET", "needs at least 16 characters")
    return value


def _proxy(api_url: str, get: Callable[[str], str]) -> str | None:
    """The proxy for the Bot API, chosen from the environment as httpx would choose it."""
    scheme = api_url.partition("://")[0]
    for name in (f"{scheme.upper()}_PROXY", "ALL_PROXY"):
        value = get(name.lower()) or get(name)
        if value:
            break
    else:
        return None
    host = urllib.parse.urlsplit(api_url).hostname or ""
    if _bypassed(host, get("no_proxy") or get("NO_PROXY")):
        return None
    url = value if "://" in value else f"http://{value}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise SettingsError(
            name,
            "expected a proxy URL such as http://host:port or socks5://host:port, "
            f"got {redact_url(url)!r}",
        )
    return url


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY (`*`, or comma-separated hosts and domains) names `host`."""
    for entry in no_proxy.lower().split(","):
        entry = entry.strip().lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith(f".{entry}"))):
            return True
    return False


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _webhook(url: str, secret: str) -> Webhook | None:
    if not url:
        return None
    if not re.fullmatch(r"https://[^\s/]+(/[^\s]*)?", url):
        raise SettingsError("WEBHOOK_URL", f"expected a public https:// URL, got {url!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret):
        raise SettingsError(
            "WEBHOOK_SECRET", "needs 16-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
        )
    return Webhook(url=url, secret=secret)


def _folder(name: str, value: str, cwd: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else cwd / path


def _positive(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(name, f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError("TIMEZONE", f"unknown time zone {name!r}") from None


def _api_url(url: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
        raise SettingsError("BOT_API_URL", f"not an http(s) URL: {url!r}")
    return url.rstrip("/")


def _database_path(url: str, cwd: Path) -> Path:
    """The SQLite file; for a PostgreSQL URL, the default path (unused)."""
    prefix = "sqlite:///"
    if re.fullmatch(r"postgres(ql)?://[^\s/]*/[^\s/?]+(\?\S*)?", url):
        return cwd / "data" / "bot.db"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise SettingsError(
            "DATABASE_URL",
            "expected sqlite:///relative.db, sqlite:////abs.db or postgresql://user@host/db",
        )
    path = Path(url[len(prefix) :])
    return path if path.is_absolute() else cwd / path


def _optional_id(name: str, value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(name, f"not a Telegram chat id: {value!r}") from None


def _id_list(name: str, value: str) -> frozenset[int]:
    ids: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise SettingsError(name, f"expected comma-separated user ids, got {part!r}")
        ids.add(int(part))
    return frozenset(ids)


def read_config(path: Path, *, required: bool = False) -> dict[str, Any]:
    """Parse `config.toml`; a missing file means the built-in defaults (an empty table)."""
    if not path.exists() and not required:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError("config.toml", f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError("config.toml", f"not valid TOML: {exc}") from None


class _ConfigReader:
    """Reads `config.toml` tables into a `Programme` and the `RateLimits`, naming the key of
    any bad value."""

    def __init__(
        self,
        data: dict[str, Any],
        directory: Path = Path(),
        environ: Callable[[str], str] = lambda name: "",
    ) -> None:
        self.data = data
        self.environ = environ  # for the secrets config.toml names but never holds
        self.towns = self._towns(directory)

    def _towns(self, directory: Path) -> Towns:
        """`[towns] file`: the county's towns (and grids) as GeoJSON, relative to config.toml."""
        name = self._get("towns", "file", str, "")
        if not name:
            return Towns.none()
        try:
            return Towns.load(directory / name)
        except TownsError as exc:
            raise SettingsError("towns.file", str(exc)) from None

    def rate_limits(self) -> RateLimits:
        """[telegram]: the caps the bot paces its sends to. Telegram's are the defaults; raise
        them only where Telegram has (paid broadcasts lift the overall cap) or for a stand-in."""
        defaults = RateLimits()
        limits = {
            "messages_per_second": defaults.messages_per_second,
            "group_messages_per_minute": defaults.group_messages,
        }
        for key, default in limits.items():
            limits[key] = int(self._get("telegram", key, int, default))
            if limits[key] < 1:
                raise SettingsError(f"telegram.{key}", "must be at least 1")
        return dataclasses.replace(
            defaults,
            messages_per_second=limits["messages_per_second"],
            group_messages=limits["group_messages_per_minute"],
        )

    def programme(self) -> Programme:
        tiers = tuple(
            _yuan_to_fen("review.tiers_yuan", v)
            for v in self._get("review", "tiers_yuan", list, [50, 100, 150, 200])
        )
        if not tiers or list(tiers) != sorted(set(tiers)):
            raise SettingsError("review.tiers_yuan", "expected increasing positive amounts")
        try:
            area = ServiceArea.from_config(self.data.get("service_area"))
        except ValueError as exc:
            raise SettingsError("service_area", str(exc)) from None
        categories = self._categories(tiers)
        review = self._counts("review", ReviewRules(), frozenset({"second_confirmation_fen"}))
        return Programme(
            categories=categories,
            departments=self._departments(categories),
            service_area=area,
            reports=self._counts("reports", ReportRules()),
            review=dataclasses.replace(
                review,
                tiers_fen=tiers,
                second_confirmation_fen=_yuan_to_fen(
                    "review.second_confirmation_yuan",
                    self._get("review", "second_confirmation_yuan", int, 200),
                ),
            ),
            points=self._counts("points", PointsRules()),
            payout=PayoutRules(
                minimum_fen=_yuan_to_fen(
                    "payout.minimum_yuan", self._get("payout", "minimum_yuan", int, 0)
                ),
                budget_month_fen=self._budget("budget_yuan_per_month"),
                budget_year_fen=self._budget("budget_yuan_per_year"),
            ),
            retention=self._counts("retention", RetentionRules()),
            places=self._counts("places", PlacesRules()),
            cases=self._counts("cases", CaseRules()),
            delivery=self._delivery(),
            digest=DigestRules(
                weekday=self._weekday(),
                time=self._clock_time(),
                enabled=self._flag("digest", "enabled", True),
            ),
            export=ExportRules(english_headers=self._flag("export", "english_headers", False)),
            dashboard=self._dashboard(),
            towns=self.towns,
        )

    def _counts(self, section: str, defaults: _Rules, skip: frozenset[str] = frozenset()) -> _Rules:
        """The whole numbers of `[section]`, one per field of `defaults` named alike (none
        negative). `[care]`, the older name of `[places]` and of the points' code limits, is
        still read where the newer table leaves a key out."""
        values: dict[str, int] = {}
        given, older = (self.data.get(name) for name in (section, "care"))
        for item in dataclasses.fields(defaults):
            default = getattr(defaults, item.name)
            if item.name in skip or type(default) is not int:
                continue
            newer_has = isinstance(given, dict) and item.name in given
            older_has = isinstance(older, dict) and item.name in older
            where = "care" if older_has and not newer_has else section
            value = int(self._get(where, item.name, int, default))
            if value < 0:
                raise SettingsError(f"{where}.{item.name}", "must not be negative")
            values[item.name] = value
        return dataclasses.replace(defaults, **values)

    def _dashboard(self) -> DashboardRules:
        tiles = self._get("dashboard", "tiles", str, "none")
        if tiles not in TILE_SOURCES:
            raise SettingsError("dashboard.tiles", f"expected one of {', '.join(TILE_SOURCES)}")
        key = self._get("dashboard", "tianditu_key", str, "")
        if tiles == "tianditu" and not key:
            raise SettingsError("dashboard.tianditu_key", "Tianditu's tiles need a browser key")
        hours = int(self._get("dashboard", "link_hours", int, 24))
        if not 1 <= hours <= 24 * 31:
            raise SettingsError("dashboard.link_hours", "expected 1 to 744 hours")
        return DashboardRules(tiles, key, hours)

    def _flag(self, section: str, key: str, default: bool) -> bool:
        table = self.data.get(section, {})
        value = table.get(key, default) if isinstance(table, dict) else default
        if not isinstance(value, bool):
            raise SettingsError(f"{section}.{key}", f"expected true or false, got {value!r}")
        return value

    def _budget(self, key: str) -> int | None:
        """`[payout] budget_yuan_per_month` / `_per_year`: a positive whole number, or unset."""
        value = self._get("payout", key, int, 0)
        if value < 0:
            raise SettingsError(f"payout.{key}", "must not be negative")
        return _yuan_to_fen(f"payout.{key}", value) or None

    def _weekday(self) -> int:
        """`[digest] weekday`: mon, tue, ... sun."""
        value = str(self._get("digest", "weekday", str, "mon")).lower()[:3]
        if value not in WEEKDAYS:
            raise SettingsError("digest.weekday", f"expected one of {', '.join(WEEKDAYS)}")
        return WEEKDAYS.index(value)

    def _clock_time(self) -> tuple[int, int]:
        """`[digest] time`: HH:MM in TIMEZONE."""
        value = self._get("digest", "time", str, "09:00")
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise SettingsError("digest.time", f"expected HH:MM, got {value!r}")
        return int(match[1]), int(match[2])

    def _get(self, section: str, key: str, kind: type[Any], default: Any) -> Any:
        table = self.data.get(section, {})
        if not isinstance(table, dict):
            raise SettingsError(section, "expected a table")
        value = table.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SettingsError(f"{section}.{key}", f"expected {kind.__name__}, got {value!r}")
        return value

    def _categories(self, tiers: tuple[int, ...]) -> tuple[Category, ...]:
        raw = self.data.get("categories")
        if raw is None:
            return DEFAULT_CATEGORIES
        if not isinstance(raw, list) or not raw:
            raise SettingsError("categories", "expected a non-empty [[categories]] list")
        categories: list[Category] = []
        for index, entry in enumerate(raw):
            name = f"categories[{index}]"
            if not isinstance(entry, dict):
                raise SettingsError(name, "expected a table")
            key, zh, en = (entry.get(k) for k in ("key", "zh", "en"))
            if not (isinstance(key, str) and re.fullmatch(r"[a-z0-9_]{1,24}", key)):
                raise SettingsError(f"{name}.key", "expected 1-24 of a-z, 0-9 and _")
            if not (isinstance(zh, str) and zh and isinstance(en, str) and en):
                raise SettingsError(name, "needs non-empty zh and en names")
            tier = _yuan_to_fen(f"{name}.tier_yuan", entry.get("tier_yuan", tiers[0] // 100))
            if tier not in tiers:
                raise SettingsError(f"{name}.tier_yuan", "must be one of review.tiers_yuan")
            built_in = next((c for c in DEFAULT_CATEGORIES if c.key == key), None)
            fix_hours = entry.get("fix_hours", built_in.fix_hours if built_in else 72)
            if not isinstance(fix_hours, int) or isinstance(fix_hours, bool) or fix_hours < 1:
                raise SettingsError(f"{name}.fix_hours", "expected a whole number of hours >= 1")
            urgent = entry.get("urgent", built_in.urgent if built_in else False)
            if not isinstance(urgent, bool):
                raise SettingsError(f"{name}.urgent", "expected true or false")
            spans = {k: _span_count(entry, name, k) for k in SPAN_KEYS}
            for kind in ("fix", "accept"):
                if spans[f"{kind}_workdays"] is not None and f"{kind}_hours" in entry:
                    raise SettingsError(name, f"give {kind}_hours or {kind}_workdays, not both")
            category = Category(key, zh, en, tier, fix_hours, urgent, **spans)
            if category.accept.unit == category.fix.unit and (
                category.accept.amount > category.fix.amount
            ):
                raise SettingsError(name, "the time to accept is longer than the time to fix")
            categories.append(category)
        if len({c.key for c in categories}) != len(categories):
            raise SettingsError("categories", "keys must be unique")
        return tuple(categories)

    def _departments(self, categories: tuple[Category, ...]) -> tuple[Department, ...]:
        """`[[departments]]`: each category may be handled by one department at most."""
        raw = self.data.get("departments")
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise SettingsError("departments", "expected a [[departments]] list")
        known = {c.key for c in categories}
        owner: dict[tuple[str, str | None], str] = {}
        departments: list[Department] = []
        for index, entry in enumerate(raw):
            name = f"departments[{index}]"
            if not isinstance(entry, dict):
                raise SettingsError(name, "expected a table")
            key, zh, en = (entry.get(k) for k in ("key", "zh", "en"))
            if not (isinstance(key, str) and re.fullmatch(r"[a-z0-9_]{1,24}", key)):
                raise SettingsError(f"{name}.key", "expected 1-24 of a-z, 0-9 and _")
            if not (isinstance(zh, str) and zh and isinstance(en, str) and en):
                raise SettingsError(name, "needs non-empty zh and en names")
            channel = self._channel(name, entry)
            chat_id = entry.get("chat_id")
            optional = channel.send != "telegram"  # a group beside its own system, if any
            if not (chat_id is None and optional) and (
                not isinstance(chat_id, int) or isinstance(chat_id, bool)
            ):
                raise SettingsError(f"{name}.chat_id", "expected the department chat's id")
            handled = entry.get("categories")
            if not isinstance(handled, list) or not all(isinstance(c, str) for c in handled):
                raise SettingsError(f"{name}.categories", "expected a list of category keys")
            towns = entry.get("towns", [])
            if not isinstance(towns, list) or not all(isinstance(t, str) and t for t in towns):
                raise SettingsError(f"{name}.towns", "expected a list of town names")
            for town in towns:
                if town not in self.towns.names:
                    raise SettingsError(
                        f"{name}.towns", f"{town!r} is not a town of the towns file"
                    )
            for category in handled:
                if category not in known:
                    raise SettingsError(f"{name}.categories", f"unknown category {category!r}")
                for town in towns or [None]:
                    where = f" in {town}" if town else " county-wide"
                    if (category, town) in owner:
                        raise SettingsError(
                            f"{name}.categories",
                            f"{category!r} is already handled{where} by department "
                            f"{owner[category, town]!r}",
                        )
                    owner[category, town] = key
            departments.append(
                Department(key, zh, en, chat_id, tuple(handled), tuple(towns), channel)
            )
        if len({d.key for d in departments}) != len(departments):
            raise SettingsError("departments", "keys must be unique")
        return tuple(departments)

    def _channel(self, name: str, entry: Mapping[str, object]) -> Channel:
        """A department's `send` and what that method needs."""
        send = entry.get("send", "telegram")
        if send not in SEND_METHODS:
            raise SettingsError(f"{name}.send", f"expected one of {', '.join(SEND_METHODS)}")
        if send == "telegram":
            return Channel()
        if send == "email":
            email = entry.get("email")
            if not (isinstance(email, str) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
                raise SettingsError(f"{name}.email", "expected the department's e-mail address")
            return Channel(send, email=email)
        url = entry.get("url")
        if not (isinstance(url, str) and re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url)):
            raise SettingsError(f"{name}.url", f"expected the {send} endpoint's http(s):// URL")
        if send == "webhook":
            secret = self._secret(name, entry, "secret_env")
            return Channel(send, url=url, secret=secret)
        codes = entry.get("service_codes", {})
        if not isinstance(codes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in codes.items()
        ):
            raise SettingsError(f"{name}.service_codes", 'expected category = "code" pairs')
        return Channel(
            send,
            url=url.rstrip("/"),
            api_key=self._secret(name, entry, "api_key_env"),
            service_codes=tuple(sorted(codes.items())),
        )

    def _secret(self, name: str, entry: Mapping[str, object], key: str) -> str:
        """The secret in the environment variable `entry[key]` names (at least 16 chars)."""
        variable = entry.get(key)
        if not (isinstance(variable, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", variable)):
            raise SettingsError(f"{name}.{key}", "expected the name of an environment variable")
        value = self.environ(variable)
        if len(value) < 16:
            raise SettingsError(variable, f"{name}.{key} names it: needs at least 16 characters")
        return value

    def _delivery(self) -> DeliveryRules:
        rules = self._counts("delivery", DeliveryRules())
        for key in ("retry_seconds", "retry_max_seconds", "alert_after", "timeout_seconds"):
            if getattr(rules, key) < 1:
                raise SettingsError(f"delivery.{key}", "must be at least 1")
        return rules


SPAN_KEYS = ("fix_workdays", "accept_hours", "accept_workdays")


def _span_count(entry: Mapping[str, object], name: str, key: str) -> int | None:
    """A category's optional whole number of hours or working days (>= 1)."""
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SettingsError(f"{name}.{key}", "expected a whole number >= 1")
    return value


def _yuan_to_fen(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettingsError(name, f"expected a whole number of yuan, got {value!r}")
    return value * 100
