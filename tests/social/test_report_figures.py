"""The monthly report's figures add up: follower change = followers at the end of the month -
followers at the start, for every account, every brand and the client, and brand and client
figures are the sums of their accounts'. Pure arithmetic first, then the served JSON and PDF."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from social.models import DailyStat, SocialAccount
from social.schemas import ReportTotals
from social.service.reports import account_totals, follower_bounds, sum_totals
from tests.support.factories import make_brand, make_client, new_agency, unique
from tests.support.pdf import read

# ---------------------------------------------------------------------------------------------
# Pure: one account's bounds, and sums


BOUNDS = [
    # (last count of the previous month, the month's daily counts) -> (start, end)
    pytest.param(100, [105, 110, 120], (100, 120), id="opens-at-the-previous-months-close"),
    pytest.param(100, [None, 104, None, None], (100, 104), id="missing-days-keep-the-last-count"),
    pytest.param(200, [190, 180], (200, 180), id="a-loss"),
    pytest.param(None, [None, None, 50, 55], (50, 55), id="connected-mid-month"),
    pytest.param(None, [None, 70, None], (70, 70), id="one-count-only"),
    pytest.param(100, [None, None], (None, None), id="no-count-this-month-is-left-out"),
    pytest.param(None, [], (None, None), id="nothing-at-all"),
]


@pytest.mark.parametrize(("before", "counts", "expected"), BOUNDS)
def test_follower_bounds(
    before: int | None, counts: list[int | None], expected: tuple[int | None, int | None]
) -> None:
    assert follower_bounds(before, counts) == expected


def _day(n: int, followers: int | None, change: int | None = None, **flows: int) -> DailyStat:
    return DailyStat(
        tenant_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        day=date(2026, 11, n),
        followers=followers,
        follower_change=change,
        **flows,
    )


def test_the_change_is_end_minus_start_not_the_sum_of_daily_changes() -> None:
    # A platform's daily "change" can be gross follows (Meta counts new followers only): its sum
    # (1,404 here) is not how much the audience grew (71,816 -> 73,156: +1,340).
    days = [_day(1, 71_900, 120), _day(15, 72_500, 700), _day(30, 73_156, 584)]
    totals = account_totals(list(reversed(days)), 71_816)
    assert (totals.followers_start, totals.followers_end) == (71_816, 73_156)
    assert totals.follower_change == 1_340


def test_flows_add_up_the_days_that_have_them() -> None:
    days = [
        _day(1, None, impressions=1_000, engagements=30),
        _day(2, None, impressions=500),
        _day(3, None),
    ]
    totals = account_totals(days, None)
    assert totals.impressions == 1_500 and totals.engagements == 30
    assert totals.engagement_rate == 0.02
    assert totals.reach is None  # never reported: unknown, not 0
    assert totals.followers_start is None and totals.follower_change is None


def _totals(start: int | None, end: int | None, **flows: int | None) -> ReportTotals:
    blank: dict[str, int | None] = dict.fromkeys(ReportTotals.model_fields)
    change = None if start is None or end is None else end - start
    figures = {"followers_start": start, "followers_end": end, "follower_change": change}
    return ReportTotals.model_validate(blank | figures | flows)


SUMS = [
    pytest.param(
        [_totals(71_816, 73_156), _totals(500, 480)],
        (72_316, 73_636, 1_320),
        id="two-accounts",
    ),
    pytest.param(
        [_totals(71_816, 73_156), _totals(None, None, impressions=10)],
        (71_816, 73_156, 1_340),
        id="an-account-without-counts-is-left-out-of-followers",
    ),
    pytest.param([_totals(None, None)], (None, None, None), id="nobody-counted"),
    pytest.param([], (None, None, None), id="no-account"),
]


@pytest.mark.parametrize(("parts", "expected"), SUMS)
def test_sum_totals(parts: list[ReportTotals], expected: tuple[int | None, ...]) -> None:
    summed = sum_totals(parts)
    assert (summed.followers_start, summed.followers_end, summed.follower_change) == expected


def test_sum_totals_recompute_the_rate_from_the_sums() -> None:
    summed = sum_totals(
        [
            _totals(None, None, impressions=1_000, engagements=100),
            _totals(None, None, impressions=9_000, engagements=100),
        ]
    )
    assert (summed.impressions, summed.engagements) == (10_000, 200)
    assert summed.engagement_rate == 0.02  # not the mean of 0.1 and 0.0111


# ---------------------------------------------------------------------------------------------
# Served: the JSON and the PDF say the same


NOVEMBER = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]


def _linear(start: int, end: int) -> dict[date, int]:
    """November's counts from the day after `start` was counted to `end` on the 30th."""
    return {d: start + round((end - start) * (n + 1) / 30) for n, d in enumerate(NOVEMBER)}


async def _account(db, tenant_id: uuid.UUID, brand_id: str, name: str) -> uuid.UUID:
    async with db.tenant_transaction(tenant_id) as session:
        account = SocialAccount(
            tenant_id=tenant_id,
            brand_id=uuid.UUID(brand_id),
            platform="sandbox",
            external_id=unique("ext"),
            display_name=name,
            status="paused",  # nothing syncs over the figures seeded here
        )
        session.add(account)
        await session.flush()
        return account.id


async def _seed(
    db,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    followers: dict[date, int],
    *,
    engagements: int = 0,
    gross_change: int = 0,
) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        for day, count in followers.items():
            session.add(
                DailyStat(
                    tenant_id=tenant_id,
                    account_id=account_id,
                    day=day,
                    followers=count,
                    # What a platform may give as the day's change: new follows, not the net.
                    follower_change=gross_change,
                    impressions=10 * engagements if engagements else None,
                    engagements=engagements or None,
                )
            )


