"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os

import redis
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import streams
from app.db import get_engine
from app.redis_client import get_redis

bp = Blueprint("health", __name__)
QUEUES = ("screening", "reasoning", "actions", "maintenance")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify({"status": "ok"}), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"redis": _check_redis(), "postgres": _check_postgres()}
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), 200 if ready else 503


def _check_redis() -> str:
    try:
        get_redis().ping()
        return "ok"
    except redis.RedisError as exc:
        return f"unreachable: {type(exc).__name__}"


def _check_postgres() -> str:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as exc:
        return f"unreachable: {type(exc).__name__}"


class QueueCollector:
    """Queue lengths and stream sizes, read from Redis when Prometheus scrapes."""

    def collect(self):  # type: ignore[no-untyped-def]
        queue = GaugeMetricFamily("safety_queue_length", "Messages waiting per Celery queue", labels=["queue"])
        stream = GaugeMetricFamily("safety_stream_length", "Entries per Redis stream", labels=["stream"])
        lag = GaugeMetricFamily("safety_consumer_lag", "Entries not yet delivered to a stream consumer group",
                                labels=["stream", "group"])
        pending = GaugeMetricFamily("safety_consumer_pending",
                                    "Entries delivered to a consumer group and not yet acknowledged",
                                    labels=["stream", "group"])
        try:
            pipe = get_redis().pipeline(transaction=False)
            for name in QUEUES:
                pipe.llen(name)
            for name in streams.ALL:
                pipe.xlen(name)
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError:
            return
        for name, value in zip(QUEUES, replies, strict=False):
            queue.add_metric([name], value)
        for name, value in zip(streams.ALL, replies[len(QUEUES):], strict=False):
            stream.add_metric([name], value)
        for name in streams.ALL:
            for group in _groups(name):
                lag.add_metric([name, group["name"]], group.get("lag") or 0)
                pending.add_metric([name, group["name"]], group.get("pending") or 0)
        yield queue
        yield stream
        yield lag
        yield pending


def _groups(stream: str) -> list[dict]:
    try:
        return get_redis().xinfo_groups(stream)
    except redis.RedisError:
        return []


@bp.get("/metrics")
def prometheus() -> Response:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY  # type: ignore[assignment]
    body = generate_latest(registry) + generate_latest(_queue_registry())
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _queue_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())  # type: ignore[arg-type]
    return registry
