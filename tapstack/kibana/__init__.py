"""The Kibana side of the CEO dashboard: saved objects built from the panel descriptions, and the
import into a running Kibana."""
