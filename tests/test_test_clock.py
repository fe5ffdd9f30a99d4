"""The test stack's injected clock (tests/support/clock.py): any shop-local hour, never later
than now."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support.clock import SHOP_TZ, resolve

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHOP_TZ)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("09:00", datetime(2026, 12, 1, 9, 0, tzinfo=SHOP_TZ)),
        ("10:00", NOW),
        ("20:30", datetime(2026, 11, 30, 20, 30, tzinfo=SHOP_TZ)),
        ("23:50", datetime(2026, 11, 30, 23, 50, tzinfo=SHOP_TZ)),
        ("2026-10-17T00:40", datetime(2026, 10, 17, 0, 40, tzinfo=SHOP_TZ)),
        ("2026-10-16T22:40:00+00:00", datetime(2026, 10, 17, 0, 40, tzinfo=SHOP_TZ)),
    ],
)
def test_a_spec_resolves_to_the_latest_such_moment_not_after_now(spec, expected):
    moment = resolve(spec, now=NOW)
    assert moment == expected and moment <= NOW
    assert moment.utcoffset() == expected.utcoffset()


def test_unset_is_now():
    assert abs(resolve(None, now=NOW) - NOW) < timedelta(seconds=1)


def test_an_hour_across_a_dst_change_keeps_its_shop_local_time():
    # 2026-10-25: clocks go back in Europe; the day before is still on summer time.
    now = datetime(2026, 10, 25, 8, 0, tzinfo=SHOP_TZ)
    moment = resolve("23:50", now=now)
    assert (moment.date().isoformat(), moment.hour, moment.minute) == ("2026-10-24", 23, 50)
    assert moment.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("spec", ["2026-12-02T09:00", "24:00", "9:75"])
def test_a_future_moment_or_a_wrong_time_is_refused(spec):
    with pytest.raises(ValueError):
        resolve(spec, now=NOW)
