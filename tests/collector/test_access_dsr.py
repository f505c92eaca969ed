"""Roles, principals and the data subject request state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.access.principals import (
    AccessConfig,
    Principals,
    TokenConfig,
    UserConfig,
    bearer,
    hash_password,
)
from collector.access.roles import MATRIX, PERSONAL, ROLES, Permission, allows, why_not
from collector.dsr.model import (
    DeadlineRule,
    DsrError,
    add_months,
    add_working_days,
    due,
    extend,
    move,
    open_request,
)
from collector.errors import ConfigError

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def test_operator_and_viewer_never_hold_person_level_permissions() -> None:
    for role in ("operator", "viewer"):
        assert not (MATRIX[role] & PERSONAL), role
    assert MATRIX["viewer"] == {Permission.DASHBOARD}
    assert allows("auditor", Permission.DSR_EXPORT)
    assert not allows("auditor", Permission.ERASE)
    assert not allows("auditor", Permission.KEYS)
    assert all(allows("admin", p) for p in Permission)
    assert "roles that may: admin, auditor" in why_not("viewer", Permission.PERSON_LOOKUP)


def test_tokens_users_and_the_legacy_admin_variable() -> None:
    access = AccessConfig(
        tokens=[TokenConfig(name="dpo", role="auditor", token_env="DPO_TOKEN")],
        users=[
            UserConfig(name="maria", role="auditor", password_hash=hash_password("correct horse"))
        ],
    )
    env = {"DPO_TOKEN": "d" * 32, "CONSENTRY_ADMIN_TOKEN": "a" * 32}
    principals = Principals.from_config(
        access, admin_token_env="CONSENTRY_ADMIN_TOKEN", environ=env
    )
    dpo = principals.by_token("d" * 32)
    assert dpo is not None and (dpo.name, dpo.role) == ("dpo", "auditor")
    admin = principals.by_token("a" * 32)
    assert admin is not None and admin.role == "admin"
    assert principals.by_token("x" * 32) is None
    maria = principals.login("maria", "correct horse")
    assert maria is not None and maria.role == "auditor"
    assert principals.login("maria", "wrong") is None
    assert principals.login("nobody", "correct horse") is None


def test_a_token_whose_variable_is_unset_is_a_config_error_naming_it() -> None:
    access = AccessConfig(tokens=[TokenConfig(name="dpo", role="auditor", token_env="DPO_TOKEN")])
    with pytest.raises(ConfigError, match="DPO_TOKEN is not set"):
        Principals.from_config(access, admin_token_env=None, environ={})
    with pytest.raises(ConfigError, match="argon2"):
        Principals.from_config(
            AccessConfig(users=[UserConfig(name="u", role="viewer", password_hash="plain")]),
            admin_token_env=None,
            environ={},
        )


def test_bearer_scheme_is_required() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer abc") == "abc"
    assert bearer("abc") is None
    assert bearer("Basic abc") is None
    assert bearer(None) is None


def test_statutory_deadlines() -> None:
    gdpr = open_request(id="r1", type="access", jurisdiction="GDPR", received_at=T0, by="dpo")
    assert gdpr.due_at == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)  # Art. 12(3): month end
    assert extend(gdpr, at=T0, by="dpo", reason="complex").due_at == datetime(
        2026, 4, 30, 9, 0, tzinfo=UTC
    )
    ccpa = open_request(id="r2", type="erasure", jurisdiction="US-CA", received_at=T0, by="dpo")
    assert ccpa.due_at == T0 + timedelta(days=45)
    pipl = open_request(
        id="r3", type="access", jurisdiction="PIPL", received_at=T0, by="dpo"
    )  # a Saturday
    assert pipl.due_at == datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
    with pytest.raises(DsrError, match="no \\(further\\) extension"):
        extend(pipl, at=T0, by="dpo", reason="busy")
    custom = {"PIPL": DeadlineRule(unit="working_days", amount=10)}
    assert due(T0, custom["PIPL"]) == add_working_days(T0, 10)
    assert pipl.overdue(pipl.due_at + timedelta(seconds=1))
    assert pipl.days_left(pipl.due_at - timedelta(days=2)) == pytest.approx(2)


def test_the_request_lifecycle() -> None:
    r = open_request(id="r1", type="access", jurisdiction="GDPR", received_at=T0, by="dpo")
    with pytest.raises(DsrError, match="received request cannot become completed"):
        move(r, "completed", at=T0, by="dpo")
    with pytest.raises(DsrError, match="method"):
        move(r, "verified", at=T0, by="dpo")
    r = move(r, "verified", at=T0, by="dpo", method="signed_in_account")
    r = move(r, "in_progress", at=T0, by="dpo")
    r = move(r, "completed", at=T0, by="dpo")
    assert [s.state for s in r.history] == ["received", "verified", "in_progress", "completed"]
    assert (r.verification, r.verified_by) == ("signed_in_account", "dpo")
    assert not r.overdue(T0 + timedelta(days=400))
    with pytest.raises(DsrError, match="closed"):
        move(r, "refused", at=T0, by="dpo", note="x")
    refused = move(
        open_request(id="r2", type="erasure", jurisdiction="GDPR", received_at=T0, by="d"),
        "refused",
        at=T0,
        by="d",
        note="identity not verified",
    )
    assert refused.refusal_reason == "identity not verified"


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)), st.integers(0, 40)
)
def test_month_and_working_day_arithmetic(start: datetime, n: int) -> None:
    later = add_months(start, n)
    assert later >= start
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == n
    assert later.day == start.day or later.day < start.day  # clamped to the month's end
    wd = add_working_days(start, n)
    assert wd.weekday() < 5 or n == 0
    assert wd - start <= timedelta(days=n * 7 // 5 + 3)


def test_every_role_is_in_the_matrix() -> None:
    assert set(MATRIX) == set(ROLES)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
    st.integers(0, 60),
)
def test_working_days_count_exactly_the_weekdays_after_receipt(start: datetime, n: int) -> None:
    end = add_working_days(start, n)
    days = (end.date() - start.date()).days
    weekdays = sum(1 for k in range(1, days + 1) if (start + timedelta(days=k)).weekday() < 5)
    assert weekdays == n
    assert end.time() == start.time()
    if n:  # the due day itself is a working day: no weekend added at the end
        assert end.weekday() < 5


rules = st.builds(
    DeadlineRule,
    unit=st.sampled_from(["months", "days", "working_days"]),
    amount=st.integers(1, 90),
    extension=st.integers(0, 90),
)


@given(rules, st.sampled_from(["GDPR", "CCPA", "US-VA", "PIPL", "LGPD"]))
def test_a_configured_rule_sets_the_due_date_and_its_one_extension(
    rule: DeadlineRule, law: str
) -> None:
    configured = {law: rule}
    r = open_request(
        id="r", type="access", jurisdiction=law, received_at=T0, by="dpo", deadlines=configured
    )
    assert r.due_at == due(T0, rule)
    if rule.extension == 0:
        with pytest.raises(DsrError, match="no \\(further\\) extension"):
            extend(r, at=T0, by="dpo", reason="complex", deadlines=configured)
        return
    longer = extend(r, at=T0, by="dpo", reason="complex", deadlines=configured)
    assert longer.extended and longer.due_at == due(T0, rule, extended=True) > r.due_at
    assert longer.history[-1].note == "extended: complex"
    with pytest.raises(DsrError, match="no \\(further\\) extension"):
        extend(longer, at=T0, by="dpo", reason="again", deadlines=configured)
    with pytest.raises(DsrError, match="needs a reason"):
        extend(r, at=T0, by="dpo", reason="  ", deadlines=configured)


def test_refusing_needs_a_reason_at_every_open_state() -> None:
    r = open_request(id="r", type="erasure", jurisdiction="GDPR", received_at=T0, by="d")
    for state in ("received", "verified", "in_progress"):
        with pytest.raises(DsrError, match="needs a reason"):
            move(r, "refused", at=T0, by="d", note=" \n")
        if state == "received":
            r = move(r, "verified", at=T0, by="d", method="email_link")
        elif state == "verified":
            r = move(r, "in_progress", at=T0, by="d")


def test_dsr_config_section() -> None:
    from collector.config import parse

    cfg = parse(
        '[dsr.controller]\nname = "Shop GmbH"\ncontact = "privacy@shop.example"\n'
        '[dsr.deadlines.PIPL]\nunit = "working_days"\namount = 10\n'
        '[dsr.deadlines.CCPA]\nunit = "days"\namount = 30\nextension = 15\n'
    )
    assert cfg.dsr.controller.name == "Shop GmbH"
    assert cfg.dsr.deadlines["PIPL"] == DeadlineRule(unit="working_days", amount=10)
    assert cfg.dsr.deadlines["CCPA"].extension == 15
    assert parse("").dsr.deadlines == {}
    for text, where in (
        ("[dsr]\ndeadline = 3", "at dsr: Object contains unknown field `deadline`"),
        ('[dsr.deadlines.PIPL]\nunit = "weeks"\namount = 2', "dsr.deadlines"),
        ('[dsr.deadlines.PIPL]\nunit = "days"\namount = 0', ">= 1"),
        ('[dsr.deadlines.pipl]\nunit = "days"\namount = 5', "at dsr.deadlines.pipl"),
        ('[dsr.controller]\nname = "x"\nemail = "y"', "unknown field `email`"),
    ):
        with pytest.raises(ConfigError, match=where.replace("(", "\\(")):
            parse(text)
