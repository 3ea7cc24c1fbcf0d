"""One Redis connection pool per process and URL."""

from __future__ import annotations

from functools import lru_cache

import redis

from app.config import get_settings


@lru_cache(maxsize=4)
def redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30,
                                socket_timeout=5, socket_connect_timeout=2)


def get_redis() -> redis.Redis:
    return redis_for(get_settings().redis_url)
