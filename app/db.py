"""Engine and session factory, one per process and database URL, created on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings


def sqlalchemy_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form users paste and pin the psycopg2 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    # insertmanyvalues batches every bulk upsert into one statement; plain DBAPI executemany would
    # make one round trip per row.
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5,
                         executemany_mode="values_plus_batch")


def get_engine() -> Engine:
    return engine_for(get_settings().DATABASE_URL)


@lru_cache(maxsize=4)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = _factory(get_settings().DATABASE_URL)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
