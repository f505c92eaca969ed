"""The checks ``decide()`` runs under one pack (pure; see consent.decide).

Each check appends a reason that names the record and, where the law is the
reason, the article; ``ok`` turns False on any denial and ``gap`` marks a
question the configuration leaves open (no region where one is needed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from consent.jurisdiction import ChildRule
from consent.scope import notice_at_least, notice_key, recipient_key
from consent.state import ConsentState, DestinationFacts, EventFacts

if TYPE_CHECKING:
    from consent.policy import Policy


class Judge:
    def __init__(
        self,
        state: ConsentState,
        facts: EventFacts,
        dest: DestinationFacts,
        pack: Policy,
        child: ChildRule,
        tag: str,
    ) -> None:
        self.state, self.facts, self.dest, self.pack, self.child = state, facts, dest, pack, child
        self.tag = tag
        self.reasons: list[str] = []
        self.records: list[int] = []
        self.bases: set[str] = set()
        self.ok = True
        self.gap = False
        age = facts.age
        self.minor = age is not None and age < child.age
        self.needs_guardian = age is not None and age < child.guardian_below

    def run(self) -> None:
        self.purposes()
        self.sensitive()
        self.third_party()
        self.transfer()

    # -- helpers ----------------------------------------------------------------
    def say(self, text: str) -> None:
        self.reasons.append(self.tag + text)

    def deny(self, text: str) -> None:
        self.ok = False
        self.say(text)

    def min_notice(self, purposes: Iterable[str]) -> str | None:
        if not self.dest.min_notice:
            return None
        wanted = [self.dest.min_notice.get(p) for p in purposes] + [self.dest.min_notice.get("*")]
        found = [w for w in wanted if w is not None]
        return max(found, key=notice_key) if found else None

    def grant(
        self, key: str, what: str, *, notice_for: Iterable[str] = (), cover: Iterable[str] = ()
    ) -> bool:
        """Whether ``key`` is granted in a way that counts: by a record, under a
        recent enough notice, for these purposes, by a guardian for a child."""
        entry = self.state.get(key)
        if entry is None:
            self.deny(f"{what}: no consent on record")
            return False
        self.records.append(entry.record_id)
        rid = entry.record_id
        if not entry.granted:
            self.deny(f"{what}: denied by record {rid}")
            return False
        minimum = self.min_notice(notice_for)
        if minimum is not None and not notice_at_least(entry.notice, minimum):
            self.deny(
                f"{what}: record {rid} was given under notice {entry.notice or '(none)'}, older"
                f" than the required {minimum}, so it counts as no consent (PIPL Art. 14 para. 2)"
            )
            return False
        wanted = set(cover)
        if wanted:
            scope = entry.scope if entry.scope is not None else frozenset({"necessary"})
            missing = sorted(wanted - scope)
            if missing:
                self.deny(
                    f"{what}: record {rid} was given for {sorted(scope)}, not for {missing}"
                    " (GDPR Art. 9(2)(a), PIPL Art. 14: consent for specified purposes)"
                )
                return False
        if self.needs_guardian and not entry.guardian:
            self.deny(
                f"{what}: subject is under {self.child.guardian_below}; consent must come"
                " from a guardian (GDPR Art. 8(1), PIPL Art. 31, CCPA §1798.120(c))"
            )
            return False
        self.say(f"{what}: granted by record {rid}")
        return True

    def opted_out_of_sale(self) -> str | None:
        """Why the person counts as opted out of sale/sharing under this pack."""
        gpc = self.pack.gpc
        if not gpc.opts_out:
            return None
        if self.facts.gpc:
            return "Global Privacy Control (11 CCR §7025)"
        if self.facts.opt_outs:
            return ", ".join(self.facts.opt_outs)
        for purpose in sorted(gpc.opts_out):
            entry = self.state.get(purpose)
            if entry is not None and not entry.granted:
                return f"opt-out record {entry.record_id}"
        return None

    def _signalled(self) -> str:
        """The event's own opt-outs: GPC and each US section's field, all named."""
        said = ["Global Privacy Control, an opt-out of sale/share (11 CCR §7025)"]
        return ", ".join([*said[: int(self.facts.gpc)], *self.facts.opt_outs])

    # -- purposes ---------------------------------------------------------------
    def purposes(self) -> None:
        pack = self.pack
        sale = self.opted_out_of_sale()
        third_party = pack.gpc.third_party_sale and self.dest.role == "third_party"
        if sale and third_party and any(p != "necessary" for p in self.dest.purposes):
            self.deny(
                f"{self.dest.name} is a third party: disclosing to it is a sale"
                f" (Cal. Civ. Code §1798.140(ad)) and the person opted out by {sale}"
            )
        for purpose in self.dest.purposes:
            rule = pack.purposes.get(purpose)
            if rule is None:
                self.gap = True
                self.say(f"{purpose}: {pack.name} pack has no rule for this purpose")
                continue
            declared = self.dest.legal_bases.get(purpose)
            if rule == "none":
                basis = declared if declared in ("contract", "legal_obligation") else None
                self.bases.add(basis or pack.legal_basis.necessary)
                self.say(f"{purpose}: necessary, no consent needed")
                continue
            if declared in ("legitimate_interests", "soft_opt_in") and self._alternative(
                purpose, declared
            ):
                continue
            self.bases.add(pack.legal_basis.default)
            if rule == "opt_in" or (self.minor and purpose in self.child.opt_in_purposes):
                self.grant(purpose, purpose, notice_for=(purpose,))
                if rule != "opt_in" and self._signalled_out(purpose):
                    # A child's opt-in (CCPA 1798.120(c)) does not outlast an
                    # opt-out the event carries, as an adult's consent would not.
                    self.deny(f"{purpose}: opted out by {self._signalled()}")
                continue
            entry = self.state.get(purpose)
            if entry is not None:
                self.records.append(entry.record_id)
            opted_out = entry is not None and not entry.granted
            if entry is not None and not entry.granted:
                self.deny(f"{purpose}: opted out by record {entry.record_id}")
            if self._signalled_out(purpose):
                # The event's own opt-out is cited beside a recorded one.
                opted_out = True
                self.deny(f"{purpose}: opted out by {self._signalled()}")
            if not opted_out:
                self.say(f"{purpose}: allowed until opt-out ({pack.name})")

    def _signalled_out(self, purpose: str) -> bool:
        """The event opts out of ``purpose`` (GPC or a US section's opt-out)."""
        return purpose in self.pack.gpc.opts_out and bool(self.facts.gpc or self.facts.opt_outs)

    def _alternative(self, purpose: str, basis: str) -> bool:
        """Legitimate interests (GDPR Art. 6(1)(f)) or the soft opt-in (ePrivacy
        Art. 13(2)): allowed until the person objects. Not for children, and only
        where the pack lists the purpose; returns whether it applied."""
        allowed = (
            self.pack.legal_basis.legitimate_interests
            if basis == "legitimate_interests"
            else self.pack.legal_basis.soft_opt_in
        )
        if purpose not in allowed or self.minor:
            why = "the subject is a child" if self.minor else f"{self.pack.name} does not allow it"
            self.say(f"{purpose}: {basis} declared but not applied ({why}); consent needed")
            return False
        self.bases.add(basis)
        entry = self.state.get(purpose)
        if entry is not None:
            self.records.append(entry.record_id)
        if entry is not None and not entry.granted:
            self.deny(f"{purpose}: objected by record {entry.record_id} (GDPR Art. 21)")
        else:
            self.say(f"{purpose}: {basis}, allowed until the person objects")
        return True

    # -- sensitive data -----------------------------------------------------------
    def sensitive(self) -> None:
        categories = set(self.facts.pi_categories)
        age = self.facts.age
        if age is not None and age < self.child.sensitive_below:
            categories.add("minor")
        rule = self.pack.sensitive.rule
        needs_more = any(p != "necessary" for p in self.dest.purposes)
        for category in sorted(categories):
            if category != "minor" and category not in self.dest.pi_categories:
                self.deny(f"PI category {category}: destination is not declared to receive it")
                continue
            if category not in self.pack.sensitive.categories:
                continue
            key = f"sensitive:{category}"
            if rule in ("limit_use", "opt_out"):
                entry = self.state.get(key) or self.state.get("sensitive")
                if entry is not None and not entry.granted and needs_more:
                    self.deny(
                        f"sensitive {category}: limited by record {entry.record_id};"
                        " only necessary processing may continue (CCPA §1798.121(a))"
                    )
                continue
            granted = self.grant(
                key,
                f"sensitive {category} ({rule})",
                notice_for=self.dest.purposes,
                cover=self.dest.purposes,
            )
            if not granted and self.state.get("sensitive") is not None:
                self.say("a 'sensitive' consent that names no category covers none")

    # -- separate consent to provide to another handler -------------------------
    def third_party(self) -> None:
        if not (self.pack.separate.third_party and self.dest.third_party):
            return
        who, region = self.dest.recipient or self.dest.name, self.dest.region
        self.grant(
            recipient_key("third_party", who, region),
            f"provision to {who} in {region or '?'} (separate consent, PIPL Art. 23)",
            notice_for=("*",),
        )

    # -- transfers out of the law's zone ------------------------------------------
    def transfer(self) -> None:
        pack, dest = self.pack, self.dest
        zone = pack.zone
        if not zone:
            return
        if dest.region is None:
            if pack.separate.cross_border:
                self.gap = True
                self.say("destination declares no region; cross-border rules cannot be checked")
            else:
                self.say(f"destination declares no region: {pack.name} transfer rules not checked")
            return
        if dest.region in zone:
            return
        region, who = dest.region, dest.recipient or dest.name
        declared = dest.transfer.get(pack.name)
        rules = pack.transfer
        consent_key = recipient_key("cross_border", who, region)
        article = "PIPL Art. 38" if pack.separate.cross_border else "GDPR Art. 44-46"
        if declared is None:
            self.deny(
                f"transfer to {who} in {region} needs a mechanism ({article}); declare"
                f" transfer = {{ {pack.name} = ... }} on the destination"
            )
            return
        if declared == rules.consent_mechanism:
            if self.grant(
                consent_key,
                f"transfer to {who} in {region} (explicit consent, GDPR Art. 49(1)(a))",
                notice_for=("*",),
            ):
                self.bases.add(f"transfer:{declared}")
            return
        if not self._mechanism_holds(declared, region):
            return
        self.bases.add(f"transfer:{declared}")
        if not pack.separate.cross_border:
            self.say(f"transfer to {region} under {declared}")
            return
        necessary_only = all(p == "necessary" for p in dest.purposes)
        if declared == rules.contract_exemption and necessary_only:
            self.bases.add(declared)
            self.say(
                f"transfer to {who} in {region}: necessary to perform the contract, no separate"
                " consent (PIPL Art. 13(1)(2); CAC Provisions 2024 Art. 5(1))"
            )
            return
        self.grant(
            consent_key,
            f"transfer to {who} in {region} (separate consent, PIPL Art. 39)",
            notice_for=("*",),
        )

    def _mechanism_holds(self, declared: str, region: str) -> bool:
        rules = self.pack.transfer
        known = rules.mechanisms | rules.exemptions
        if declared not in known:
            self.deny(
                f"transfer mechanism {declared!r} is not one of {self.pack.name}'s: {sorted(known)}"
            )
            return False
        if declared == "adequacy" and region not in rules.adequate:
            self.deny(f"no adequacy decision covers {region} (GDPR Art. 45)")
            return False
        bound = rules.region_bound.get(declared)
        if bound is not None and region not in bound:
            self.deny(f"{declared} covers only {sorted(bound)}, not {region}")
            return False
        if declared == rules.volume_exemption:
            volume, limit = self.dest.transfer_volume, rules.volume_threshold
            if self.facts.pi_categories & self.pack.sensitive.categories:
                self.deny(
                    "the volume exemption does not cover sensitive PI (CAC Provisions Art. 5)"
                )
                return False
            if volume is None or volume >= limit:
                self.deny(
                    f"volume exemption: {volume if volume is not None else 'unknown'} people"
                    f" transferred this year, not under {limit} (CAC Provisions Art. 5(4))"
                )
                return False
        return True
