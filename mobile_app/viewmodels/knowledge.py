"""The knowledge base (知识库), read and searched offline, and linked to a ticket.

Articles are reference data every rep receives. Search is the store's text search over
title and body plus the pinyin keys (``th`` finds 退货), so a rep at a customer's
counter finds the answer with no signal. Linking an article to a ticket adds a comment
naming it (``📎 知识库：退货流程``) — and, where the schema has the field, the
article's id in the ticket's ``knowledge_article_ids`` — so the agent sees which
answer the customer was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Observable, Session

#: How much of an article's body the list shows.
SNIPPET = 80
LINK_FIELD = "knowledge_article_ids"


@dataclass(frozen=True, slots=True)
class ArticleRow:
    id: str
    title: str
    subtitle: str


class KnowledgeViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.query = ""
        self.category = ""
        self.rows: list[ArticleRow] = []

    def categories(self) -> list[tuple[str, str]]:
        found = sorted(
            {
                str(r.fields.get("category"))
                for r in self.session.store.collection("knowledge_articles").all()
                if r.fields.get("category")
            }
        )
        return [("", self.session.tr("customers.all"))] + [(c, c) for c in found]

    def set_query(self, text: str) -> None:
        self.query = text
        self.refresh()

    def refresh(self) -> None:
        records = self.session.store.collection("knowledge_articles").query(
            where={"category": self.category} if self.category else None,
            search=self.query.strip() or None,
            order_by="title",
        )
        self.rows = [
            ArticleRow(
                r.id,
                str(r.fields.get("title") or ""),
                " · ".join(
                    x
                    for x in (
                        str(r.fields.get("category") or ""),
                        _snippet(str(r.fields.get("body") or "")),
                    )
                    if x
                ),
            )
            for r in records
        ]
        self.notify()


def _snippet(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    category: str
    tags: str
    body: str


def read_article(session: Session, article_id: str) -> Article | None:
    record = session.store.collection("knowledge_articles").get(article_id)
    if record is None:
        return None
    f = record.fields
    tags = f.get("tags")
    return Article(
        record.id,
        str(f.get("title") or ""),
        str(f.get("category") or ""),
        ", ".join(str(t) for t in tags) if isinstance(tags, list) else "",
        str(f.get("body") or ""),
    )


def open_tickets(session: Session) -> list[tuple[str, str]]:
    """(id, "title · customer") of tickets not yet closed, to link an article to."""
    names = {
        r.id: str(r.fields.get("name") or "") for r in session.store.collection("customers").all()
    }
    rows = [
        r
        for r in session.store.collection("tickets").query(order_by="title")
        if r.fields.get("status") not in ("resolved", "closed")
    ]
    return [
        (r.id, f"{r.fields.get('title', '')} · {names.get(str(r.fields.get('customer_id')), '')}")
        for r in rows
    ]


def link_to_ticket(session: Session, article_id: str, ticket_id: str) -> bool:
    """Record on the ticket that this article was used (comment + link field if known)."""
    from sync_protocol import CRM_SCHEMA

    store = session.store
    article = store.collection("knowledge_articles").get(article_id)
    ticket = store.collection("tickets").get(ticket_id)
    if article is None or ticket is None:
        return False
    title = str(article.fields.get("title") or "")
    if LINK_FIELD in CRM_SCHEMA["tickets"].fields:
        linked = ticket.fields.get(LINK_FIELD)
        ids = [str(i) for i in linked] if isinstance(linked, list) else []
        if article_id not in ids:
            store.collection("tickets").update(ticket_id, {LINK_FIELD: [*ids, article_id]})
    store.collection("ticket_comments").insert(
        {
            "customer_id": ticket.fields.get("customer_id"),
            "ticket_id": ticket_id,
            "body": session.tr("kb.linked_comment", title=title),
            "author_id": session.user.id,
            "created_at": session.now_iso(),
        }
    )
    return True
