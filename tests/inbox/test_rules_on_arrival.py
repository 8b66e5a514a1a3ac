"""A brand's rules run on each new item: assignment (to a person or the brand's lead),
labels, priority, hide through the platform, and an e-mail to the people a rule names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from devtools.smtp import text_of
from inbox.models import InboxRule
from tests.support.factories import new_world
from tests.support.inbox import inbound, store
from tests.support.publishing import sandbox_account
from tests.support.worker import deliver_events

T0 = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)


async def _rules(db, world, brand_id: uuid.UUID, *rules: dict) -> None:
    async with db.tenant_transaction(world.tenant_id) as session:
        for position, rule in enumerate(rules):
            session.add(
                InboxRule(tenant_id=world.tenant_id, brand_id=brand_id, position=position, **rule)
            )


async def test_rules_assign_label_prioritise_hide_and_notify_on_arrival(
    client, db, resources, settings, clock, mailbox
):
    clock.set(T0)
    world = await new_world(client)
    brand = uuid.UUID(world.brand["id"])
    account = uuid.UUID(await sandbox_account(client, world))
    external = (await client.get(f"/v1/social-accounts/{account}", headers=world.boss)).json()[
        "external_id"
    ]
    owner = str(world.owner.user_id)
    await _rules(
        db,
        world,
        brand,
        {
            "name": "Refunds",
            "condition": {"keywords": ["remboursement"]},
            "action": {"assign_to": owner, "labels": ["refund"], "notify": [owner]},
        },
        {
            "name": "Angry",
            "condition": {"sentiments": ["negative"]},
            "action": {"priority": "urgent", "labels": ["angry"]},
        },
        {
            "name": "Spam",
            "condition": {"contains_link": True},
            "action": {"hide": True, "mark_done": True},
        },
    )
    refund, spam, calm = await store(
        db,
        world.tenant_id,
        account,
        inbound(external, "Je veux un remboursement, service horrible et décevant!"),
        inbound(external, "Gagnez un iPhone http://spam.example/win"),
        inbound(external, "Belle journée à tous"),
    )
    assert (refund.assignee_id, refund.status) == (world.owner.user_id, "assigned")
    assert refund.labels == ["refund", "angry"]
    assert refund.priority == "urgent"
    assert (spam.status, spam.needs_reply, spam.response_due_at) == ("done", False, None)
    assert (calm.assignee_id, calm.labels, calm.priority) == (None, [], "normal")
    labelled = await client.get("/v1/inbox", params={"label": "angry"}, headers=world.boss)
    assert [i["id"] for i in labelled.json()["items"]] == [str(refund.id)]

    # The hide goes through the platform like a person's; the notice reaches the owner.
    await deliver_events(resources, settings, world.tenant_id)
    detail = (await client.get(f"/v1/inbox/{spam.id}", headers=world.boss)).json()
    assert detail["moderation"] == "hidden"
    assert [(a["kind"], a["status"]) for a in detail["actions"]] == [("hide", "sent")]
    [message] = await mailbox.wait_for(world.owner.email)
    assert "remboursement" in text_of(message)
    assert str(refund.id) in text_of(message)
