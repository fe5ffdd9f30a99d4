"""Traffic simulator of the Garderobe shop: the native stand-in for WooCommerce and the plugin.

``Simulator(seed).orders(n)`` yields orders; ``format_line(order.event)`` is the exact line the
plugin would append to the orders log (a paid event of contract v2), ``order.behaviour`` the
buyer's true behaviour ("Impulsive" or "Reasoned"). ``append_orders`` writes them to a log (and
the truth side file). ``Simulator(seed, lifecycle=Lifecycle())`` also writes what happens after
checkout (cancellations, failures, refunds), and ``known_truth(lines)`` adds up the money of a
log: gross, refunds and net, in total and by day, product and category.
"""

from tapstack.simulator.catalogue import CATALOGUE, CATEGORIES, Product
from tapstack.simulator.lifecycle import REFUND_RATES, Lifecycle
from tapstack.simulator.orders import (
    Customer,
    SimulatedOrder,
    Simulator,
    append_orders,
    customer_pool,
    format_line,
    generate_training_data,
    reassigned,
    write_training_csv,
)
from tapstack.simulator.populations import BEHAVIOURS, IMPULSIVE, POPULATIONS, REASONED
from tapstack.simulator.truth import KnownTruth, Money, known_truth, known_truth_of_log

__all__ = [
    "BEHAVIOURS",
    "CATALOGUE",
    "CATEGORIES",
    "IMPULSIVE",
    "POPULATIONS",
    "REASONED",
    "REFUND_RATES",
    "Customer",
    "KnownTruth",
    "Lifecycle",
    "Money",
    "Product",
    "SimulatedOrder",
    "Simulator",
    "append_orders",
    "customer_pool",
    "format_line",
    "generate_training_data",
    "known_truth",
    "known_truth_of_log",
    "reassigned",
    "write_training_csv",
]
