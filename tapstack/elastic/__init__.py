"""Elasticsearch: the client, the index templates (kibana/index-templates) and their install."""
