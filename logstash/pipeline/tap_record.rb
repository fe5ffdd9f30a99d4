# TAP: judge one Topic_Dashboard record and put its order on the event (ruby filter tap_record
# of tap.conf, a script file: https://www.elastic.co/guide/en/logstash/current/plugins-filters-ruby.html).
#
# The rules and reasons of tapstack/loader/documents.py, so that Logstash and the native loader
# dead-letter the same records with the same reasons; tests/test_logstash_contract.py runs this
# file with a real Ruby against documents.py. Before it, the json filter parsed the record into
# [@metadata][tap_record] or tagged the event _jsonparsefailure.
#
# Sets [@metadata][tap_error] (the reason), or:
#   * the record's fields on the event with the sorted distinct `products` and `categories`,
#     items numbered from 1 and [@metadata][tap_lines] (the order and line documents of a paid
#     event, shaped by tap.conf's stock filters);
#   * [@metadata][tap_head] ("orders" for a paid event, "ledger" for the others) and
#     [@metadata][tap_head_id] (the order id, or the event id): the document created once whose
#     fingerprint tells a replay from a reused id (documents.order_of's head);
#   * [@metadata][tap_pieces]: the event's ledger documents (documents.ledger_documents) and
#     its order's status document (documents.status_document), each as
#     {doc, id, version, source}: doc "ledger" (written before the head), "ledger_head" (the
#     head of an event that is not paid) or "status" (written after the head); source the
#     document as JSON text, which tap.conf's json filter puts at the root of an event of its
#     own (no stock filter negates a refund's amounts or builds a document from a list).
# and always [@metadata][tap_key] and [@metadata][tap_error_time] for a dead letter.

require 'json'

# Field -> mapping type of kibana/index-templates/orders.json (the Logstash container has no
# copy of the templates; the contract test holds this table to them).
ORDER_TYPES = {
  'order_id' => 'long', 'event_time' => 'date', 'processed_at' => 'date',
  'currency' => 'keyword', 'total' => 'double', 'payment_method' => 'keyword',
  'customer_id' => 'keyword', 'customer_first_name' => 'keyword',
  'duration_session' => 'long', 'pages_viewed' => 'integer', 'spender_type' => 'keyword',
  'stock_alert' => 'keyword', 'items_count' => 'integer', 'units' => 'integer',
  'avg_unit_price' => 'double', 'order_hour' => 'integer', 'order_weekday' => 'keyword',
  'products' => 'keyword', 'categories' => 'keyword', 'purchase_behaviour' => 'keyword',
  'behaviour_distance' => 'double', 'behaviour_margin' => 'double',
  'label_confidence' => 'keyword', 'model_version' => 'keyword',
  'order_fingerprint' => 'keyword', 'source_system' => 'keyword'
}.freeze
# Item field -> mapping type of the line field it becomes (lines.json), in documents.py's order.
ITEM_TYPES = [
  ['product_id', 'long'], ['product_name', 'keyword'], ['sku', 'keyword'],
  ['category', 'keyword'], ['quantity', 'integer'], ['unit_price', 'double'],
  ['total', 'double']
].freeze
# Field -> mapping type of kibana/index-templates/ledger.json (held to it by the contract test).
LEDGER_TYPES = {
  'entry' => 'keyword', 'event_id' => 'keyword', 'event_type' => 'keyword',
  'order_id' => 'long', 'order_status' => 'keyword', 'event_time' => 'date',
  'currency' => 'keyword', 'customer_id' => 'keyword', 'purchase_behaviour' => 'keyword',
  'spender_type' => 'keyword', 'payment_method' => 'keyword', 'amount' => 'double',
  'refund_id' => 'long', 'refund_reason' => 'keyword', 'line_number' => 'integer',
  'product_id' => 'long', 'product_name' => 'keyword', 'sku' => 'keyword',
  'category' => 'keyword', 'quantity' => 'integer', 'line_amount' => 'double',
  'order_fingerprint' => 'keyword', 'source_system' => 'keyword'
}.freeze
NOT_ON_ORDER = %w[
  items timestamp schema_version source_partition source_offset
  event_id event_type order_status refund
].freeze
DERIVED = %w[products categories source_system].freeze
REQUIRED = %w[order_id order_fingerprint].freeze
SOURCE_SYSTEM = 'spark_mllib'
# Events (documents.py PAID, EVENT_TYPES): a paid event writes the order, the others the ledger.
PAID = 'paid'
EVENT_TYPES = %w[paid refunded cancelled failed].freeze
# The event fields judged as keywords, in documents.py's order.
EVENT_KEYWORDS = %w[event_id event_type order_status].freeze
# Record field -> ledger field on every ledger document of an event (_EVENT_FIELDS_ON_LEDGER).
EVENT_FIELDS_ON_LEDGER = [
  %w[event_id event_id], %w[event_type event_type], %w[order_id order_id],
  %w[order_status order_status], %w[event_time event_time], %w[currency currency],
  %w[customer_id customer_id], %w[purchase_behaviour purchase_behaviour],
  %w[spender_type spender_type]
].freeze
# Item field -> ledger field of a paid line (_LINE_FIELDS, its total as line_amount, no price).
PAID_LINE_FIELDS = [
  %w[product_id product_id], %w[product_name product_name], %w[sku sku],
  %w[category category], %w[quantity quantity], %w[total line_amount]
].freeze
# Refund field -> ledger field of the event's document, refund line field -> ledger field.
REFUND_FIELDS = [%w[refund_id refund_id], %w[amount amount], %w[reason refund_reason]].freeze
REFUND_LINE_FIELDS = [
  %w[product_id product_id], %w[product_name product_name], %w[sku sku],
  %w[category category], %w[quantity quantity], %w[amount line_amount]
].freeze
REFUND_TYPES = REFUND_FIELDS.map { |field, name| [field, LEDGER_TYPES.fetch(name)] }.freeze
REFUND_LINE_TYPES = REFUND_LINE_FIELDS.map { |field, name| [field, LEDGER_TYPES.fetch(name)] }.freeze
# The status document's fields (documents.status_document), each copied when the record has it.
STATUS_FIELDS = %w[order_id order_status event_id event_type event_time currency customer_id].freeze
MAX_REASONS = 10
KEYWORD_MAX_BYTES = 32_766
# The longest event id (documents.EVENT_ID_MAX_BYTES): Elasticsearch refuses an _id over 512
# bytes for the whole bulk request, and ledger ids are the event id and "-<line>".
EVENT_ID_MAX_BYTES = 256
RANGES = { 'long' => 2**63, 'integer' => 2**31 }.freeze
DATE = /\A(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))?)?\z/

