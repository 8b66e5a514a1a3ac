"""The plan catalogue: what each Passerelle plan costs in Stripe and what it allows.

It lives in configuration (`PLANS`, JSON) so prices and limits change without a migration;
the defaults below are the catalogue we sell. `None` as a limit means unlimited.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Feature(StrEnum):
    client_portal = "client_portal"
    public_api = "public_api"


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    price_id: str
    """The Stripe price of the plan's monthly base fee (quantity 1)."""
    seat_price_id: str
    """The Stripe per-seat price; its quantity follows the active staff memberships."""
    seat_price_minor: int = Field(ge=0)
    currency: str = Field(default="eur", min_length=3, max_length=3)
    max_active_brands: int | None = Field(default=None, ge=0)
    max_social_accounts: int | None = Field(default=None, ge=0)
    max_staff_seats: int | None = Field(default=None, ge=1)
    features: frozenset[Feature] = frozenset()


DEFAULT_PLAN = "starter"

DEFAULT_PLANS: dict[str, Plan] = {
    "starter": Plan(
        name="Starter",
        price_id="price_starter_base",
        seat_price_id="price_starter_seat",
        seat_price_minor=1_500,
        max_active_brands=10,
        max_social_accounts=30,
        max_staff_seats=5,
        features=frozenset(),
    ),
    "growth": Plan(
        name="Growth",
        price_id="price_growth_base",
        seat_price_id="price_growth_seat",
        seat_price_minor=2_500,
        max_active_brands=50,
        max_social_accounts=150,
        max_staff_seats=25,
        features=frozenset({Feature.client_portal}),
    ),
    "agency": Plan(
        name="Agency",
        price_id="price_agency_base",
        seat_price_id="price_agency_seat",
        seat_price_minor=3_500,
        features=frozenset({Feature.client_portal, Feature.public_api}),
    ),
}


def plan_with_every_feature(plans: Mapping[str, Plan]) -> str:
    """The catalogue's plan that includes the most features (every one, with the default
    catalogue), so that a demo shows all of the product; the first such plan on a tie."""
    return max(plans, key=lambda plan_id: len(plans[plan_id].features))
