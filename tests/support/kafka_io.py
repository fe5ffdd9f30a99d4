"""Producing test records straight into a topic of the test stack."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from tapstack import contracts


def client_config() -> dict[str, Any]:
    """kafka-python connection settings: tapstack.kafka_clients' (the broker's SASL login) once
    that module exists, else the plain bootstrap servers."""
    try:
        from tapstack import kafka_clients
    except ImportError:
        return {"bootstrap_servers": contracts.kafka_bootstrap()}
    return kafka_clients.config()


def produce(topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Send (key, value) records to topic and wait until Kafka acknowledged every one."""
    producer = KafkaProducer(acks="all", max_request_size=16 * 2**20, **client_config())
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()