def register(params); end

def filter(event)
  event.set('[@metadata][tap_error_time]', Time.now.utc.strftime('%Y-%m-%dT%H:%M:%S.%LZ'))
  event.set('[@metadata][tap_key]', event.get('[@metadata][kafka][key]').to_s)
  record = event.get('[@metadata][tap_record]')
  reason = judge(event, record)
  if reason
    event.set('[@metadata][tap_error]', reason)
    return [event]
  end
  record.each { |name, value| event.set("[#{name}]", value) }
  items = record['items'] || []
  event.set('products', items.map { |item| item['product_name'] }.uniq.sort)
  event.set('categories', items.map { |item| item['category'] }.uniq.sort)
  event.set('items', items.each_with_index.map { |item, index| item.merge('line_number' => index + 1) })
  event.set('[@metadata][tap_lines]', items.length)
  mark_event(event, with_event(record))
  [event]
end

# The head and the pieces of one good record (documents.order_of), on the event's @metadata.
def mark_event(event, record)
  paid = record['event_type'] == PAID
  event.set('[@metadata][tap_head]', paid ? 'orders' : 'ledger')
  event.set('[@metadata][tap_head_id]', paid ? record['order_id'].to_s : record['event_id'])
  pieces = ledger_documents(record).each_with_index.map do |(id, doc), index|
    piece(index.zero? && !paid ? 'ledger_head' : 'ledger', id, doc)
  end
  status = status_document(record)
  pieces << piece('status', record['order_id'].to_s, *status) if status
  event.set('[@metadata][tap_pieces]', pieces)
end

def piece(kind, id, doc, version = nil)
  { 'doc' => kind, 'id' => id, 'version' => version, 'source' => JSON.generate(doc) }
