"""``campaign_members`` follow their customer (they were reference data every rep
pulled): stored members are placed with their customer's owner and evicted from the
devices of everyone else (:func:`server.crm.rescope.rescope_campaign_members`).

Revision ID: 0008_campaign_members_scope
Revises: 0007_integration
Create Date: 2026-12-03 04:00:00
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from alembic import op

revision: str = "0008_campaign_members_scope"
down_revision: str | None = "0007_integration"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from server.crm.rescope import rescope_campaign_members

    rescope_campaign_members(op.get_bind(), int(time.time() * 1000))


def downgrade() -> None:
    """Nothing to undo in the tables: older code treats the placed rows as customer data
    it cannot see, which is the safe side."""
