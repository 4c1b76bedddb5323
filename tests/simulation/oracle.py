"""The simulator's oracle: judges a healed world (see :class:`Oracle`)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync_protocol import CRM_SCHEMA, MergePolicy, Timestamp
from tests.simulation.edits import Write

if TYPE_CHECKING:
    from tests.support.simulator import SentMutation, Simulation

TEAM_ID = "team-east"
MAX_DRIFT_MS = 5 * 60 * 1000  # the server default the clamp bounds assume
_ABSENT = object()


@dataclass
class ServerRow:
    collection: str
    record_id: str
    owner_id: str | None
    deleted: bool
    fields: dict[str, Any]
    clocks: dict[str, list[Any]]


@dataclass
class Oracle:
    """Checks the healed world. Every rule is a *must*; nothing is sampled.

    1. **Convergence and scope.** Every device holds exactly the server's live records
       that its user may see (owner is the user, or a member of the manager's team, or
       reference data) — same ids, same decoded fields, ``_conflicts`` included — and
       nothing else; no device has pending writes left.
    2. **No lost acknowledged write.** Every write the SDK acknowledged left the device
       in a mutation the server accepted, unless it sits in the device's dead letters
       for a reason the world explains (the customer was reassigned away: ``forbidden``;
       a record it names was deleted or left the writer's scope: ``unknown_ref``) or its
       record was deleted on purpose. For an accepted mutation, per field:

       * ``lww`` / ``manual``: the server's value is the mutation's, or the field's final
         clock is at least the mutation's effective HLC (it was superseded by a later
         write; the effective HLC is the device's, clamped by the server to
         ``now + max_drift`` — bounded from the real time the mutation was first sent),
         or (manual) a ``_conflicts`` record of that mutation holds the value. The final
         value itself must be the value of the write its clock names;
       * ``union`` (tags; the simulator only ever adds unique tags): every tag is there;
       * ``append`` (notes; only unique lines are appended): every line is there.

       A write to a record deleted on the server is excused only if some device's
       acknowledged delete of that record was accepted.
    3. **Exactly once.** Every mutation has one ``applied_mutations`` row and one audit
       row; no rejection other than the explained ``forbidden`` ones.
    """

    sim: Simulation
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def load_server(self) -> None:
        from sqlalchemy import text

        from server.db import make_engine

        engine = make_engine(self.sim.config.db_url)
        try:
            with engine.connect() as conn:
                self.rows = {
                    (r.collection, r.record_id): ServerRow(
                        r.collection,
                        r.record_id,
                        r.owner_id,
                        bool(r.deleted),
                        json.loads(r.data) if r.data else {},
                        json.loads(r.clocks) if r.clocks else {},
                    )
                    for r in conn.execute(
                        text(
                            "SELECT collection, record_id, owner_id, deleted, data, clocks "
                            "FROM records"
                        )
                    )
                }
                self.applied = {
                    r.mutation_id: json.loads(r.result)
                    for r in conn.execute(text("SELECT mutation_id, result FROM applied_mutations"))
                }
                self.audit: Counter[str] = Counter()
                for (details,) in conn.execute(
                    text("SELECT details FROM audit_log WHERE action LIKE 'mutation.%'")
                ):
                    self.audit[json.loads(details)["mutation_id"]] += 1
                self.team = {
                    r[0]
                    for r in conn.execute(
                        text("SELECT id FROM users WHERE team_id = :t"), {"t": TEAM_ID}
                    )
                }
        finally:
            engine.dispose()

    def sees(self, user_id: str, owner_id: str | None) -> bool:
        if owner_id is None:
            return True
        if user_id == "u-manager":
            return owner_id == user_id or owner_id in self.team
        return owner_id == user_id

    # -- 1 -------------------------------------------------------------------------------
    def check_convergence(self) -> None:
        names = [*CRM_SCHEMA.entities, "_conflicts"]
        for d in self.sim.devices:
            status = d.store.status()
            if status.pending_total:
                self.fail(f"device {d.index}: {status.pending_total} writes still pending")
            held: dict[tuple[str, str], dict[str, Any]] = {}
            for name in names:
                for rid, rec in d.store._core.views.cache(name).records.items():
                    held[(name, rid)] = rec.fields
            expected = {
                key: row.fields
                for key, row in self.rows.items()
                if not row.deleted and self.sees(d.user_id, row.owner_id)
            }
            for key in sorted(expected.keys() - held.keys()):
                self.fail(f"device {d.index} ({d.username}) lacks {key[0]}/{key[1]}")
            for key in sorted(held.keys() - expected.keys()):
                row = self.rows.get(key)
                why = (
                    "unknown to the server"
                    if row is None
                    else ("deleted on the server" if row.deleted else f"owned by {row.owner_id}")
                )
                self.fail(f"device {d.index} ({d.username}) holds {key[0]}/{key[1]}: {why}")
            for key in sorted(expected.keys() & held.keys()):
                if expected[key] != held[key]:
                    diff = sorted(
                        k
                        for k in expected[key].keys() | held[key].keys()
                        if expected[key].get(k) != held[key].get(k)
                    )
                    self.fail(f"device {d.index} differs from the server on {key}: fields {diff}")

    # -- 2 -------------------------------------------------------------------------------
    def check_writes(self) -> None:
        sim = self.sim
        dead: dict[int, dict[str, Any]] = {
            d.index: {x.id: x for x in d.store.dead_letters()} for d in sim.devices
        }
        by_device_record: dict[tuple[int, str, str], list[SentMutation]] = defaultdict(list)
        for m in sim.sent.values():
            by_device_record[(m.device, m.collection, m.record_id)].append(m)
        for ms in by_device_record.values():
            ms.sort(key=lambda m: m.hlc)
        deleted_on_purpose = {
            (m.collection, m.record_id)
            for m in sim.sent.values()
            if m.op == "delete" and self._accepted(m.id)
        }
        dropped_offline = {
            (w.device, w.collection, w.record_id) for w in sim.writes if w.op == "delete"
        }
        self.stats: Counter[str] = Counter()
        self.by_record: dict[tuple[str, str], list[SentMutation]] = defaultdict(list)
        for m in sim.sent.values():
            self.by_record[(m.collection, m.record_id)].append(m)
        for w in sim.writes:
            key = (w.collection, w.record_id)
            candidates = [m for m in by_device_record.get((w.device, *key), []) if m.hlc >= w.hlc]
            m = candidates[0] if candidates else None
            if m is None:
                explained = self._dead_explained(w, dead[w.device], None)
                if explained:
                    self.stats["writes_dead_lettered"] += 1
                elif (w.device, *key) in dropped_offline:
                    self.stats["writes_dropped_by_own_delete"] += 1
                else:
                    self.fail(f"acknowledged write never left device {w.device}: {w}")
                continue
            result = self.applied.get(m.id)
            if result is None:
                if m.id in dead[w.device] and self._dead_explained(w, dead[w.device], m):
                    self.stats["writes_dead_lettered"] += 1
                    continue
                self.fail(f"mutation {m.id} of {w} never reached the server")
                continue
            if result.get("status") == "rejected":
                if self._dead_explained(w, dead[w.device], m):
                    self.stats["writes_rejected_after_reassignment"] += 1
                else:
                    self.fail(f"mutation {m.id} rejected: {result.get('error')} ({w})")
                continue
            if w.op == "delete":
                continue
            row = self.rows.get(key)
            if row is None:
                self.fail(f"accepted write to {key} but the server has no such record")
                continue
            if row.deleted and key in deleted_on_purpose:
                self.stats["writes_to_deleted_records"] += 1
                continue
            if row.deleted:
                self.fail(f"{key} is deleted on the server but nobody's delete was accepted")
                continue
            entity = CRM_SCHEMA[w.collection]
            for name, value in w.fields.items():
                spec = entity.fields.get(name)
                policy = spec.merge if spec else MergePolicy.LWW
                self._check_field(w, m, row, name, value, policy)

    def _accepted(self, mutation_id: str) -> bool:
        result = self.applied.get(mutation_id)
        return result is not None and result.get("status") != "rejected"

    def _dead_explained(self, w: Write, dead: dict[str, Any], m: SentMutation | None) -> bool:
        """A dead letter is acceptable only when the customer left the user's scope."""
        letters = [
            x for x in dead.values() if (x.collection, x.record_id) == (w.collection, w.record_id)
        ]
        if m is not None:
            letters = [x for x in letters if x.id == m.id]
        if not letters:
            return False
        same_record = [
            x for x in dead.values() if (x.collection, x.record_id) == (w.collection, w.record_id)
        ]
        for letter in letters:
            code = letter.error.get("code")
            # A create refused as ``forbidden`` takes the record's later edits with it:
            # the server answers those ``validation_failed`` (the record never existed).
            cascade = code == "validation_failed" and any(
                x.error.get("code") == "forbidden" for x in same_record
            )
            # A record written offline that names another record (a stage change's
            # opportunity) which has since left the writer's scope or been deleted: the
            # server refuses the dangling reference (``unknown_ref``) — explained when the
            # referenced record is gone, or by the reassignment checked below.
            dangling = self._dangling_refs(letter.error)
            if code != "forbidden" and not cascade and dangling is None:
                self.fail(f"dead letter {letter.id} for {w}: {letter.error}")
                return True
            if cascade:
                self.stats["dead_letters_cascading_from_forbidden_create"] += 1
            if dangling:
                self.stats["dead_letters_reference_deleted"] += 1
                return True
            if dangling is not None:
                self.stats["dead_letters_reference_left_scope"] += 1
        customer = self._customer_of(w)
        if customer is None or not self.sim.reassigned.get(customer):
            self.fail(
                f"write dead-lettered as forbidden but its customer was never reassigned: {w}"
            )
        return True

    def _dangling_refs(self, error: dict[str, Any]) -> bool | None:
        """``None`` unless ``error`` is a ``validation_failed`` made only of ``unknown_ref``
        problems; then whether every referenced record is deleted on the server."""
        if error.get("code") != "validation_failed":
            return None
        problems = (error.get("details") or {}).get("fields") or []
        if not problems or any(p.get("code") != "unknown_ref" for p in problems):
            return None
        gone = True
        for problem in problems:
            # "opportunity_id: no opportunities record oppo-1-120 in your scope"
            words = str(problem.get("message", "")).split()
            try:
                at = words.index("record")
                collection, record_id = words[at - 1], words[at + 1]
            except (ValueError, IndexError):
                return None
            row = self.rows.get((collection, record_id))
            gone = gone and (row is None or row.deleted)
        return gone

    def _customer_of(self, w: Write) -> str | None:
        if w.collection == "customers":
            return w.record_id
        row = self.rows.get((w.collection, w.record_id))
        if row is not None and "customer_id" in row.fields:
            return str(row.fields["customer_id"])
        for other in self.sim.writes:
            same = (other.collection, other.record_id) == (w.collection, w.record_id)
            if same and "customer_id" in other.fields:
                return str(other.fields["customer_id"])
        return None

    def _check_field(
        self, w: Write, m: SentMutation, row: ServerRow, name: str, value: Any, policy: MergePolicy
    ) -> None:
        final = row.fields.get(name)
        where = f"{w.collection}/{w.record_id}.{name}"
        if policy is MergePolicy.UNION:
            missing = [t for t in value if t not in (final or [])]
            if missing:
                self.fail(
                    f"tags {missing} written by device {w.device} (mutation {m.id}) lost from {where}"
                )
            return
        if policy is MergePolicy.APPEND:
            line = str(value).rsplit("\n", 1)[-1]
            lines = str(final or "").split("\n")
            if line not in lines:
                self.fail(
                    f"note line {line!r} (device {w.device}, mutation {m.id}) lost from {where}"
                )
            elif lines.count(line) > 1:
                self.stats["duplicated_note_lines"] += 1
            return
        if final == value:
            self.stats["writes_present"] += 1
            return
        if m.fields.get(name, value) != value:
            # Edited again on the same device before it was sent: the outbox coalesced
            # the two writes and the later one (checked on its own) supersedes this one.
            self.stats["writes_superseded_by_own_later_edit"] += 1
            return
        if policy is MergePolicy.MANUAL and self._in_conflict(m.id, w, name, value):
            self.stats["writes_in_conflicts"] += 1
            return
        clock = row.clocks.get(name)
        if clock is None:
            self.fail(f"{where} has no clock but {w} was accepted")
            return
        final_hlc = Timestamp.parse(clock[0])
        own = [
            x
            for x in self.by_record.get((m.collection, m.record_id), [])
            if x.device == m.device
            and x.fields.get(name, _ABSENT) == final
            and self._could_be(x, final_hlc)
        ]
        if own and all(x.hlc < m.hlc for x in own):
            self.fail(
                f"{where}: device {w.device}'s later edit {value!r} (mutation {m.id}) lost to "
                f"its own earlier edit {final!r} (stored clock {clock[0]})"
            )
            return
        lower = self._effective_lower_bound(m)
        if lower > final_hlc and self._overwritten_by_one_who_saw_it(m, name):
            # A device that had pulled this value wrote over it: superseded causally,
            # even though that later write's HLC is smaller (see the report on server
            # HLC regressions across restarts and workers).
            self.stats["writes_superseded_causally_with_smaller_hlc"] += 1
            return
        if lower > final_hlc:
            self.fail(
                f"{where}: write {value!r} (device {w.device}, mutation {m.id}, effective HLC "
                f">= {lower.encode()}) lost to an older write (clock {clock[0]}, value {final!r})"
            )
            return
        self.stats["writes_superseded"] += 1

    def _overwritten_by_one_who_saw_it(self, m: SentMutation, name: str) -> bool:
        """Some accepted write of ``name`` had ``m``'s result as its base (causally later)."""
        landed = (self.applied.get(m.id) or {}).get("version")
        if landed is None:
            return False
        return any(
            other.id != m.id
            and name in other.fields
            and other.base_version is not None
            and other.base_version >= landed
            and self._accepted(other.id)
            for other in self.by_record.get((m.collection, m.record_id), [])
        )

    def _effective_lower_bound(self, m: SentMutation) -> Timestamp:
        """The smallest HLC the server can have stored for ``m`` after its clamp.

        A timestamp beyond ``now + max_drift`` is pulled back to that limit (the counter
        may be dropped too); the server's "now" is no earlier than the first send.
        """
        ts = Timestamp.parse(m.hlc)
        limit = int(m.first_start * 1000) + MAX_DRIFT_MS - 5
        if ts.wall_ms <= limit:
            return ts
        return Timestamp(limit, 0, ts.node)

    def _in_conflict(self, mutation_id: str, w: Write, name: str, value: Any) -> bool:
        for row in self.rows.values():
            if row.collection != "_conflicts":
                continue
            f = row.fields
            if (
                f.get("record_id") == w.record_id
                and f.get("field") == name
                and (f.get("local") == value or f.get("remote") == value)
            ):
                return True
        return False

    def check_final_values_have_writers(self) -> None:
        """Each lww field's final value is the value of the write its clock names."""
        by_hlc: dict[tuple[str, str], list[SentMutation]] = defaultdict(list)
        for m in self.sim.sent.values():
            by_hlc[(m.collection, m.record_id)].append(m)
        for key, row in self.rows.items():
            if row.deleted or key[0] == "_conflicts":
                continue
            entity = CRM_SCHEMA.get(key[0])
            if entity is None:
                continue
            for name, clock in row.clocks.items():
                spec = entity.fields.get(name)
                if spec is None or spec.merge is not MergePolicy.LWW or name == "owner_id":
                    continue
                ts = Timestamp.parse(clock[0])
                writers = [
                    m for m in by_hlc.get(key, []) if name in m.fields and self._could_be(m, ts)
                ]
                if not writers:
                    continue  # seeded data or a write the oracle did not see (server-made)
                if all(m.fields[name] != row.fields.get(name) for m in writers):
                    self.fail(
                        f"{key[0]}/{key[1]}.{name} = {row.fields.get(name)!r} but the write "
                        f"its clock {clock[0]} names wrote {[m.fields[name] for m in writers]}"
                    )

    @staticmethod
    def _could_be(m: SentMutation, ts: Timestamp) -> bool:
        """Could the server have stored ``m``'s HLC as ``ts`` (exactly, or clamped)?"""
        mine = Timestamp.parse(m.hlc)
        if mine.node != ts.node:
            return False
        if mine.wall_ms == ts.wall_ms:
            return mine.counter == ts.counter
        return mine.wall_ms > ts.wall_ms and ts.counter in (0, mine.counter)

    # -- 3 -------------------------------------------------------------------------------
    def check_exactly_once(self) -> None:
        for mid in self.sim.sent:
            if mid not in self.applied:
                continue
            if self.audit.get(mid, 0) != 1:
                self.fail(f"mutation {mid} has {self.audit.get(mid, 0)} audit rows (want 1)")
        twice = [mid for mid, n in self.audit.items() if n > 1]
        if twice:
            self.fail(f"{len(twice)} mutations applied more than once, e.g. {twice[:3]}")
        created: Counter[str] = Counter()
        for m in self.sim.sent.values():
            if m.collection in ("activities", "stage_changes") and self._accepted(m.id):
                created[m.record_id] += 1
        for rid, n in created.items():
            if n > 1:
                self.fail(f"event {rid} created by {n} accepted mutations")

    def run(self) -> list[str]:
        self.load_server()
        self.check_convergence()
        self.check_writes()
        self.check_final_values_have_writers()
        self.check_exactly_once()
        return self.failures
