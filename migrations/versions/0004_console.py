"""console: moderators, appeals, policy settings, and the review queue's index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderators",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'moderator', 'admin')", name=op.f("ck_moderators_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderators")),
        sa.UniqueConstraint("username", name=op.f("uq_moderators_username")),
    )
    op.create_table(
        "appeals",
        sa.Column("appeal_id", sa.String(length=64), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("risk_category", sa.String(length=32), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name=op.f("ck_appeals_status")),
        sa.PrimaryKeyConstraint("appeal_id", name=op.f("pk_appeals")),
    )
    op.create_index(op.f("ix_appeals_action_id"), "appeals", ["action_id"], unique=False)
    # One open appeal per action: a second filing while one is open is answered with the first.
    op.create_index("ix_appeals_open_action", "appeals", ["action_id"], unique=True,
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_appeals_status_created_at", "appeals", ["status", "created_at"], unique=False)
    op.create_table(
        "policy_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_policy_settings")),
    )
    # The review queue's question (needs_review, riskiest and oldest first) and the reports' date
    # ranges, without scanning every event.
    op.create_index("ix_events_needs_review", "events", [sa.text("risk_score DESC"), "received_at"], unique=False,
                    postgresql_where=sa.text("status = 'needs_review'"))
    # Covering the reports' per-range reads (counts by status, screening latency) for index-only scans.
    op.create_index("ix_events_received_at", "events", ["received_at"], unique=False,
                    postgresql_include=["status", "screening_time_ms", "screened_at"])
    op.create_index("ix_events_flagged_received_at", "events", ["received_at"], unique=False,
                    postgresql_where=sa.text("status IN ('needs_review', 'decided', 'actioned')"))
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_actions_created_at", "actions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_actions_created_at", table_name="actions")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_events_flagged_received_at", table_name="events")
    op.drop_index("ix_events_received_at", table_name="events")
    op.drop_index("ix_events_needs_review", table_name="events")
    op.drop_table("policy_settings")
    op.drop_index("ix_appeals_status_created_at", table_name="appeals")
    op.drop_index("ix_appeals_open_action", table_name="appeals")
    op.drop_index(op.f("ix_appeals_action_id"), table_name="appeals")
    op.drop_table("appeals")
    op.drop_table("moderators")