async def test_the_served_report_adds_up_in_json_and_pdf(client, db, clock):
    clock.set(datetime(2026, 12, 6, 14, 0, tzinfo=UTC))
    agency = await new_agency(client)
    owner = agency.owner.headers
    customer = await make_client(client, owner, name="Boulangerie Figures", locale="en")
    alpha = await make_brand(client, owner, customer["id"], name="Alpha bakery")
    beta = await make_brand(client, owner, customer["id"], name="Beta bakery")
    tid = agency.tenant_id

    # Alpha: a month-long account that closed October at 71,816 and ends November at 73,156
    # (its platform's daily "change" adds up to 30 x 47 = 1,410, which is not the growth)...
    steady = await _account(db, tid, alpha["id"], "Steady account")
    await _seed(db, tid, steady, {date(2026, 10, 31): 71_816}, gross_change=47)
    await _seed(db, tid, steady, _linear(71_816, 73_156), engagements=100, gross_change=47)
    # ... and one connected on 15 November, silent on 20-22 November and the last two days.
    late = _linear(0, 6_000)
    late = {d: n for d, n in late.items() if d.day >= 15 and d.day not in (20, 21, 22, 29, 30)}
    newcomer = await _account(db, tid, alpha["id"], "Newcomer account")
    await _seed(db, tid, newcomer, late, engagements=10)
    # Beta: an account that stopped reporting in October (left out of November's followers),
    # and one that lost followers.
    gone = await _account(db, tid, beta["id"], "Silent account")
    await _seed(db, tid, gone, {date(2026, 10, 30): 9_999, date(2026, 10, 31): 10_000})
    losing = await _account(db, tid, beta["id"], "Losing account")
    await _seed(db, tid, losing, {date(2026, 10, 31): 2_000})
    await _seed(db, tid, losing, _linear(2_000, 1_850))

    path = f"/v1/clients/{customer['id']}/reports/2026-11"
    response = await client.get(path, headers=owner)
    assert response.status_code == 200, response.text
    report = response.json()

    def figures(totals: dict) -> tuple[int | None, int | None, int | None]:
        return totals["followers_start"], totals["followers_end"], totals["follower_change"]

    accounts = {a["display_name"]: a for b in report["brands"] for a in b["accounts"]}
    assert figures(accounts["Steady account"]["totals"]) == (71_816, 73_156, 1_340)
    assert figures(accounts["Newcomer account"]["totals"]) == (3_000, 5_600, 2_600)
    assert figures(accounts["Silent account"]["totals"]) == (None, None, None)
    assert figures(accounts["Losing account"]["totals"]) == (2_000, 1_850, -150)

    brands = {b["name"]: b for b in report["brands"]}
    assert figures(brands["Alpha bakery"]["totals"]) == (74_816, 78_756, 3_940)
    assert figures(brands["Beta bakery"]["totals"]) == (2_000, 1_850, -150)
    assert figures(report["totals"]) == (76_816, 80_606, 3_790)
    # At every level: change = end - start, and brand and client figures are sums of accounts.
    for brand in report["brands"]:
        for level in [brand["totals"]] + [a["totals"] for a in brand["accounts"]]:
            start, end, change = figures(level)
            assert change is None or change == end - start
        for metric in ("followers_start", "followers_end", "follower_change", "engagements"):
            known = [a["totals"][metric] for a in brand["accounts"]]
            known = [v for v in known if v is not None]
            assert brand["totals"][metric] == (sum(known) if known else None)
    for metric in ("followers_start", "followers_end", "follower_change", "engagements"):
        known = [b["totals"][metric] for b in report["brands"]]
        assert report["totals"][metric] == sum(v for v in known if v is not None)

    pdf = await client.get(f"{path}/pdf", headers=owner)
    assert pdf.status_code == 200, pdf.text
    _, text = read(pdf.content)
    assert (
        "Followers at start of month 76,816 Followers at end of month 80,606 Follower change +3,790"
    ) in text
    assert "Followers at start of month 74,816 Followers at end of month 78,756" in text
    assert "Follower change +3,940" in text
    assert "Follower change -150" in text
    assert "Steady account Demo 73,156 +1,340" in text
    assert "Newcomer account Demo 5,600 +2,600" in text
    assert "Losing account Demo 1,850 -150" in text
    assert "Silent account Demo — —" in text
    assert "1,404" not in text and "+1,410" not in text


async def test_the_first_month_of_the_calendar_has_no_month_before_it(client, db, clock):
    """Reading the count before the month must not step out of the calendar (0001-01)."""
    clock.set(datetime(2026, 12, 6, 14, 0, tzinfo=UTC))
    agency = await new_agency(client)
    owner = agency.owner.headers
    customer = await make_client(client, owner, locale="en")
    brand = await make_brand(client, owner, customer["id"])
    await _account(db, agency.tenant_id, brand["id"], "Any account")
    path = f"/v1/clients/{customer['id']}/reports/0001-01"
    json_answer = await client.get(path, headers=owner)
    pdf_answer = await client.get(f"{path}/pdf", headers=owner)
    # Served as an empty month, or refused as out of range: never a server error, and the
    # same for JSON and PDF.
    assert json_answer.status_code in (200, 422), json_answer.text
    assert pdf_answer.status_code == json_answer.status_code, pdf_answer.text
    if json_answer.status_code == 200:
        assert json_answer.json()["month"] == "0001-01"
        assert pdf_answer.content.startswith(b"%PDF-")
