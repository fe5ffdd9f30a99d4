"""The loader's group watch: it stops a loader whose consumer the broker no longer lists in its
group (kafka-python can stay out, polling in a loop), and never one that is in it or that it
cannot ask. The logic with a stand-in admin and an injected clock; the broker's answer with the
real Kafka."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaConnectionError

from tapstack import contracts, kafka_clients
from tapstack.loader.membership import GroupWatch, OutsideGroup, in_group


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Admin:
    """describe_groups as the broker answers it: the members listed, or an error."""

    def __init__(self) -> None:
        self.members: list[str] = ["tap-loader-7"]
        self.error: Exception | None = None
        self.calls = 0

    def describe_groups(self, groups):
        self.calls += 1
        if self.error:
            raise self.error
        return {groups[0]: {"members": [{"client_id": c} for c in self.members]}}

    def close(self) -> None:
        pass


def _watch(admin: Admin, clock: Clock) -> GroupWatch:
    return GroupWatch(lambda: admin, "g", "tap-loader-7", grace_s=60, every_s=10, clock=clock)


def test_a_member_is_never_stopped_and_the_broker_is_asked_every_interval_only():
    admin, clock = Admin(), Clock()
    watch = _watch(admin, clock)
    for _ in range(100):
        clock.now += 2
        watch.check()
    assert admin.calls == 20


def test_missing_past_the_grace_stops_the_loader_and_a_short_absence_does_not():
    admin, clock = Admin(), Clock()
    watch = _watch(admin, clock)
    admin.members = ["tap-loader-8"]  # another loader's member, not this one
    for _ in range(6):  # missing from 10 s to 60 s: within the grace
        clock.now += 10
        watch.check()
    admin.members = ["tap-loader-7"]  # back (a rebalance)
    clock.now += 10
    watch.check()
    admin.members = []
    for _ in range(7):
        clock.now += 10
        watch.check()  # missing since 80 s: 60 s at most so far
    clock.now += 10
    with pytest.raises(OutsideGroup, match="tap-loader-7.*group g for 70 s"):
        watch.check()


def test_a_broker_that_cannot_be_asked_stops_nothing():
    admin, clock = Admin(), Clock()
    admin.error = KafkaConnectionError("broker away")
    watch = _watch(admin, clock)
    for _ in range(50):
        clock.now += 10
        watch.check()
    assert admin.calls == 50


@pytest.mark.engines
def test_the_broker_lists_a_joined_consumer_by_its_client_id_and_forgets_it_when_it_leaves(
    engines,
):
    group, client_id = f"tap-watch-test-{uuid.uuid4().hex[:8]}", f"tap-loader-{uuid.uuid4().hex}"
    consumer = KafkaConsumer(
        contracts.topic("dashboard"),
        **kafka_clients.config(),
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
    )
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert in_group(admin.describe_groups([group])[group], client_id)
        assert not in_group(admin.describe_groups([group])[group], "tap-loader-other")
        consumer.close(autocommit=False)
        # Its LeaveGroup may reach the coordinator after close() returns: wait for the answer.
        deadline = time.monotonic() + 60
        while in_group(admin.describe_groups([group])[group], client_id):
            assert time.monotonic() < deadline, "still listed a minute after it left"
            time.sleep(0.2)
    finally:
        consumer.close(autocommit=False)
        admin.close()
