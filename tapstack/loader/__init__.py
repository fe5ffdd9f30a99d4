"""Topic_Dashboard -> Elasticsearch: the native stand-in for the Logstash pipeline."""
