"""`decide()` cost: median µs per decision on a realistic state (5 purposes plus
PIPL separate consents), 3 jurisdictions, 6 destinations.

    .venv/bin/python benchmarks/consent_decide.py
"""

from __future__ import annotations

import statistics
import time

from consent import ConsentState, DestinationFacts, EventFacts, Policies, PurposeState, decide

DESTINATIONS = [
    DestinationFacts("lake", ("analytics",), region="DE", recipient="Brand GmbH"),
    DestinationFacts("warehouse-cn", ("analytics",), region="CN", recipient="Brand Shanghai"),
    DestinationFacts("ads", ("advertising",), region="US", recipient="Ads Inc", third_party=True),
    DestinationFacts(
        "crm", ("personalization", "marketing"), region="IE", recipient="CRM Ltd", third_party=True
    ),
    DestinationFacts(
        "email", ("marketing",), region="US", recipient="Mailer Inc", third_party=True
    ),
    DestinationFacts(
        "ops",
        ("necessary",),
        region="DE",
        recipient="Brand GmbH",
        pi_categories=frozenset({"precise_location"}),
    ),
]
STATE = ConsentState(
    {
        "necessary": PurposeState(True, 1),
        "analytics": PurposeState(True, 2),
        "personalization": PurposeState(False, 3),
        "advertising": PurposeState(True, 4),
        "marketing": PurposeState(False, 5),
        "third_party:Ads Inc": PurposeState(True, 6),
        "cross_border:Brand GmbH": PurposeState(True, 7),
    }
)


def main() -> None:
    policies = Policies.builtin()
    cases = [
        (
            policies.get(j),
            EventFacts(
                jurisdiction=j,
                gpc=j == "CCPA",
                pi_categories=frozenset({"precise_location"}) if d.name == "ops" else frozenset(),
            ),
            d,
        )
        for j in ("GDPR", "PIPL", "CCPA")
        for d in DESTINATIONS
    ]
    samples = []
    for _ in range(30):
        t = time.perf_counter()
        for _ in range(1000):
            for policy, facts, dest in cases:
                decide(STATE, facts, dest, policy)
        samples.append((time.perf_counter() - t) / (1000 * len(cases)) * 1e6)
    outcomes = [decide(STATE, f, d, p).outcome for p, f, d in cases]
    print(
        f"{len(cases)} cases (3 jurisdictions x 6 destinations); outcomes: "
        f"{outcomes.count('allow')} allow, {outcomes.count('deny')} deny, {outcomes.count('no_decision')} no decision"
    )
    print(
        f"decide(): median {statistics.median(samples):.2f} us per decision "
        f"(p10 {sorted(samples)[3]:.2f}, p90 {sorted(samples)[27]:.2f}; 30 rounds of {1000 * len(cases):,})"
    )


if __name__ == "__main__":
    main()