end

# The reason the record cannot be written, or nil.
def judge(event, record)
  original = event.get('[@metadata][tap_original]').to_s
  tags = event.get('tags') || []
  return 'not JSON' if tags.include?('_jsonparsefailure') || original.strip.empty?
  return 'not a JSON object' unless record.is_a?(Hash)

  found = problems(record)
  return nil if found.empty?

  shown = found.first(MAX_REASONS)
  shown << "#{found.length - MAX_REASONS} more" if found.length > MAX_REASONS
  shown.join('; ')
end

def problems(record)
  found = REQUIRED.select { |name| record[name].nil? }.map { |name| "missing field #{name}" }
  record.each do |name, value|
    next if DERIVED.include?(name) || NOT_ON_ORDER.include?(name)

    type = ORDER_TYPES[name]
    if type.nil?
      found << "unknown field #{name}"
    elsif !value.nil?
      problem = value_problem(value, type)
      found << format(problem, name) if problem
    end
  end
  found += event_problems(record)
  found += lines_problems(record['items'], 'items', ITEM_TYPES)
  refund = record['refund']
  unless refund.nil?
    if refund.is_a?(Hash)
      found += object_problems(refund, 'refund', REFUND_TYPES)
      found << 'missing field refund.items' if refund['items'].nil?
      found += lines_problems(refund['items'], 'refund.items', REFUND_LINE_TYPES)
    else
      found << 'wrong type for refund'
    end
  end
  found
end

# The event fields the ledger and the status document need (documents._event_problems).
def event_problems(record)
  found = []
  EVENT_KEYWORDS.each do |name|
    problem = record[name].nil? ? nil : value_problem(record[name], 'keyword')
    found << format(problem, name) if problem
  end
  event_id = record['event_id']
  if event_id.is_a?(String) && event_id.bytesize > EVENT_ID_MAX_BYTES
    found << "event_id longer than #{EVENT_ID_MAX_BYTES} bytes"
  end
  kind = record['event_type']
  found << "unknown event_type #{kind[0, 40]}" if kind.is_a?(String) && !EVENT_TYPES.include?(kind)
  expected = expected_event_id(record)
  # Ledger ids derive from it: an id of another order's event would take its place.
  if event_id.is_a?(String) && !expected.nil? && event_id != expected
    found << 'event_id does not name this event (<order_id>-<event>)'
  end
  found << 'missing field event_id' if ![nil, PAID].include?(kind) && record['event_id'].nil?
  # The paid event's money in the ledger.
  found << 'missing field total' if [nil, PAID].include?(kind) && record['total'].nil?
  if kind == 'refunded' && record['refund'].nil?
    found << 'missing field refund'
  elsif kind != 'refunded' && !record['refund'].nil?
    found << 'refund on a non-refunded event'
  end
  unless record['order_status'].nil?
    # The status document's external version: a non-negative long.
    offset = record['source_offset']
    found << 'wrong type for source_offset' unless offset.is_a?(Integer) && offset >= 0 && offset < RANGES['long']
  end
  found
end

# The id the contract gives the record's event, or nil (documents._expected_event_id).
def expected_event_id(record)
  order_id = record['order_id']
  kind = record['event_type']
  refund = record['refund']
  return nil unless order_id.is_a?(Integer) && EVENT_TYPES.include?(kind)
  return "#{order_id}-#{kind}" unless kind == 'refunded'

  refund_id = refund.is_a?(Hash) ? refund['refund_id'] : nil
  refund_id.is_a?(Integer) ? "#{order_id}-refund-#{refund_id}" : nil
end

# The problems of an array of order or refund lines (none when it is absent).
def lines_problems(items, where, fields)
  return [] if items.nil?
  return ["wrong type for #{where}"] unless items.is_a?(Array)

  found = []
  items.each_with_index do |item, index|
    if item.is_a?(Hash)
      found += object_problems(item, "#{where}[#{index}]", fields)
    else
      found << "wrong type for #{where}[#{index}]"
    end
  end
  found
end

def object_problems(value, where, fields)
  found = []
  fields.each do |field, type|
    item = value[field]
    if item.nil?
      found << "missing field #{where}.#{field}"
    else
      problem = value_problem(item, type)
      found << format(problem, "#{where}.#{field}") if problem
    end
  end
  found
