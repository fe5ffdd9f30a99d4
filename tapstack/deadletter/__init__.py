"""Dead letters a user can act on: `tap deadletter list | count | show | replay`.

headers  the dead-letter header names, once, and the header list a Python stage sends
records  a dead letter as a value; ids, filters, masking, previews, counting (pure)
replay   replay plans, the ledger's entries, the run through a sender (pure but the sender)
kafka    the thin Kafka layer: read a topic whole without a group, the ledger topic, sending
cli      the typer commands
"""
