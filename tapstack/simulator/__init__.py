"""Traffic simulator of the Garderobe shop: the native stand-in for WooCommerce and the plugin.

``Simulator(seed).orders(n)`` yields orders; ``format_line(order.event)`` is the exact line the
plugin would append to the orders log, ``order.behaviour`` the buyer's true behaviour
("Impulsive" or "Reasoned"). ``append_orders`` writes them to a log (and the truth side file).
"""

from tapstack.simulator.catalogue import CATALOGUE, CATEGORIES, Product
from tapstack.simulator.orders import (
    Customer,
    SimulatedOrder,
    Simulator,
    append_orders,
    customer_pool,
    format_line,
    generate_training_data,
    write_training_csv,
)
from tapstack.simulator.populations import BEHAVIOURS, IMPULSIVE, POPULATIONS, REASONED

__all__ = [
    "BEHAVIOURS",
    "CATALOGUE",
    "CATEGORIES",
    "IMPULSIVE",
    "POPULATIONS",
    "REASONED",
    "Customer",
    "Product",
    "SimulatedOrder",
    "Simulator",
    "append_orders",
    "customer_pool",
    "format_line",
    "generate_training_data",
    "write_training_csv",
]
