"""The native stack: real Kafka, Elasticsearch and Spark as local processes, no Docker."""
