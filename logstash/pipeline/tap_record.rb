# TAP: judge one Topic_Dashboard record and put its order on the event (ruby filter tap_record
# of tap.conf, a script file: https://www.elastic.co/guide/en/logstash/current/plugins-filters-ruby.html).
#
# The rules and reasons of tapstack/loader/documents.py, so that Logstash and the native loader
# dead-letter the same records with the same reasons; tests/test_logstash_contract.py runs this
# file with a real Ruby against documents.py. Before it, the json filter parsed the record into
# [@metadata][tap_record] or tagged the event _jsonparsefailure.
#
# Sets [@metadata][tap_error] (the reason), or the record's fields on the event with the sorted
# distinct `products` and `categories`, items numbered from 1 and [@metadata][tap_lines]; and
# always [@metadata][tap_key] and [@metadata][tap_error_time] for a dead letter.

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
NOT_ON_ORDER = %w[items timestamp schema_version source_partition source_offset].freeze
DERIVED = %w[products categories source_system].freeze
REQUIRED = %w[order_id order_fingerprint].freeze
MAX_REASONS = 10
KEYWORD_MAX_BYTES = 32_766
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
  items.each_with_index { |item, index| item['line_number'] = index + 1 }
  event.set('items', items)
  event.set('[@metadata][tap_lines]', items.length)
  [event]
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
  items = record['items']
  return found if items.nil?
  return found + ['wrong type for items'] unless items.is_a?(Array)

  items.each_with_index do |item, index|
    unless item.is_a?(Hash)
      found << "wrong type for items[#{index}]"
      next
    end
    ITEM_TYPES.each do |field, type|
      value = item[field]
      if value.nil?
        found << "missing field items[#{index}].#{field}"
      else
        problem = value_problem(value, type)
        found << format(problem, "items[#{index}].#{field}") if problem
      end
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
