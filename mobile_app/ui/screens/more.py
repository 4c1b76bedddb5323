"""More: leads, tickets, contracts, orders, products, knowledge, targets, settings —
and the read-mostly screens behind them (contracts, knowledge articles, targets)."""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp

from mobile_app.viewmodels.contracts import ContractListViewModel, contract_details
from mobile_app.viewmodels.knowledge import (
    KnowledgeViewModel,
    link_to_ticket,
    open_tickets,
    read_article,
)
from mobile_app.viewmodels.orders import CatalogueViewModel
from mobile_app.viewmodels.targets import TargetsViewModel

from ..icons import with_icon
from ..widgets import ChoiceField, FlatButton, FsButton, FsLabel, FsTextInput, MutedLabel
from .base import BaseScreen

MORE_ITEMS = (
    ("leads", "leads", "leads.title"),
    ("tickets", "tickets", "tickets.title"),
    ("contracts", "contracts", "contracts.title"),
    ("orders", "orders", "orders.title"),
    ("products", "products", "products.title"),
    ("knowledge", "knowledge", "kb.title"),
    ("targets", "targets", "targets.title"),
    ("settings", "settings", "settings.title"),
)


class MoreScreen(BaseScreen):
    screen_name = "more"
    title_key = "more.title"
    tab = "more"

    def build(self) -> None:
        self.entries: dict[str, FlatButton] = {}
        for target, icon, key in MORE_ITEMS:
            button = FlatButton(text=with_icon(icon, self.t(key)), markup=True, height=dp(52))
            button.halign = "left"
            button.bind(on_release=lambda _b, s=target: self.c.go(s))
            self.entries[target] = button
            self.add(button)


class ContractsScreen(BaseScreen):
    screen_name = "contracts"
    title_key = "contracts.title"
    live = True

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = ContractListViewModel(session)
        vm.refresh()
        if not vm.rows:
            self.empty(self.t("contracts.empty"))
        for row in vm.rows:
            self.item(
                row.title,
                row.subtitle,
                lambda cid=row.id: self.c.go("contract", contract_id=cid),
                alert=row.due,
                pending=row.pending,
            )


class ContractDetailScreen(BaseScreen):
    screen_name = "contract"
    live = True

    def build(self) -> None:
        session = self.c.session
        contract_id = self.params.get("contract_id")
        if session is None or not contract_id:
            return
        title, lines = contract_details(session, contract_id)
        self.title_label.text = title
        for label, text in lines:
            self.add(MutedLabel(text=label))
            self.add(FsLabel(text=text))
        record = session.store.collection("contracts").get(contract_id)
        if record is not None and record.fields.get("customer_id"):
            customer_id = str(record.fields["customer_id"])
            self.buttons(
                [
                    (
                        "customers",
                        session.tr.entity_label("customers"),
                        lambda: self.c.go("customer_detail", customer_id=customer_id),
                    )
                ],
                flat=True,
            )


class KnowledgeScreen(BaseScreen):
    screen_name = "knowledge"
    title_key = "kb.title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: KnowledgeViewModel | None = None
        self.search = FsTextInput(multiline=False, size_hint_y=None, height=dp(40))
        self.search.bind(text=lambda _w, text: self._search(text))

    def _search(self, text: str) -> None:
        if self.vm is not None and self.vm.query != text:
            self.vm.query = text
            self.render()

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        if self.vm is None or self.vm.session is not session:
            self.vm = KnowledgeViewModel(session)
        vm = self.vm
        self.search.hint_text = self.t("kb.search")
        if self.search.parent is not None:
            self.search.parent.remove_widget(self.search)
        self.add(self.search)
        vm.refresh()
        if not vm.rows:
            self.empty(self.t("kb.empty"))
        for row in vm.rows:
            self.item(
                row.title,
                row.subtitle,
                lambda aid=row.id: self.c.go(
                    "article", article_id=aid, ticket_id=self.params.get("ticket_id")
                ),
            )


class ArticleScreen(BaseScreen):
    screen_name = "article"

    def build(self) -> None:
        session = self.c.session
        article_id = self.params.get("article_id")
        if session is None or not article_id:
            return
        article = read_article(session, article_id)
        if article is None:
            self.empty(self.t("customers.not_found"))
            return
        self.title_label.text = article.title
        meta = " · ".join(b for b in (article.category, article.tags) if b)
        if meta:
            self.add(MutedLabel(text=meta))
        self.body_label = FsLabel(text=article.body)
        self.add(self.body_label)
        self.section(self.t("kb.link"))
        tickets = open_tickets(session)
        if not tickets:
            self.empty(self.t("kb.no_tickets"))
            return
        preset = self.params.get("ticket_id") or tickets[0][0]
        self.ticket_choice = ChoiceField(self.t("tickets.title"), tickets, preset)
        self.add(self.ticket_choice)
        self.link_button = FsButton(text=self.t("kb.link"))
        self.link_button.bind(on_release=lambda *_: self._link(article_id))
        self.add(self.link_button)
        self.link_message = MutedLabel(text="")
        self.add(self.link_message)

    def _link(self, article_id: str) -> None:
        session = self.c.session
        ticket_id = self.ticket_choice.spinner.value
        if session is not None and ticket_id and link_to_ticket(session, article_id, ticket_id):
            self.link_message.text = self.t("kb.linked")


class TargetsScreen(BaseScreen):
    screen_name = "targets"
    title_key = "targets.title"
    live = True

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        vm = TargetsViewModel(session)
        vm.refresh()
        if not vm.rows:
            self.empty(self.t("targets.empty"))
        from kivy.uix.progressbar import ProgressBar

        self.bars: list[ProgressBar] = []
        for row in vm.rows:
            title, detail = vm.lines(row)
            self.section(title)
            bar = ProgressBar(max=100, value=min(100, row.percent), size_hint_y=None, height=dp(20))
            self.bars.append(bar)
            self.add(bar)
            self.add(FsLabel(text=detail))


class ProductsScreen(BaseScreen):
    screen_name = "products"
    title_key = "products.title"

    def __init__(self, controller: Any, **kw: Any) -> None:
        super().__init__(controller, **kw)
        self.vm: CatalogueViewModel | None = None
        self.search = FsTextInput(multiline=False, size_hint_y=None, height=dp(40))
        self.search.bind(text=lambda _w, text: self._search(text))

    def _search(self, text: str) -> None:
        if self.vm is not None and self.vm.query != text:
            self.vm.query = text
            self.render()

    def build(self) -> None:
        session = self.c.session
        if session is None:
            return
        if self.vm is None or self.vm.session is not session:
            self.vm = CatalogueViewModel(session)
        vm = self.vm
        self.search.hint_text = self.t("picker.search")
        if self.search.parent is not None:
            self.search.parent.remove_widget(self.search)
        self.add(self.search)
        vm.refresh()
        if not vm.rows:
            self.empty(self.t("products.empty"))
        for row in vm.rows:
            self.item(row.name, " · ".join(b for b in (row.price, row.subtitle) if b))