end

# Why value cannot be a `type` field, judged on the JSON as written: a reason with %s for the
# field's name, or nil.
def value_problem(value, type)
  return 'wrong type for %s' if value == true || value == false

  case type
  when 'keyword'
    return 'wrong type for %s' unless value.is_a?(String)
    return "%s longer than #{KEYWORD_MAX_BYTES} bytes" if value.bytesize > KEYWORD_MAX_BYTES
  when 'long', 'integer'
    limit = RANGES[type]
    unless value.is_a?(Integer)
      # An integral float beyond the range (how the loader's parser reads a huge integer).
      return '%s out of range' if value.is_a?(Float) && value.finite? && value == value.floor && value.abs >= limit
      return 'wrong type for %s'
    end
    return '%s out of range' unless value >= -limit && value < limit
  when 'double'
    return 'wrong type for %s' unless value.is_a?(Integer) || value.is_a?(Float)
    return '%s out of range' if value.is_a?(Float) && !value.finite?
  when 'date'
    return 'wrong type for %s' unless value.is_a?(String)
    return '%s is not a date' unless date?(value)
  else
    raise ArgumentError, "mapping type #{type} has no rule"
  end
  nil
end

# ISO 8601 as Elasticsearch's default format reads it (a strict subset of that format).
def date?(text)
  match = DATE.match(text)
  return false unless match

  year, month, day, hour, minute, second, offset_h, offset_m = match.captures.map(&:to_i)
  return false unless month.between?(1, 12)

  leap = (year % 4).zero? && ((year % 100) != 0 || (year % 400).zero?)
  days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
  # java.time.ZoneOffset, which Elasticsearch's parser builds, ends at +-18:00 inclusive.
  day.between?(1, days) && hour < 24 && minute < 60 && second < 60 && offset_m < 60 &&
    offset_h * 60 + offset_m <= 18 * 60
end

# The record with its event named: a record without event fields is a paid event
# (documents.with_event).
def with_event(record)
  return record unless record['event_type'].nil? || record['event_id'].nil?

  kind = record['event_type'] || PAID
  record.merge('event_id' => "#{record['order_id']}-#{kind}", 'event_type' => kind)
end

# [id, document] of the event's ledger documents (documents.ledger_documents): first the
# event's own (+ the total when paid, - the refund, 0 when cancelled or failed), then one per
# line it moves (+ each order line, - each refunded line), numbered from 1.
def ledger_documents(record)
  shared = {}
  EVENT_FIELDS_ON_LEDGER.each { |field, name| shared[name] = record[field] if record.key?(field) }
  shared['source_system'] = SOURCE_SYSTEM
  event_id = record['event_id']
  head = shared.merge('entry' => 'event', 'order_fingerprint' => record['order_fingerprint'])
  head['payment_method'] = record['payment_method'] if record.key?('payment_method')
  case record['event_type']
  when PAID
    head['amount'] = record['total']
    lines = (record['items'] || []).map { |item| copied(item, PAID_LINE_FIELDS) }
  when 'refunded'
    refund = record['refund']
    head['amount'] = -refund['amount']
    head['refund_id'] = refund['refund_id']
    head['refund_reason'] = refund['reason']
    lines = (refund['items'] || []).map do |item|
      line = copied(item, REFUND_LINE_FIELDS)
      line.merge('quantity' => -line['quantity'], 'line_amount' => -line['line_amount'])
    end
  else
    head['amount'] = 0.0
    lines = []
  end
  docs = [[event_id, head]]
  lines.each_with_index do |line, index|
    number = index + 1
    docs << ["#{event_id}-#{number}", shared.merge('entry' => 'line', 'line_number' => number).merge(line)]
  end
  docs
end

def copied(item, fields)
  fields.to_h { |field, name| [name, item[field]] }
end

# [document, external version] of the order's status (documents.status_document), or nil.
def status_document(record)
  return nil if record['order_status'].nil?

  doc = {}
  STATUS_FIELDS.each { |name| doc[name] = record[name] if record.key?(name) }
  doc['source_system'] = SOURCE_SYSTEM
  [doc, record['source_offset']]
end
