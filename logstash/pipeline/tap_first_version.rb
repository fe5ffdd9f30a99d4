# TAP: the first version of a record's head wins (ruby filter tap_first_version of tap.conf), as
# in the native loader (tapstack/loader/es_loader.py).
#
# The head is the document created once (tap_record.rb sets [@metadata][tap_head] and
# [@metadata][tap_head_id]): the order for a paid event (orders index, id order_id), the event's
# ledger document for the others (ledger index, id event_id). Before this filter, an http filter
# asked Elasticsearch for the stored head's order_fingerprint (a realtime _mget of that index)
# into [@metadata][tap_stored]. A head this Logstash passed on lately counts as stored too: every
# record of a batch is looked up before any of the batch is written, so a second record of a
# head in the same batch would find nothing (this memory needs pipeline.workers 1, as
# pipelines.yml sets; the loader writes such records in rounds).
#   stored, same fingerprint     -> a replay: [@metadata][tap_replay]; only the order's status
#                                   is written (tap.conf), as the loader does for a head it finds
#   stored, another fingerprint  -> a conflict: [@metadata][tap_error], dead-lettered, and
#                                   [@metadata][tap_conflict] with the kept version's
#                                   fingerprint in [@metadata][tap_kept] (counted, tap.conf)
#   not stored                   -> written, and remembered
# A failed lookup (tagged _httprequestfailure) counts as not stored: heads and their parts are
# created, never rewritten, so a replay still changes nothing.

RECENT = 100_000 # heads remembered, about a minute at the bench's highest rate

def register(params)
  @recent = {}
end

def filter(event)
  # The index and the id: an event id and an order id may be spelt alike.
  head = [event.get('[@metadata][tap_head]'), event.get('[@metadata][tap_head_id]')].join('/')
  fingerprint = event.get('order_fingerprint')
  found, stored = remembered(head)
  found, stored = looked_up(event) unless found
  if !found
    remember(head, fingerprint)
  elsif stored == fingerprint
    event.set('[@metadata][tap_replay]', true)
  else
    # documents.conflict_reason: named by the order, whichever its head.
    reason = "order_id #{event.get('order_id')} was already loaded with different content"
    event.set('[@metadata][tap_error]', reason)
    event.set('[@metadata][tap_conflict]', true)
    event.set('[@metadata][tap_kept]', stored.to_s)
  end
  [event]
end

def remembered(id)
  @recent.key?(id) ? [true, @recent[id]] : [false, nil]
end

def looked_up(event)
  docs = event.get('[@metadata][tap_stored][docs]')
  doc = docs.is_a?(Array) ? docs.first : nil
  return [false, nil] unless doc.is_a?(Hash) && doc['found'] == true

  [true, (doc['_source'] || {})['order_fingerprint']]
end

def remember(id, fingerprint)
  @recent[id] = fingerprint
  @recent.shift while @recent.size > RECENT # the oldest first (a Hash keeps insertion order)
end
