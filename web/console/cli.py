"""``flask --app wsgi users ...``: console accounts from the command line."""

from __future__ import annotations

import click

from app.console import accounts
from app.console.models import ROLES


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
    chosen = password or accounts.generated_password()
    _run(lambda: accounts.update(username, actor="cli", password=chosen))
    click.echo(f"password of {username} changed" + ("" if password else f": {chosen}"))


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Block sign-in; open sessions end on their next request."""
    _run(lambda: accounts.update(username, actor="cli", disabled=True))
    click.echo(f"{username} disabled")


@users.command("enable")
@click.argument("username")
def enable(username: str) -> None:
    _run(lambda: accounts.update(username, actor="cli", disabled=False))
    click.echo(f"{username} enabled")


def _run(step: object) -> None:
    try:
        step()  # type: ignore[operator]
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
