# TAP: the first version of an order wins (ruby filter tap_first_version of tap.conf), as in
# the native loader (tapstack/loader/es_loader.py).
#
# Before it, the http filter asked Elasticsearch for the stored order's fingerprint (a realtime
# _mget) into [@metadata][tap_stored]. An order this Logstash passed on lately counts as
# stored too: every record of a batch is looked up before any of the batch is written, so a
# second record of an order id in the same batch would find nothing (this memory needs
# pipeline.workers 1, as pipelines.yml sets; the loader writes such records in rounds).
#   stored, same fingerprint     -> a replay: [@metadata][tap_replay], nothing is written
#   stored, another fingerprint  -> a conflict: [@metadata][tap_error], dead-lettered, and
#                                   [@metadata][tap_conflict] with the kept version's
#                                   fingerprint in [@metadata][tap_kept] (counted, tap.conf)
#   not stored                   -> written, and remembered
# A failed lookup (tagged _httprequestfailure) counts as not stored: orders and lines are
# created, never rewritten, so a replay still changes nothing.

RECENT = 100_000 # orders remembered, about a minute at the bench's highest rate

def register(params)
  @recent = {}
end

def filter(event)
  id = event.get('order_id').to_s
  fingerprint = event.get('order_fingerprint')
  found, stored = remembered(id)
  found, stored = looked_up(event) unless found
  if !found
    remember(id, fingerprint)
  elsif stored == fingerprint
    event.set('[@metadata][tap_replay]', true)
  else
    event.set('[@metadata][tap_error]', "order_id #{id} was already loaded with different content")
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
