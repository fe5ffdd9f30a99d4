"""`tap bench`: throughput and order-to-dashboard latency of the native stack.

latency.py  the arithmetic (pacing, percentiles, rates, lag), free of I/O
load.py     sustained load: paced writer, Elasticsearch watcher, lag / memory / CPU sampler
replay.py   Spark-only backlog replay on scratch topics
report.py   verdicts per target, rich tables, the JSON report
cli.py      the command and the order of the phases
"""
