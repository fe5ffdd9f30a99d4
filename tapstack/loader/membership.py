"""Whether the loader's consumer is in its group, as the broker sees it.

kafka-python 3.0.12 can lose its group coordinator after a restart and never find it again: the
consumer then polls in a tight loop outside its group and loads nothing (seen in the test suite
after the loader was restarted; dpkp/kafka-python#2373 describes the same loop in
ensure_coordinator_ready). The broker's view does not depend on the client's state: when the
group has had no member with the loader's client id for `grace_s`, the loader stops with an
error, and the native supervisor starts it again (compose loads with Logstash instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

log = logging.getLogger("tap.loader")


class OutsideGroup(RuntimeError):
    """The consumer has been outside its group too long to expect it back."""


def in_group(described: dict[str, Any], client_id: str) -> bool:
    """Whether a describe_groups entry lists a member with this client id."""
    return any(m.get("client_id") == client_id for m in described.get("members") or [])


class GroupWatch:
    """check() after each poll: asks the broker every `every_s`, raises OutsideGroup once the
    member has been missing for more than `grace_s` (a rebalance takes seconds)."""

    def __init__(
        self,
        admin: Callable[[], KafkaAdminClient],
        group: str,
        client_id: str,
        *,
        grace_s: float = 60.0,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._make_admin, self._admin = admin, None
        self.group, self.client_id = group, client_id
        self.grace_s, self.every_s, self.clock = grace_s, every_s, clock
        self._next_check = clock() + every_s
        self._missing_since: float | None = None

    def check(self) -> None:
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.every_s
        if self._member():
            self._missing_since = None
            return
        if self._missing_since is None:
            self._missing_since = now
        elif now - self._missing_since > self.grace_s:
            raise OutsideGroup(
                f"the loader's consumer ({self.client_id}) has not been a member of group "
                f"{self.group} for {now - self._missing_since:.0f} s; stopping so that it is "
                "started again"
            )

    def _member(self) -> bool:
        try:
            if self._admin is None:
                self._admin = self._make_admin()
            described = self._admin.describe_groups([self.group])[self.group]
        except KafkaError as error:  # Kafka away: no verdict, the consumer retries on its own
            log.debug("could not describe group %s: %s", self.group, error)
            return True
        return in_group(described, self.client_id)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
