"""Local fake platform APIs for the action executor's tests: real HTTP on 127.0.0.1, one server per platform.

Each fake checks every request the way the platform does (method, path, auth headers, content
type, body fields and limits) and answers with the platform's real status codes, error bodies and
rate-limit headers; it also keeps the state a moderator would see (who is timed out or banned,
which messages are gone) so tests assert effects, not just calls. ``script`` queues replies for a
route ahead of the normal behaviour: 429s with the platform's exact header sets, 5xx, Twitch 409,
404, so retries, backoff and the dead-letter path are exercised over the wire.

Everything follows ../shared/reference/platforms.md §1.3 (Discord), §2.3 (Twitch), §3.4 (Slack)
and §4 (Standard Webhooks).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.platforms import standard_webhooks
from app.platforms.base import WebhookRejected


@dataclass
class Seen:
    """One request as it arrived (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeServer:
    """An HTTP server in a thread; subclasses implement ``respond`` for their platform."""

    prefix = ""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._scripted: list[tuple[str, str, Reply]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: no pooled socket outlives a test

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.prefix}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``method path`` (path without prefix or query) with these replies."""
        with self._lock:
            self._scripted.extend((method, path, reply) for reply in replies)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        seen = Seen(handler.command, url.path.removeprefix(self.prefix),
                    dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length), time.time())
        with self._lock:
            self.requests.append(seen)
            reply = self._take_scripted(seen)
        if reply is None:
            with self._lock:
                reply = self.respond(seen) if url.path.startswith(self.prefix) else Reply(404, {"message": "Not Found"})
        time.sleep(reply.delay)
        self._send(handler, reply)

    def _take_scripted(self, seen: Seen) -> Reply | None:
        for index, (method, path, reply) in enumerate(self._scripted):
            if method == seen.method and path == seen.path:
                del self._scripted[index]
                return reply
        return None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = b"" if reply.body is None else (
            reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode())
        handler.send_response(reply.status)
        headers = {"Content-Type": "application/json"} if body else {}
        for name, value in (headers | reply.headers).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def respond(self, seen: Seen) -> Reply:
        raise NotImplementedError


# --------------------------------------------------------------------------------------- Discord

DISCORD_ROUTES = [
    ("PATCH", re.compile(r"^/guilds/(?P<guild>\d+)/members/(?P<user>\d+)$"), "timeout"),
    ("PUT", re.compile(r"^/guilds/(?P<guild>\d+)/bans/(?P<user>\d+)$"), "ban"),
    ("DELETE", re.compile(r"^/guilds/(?P<guild>\d+)/bans/(?P<user>\d+)$"), "unban"),
    ("DELETE", re.compile(r"^/channels/(?P<channel>\d+)/messages/(?P<message>\d+)$"), "delete"),
    ("POST", re.compile(r"^/users/@me/channels$"), "open_dm"),
    ("POST", re.compile(r"^/channels/(?P<channel>[\w-]+)/messages$"), "send"),
]
MAX_DISCORD_TIMEOUT = timedelta(days=28)


def discord_error(status: int, code: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"code": code, "message": message, **extra})


def discord_429(retry_after: float, *, is_global: bool = False, bucket: str = "abcd1234") -> Reply:
    """The exact header sets of platforms.md §1.3."""
    headers = {"Retry-After": str(int(retry_after) + 1)}
    if is_global:
        headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
    else:
        headers |= {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}", "X-RateLimit-Bucket": bucket,
                    "X-RateLimit-Scope": "user"}
    return Reply(429, {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global},
                 headers)


class FakeDiscord(FakeServer):
    prefix = "/api/v10"
    token = "discord-bot-token-for-tests"

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: dict[tuple[str, str], str | None] = {}
        self.bans: set[tuple[str, str]] = set()
        self.deleted: set[tuple[str, str]] = set()
        self.unknown_members: set[str] = set()
        self.messages: dict[str, dict[str, Any]] = {}  # nonce -> message
        self.bucket_headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                               "X-RateLimit-Reset-After": "1.000", "X-RateLimit-Bucket": "bucket-ok"}

    def respond(self, seen: Seen) -> Reply:
        problem = self.check_headers(seen)
        if problem:
            return problem
        for method, pattern, name in DISCORD_ROUTES:
            match = pattern.match(seen.path)
            if method == seen.method and match:
                reply: Reply = getattr(self, name)(seen, **match.groupdict())
                reply.headers = self.bucket_headers | reply.headers
                return reply
        return discord_error(404, 0, "404: Not Found")

    def check_headers(self, seen: Seen) -> Reply | None:
        if seen.headers.get("authorization") != f"Bot {self.token}":
            return discord_error(401, 0, "401: Unauthorized")
        if not re.match(r"^DiscordBot \(\S+, \S+\)$", seen.headers.get("user-agent", "")):
            return discord_error(403, 0, "missing or invalid User-Agent")
        if seen.body and seen.headers.get("content-type") != "application/json":
            return discord_error(400, 50035, "Invalid Form Body")
        reason = seen.headers.get("x-audit-log-reason")
        if reason is not None and (not reason.isascii() or not 1 <= len(reason) <= 512):
            return discord_error(400, 50035, "Invalid audit log reason")
        return None

    def timeout(self, seen: Seen, guild: str, user: str) -> Reply:
        body = seen.json()
        if not isinstance(body, dict) or set(body) != {"communication_disabled_until"}:
            return discord_error(400, 50035, "Invalid Form Body")
        until = body["communication_disabled_until"]
        if until is not None:
            try:
                moment = datetime.fromisoformat(until)
            except (TypeError, ValueError):
                moment = None
            if moment is None or moment.tzinfo is None or moment - datetime.now(UTC) >= MAX_DISCORD_TIMEOUT:
                return discord_error(400, 50035, "Invalid Form Body", errors={"communication_disabled_until": {
                    "_errors": [{"code": "INVALID_COMMUNICATION_DISABLED_TIMESTAMP",
                                 "message": "Invalid communication disabled timestamp"}]}})
        if user in self.unknown_members:
            return discord_error(404, 10007, "Unknown Member")
        self.timeouts[(guild, user)] = until
        return Reply(200, {"user": {"id": user}, "roles": [], "communication_disabled_until": until})

    def ban(self, seen: Seen, guild: str, user: str) -> Reply:
        body = seen.json() or {}
        seconds = body.get("delete_message_seconds", 0)
        if set(body) - {"delete_message_seconds"} or not isinstance(seconds, int) or not 0 <= seconds <= 604800:
            return discord_error(400, 50035, "Invalid Form Body")
        if user in self.unknown_members:
            return discord_error(404, 10013, "Unknown User")
        self.bans.add((guild, user))
        return Reply(204)

    def unban(self, seen: Seen, guild: str, user: str) -> Reply:
        if (guild, user) not in self.bans:
            return discord_error(404, 10026, "Unknown Ban")
        self.bans.discard((guild, user))
        return Reply(204)

    def delete(self, seen: Seen, channel: str, message: str) -> Reply:
        if (channel, message) in self.deleted:
            return discord_error(404, 10008, "Unknown Message")
        self.deleted.add((channel, message))
        return Reply(204)

    def open_dm(self, seen: Seen) -> Reply:
        recipient = (seen.json() or {}).get("recipient_id")
        if not isinstance(recipient, str):
            return discord_error(400, 50035, "Invalid Form Body")
        return Reply(200, {"id": f"dm-{recipient}", "type": 1, "recipients": [{"id": recipient}]})

    def send(self, seen: Seen, channel: str) -> Reply:
        body = seen.json() or {}
        content, nonce = body.get("content"), body.get("nonce")
        if not isinstance(content, str) or not 1 <= len(content) <= 2000 or (nonce and len(str(nonce)) > 25):
            return discord_error(400, 50035, "Invalid Form Body")
        if body.get("enforce_nonce") and nonce in self.messages:
            return Reply(200, self.messages[nonce])  # Discord's idempotency: the first message again
        message = {"id": str(len(self.messages) + 1), "channel_id": channel, "content": content, "nonce": nonce}
        self.messages[nonce or message["id"]] = message
        return Reply(200, message)


# ---------------------------------------------------------------------------------------- Twitch


def twitch_error(status: int, message: str) -> Reply:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
             429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    return Reply(status, {"error": names.get(status, "Error"), "status": status, "message": message})


def twitch_429(reset_epoch: int, message: str = "Too Many Requests") -> Reply:
    reply = twitch_error(429, message)
    reply.headers = {"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0", "Ratelimit-Reset": str(reset_epoch)}
    return reply


class FakeTwitch(FakeServer):
    prefix = "/helix"
    client_id = "twitch-client-id-for-tests"
    token = "twitch-moderator-token"
    moderator_id = "5678"

    def __init__(self) -> None:
        super().__init__()
        self.bans: dict[tuple[str, str], str | None] = {}  # (broadcaster, user) -> end_time (None: banned)
        self.deleted: set[tuple[str, str]] = set()
        self.warnings: list[dict[str, Any]] = []
        self.chat_cleared: list[str] = []  # broadcasters whose WHOLE chat was wiped (must stay empty)
        self.remaining = 799

    def respond(self, seen: Seen) -> Reply:
        reply = self.route(seen)
        limits = {"Ratelimit-Limit": "800", "Ratelimit-Remaining": str(self.remaining),
                  "Ratelimit-Reset": str(int(time.time()) + 60)}
        reply.headers = limits | reply.headers
        return reply

    def route(self, seen: Seen) -> Reply:
        if (seen.headers.get("authorization") != f"Bearer {self.token}"
                or seen.headers.get("client-id") != self.client_id):
            return twitch_error(401, "Invalid OAuth token")
        broadcaster, moderator = seen.query.get("broadcaster_id"), seen.query.get("moderator_id")
        if not broadcaster:
            return twitch_error(400, "Missing required parameter \"broadcaster_id\"")
        if moderator != self.moderator_id:
            return twitch_error(400, "The ID in moderator_id must match the user ID in the access token.")
        if seen.body and seen.headers.get("content-type") != "application/json":
            return twitch_error(400, "Invalid content type")
        handlers = {("POST", "/moderation/bans"): self.ban, ("DELETE", "/moderation/bans"): self.unban,
                    ("DELETE", "/moderation/chat"): self.delete, ("POST", "/moderation/warnings"): self.warn}
        handler = handlers.get((seen.method, seen.path))
        return handler(seen, broadcaster) if handler else twitch_error(404, "Not Found")

    def ban(self, seen: Seen, broadcaster: str) -> Reply:
        data = (seen.json() or {}).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("user_id"), str):
            return twitch_error(400, "Missing required parameter \"data.user_id\"")
        duration, reason = data.get("duration"), data.get("reason", "")
        if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= 1_209_600):
            return twitch_error(400, "The value in the duration field is not valid.")
        if not isinstance(reason, str) or len(reason) > 500:
            return twitch_error(400, "The text in the reason field is too long.")
        key = (broadcaster, data["user_id"])
        if key in self.bans and self.bans[key] is None:
            return twitch_error(400, "The user specified in the user_id field is already banned.")
        now = datetime.now(UTC).replace(microsecond=0)
        end = (now + timedelta(seconds=duration)).isoformat().replace("+00:00", "Z") if duration else None
        self.bans[key] = end
        return Reply(200, {"data": [{"broadcaster_id": broadcaster, "moderator_id": self.moderator_id,
                                     "user_id": data["user_id"],
                                     "created_at": now.isoformat().replace("+00:00", "Z"), "end_time": end}]})

    def unban(self, seen: Seen, broadcaster: str) -> Reply:
        key = (broadcaster, seen.query.get("user_id", ""))
        if key not in self.bans:
            return twitch_error(400, "The user specified in the user_id field is not banned.")
        del self.bans[key]
        return Reply(204)

    def delete(self, seen: Seen, broadcaster: str) -> Reply:
        message_id = seen.query.get("message_id")
        if not message_id:  # the real API then deletes every message in the chat room
            self.chat_cleared.append(broadcaster)
            return Reply(204)
        if (broadcaster, message_id) in self.deleted:
            return twitch_error(404, "The message specified in the message_id parameter was not found.")
        self.deleted.add((broadcaster, message_id))
        return Reply(204)

    def warn(self, seen: Seen, broadcaster: str) -> Reply:
        data = (seen.json() or {}).get("data")
        if not isinstance(data, dict) or not data.get("user_id") or not data.get("reason"):
            return twitch_error(400, "The user_id and reason fields are required.")
        if len(data["reason"]) > 500:
            return twitch_error(400, "The text in the reason field is too long.")
        warning = {"broadcaster_id": broadcaster, "user_id": data["user_id"], "moderator_id": self.moderator_id,
                   "reason": data["reason"]}
        self.warnings.append(warning)
        return Reply(200, {"data": [warning]})


# ----------------------------------------------------------------------------------------- Slack


class FakeTwitchId(FakeServer):
    """id.twitch.tv's token endpoint: refreshes a user token the way Twitch does (form-encoded
    request, client secret checked, a new access token and possibly a new refresh token). A refresh
    makes the new access token the only one Helix accepts (the old one has expired)."""

    prefix = "/oauth2"
    client_secret = "twitch-client-secret-for-tests"

    def __init__(self, helix: FakeTwitch) -> None:
        super().__init__()
        self.helix = helix
        self.refresh_token = "twitch-refresh-token-0"
        self.issued = 0

    def respond(self, seen: Seen) -> Reply:
        if (seen.method, seen.path) != ("POST", "/token"):
            return Reply(404, {"status": 404, "message": "Not Found"})
        if seen.headers.get("content-type") != "application/x-www-form-urlencoded":
            return Reply(400, {"status": 400, "message": "missing client id"})
        form = dict(urllib.parse.parse_qsl(seen.body.decode()))
        if form.get("client_id") != FakeTwitch.client_id or form.get("client_secret") != self.client_secret:
            return Reply(403, {"status": 403, "message": "invalid client secret"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return Reply(400, {"status": 400, "message": "Invalid refresh token"})
        self.issued += 1
        self.helix.token = f"twitch-access-token-{self.issued}"
        self.refresh_token = f"twitch-refresh-token-{self.issued}"  # rotated, as Twitch may
        return Reply(200, {"access_token": self.helix.token, "refresh_token": self.refresh_token,
                           "expires_in": 14400, "scope": ["moderator:manage:banned_users"], "token_type": "bearer"})


class FakeSlack(FakeServer):
    prefix = "/api"
    bot_token = "xoxb-bot-token-for-tests"
    admin_token = "xoxp-admin-token-for-tests"
    moderator_channel = "C0MODS"

    def __init__(self) -> None:
        super().__init__()
        self.deleted: set[tuple[str, str]] = set()
        self.posts: list[dict[str, Any]] = []

    def respond(self, seen: Seen) -> Reply:
        if seen.method != "POST":
            return Reply(405)
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in (self.bot_token, self.admin_token):
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        if not seen.headers.get("content-type", "").startswith("application/json"):
            return Reply(200, {"ok": False, "error": "invalid_arguments"})
        body = seen.json() or {}
        if seen.path == "/chat.delete":
            return self.delete(token, body)
        if seen.path == "/chat.postMessage":
            return self.post(body)
        return Reply(404, {"ok": False, "error": "unknown_method"})

    def delete(self, token: str, body: dict[str, Any]) -> Reply:
        channel, ts = body.get("channel"), body.get("ts")
        if not channel or not ts:
            return Reply(200, {"ok": False, "error": "invalid_arguments"})
        if token != self.admin_token:  # a bot token may only delete the bot's own messages
            return Reply(200, {"ok": False, "error": "cant_delete_message"})
        if (channel, ts) in self.deleted:
            return Reply(200, {"ok": False, "error": "message_not_found"})
        self.deleted.add((channel, ts))
        return Reply(200, {"ok": True, "channel": channel, "ts": ts})

    def post(self, body: dict[str, Any]) -> Reply:
        if not body.get("channel") or not body.get("text"):
            return Reply(200, {"ok": False, "error": "invalid_arguments"})
        self.posts.append(body)
        return Reply(200, {"ok": True, "channel": body["channel"], "ts": f"1700000000.{len(self.posts):06d}",
                           "message": {"text": body["text"]}})


# -------------------------------------------------------------------------------------- Web chat

WEB_SECRET = "whsec_" + "d2ViLWNoYXQtY2FsbGJhY2stc2VjcmV0LTMyLWJ5dGVzIQ=="  # base64 of 34 random-looking bytes


class FakeWebChat(FakeServer):
    """A site's moderation callback endpoint: Standard Webhooks verification and webhook-id de-duplication."""

    prefix = "/hooks/moderation"

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    def respond(self, seen: Seen) -> Reply:
        if seen.method != "POST" or seen.path != "":
            return Reply(404, {"error": {"code": "not_found", "message": "no such endpoint"}})
        try:
            standard_webhooks.verify(seen.headers, seen.body, secret=WEB_SECRET, now=time.time())
        except WebhookRejected as exc:
            return Reply(401, {"error": {"code": "bad_signature", "message": exc.reason}})
        webhook_id = seen.headers["webhook-id"]
        if seen.headers.get("idempotency-key") != webhook_id:
            return Reply(400, {"error": {"code": "bad_idempotency_key", "message": "must equal webhook-id"}})
        if webhook_id in self.deliveries:
            self.duplicates += 1
            return Reply(200, {"ok": True, "duplicate": True})
        self.deliveries[webhook_id] = seen.json()
        return Reply(200, {"ok": True})


