"""The shop side of the compose stack: a shopper bot that places real orders through the
WooCommerce Store API, so the TAP plugin (not the simulator) writes the orders log."""

from tapstack.shop.bot import (
    IMPULSIVE,
    PERSONAS,
    REASONED,
    BotReport,
    Persona,
    PlacedOrder,
    ShopError,
    ShopperBot,
    StoreClient,
    VisitPlan,
    default_base_url,
    plan_visit,
)

__all__ = [
    "IMPULSIVE",
    "PERSONAS",
    "REASONED",
    "BotReport",
    "Persona",
    "PlacedOrder",
    "ShopError",
    "ShopperBot",
    "StoreClient",
    "VisitPlan",
    "default_base_url",
    "plan_visit",
]
