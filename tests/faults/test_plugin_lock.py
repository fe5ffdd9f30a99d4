"""A stuck lock holder in the plugin, into the real pipeline: the plugin's own code path
(wordpress_plugin/tests/checkout-with-stuck-lock.php: WooCommerce doubles, the status hook,
TAP_Log_Writer, the Action Scheduler double) writes to the stack's orders log while another
process holds the log's lock. Each checkout returns at the lock deadline with nothing written;
once the holder lets go the queued retries write every order once, and every order reaches
Elasticsearch once. The same case with an injected clock is in the plugin's PHPUnit suite
(LockTimeoutTest::test_stuck_lock_holder_checkout_returns_in_time_and_the_queued_action_...)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tapstack import contracts
from tests.support import tally
from tests.test_plugin_contract import spec_from_event

pytestmark = [
    pytest.mark.engines,
    pytest.mark.spark,
    pytest.mark.faults,
    pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed"),
]

N = 20
LOCK_TIMEOUT = 0.5  # seconds: the plugin's tap_order_log_lock_timeout for this row
# What a checkout may take beyond the deadline: PHP start-up of the hook, one formatting. A
# flock() without a deadline would wait for the holder (60 s), far past it.
SLACK = 2.0
DRIVER = contracts.ROOT / "wordpress_plugin" / "tests" / "checkout-with-stuck-lock.php"


def test_a_stuck_lock_holder_in_the_plugin(pipeline, report):
    orders = pipeline.simulate(N, seed=180)
    payload = {
        "log": str(pipeline.log_path),
        "lock_timeout": LOCK_TIMEOUT,
        "timezone": contracts.enrichment("shop_timezone"),
        "orders": [spec_from_event(o.event) for o in orders],
    }
    done = subprocess.run(
        ["php", str(DRIVER)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    run = json.loads(done.stdout)

    figures = tally.tally(pipeline, orders)
    keys = {str(o.order_id).encode() for o in orders}
    letters = [d for d in pipeline.dead_letters() if d["key"] in keys]
    case = "stuck lock holder in the plugin"
    report(case, N, figures.found, figures.lost, figures.duplicated, len(letters), figures.stuck)
    assert max(run["checkout_seconds"]) < LOCK_TIMEOUT + SLACK, "checkout returned in time"
    assert run["lines_while_locked"] == 0 and run["queued"] == N
    assert run["lines_after_retry"] == N and run["still_queued"] == 0
    tally.assert_clean(case, figures, orders)
    assert letters == []