class FakePlatforms:
    """All four fakes, started together; ``settings()`` points the system's clients at them."""

    def __init__(self) -> None:
        self.discord, self.twitch = FakeDiscord(), FakeTwitch()
        self.twitch_id = FakeTwitchId(self.twitch)
        self.slack, self.web = FakeSlack(), FakeWebChat()

    def __enter__(self) -> FakePlatforms:
        for server in (self.discord, self.twitch, self.twitch_id, self.slack, self.web):
            server.start()
        return self

    def __exit__(self, *_: Any) -> None:
        for server in (self.discord, self.twitch, self.twitch_id, self.slack, self.web):
            server.stop()

    def settings(self) -> dict[str, str]:
        return {
            "DISCORD_API_BASE": self.discord.base_url, "DISCORD_BOT_TOKEN": FakeDiscord.token,
            "TWITCH_API_BASE": self.twitch.base_url, "TWITCH_CLIENT_ID": FakeTwitch.client_id,
            "TWITCH_MODERATOR_TOKEN": FakeTwitch.token, "TWITCH_MODERATOR_ID": FakeTwitch.moderator_id,
            "SLACK_API_BASE": self.slack.base_url, "SLACK_BOT_TOKEN": FakeSlack.bot_token,
            "SLACK_ADMIN_TOKEN": FakeSlack.admin_token, "SLACK_MODERATOR_CHANNEL": FakeSlack.moderator_channel,
            "WEB_CALLBACK_URL": self.web.base_url, "WEB_WEBHOOK_SECRET": WEB_SECRET,
        }

    def twitch_refresh_settings(self) -> dict[str, str]:
        """What lets the Twitch client refresh its moderator token at the fake id.twitch.tv."""
        return {"TWITCH_AUTH_BASE": self.twitch_id.base_url, "TWITCH_CLIENT_SECRET": FakeTwitchId.client_secret,
                "TWITCH_REFRESH_TOKEN": "twitch-refresh-token-0"}

    def all_requests(self) -> list[Seen]:
        return [*self.discord.requests, *self.twitch.requests, *self.twitch_id.requests, *self.slack.requests,
                *self.web.requests]


class RecordingSleep:
    """``time.sleep`` that also remembers each wait, so tests can assert the backoff the code chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def make_transport(rds: Any, *, max_inline_wait_s: float = 2.0, timeout_s: float = 5.0) -> Any:
    """A Transport as the worker builds it, on a fresh connection pool, with a recording sleep."""
    import httpx

    from app.platforms.outbound.http import RateLimiter, Transport

    return Transport(httpx.Client(follow_redirects=False), RateLimiter(rds), timeout_s=timeout_s,
                     max_inline_wait_s=max_inline_wait_s, sleep=RecordingSleep())
