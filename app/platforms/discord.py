"""Discord: the HTTP Interactions endpoint and the gateway bridge.

Discord delivers guild chat (``MESSAGE_CREATE``, edits as ``MESSAGE_UPDATE``) and AutoMod
executions only over the gateway WebSocket, so a bot process forwards them to us, signed with
Standard Webhooks (``DISCORD_BRIDGE_SECRET``) and carrying the gateway ``d`` objects verbatim, so
Discord's own examples stay valid fixtures. User reports arrive directly from Discord as a "Report message"
context-menu interaction, Ed25519-signed with the application's public key (``DISCORD_PUBLIC_KEY``).

Bridge body (one dispatch, or a batch of them)::

    {"type": "discord.message_create", "timestamp": "<ISO 8601>", "data": {"t": ..., "s": ..., "d": {...}}}
    {"type": "discord.gateway.batch", "timestamp": "<ISO 8601>", "data": {"events": [{"t", "s", "d"}, ...]}}
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from app.platforms import standard_webhooks
from app.platforms.base import (
    JSON_HEADERS,
    MAX_BATCH_EVENTS,
    Inbound,
    JsonObject,
    Reply,
    WebhookRejected,
    as_edit,
    as_iso_time,
    as_list,
    as_object,
    as_opt_str,
    as_str,
    as_text,
    get_header,
    is_digits,
    iso_from_epoch,
    iso_timestamp,
    load_json_object,
    make_event,
    object_or_empty,
    pick_target,
    require_headers,
    require_key,
    strings,
    unique,
)

PUBLIC_KEY_SETTING = "DISCORD_PUBLIC_KEY"
BRIDGE_SETTING = "DISCORD_BRIDGE_SECRET"
SIGNATURE = "X-Signature-Ed25519"
TIMESTAMP = "X-Signature-Timestamp"
UNAUTHORIZED = 401
# Discord documents no freshness window; a generous one, checked only after the signature,
# stops replays of a captured report without risking Discord's endpoint validation.
INTERACTION_TOLERANCE_SECONDS = 300
REPORT_COMMAND = "Report message"

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
MESSAGE_COMMAND = 3
EPHEMERAL = 1 << 6
# DEFAULT and REPLY are what people type; joins, pins, boosts, command echoes are system messages.
USER_MESSAGE_TYPES = frozenset({0, 19})
REFERENCE_FORWARD = 1
DISCORD_EPOCH_MS = 1420070400000
USER_MENTION = re.compile(r"<@!?(\d{15,25})>")

REPORT_RECEIVED = "Thanks, your report was received. The moderators will review this message."
UNSUPPORTED = "This command is not supported."


# --- Interactions endpoint -------------------------------------------------------------------


def verify_interaction(
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_key: str,
    now: float,
    tolerance: float = INTERACTION_TOLERANCE_SECONDS,
) -> None:
    """Raise ``WebhookRejected(401)`` unless ``X-Signature-Ed25519`` signs ``timestamp + body``.

    Discord probes the endpoint with deliberately bad signatures and removes it if one is
    accepted. The timestamp is signed as opaque bytes; it is only checked for freshness when it
    is integer seconds (the observed format), since a replay cannot change a signed value.
    """
    key = _verify_key(public_key)
    signature, timestamp = require_headers(headers, (SIGNATURE, TIMESTAMP), status=UNAUTHORIZED)
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except (CryptoError, ValueError):
        raise WebhookRejected(UNAUTHORIZED, "invalid request signature") from None
    if is_digits(timestamp) and abs(now - int(timestamp)) > tolerance:
        raise WebhookRejected(UNAUTHORIZED, "interaction timestamp outside 5 minutes")


@functools.lru_cache(maxsize=4)
def _verify_key(public_key: str) -> VerifyKey:
    require_key(public_key, PUBLIC_KEY_SETTING)
    try:
        return VerifyKey(bytes.fromhex(public_key))
    except (CryptoError, ValueError):
        raise WebhookRejected(503, f"{PUBLIC_KEY_SETTING} is not a 64-hex-digit Ed25519 key") from None


def parse_interaction(headers: Mapping[str, str], body: bytes, *, report_command: str = REPORT_COMMAND) -> Inbound:
    """Every interaction gets an inline reply within Discord's 3 seconds, so ``reply`` is always set.

    PING gets PONG. The report command becomes an Event for the reported message and an
    ephemeral acknowledgement to the reporter. Anything else gets an ephemeral "not supported"
    (or empty autocomplete choices) rather than Discord's "interaction failed".
    """
    payload = load_json_object(body)
    kind = payload.get("type")
    if kind == PING:
        return Inbound(events=[], reply=(200, {"type": 1}, dict(JSON_HEADERS)))
    if kind == AUTOCOMPLETE:
        return Inbound(events=[], reply=(200, {"type": 8, "data": {"choices": []}}, dict(JSON_HEADERS)))
    if kind not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT):
        raise WebhookRejected(400, "unknown interaction type")
    data = as_object(payload.get("data"), "data")
    if kind != APPLICATION_COMMAND or data.get("type") != MESSAGE_COMMAND or data.get("name") != report_command:
        return Inbound(events=[], reply=_ephemeral(UNSUPPORTED), notes={"ignored": "unsupported interaction"})
    interaction_id = as_str(payload.get("id"), "id")
    return Inbound(
        events=[report_event(payload, data)],
        reply=_ephemeral(REPORT_RECEIVED),
        dedup_key=interaction_id,
    )


def _ephemeral(text: str) -> Reply:
    return (200, {"type": 4, "data": {"content": text, "flags": EPHEMERAL}}, dict(JSON_HEADERS))


def report_event(interaction: JsonObject, data: JsonObject) -> JsonObject:
    """The reported message as an Event with ``source: report``.

    Its ``event_id`` is the interaction id, not the message id: the message may already have been
    screened from the gateway, and a report must not be dropped as its duplicate (two users
    reporting it are two signals). The message id to act on is ``metadata.message_id``. If the
    message names no recipient, the reporter is taken as the target: people report what was
    said to them.
    """
    target_id = as_str(data.get("target_id"), "data.target_id")
    resolved = as_object(as_object(data.get("resolved"), "data.resolved").get("messages"), "data.resolved.messages")
    message = as_object(resolved.get(target_id), "data.resolved.messages[target_id]")
    reporter = _interaction_user(interaction)
    guild_id = as_opt_str(interaction.get("guild_id"), "guild_id")
    event = message_event(message, guild_id=guild_id, source="report")
    event["event_id"] = as_str(interaction.get("id"), "id")
    event["user_id"] = event["user_id"] or (reporter if reporter != event["author_id"] else None)
    event["metadata"].update(
        reported_by=reporter,
        reported_at=snowflake_time(event["event_id"]),
        reporter_permissions=_reporter_permissions(interaction),
    )
    return event


def _interaction_user(interaction: JsonObject) -> str:
    """``member.user`` in guilds, ``user`` in DMs."""
    member = interaction.get("member")
    user = member.get("user") if isinstance(member, dict) else interaction.get("user")
    return as_str(as_object(user, "member.user").get("id"), "member.user.id")


def _reporter_permissions(interaction: JsonObject) -> str | None:
    """A moderator's report weighs more; the permissions bitfield comes only with ``member``."""
    member = interaction.get("member")
    permissions = member.get("permissions") if isinstance(member, dict) else None
    return permissions if isinstance(permissions, str) else None


