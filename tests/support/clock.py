"""The test stack's clock: the moment at which the simulated shop's history ends.

The pipeline itself reads no clock (paid times come from the log lines), so the hour a test runs
at matters only through the orders it writes. TAP_TEST_CLOCK injects that moment, so the whole
suite can be run as if it were any shop-local hour without faking the system clock:

  TAP_TEST_CLOCK=23:50              the latest 23:50 in the shop's time zone at or before now
                                    (run at 10:00, that is yesterday 23:50)
  TAP_TEST_CLOCK=2026-03-29T02:30   that moment (shop time zone unless an offset is given)
  unset                             now

A moment in the future is refused: simulated orders never lie in the future.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tapstack.contracts import enrichment

SHOP_TZ = ZoneInfo(enrichment("shop_timezone"))
_HOUR = re.compile(r"^(\d{1,2}):(\d{2})$")


def latest_at(hour: int, minute: int, now: datetime) -> datetime:
    """The latest shop-local hour:minute at or before now (a wall time DST skips is moved on by
    the zone's rules, as zoneinfo does)."""
    local_now = now.astimezone(SHOP_TZ)
    day = local_now.date()
    for back in range(3):
        moment = datetime.combine(day - timedelta(days=back), time(hour, minute), SHOP_TZ)
        if moment <= local_now:
            return moment
    raise AssertionError("unreachable: a day ago is always in the past")


def resolve(spec: str | None, now: datetime | None = None) -> datetime:
    """The clock for a TAP_TEST_CLOCK value (see the module docstring)."""
    now = now or datetime.now(SHOP_TZ)
    if not spec:
        return now.astimezone(SHOP_TZ).replace(microsecond=0)
    match = _HOUR.match(spec.strip())
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"TAP_TEST_CLOCK={spec!r}: not a time of day")
        return latest_at(hour, minute, now)
    moment = datetime.fromisoformat(spec.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHOP_TZ)
    if moment > now:
        raise ValueError(f"TAP_TEST_CLOCK={spec!r} lies in the future; orders never do")
    return moment.astimezone(SHOP_TZ)


def from_environment() -> datetime:
    return resolve(os.environ.get("TAP_TEST_CLOCK"))
