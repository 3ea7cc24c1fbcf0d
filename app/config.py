"""One configuration object for every process: defaults in code, overrides from the environment.

The names are the specification's .env names (REDIS_HOST, DATABASE_URL, SCREENING_THRESHOLD, ...).
Tests build a ``Settings`` from a plain mapping instead of touching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

PLATFORMS = ("discord", "twitch", "slack", "web")
# Where the console shows Flower (web/console/flower.py); Flower itself runs with this --url_prefix.
FLOWER_PREFIX = "/admin/flower"


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _parse_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    # Services. REDIS_URL wins over REDIS_HOST/REDIS_PORT/REDIS_DB when both are given.
    DATABASE_URL: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/safety"
    REDIS_URL: str = ""
    REDIS_HOST: str = "127.0.0.1"
    REDIS_PORT: int = 6379
    REDIS_DB: int = 0
    CELERY_BROKER_URL: str = ""
    QDRANT_HOST: str = ""
    QDRANT_PORT: int = 6333
    QDRANT_PATH: str = "var/qdrant"
    # Connect and read timeout of each Qdrant server request, whole seconds (qdrant-client rounds a fraction
    # up). Well inside REASONING_BUDGET_S: a Qdrant that accepts connections and never answers costs the
    # gather that finds it so this long, then is left alone for a while (tasks/context.py STORE_PAUSE_S).
    QDRANT_TIMEOUT_S: int = 1

    # Screening.
    SCREENING_MODEL: str = "minilm-v5"
    SCREENING_THRESHOLD: float = 0.7
    SCREENING_BATCH_SIZE: int = 512  # at most per screen.batch (one model call, one transaction); ~0.5 s of work
    # A batch may wait this long after its oldest event was accepted, for more. 0: a reader waiting on the
    # stream screens what it finds at once, and batches grow by themselves while readers are busy.
    SCREENING_LINGER_MS: int = 0
    SCREENING_RECLAIM_IDLE_MS: int = 5_000  # an events:raw entry pending this long is claimed from its reader
    # Shedding, off unless set: a batch whose oldest event has waited longer than SCREENING_SHED_AFTER_MS
    # (screening is behind: a raid, a slow CPU, a catch-up) is screened with the cascade at
    # SCREENING_SHED_BELOW, so the transformer reads only what the n-gram model finds suspect; those it
    # skipped for that reason are flagged shed_under_load and counted in safety_screen_shed. Off by default:
    # end to end it cost 11 of 140 hostile lines flagged for 1.18x the throughput (README, "Behind its load").
    SCREENING_SHED_AFTER_MS: int = 0
    SCREENING_SHED_BELOW: float = 0.3

    # Reasoning and actions (used by later stages; named here so there is one config object).
    LLM_PROVIDER: str = "none"
    LLM_MODEL: str = "gpt-4o-mini"
    LLM_TIMEOUT_S: float = 3.0
    LOCAL_LLM_ENDPOINT: str = ""
    OPENAI_API_KEY: str = ""
    EMBEDDING_PROVIDER: str = "local"
    EMBEDDING_MODEL: str = "text-embedding-3-small"  # EMBEDDING_PROVIDER=openai only (1536 dimensions)
    OPENAI_BASE_URL: str = ""  # empty: the OpenAI API itself
    REASONING_TOP_K: int = 5  # similar past incidents retrieved per event
    REASONING_BUDGET_S: float = 5.0  # context + reasoning; a slow LLM gives way to the fallback within it
    REASONING_SWEEP_AFTER_S: int = 300  # needs_review with no action after this long: context.gather again
    ACTIONS_SWEEP_AFTER_S: int = 1800  # pending this long: act.apply again (past act.apply's 12-24 min of retries)
    ACTION_POLICY: str = "graduated_escalation"
    ACTIONS_DRY_RUN: bool = False

    # Action executor: safety gates, escalation window and how patiently platform calls are retried.
    ACTION_MIN_CONFIDENCE: float = 0.6
    DAILY_ACTION_QUOTA: int = 1_000  # per platform per UTC day; 0 = no quota
    EXEMPT_USERS: tuple[str, ...] = ()  # "platform:user_id" or a bare user id
    EXEMPT_ROLES: tuple[str, ...] = ()  # role ids/names matched against metadata.author_roles
    DRY_RUN_CHANNELS: tuple[str, ...] = ()  # "platform" or "platform:channel_id"
    ACTION_POLICY_SCOPES: tuple[str, ...] = ()  # "platform=policy" or "platform:channel_id=policy"
    ESCALATION_WINDOW_DAYS: int = 30
    ACTION_HTTP_TIMEOUT_S: float = 10.0
    ACTION_MAX_INLINE_WAIT_S: float = 2.0

    # Ingest edge.
    API_KEYS: tuple[str, ...] = ()
    JWT_SECRET: str = ""
    MAX_BATCH_EVENTS: int = 500
    MAX_CONTENT_LENGTH: int = 1_048_576
    MAX_MESSAGE_CHARS: int = 40_000  # Slack's limit; longer messages are screened in windows
    INGEST_RATE_PER_S: float = 2_000.0
    INGEST_BURST: int = 10_000
    DEDUP_TTL_S: int = 86_400

    # Streams, cache and sessions.
    STREAM_MAXLEN: int = 1_000_000
    SESSION_TTL_S: int = 1_800
    SESSION_WINDOW: int = 50
    EMBEDDING_TTL_S: int = 7 * 86_400

    # Platform connectors (inbound verification keys).
    TWITCH_EVENTSUB_SECRET: str = ""
    SLACK_SIGNING_SECRET: str = ""
    DISCORD_PUBLIC_KEY: str = ""
    DISCORD_BRIDGE_SECRET: str = ""
    WEB_WEBHOOK_SECRET: str = ""

    # Platform connectors (outbound moderation calls). A platform without credentials runs dry.
    TWITCH_API_BASE: str = "https://api.twitch.tv/helix"
    TWITCH_CLIENT_ID: str = ""
    TWITCH_MODERATOR_TOKEN: str = ""
    TWITCH_MODERATOR_ID: str = ""
    TWITCH_REFRESH_TOKEN: str = ""  # with TWITCH_CLIENT_SECRET: a 401 refreshes the moderator token
    TWITCH_CLIENT_SECRET: str = ""
    TWITCH_AUTH_BASE: str = "https://id.twitch.tv/oauth2"
    DISCORD_API_BASE: str = "https://discord.com/api/v10"
    DISCORD_BOT_TOKEN: str = ""
    SLACK_API_BASE: str = "https://slack.com/api"
    SLACK_BOT_TOKEN: str = ""
    SLACK_ADMIN_TOKEN: str = ""
    SLACK_MODERATOR_CHANNEL: str = ""
    WEB_CALLBACK_URL: str = ""

    # Moderators' console (/admin). Policy settings edited there override the values above.
    CONSOLE_SESSION_TTL_S: int = 12 * 3600  # a signed-in session idle this long ends
    CONSOLE_CLAIM_TTL_S: int = 600  # a claimed review item is locked to its moderator this long
    CONSOLE_SECURE_COOKIES: bool = False  # Secure on the session cookie even over plain HTTP (set behind TLS)
    FLOWER_URL: str = "http://127.0.0.1:5555"

    LOG_LEVEL: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.SCREENING_SHED_AFTER_MS < 0:
            raise ValueError(f"setting SCREENING_SHED_AFTER_MS: {self.SCREENING_SHED_AFTER_MS} is negative; "
                             "use 0 to never shed")
        if not 0.0 <= self.SCREENING_SHED_BELOW < self.SCREENING_THRESHOLD:
            raise ValueError(f"setting SCREENING_SHED_BELOW: {self.SCREENING_SHED_BELOW} is outside "
                             f"[0, SCREENING_THRESHOLD={self.SCREENING_THRESHOLD}): the n-gram model alone would "
                             "decide messages it calls risky; 0.3 is the tested setting")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Settings:
        """Build settings from any mapping (the environment, or a test's dict), converting types."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in mapping:
                continue
            raw = mapping[f.name]
            kwargs[f.name] = _convert(f.name, f.type, raw)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.from_mapping(os.environ if environ is None else environ)

    @property
    def redis_url(self) -> str:
        if self.REDIS_URL:
            return self.REDIS_URL
        return f"redis://{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"

    @property
    def broker_url(self) -> str:
        """Celery's broker: the same Redis unless CELERY_BROKER_URL says otherwise.

        kombu spells a Unix socket ``redis+socket://path`` where redis-py says ``unix://path``.
        """
        if self.CELERY_BROKER_URL:
            return self.CELERY_BROKER_URL
        url = self.redis_url
        if url.startswith("unix://"):
            path, _, query = url[len("unix://"):].partition("?")
            db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
            return f"redis+socket://{path}?virtual_host={db}"
        return url


def _convert(name: str, type_name: Any, raw: Any) -> Any:
    if not isinstance(raw, str):
        return tuple(raw) if type_name == "tuple[str, ...]" else raw
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            return _parse_bool(raw)
        if type_name == "tuple[str, ...]":
            return _parse_list(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name}: {exc}") from exc
    return raw


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def set_settings(settings: Settings) -> None:
    """Install explicit settings (tests, the app factory given a mapping)."""
    global _current
    _current = settings
