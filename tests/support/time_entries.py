"""What the time-entry, timer and timesheet tests share: an agency with a member assigned to
a brand, days in its timezone (America/Montreal unless a test says otherwise), and the calls.

"Now" is the application clock (infra.clock.utcnow), read in the agency's timezone: the real
time unless a test moves it (see at_moment for timers that stop at a given moment).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select, update

from billing.budgets.models import TimeEntry, Timer
from infra.clock import utcnow
from tests.support.clock import Clock
from tests.support.factories import (
    Person,
    World,
    add_person,
    login,
    new_world,
)

MTL = ZoneInfo("America/Montreal")
ASSIGNED_FROM = "2026-01-01"
RETAINER_FROM = "2026-01"
FALL_BACK = date(2026, 11, 1)  # the clocks go back: 25 hours
SPRING_FORWARD = date(2026, 3, 8)  # the clocks go forward: 23 hours


# ---------------------------------------------------------------------------------------------
# Helpers


def today() -> date:
    return utcnow().astimezone(MTL).date()


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=MTL)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_week() -> list[date]:
    """Monday to Sunday of the previous ISO week: every day of it has begun."""
    monday = monday_of(today()) - timedelta(days=7)
    return [monday + timedelta(days=i) for i in range(7)]


async def assign(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: uuid.UUID,
    brand_id: str,
    start: str = ASSIGNED_FROM,
    end: str | None = None,
) -> dict:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(user_id),
            "role": "community_manager",
            "start_date": start,
            "end_date": end,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def make_retainer(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, start: str = RETAINER_FROM
) -> dict:
    response = await client.post(
        "/v1/retainers",
        json={
            "client_id": client_id,
            "start_month": start,
            "monthly_minutes": 6000,
            "fee_minor": 100000,
            "overage": {"policy": "bill_at_rate", "rate_minor": 9000},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def setup(
    client, db, resources, *, retainer: bool = True, timezone: str = "America/Montreal"
) -> World:
    """An agency with one client and brand; a member assigned to it since January; a manager
    who is not assigned to anything; a retainer covering the whole year."""
    world = await new_world(
        client,
        customer={"name": "Acme"},
        brands={"brand": {"name": "Acme Brand"}},
        timezone=timezone,
    )
    agency = world.agency
    member = await add_person(client, db, resources.passwords, agency, "member", name="Camille")
    manager = await add_person(client, db, resources.passwords, agency, "manager", name="Mona")
    world.people.update(member=member, manager=manager)
    await assign(client, world.boss, member.user_id, world.brand["id"])
    if retainer:
        await make_retainer(client, world.boss, world.customer["id"])
    return world


def entry_body(brand: dict | str, day: date | None, minutes: int = 60, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "brand_id": brand if isinstance(brand, str) else brand["id"],
        "minutes": minutes,
        "activity": "moderation",
    }
    if day is not None:
        body["date"] = day.isoformat()
    body.update(extra)
    return body


async def post_entry(
    client: httpx.AsyncClient,
    person: Person,
    brand: dict | str,
    day: date | None,
    minutes: int = 60,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        "/v1/time-entries",
        json=entry_body(brand, day, minutes, **extra),
        headers=person.headers,
    )


async def log(
    client: httpx.AsyncClient,
    person: Person,
    brand: dict | str,
    day: date | None,
    minutes: int = 60,
    **extra: Any,
) -> dict:
    response = await post_entry(client, person, brand, day, minutes, **extra)
    assert response.status_code == 201, response.text
    return response.json()


async def read_entry(client: httpx.AsyncClient, headers: dict[str, str], entry_id: str) -> dict:
    response = await client.get(f"/v1/time-entries/{entry_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def count_entries(db, tenant_id: uuid.UUID) -> int:
    async with db.tenant_transaction(tenant_id) as session:
        return int(await session.scalar(select(func.count()).select_from(TimeEntry)) or 0)


async def move_timer_start(db, world: World, person: Person, started_at: datetime) -> None:
    async with db.tenant_transaction(world.agency.tenant_id) as session:
        result = await session.execute(
            update(Timer)
            .where(Timer.membership_id == person.membership_id)  # type: ignore[arg-type]
            .values(started_at=started_at)
        )
        assert result.rowcount == 1


async def at_moment(
    client: httpx.AsyncClient, clock: Clock, person: Person, moment: datetime
) -> None:
    """Stop the application clock at `moment` and sign `person` in again there: the token they
    hold was issued at the real time, which is not yet valid at an earlier moment."""
    clock.set(moment, tick=False)
    person.access_token = (await login(client, person.email))["access_token"]


async def timesheet_action(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: uuid.UUID,
    week: str,
    action: str,
    body: dict | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/timesheets/{user_id}/{week}/{action}",
        json=body,
        headers=headers,
    )


async def submit(client, person: Person, week: str) -> dict:
    response = await timesheet_action(client, person.headers, person.user_id, week, "submit")
    assert response.status_code == 200, response.text
    return response.json()


async def approve(client, headers: dict[str, str], user_id: uuid.UUID, week: str) -> dict:
    response = await timesheet_action(client, headers, user_id, week, "approve")
    assert response.status_code == 200, response.text
    return response.json()


async def get_sheet(client, headers: dict[str, str], user_id: uuid.UUID, week: str) -> dict:
    response = await client.get(f"/v1/timesheets/{user_id}/{week}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def start_timer(
    client: httpx.AsyncClient, person: Person, brand: dict, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/timers/start",
        json={"brand_id": brand["id"], "activity": "community_animation", **extra},
        headers=person.headers,
    )


async def stop_timer(client: httpx.AsyncClient, person: Person) -> dict:
    response = await client.post("/v1/timers/stop", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def current(client: httpx.AsyncClient, person: Person) -> dict | None:
    response = await client.get("/v1/timers/current", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()["timer"]  # type: ignore[no-any-return]
