"""Console accounts: scrypt-hashed passwords (werkzeug), three roles, the first admin on an empty table."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.console.models import ROLES, Moderator
from app.db import session_scope
from app.models import AuditLog

RANK = {role: i for i, role in enumerate(ROLES)}
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # scrypt reads all of it: a megabyte "password" would only cost CPU
# Verified when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password-" + secrets.token_hex(8), method="scrypt")


class AccountError(ValueError):
    pass


class WrongPassword(AccountError):
    pass


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def generated_password() -> str:
    return secrets.token_urlsafe(18)


def create(username: str, role: str, password: str, *, actor: str) -> Account:
    _check(username, role, password)
    with session_scope() as db:
        if db.scalar(select(Moderator.id).where(Moderator.username == username)) is not None:
            raise AccountError(f"user {username!r} already exists")
        row = Moderator(username=username, role=role, password_hash=generate_password_hash(password, method="scrypt"))
        db.add(row)
        db.add(AuditLog(actor=actor, kind="console.user_created", detail={"username": username, "role": role}))
        db.flush()
        return Account(row.id, row.username, row.role)


def ensure_first_admin(username: str, password: str | None) -> str | None:
    """Create ``username`` as admin when there is no account at all; returns the password used then."""
    with session_scope() as db:
        if db.scalar(select(func.count()).select_from(Moderator)):
            return None
    chosen = password or generated_password()
    create(username, "admin", chosen, actor="system:bootstrap")
    return chosen


def authenticate(username: str, password: str, *, address: str | None = None) -> Account | None:
    """The account when the name and password match an enabled one; every try is audited with its address.

    An unknown or disabled name still costs one scrypt verification, so timing does not tell them apart.
    """
    with session_scope() as db:
        row = db.scalars(select(Moderator).where(Moderator.username == username)).first()
        if row is None or row.disabled:
            check_password_hash(_DUMMY_HASH, password)
            ok = False
        else:
            ok = check_password_hash(row.password_hash, password)
        kind = "console.signed_in" if ok else "console.sign_in_failed"
        db.add(AuditLog(actor=f"moderator:{username[:64]}", kind=kind, detail={"address": address} if address else {}))
        if not ok or row is None:
            return None
        row.last_login_at = datetime.now(UTC)
        return Account(row.id, row.username, row.role)


def active(account_id: int) -> Account | None:
    """The account as it is now: a disabled or demoted moderator loses access on the next request."""
    with session_scope() as db:
        row = db.get(Moderator, account_id)
        if row is None or row.disabled:
            return None
        return Account(row.id, row.username, row.role)


def update(username: str, *, actor: str, role: str | None = None, password: str | None = None,
           disabled: bool | None = None) -> None:
    with session_scope() as db:
        row = db.scalars(select(Moderator).where(Moderator.username == username)).first()
        if row is None:
            raise AccountError(f"no user {username!r}")
        _check(username, role or row.role, password)
        changed: dict[str, object] = {}
        if role is not None:
            row.role = changed["role"] = role
        if password is not None:
            row.password_hash = generate_password_hash(password, method="scrypt")
            changed["password"] = "changed"
        if disabled is not None:
            row.disabled = changed["disabled"] = disabled
        db.add(AuditLog(actor=actor, kind="console.user_changed", detail={"username": username, **changed}))


def id_of(username: str) -> int | None:
    with session_scope() as db:
        return db.scalar(select(Moderator.id).where(Moderator.username == username))


def profile(account_id: int) -> dict[str, object] | None:
    with session_scope() as db:
        row = db.get(Moderator, account_id)
        if row is None:
            return None
        return {"username": row.username, "role": row.role, "created_at": row.created_at,
                "last_login_at": row.last_login_at}


def change_own_password(account_id: int, current: str, new: str, confirm: str, *, address: str | None = None) -> None:
    """A signed-in moderator's own change: the current password first, then the rules of ``create``
    (at least MIN_PASSWORD characters) and a few more that only make sense against a known old one.

    Raises WrongPassword (audited, for the caller to count against the sign-in throttle) or AccountError.
    """
    with session_scope() as db:
        row = db.get(Moderator, account_id)
        if row is None or row.disabled:
            raise AccountError("this account no longer exists or is disabled")
        where = {"address": address} if address else {}
        if not check_password_hash(row.password_hash, current[:MAX_PASSWORD]):
            # Committed before raising: session_scope rolls back a unit of work that raises.
            db.add(AuditLog(actor=f"moderator:{row.username}", kind="console.password_change_failed", detail=where))
            wrong = True
        else:
            wrong = False
            _check_new_password(row.username, row.role, current, new, confirm)
            row.password_hash = generate_password_hash(new, method="scrypt")
            db.add(AuditLog(actor=f"moderator:{row.username}", kind="console.password_changed", detail=where))
    if wrong:
        raise WrongPassword("the current password is wrong")


def _check_new_password(username: str, role: str, current: str, new: str, confirm: str) -> None:
    if new != confirm:
        raise AccountError("the new password and its confirmation differ")
    _check(username, role, new)
    if new == current:
        raise AccountError("the new password is the current one")
    if username.lower() in new.lower():
        raise AccountError("a password may not contain your user name")
    if len(set(new)) < 5:
        raise AccountError("a password needs at least 5 different characters")


def listing() -> list[dict[str, object]]:
    with session_scope() as db:
        rows = db.scalars(select(Moderator).order_by(Moderator.username))
        return [{"username": r.username, "role": r.role, "disabled": r.disabled,
                 "last_login_at": r.last_login_at.isoformat() if r.last_login_at else None} for r in rows]


def _check(username: str, role: str, password: str | None) -> None:
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-" for c in username):
        raise AccountError("a user name is 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if password is not None and len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
