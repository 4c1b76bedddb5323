"""The CRM's entity schemas (客户、联系人、线索、商机、拜访、任务、合同、工单 …).

Declared once; used by the server, the SDK and the app. Conventions:

* every customer-owned entity carries ``customer_id`` (scope follows the customer, and
  reassigning a customer moves everything hanging off it);
* ``owner_id`` is read-only for devices: it moves only through reassignment;
* activities, stage changes, ticket comments and satisfaction responses are append-only
  events — the commonest field action never conflicts;
* notes are append-only text and tags merge as sets;
* money amounts and the pipeline stage are last-writer-wins; a deal's ``amount`` is
  ``manual`` on contracts (a signed figure must be decided by a person).

Schema versions (a field or entity carries ``added_in``; older clients keep working —
they patch the fields they know and the rest of a record is kept):

* **1** — the first release.
* **2** — quotes and orders priced and totalled by :mod:`sync_protocol.orders`:
  ``quote_lines.list_price``/``tax_rate``/``line_total``; ``quotes.subtotal``/
  ``discount_total``/``tax_total``/``quote_id`` (the quote an order came from)/
  ``ordered_at``/``fulfilled_at``; ``products.tier_prices``/``tax_rate``; typed custom
  fields (the ``custom_field_defs`` collection, ``custom`` on leads, contacts,
  opportunities and tickets); ``leads.title``/``industry``/``city``/
  ``converted_contact_id``.
* **3** — the service desk (:mod:`sync_protocol.service`): ``tickets.sla_due_at`` and
  ``knowledge_article_ids``; ``surveys`` (multi-question); ``satisfaction_responses.
  survey_id``/``answers``. Not a field change: ``campaign_members`` follow their customer
  (``scope: customer``, ``customer_id`` required) instead of reaching every rep.
"""

from __future__ import annotations

from ..schema import SchemaRegistry
from .activity import activities, contracts, tasks
from .config import custom_field_defs
from .people import contacts, customers, leads
from .sales import (
    campaign_members,
    campaigns,
    opportunities,
    pipeline_stages,
    products,
    quote_lines,
    quotes,
    sales_targets,
    stage_changes,
)
from .service import (
    knowledge_articles,
    satisfaction_responses,
    surveys,
    ticket_comments,
    tickets,
)

CRM_SCHEMA = SchemaRegistry(
    name="fieldsync-crm",
    version=3,
    min_client_version=1,
    entities={
        e.name: e
        for e in (
            customers,
            contacts,
            leads,
            pipeline_stages,
            opportunities,
            stage_changes,
            activities,
            tasks,
            contracts,
            products,
            quotes,
            quote_lines,
            campaigns,
            campaign_members,
            tickets,
            ticket_comments,
            knowledge_articles,
            surveys,
            satisfaction_responses,
            sales_targets,
            custom_field_defs,
        )
    },
)

__all__ = ["CRM_SCHEMA"]