def snowflake_time(snowflake: str) -> str:
    """The creation time encoded in a snowflake (milliseconds since 2015-01-01 in the top 42 bits)."""
    if not is_digits(snowflake):
        raise WebhookRejected(400, "id is not a snowflake")
    millis = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return iso_from_epoch(millis // 1000, (millis % 1000) * 1000)


# --- Gateway bridge ---------------------------------------------------------------------------


def verify_bridge(headers: Mapping[str, str], body: bytes, *, secret: str, now: float) -> None:
    """Standard Webhooks check with ``DISCORD_BRIDGE_SECRET`` (401 on failure)."""
    standard_webhooks.verify(headers, body, secret=secret, now=now, setting=BRIDGE_SETTING)


def parse_bridge(headers: Mapping[str, str], body: bytes) -> Inbound:
    """Normalise forwarded ``MESSAGE_CREATE`` / ``MESSAGE_UPDATE`` / ``AUTO_MODERATION_ACTION_EXECUTION``.

    Bot, webhook and system messages, updates that are not edits and other dispatch types are
    skipped and counted in ``notes["skipped"]``. ``webhook-id`` is the delivery's ``dedup_key``.
    """
    envelope = load_json_object(body)
    dispatches = _dispatches(as_object(envelope.get("data"), "data"))
    fallback_time = _envelope_time(envelope, headers)
    inbound = Inbound(events=[], dedup_key=get_header(headers, standard_webhooks.WEBHOOK_ID))
    skipped = 0
    for index, dispatch in enumerate(dispatches):
        event = _dispatch_event(as_object(dispatch, f"events[{index}]"), fallback_time)
        if event is None:
            skipped += 1
        else:
            inbound.events.append(event)
    if skipped:
        inbound.notes["skipped"] = skipped
    return inbound


def _dispatches(data: JsonObject) -> list[Any]:
    if "events" not in data:
        return [data]
    dispatches = as_list(data["events"], "data.events")
    if len(dispatches) > MAX_BATCH_EVENTS:
        raise WebhookRejected(413, f"batch larger than {MAX_BATCH_EVENTS} events")
    return dispatches


def _envelope_time(envelope: JsonObject, headers: Mapping[str, str]) -> str | None:
    """AutoMod executions carry no time of their own: use the bridge's, else the delivery's."""
    stamp = envelope.get("timestamp")
    if isinstance(stamp, str):
        try:
            return iso_timestamp(stamp)
        except ValueError:
            pass
    header = get_header(headers, standard_webhooks.WEBHOOK_TIMESTAMP)
    return iso_from_epoch(int(header)) if header and is_digits(header) else None


def _dispatch_event(dispatch: JsonObject, fallback_time: str | None) -> JsonObject | None:
    name = dispatch.get("t")
    d = as_object(dispatch.get("d"), "d")
    if name == "MESSAGE_CREATE":
        if not _is_person_message(d):
            return None
        event = message_event(d, guild_id=as_opt_str(d.get("guild_id"), "d.guild_id"), source="gateway")
    elif name == "MESSAGE_UPDATE":
        if not (is_edit(d) and _is_person_message(d)):
            return None
        event = edited_event(d)
    elif name == "AUTO_MODERATION_ACTION_EXECUTION" and d.get("channel_id"):
        event = automod_event(d, fallback_time)
    else:
        # Includes AutoMod on member profiles (no channel): a name or bio, not a chat message.
        return None
    if isinstance(dispatch.get("s"), int):
        event["metadata"]["gateway_seq"] = dispatch["s"]
    return event


def is_edit(update: JsonObject) -> bool:
    """Whether a ``MESSAGE_UPDATE`` is someone editing their text.

    Discord also sends updates when link embeds resolve, a message is pinned or its flags change;
    for a message never edited those have no ``edited_timestamp`` (and may lack ``content``), and
    they carry no new words. The bridge uses this too, so it does not forward them at all.
    """
    return bool(update.get("edited_timestamp")) and update.get("content") is not None


def edited_event(update: JsonObject) -> JsonObject:
    """The Event for an edit: the message as it now reads, at ``edited_timestamp`` (``as_edit``).

    A later update that is not an edit (a pin) carries the same ``edited_timestamp``, so it gets
    the same id and is dropped as a duplicate rather than screened again.
    """
    edited_at = as_iso_time(update.get("edited_timestamp"), "d.edited_timestamp")
    event = message_event(update, guild_id=as_opt_str(update.get("guild_id"), "d.guild_id"), source="gateway")
    return as_edit(event, edited_at)


def _is_person_message(message: JsonObject) -> bool:
    author = object_or_empty(message.get("author"))
    if author.get("bot") or author.get("system") or message.get("webhook_id"):
        return False
    kind = message.get("type", 0)
    return isinstance(kind, int) and kind in USER_MESSAGE_TYPES


def message_event(message: JsonObject, *, guild_id: str | None, source: str) -> JsonObject:
    """Normalise a Discord message object (gateway ``d`` or a report's resolved message).

    The recipient is the replied-to message's author when Discord resolved it, else the first
    mentioned user (a reply to a deleted message still mentions its author when it pinged).
    Threads are channels on Discord, so ``channel_id`` already is the thread and there is no
    ``thread_id``.
    """
    author = as_object(message.get("author"), "message.author")
    author_id = as_str(author.get("id"), "message.author.id")
    channel_id = as_str(message.get("channel_id"), "message.channel_id")
    message_id = as_str(message.get("id"), "message.id")
    mentions = unique(_mentioned_ids(message.get("mentions")))
    reply_to, replied_user = _reply(message)
    metadata = _message_metadata(message, author, guild_id, mentions, source)
    metadata["message_id"] = message_id
    if reply_to:
        metadata["reply_to_message_id"] = reply_to
    return make_event(
        platform="discord",
        event_id=message_id,
        author_id=author_id,
        content=as_text(message.get("content"), "message.content"),
        channel_id=channel_id,
        user_id=pick_target(author_id, [replied_user, *mentions]),
        metadata=metadata,
    )


def _mentioned_ids(mentions: Any) -> list[str]:
    users = mentions if isinstance(mentions, list) else []
    return [u["id"] for u in users if isinstance(u, dict) and isinstance(u.get("id"), str) and u["id"]]


def _reply(message: JsonObject) -> tuple[str | None, str | None]:
    """(replied-to message id, its author id), either possibly None; forwards are not replies."""
    reference = message.get("message_reference")
    if not isinstance(reference, dict) or reference.get("type", 0) == REFERENCE_FORWARD:
        return None, None
    referenced = message.get("referenced_message")
    referenced_author = referenced.get("author") if isinstance(referenced, dict) else None
    author_id = referenced_author.get("id") if isinstance(referenced_author, dict) else None
    return reference.get("message_id"), author_id


def _message_metadata(
    message: JsonObject, author: JsonObject, guild_id: str | None, mentions: list[str], source: str
) -> JsonObject:
    timestamp = as_iso_time(message.get("timestamp"), "message.timestamp")
    member = object_or_empty(message.get("member"))
    reference = message.get("message_reference")
    metadata: JsonObject = {
        "timestamp": timestamp,
        "mentions": mentions,
        "mention_roles": strings(message.get("mention_roles")),
        "mention_everyone": bool(message.get("mention_everyone")),
        "author_name": author.get("global_name") or author.get("username"),
        "author_username": author.get("username"),
        "author_roles": strings(member.get("roles")),
        "attachments": len(message["attachments"]) if isinstance(message.get("attachments"), list) else 0,
        "message_type": message.get("type", 0),
        "source": source,
    }
    if guild_id:
        metadata["guild_id"] = guild_id
    if isinstance(reference, dict) and reference.get("type") == REFERENCE_FORWARD:
        metadata["forwarded"] = True
    return metadata


def automod_event(execution: JsonObject, fallback_time: str | None) -> JsonObject:
    """Normalise an AutoMod execution: Discord already acted, we record and screen it.

    One dispatch arrives per executed action, so the ``event_id`` is shared between them: the
    message id when the message was posted (the same as its ``MESSAGE_CREATE``), else, for a
    blocked message that never got an id, a key of guild, rule, author and content hash.
    """
    author_id = as_str(execution.get("user_id"), "d.user_id")
    guild_id = as_str(execution.get("guild_id"), "d.guild_id")
    rule_id = as_str(execution.get("rule_id"), "d.rule_id")
    content = as_text(execution.get("content"), "d.content")
    message_id = as_opt_str(execution.get("message_id"), "d.message_id")
    if fallback_time is None:
        raise WebhookRejected(400, "no timestamp for the AutoMod execution")
    mentions = unique(USER_MENTION.findall(content))
    # surrogatepass: JSON may carry a lone surrogate ("\ud800"), which strict UTF-8 refuses (a 500)
    content_hash = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    action = object_or_empty(execution.get("action"))
    metadata: JsonObject = {
        "timestamp": fallback_time,
        "guild_id": guild_id,
        "mentions": mentions,
        "rule_id": rule_id,
        "rule_trigger_type": execution.get("rule_trigger_type"),
        "automod_action": action,
        "matched_keyword": execution.get("matched_keyword"),
        "matched_content": execution.get("matched_content"),
        "blocked": message_id is None,
        "source": "automod",
    }
    if message_id:
        metadata["message_id"] = message_id
    return make_event(
        platform="discord",
        event_id=message_id or f"automod:{guild_id}:{rule_id}:{author_id}:{content_hash}",
        author_id=author_id,
        content=content,
        channel_id=as_str(execution.get("channel_id"), "d.channel_id"),
        user_id=pick_target(author_id, mentions),
        metadata=metadata,
    )
