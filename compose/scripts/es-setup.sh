#!/usr/bin/env bash
# Elasticsearch users and roles for TAP. Runs in the es-users container (the Elasticsearch
# image, for its curl) once Elasticsearch is healthy; every call is a create-or-update, so
# re-running is safe and also re-syncs passwords after compose/.env changed.
#
#   kibana_system        built-in; its password is set from KIBANA_SYSTEM_PASSWORD
#   tap_logstash_writer  role: write the two TAP indices and nothing else (Logstash)
#   tap_setup            role: index templates + the two indices + Kibana saved objects
#                        (`tap es setup`, `tap kibana import`)
#   TAP_*_USER           users holding those roles; the CEO gets the built-in viewer role
set -euo pipefail

: "${ES_URL:?}" "${ELASTIC_PASSWORD:?}" "${KIBANA_SYSTEM_PASSWORD:?}"
: "${TAP_LOGSTASH_USER:?}" "${TAP_LOGSTASH_PASSWORD:?}"
: "${TAP_SETUP_USER:?}" "${TAP_SETUP_PASSWORD:?}"
: "${TAP_CEO_USER:?}" "${TAP_CEO_PASSWORD:?}"
: "${TAP_INDEX_ORDERS:?}" "${TAP_INDEX_LINES:?}"

json_string() { # JSON-quote $1
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

es() { # METHOD PATH BODY
  local method=$1 path=$2 body=$3 answer
  if ! answer="$(curl -sS --fail-with-body -u "elastic:${ELASTIC_PASSWORD}" \
      -H 'Content-Type: application/json' -X "$method" "${ES_URL}${path}" -d "$body")"; then
    echo "es-setup: $method $path failed: $answer" >&2
    exit 1
  fi
  echo "es-setup: $method $path -> $answer"
}

indices="[$(json_string "$TAP_INDEX_ORDERS"), $(json_string "$TAP_INDEX_LINES")]"

es POST /_security/user/kibana_system/_password \
  "{\"password\": $(json_string "$KIBANA_SYSTEM_PASSWORD")}"

# Least privilege for Logstash: create the index on first write, index/create documents
# (document_id = order id, so re-delivery overwrites), manage for the mapping/refresh updates
# the output may do on the two indices. Cluster `monitor` only serves the output's startup
# version and licence check; no template or ILM rights (manage_template/ilm are off).
es PUT /_security/role/tap_logstash_writer "{
  \"cluster\": [\"monitor\"],
  \"indices\": [{\"names\": $indices,
                 \"privileges\": [\"create_index\", \"index\", \"create_doc\", \"write\", \"manage\"]}]
}"

es PUT /_security/role/tap_setup "{
  \"cluster\": [\"monitor\", \"manage_index_templates\"],
  \"indices\": [{\"names\": $indices,
                 \"privileges\": [\"create_index\", \"manage\", \"read\", \"view_index_metadata\"]}],
  \"applications\": [{\"application\": \"kibana-.kibana\", \"privileges\": [\"all\"], \"resources\": [\"*\"]}]
}"

es PUT "/_security/user/${TAP_LOGSTASH_USER}" "{
  \"password\": $(json_string "$TAP_LOGSTASH_PASSWORD"),
  \"roles\": [\"tap_logstash_writer\"],
  \"full_name\": \"TAP Logstash writer\"
}"

es PUT "/_security/user/${TAP_SETUP_USER}" "{
  \"password\": $(json_string "$TAP_SETUP_PASSWORD"),
  \"roles\": [\"tap_setup\"],
  \"full_name\": \"TAP setup (templates, dashboard import)\"
}"

es PUT "/_security/user/${TAP_CEO_USER}" "{
  \"password\": $(json_string "$TAP_CEO_PASSWORD"),
  \"roles\": [\"viewer\"],
  \"full_name\": \"Garderobe CEO (read-only dashboard)\"
}"

echo "es-setup: done"
