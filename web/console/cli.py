"""``flask --app wsgi users ...``: console accounts from the command line."""

from __future__ import annotations

import click

from app.console import accounts, session_store, throttle
from app.console.models import ROLES
from app.redis_client import get_redis


@click.group(help="Console accounts (viewer, moderator, admin).")
def users() -> None:
    pass


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="moderator", show_default=True)
@click.option("--password", envvar="CONSOLE_PASSWORD", help="default: generated and printed once")
def add(username: str, role: str, password: str | None) -> None:
    """Create an account."""
    chosen = password or accounts.generated_password()
    _run(lambda: accounts.create(username, role, chosen, actor="cli"))
    click.echo(f"created {username} ({role})" + ("" if password else f"; password: {chosen}"))


@users.command("list")
def list_users() -> None:
    for row in accounts.listing():
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['username']:24} {row['role']:10} {state:9} last sign-in {row['last_login_at'] or 'never'}")


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role(username: str, role: str) -> None:
    _run(lambda: accounts.update(username, actor="cli", role=role))
    click.echo(f"{username} is now {role}")


@users.command("reset-password")
@click.argument("username")
@click.option("--password", envvar="CONSOLE_PASSWORD", help="default: generated and printed once")
def reset_password(username: str, password: str | None) -> None:
    """Set a new password, forgive failed sign-ins and end the open sessions."""
    chosen = password or accounts.generated_password()
    _run(lambda: accounts.update(username, actor="cli", password=chosen))
    throttle.clear_account(get_redis(), username)
    click.echo(f"password of {username} changed" + ("" if password else f": {chosen}") + _end_sessions(username))


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Block sign-in and end the open sessions."""
    _run(lambda: accounts.update(username, actor="cli", disabled=True))
    click.echo(f"{username} disabled" + _end_sessions(username))


@users.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    _run(lambda: accounts.update(username, actor="cli", disabled=False))
    click.echo(f"{username} enabled")


@users.command("unlock")
@click.argument("username")
def unlock(username: str) -> None:
    """Forgive the failed sign-ins counted against a user name (the address budget stays)."""
    throttle.clear_account(get_redis(), username)
    click.echo(f"failed sign-ins of {username} forgotten")


def _end_sessions(username: str) -> str:
    account_id = accounts.id_of(username)
    ended = session_store.end_all(get_redis(), account_id) if account_id is not None else 0
    return f"; {ended} open session(s) ended" if ended else ""


def _run(step: object) -> None:
    try:
        step()  # type: ignore[operator]
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
