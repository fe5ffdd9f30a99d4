"""A parser for the Logstash pipeline configuration language, and a small evaluator for it.

The grammar follows the documented structure of a Logstash config file (``input``/``filter``/
``output`` sections holding plugins; plugin settings as ``name => value`` with strings, numbers,
barewords, arrays, hashes and nested plugins such as codecs; ``if``/``else if``/``else`` with
comparison, regular-expression, ``in``/``not in`` and boolean operators over field references,
``#`` comments). Parsing is strict: anything outside that language is a syntax error.

``Pipeline`` evaluates the parts of the language TAP's pipeline uses, so tests can push events
through a parsed ``.conf`` and look at what the outputs receive: conditionals, the mutate
(rename, replace, add_field, remove_field), clone, split, prune, json, drop and http filters,
and the ruby filter, inline or a script file (run by a real Ruby interpreter when one is
installed; ``ruby_available()`` tells). Like Logstash, it runs a batch through each filter in
turn; a conditional hands each branch the events that take it (their order kept); the http
filter's requests go to a callable the test gives (a real Elasticsearch, or a model of one).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Lark, Transformer, v_args

GRAMMAR = r"""
    start: section*

    section: SECTION_TYPE "{" _statement* "}"
    SECTION_TYPE: "input" | "filter" | "output"

    _statement: plugin | branch

    plugin: name "{" attribute* "}"
    attribute: name "=>" value
    ?name: BAREWORD -> bareword
         | string

    ?value: plugin
          | BAREWORD -> bareword
          | string
          | number
          | array
          | hash

    array: "[" [value ("," value)*] "]"
    hash: "{" hash_entry* "}"
    hash_entry: hash_key "=>" value
    ?hash_key: number
             | BAREWORD -> bareword
             | string

    branch: if_clause else_if_clause* else_clause?
    if_clause: "if" condition "{" _statement* "}"
    else_if_clause: "else" "if" condition "{" _statement* "}"
    else_clause: "else" "{" _statement* "}"

    condition: expression (BOOLEAN_OPERATOR expression)*
    ?expression: "(" condition ")"
               | negation
               | in_expression
               | not_in_expression
               | comparison
               | regexp_match
               | rvalue
    negation: "!" "(" condition ")"
            | "!" selector
    in_expression: rvalue "in" rvalue
    not_in_expression: rvalue "not" "in" rvalue
    comparison: rvalue COMPARE_OPERATOR rvalue
    regexp_match: rvalue REGEXP_OPERATOR (string | regexp)

    ?rvalue: string
           | number
           | selector
           | array
           | method_call
           | regexp
    method_call: BAREWORD "(" [rvalue ("," rvalue)*] ")"
    selector: SELECTOR_ELEMENT+
    regexp: REGEXP

    string: DOUBLE_QUOTED | SINGLE_QUOTED
    number: NUMBER

    // Operators win over an equally long bareword where both could follow (LALR shares the
    // state after a string between conditions and plugin settings).
    BOOLEAN_OPERATOR.2: "and" | "or" | "xor" | "nand"
    COMPARE_OPERATOR: "==" | "!=" | "<=" | ">=" | "<" | ">"
    REGEXP_OPERATOR: "=~" | "!~"
    SELECTOR_ELEMENT: /\[[^\[\],]+\]/
    REGEXP: /\/(\\.|[^\/\\])*\//
    BAREWORD: /[A-Za-z_][A-Za-z0-9_]+/
    NUMBER: /-?[0-9]+(\.[0-9]*)?/
    DOUBLE_QUOTED: /"(\\.|[^"\\])*"/s
    SINGLE_QUOTED: /'(\\.|[^'\\])*'/s
    COMMENT: /#[^\n]*/

    %import common.WS
    %ignore WS
    %ignore COMMENT
"""

# ── model ────────────────────────────────────────────────────────────────────────────────


@dataclass
class Plugin:
    name: str
    settings: list[tuple[str, Any]]

    def get(self, key: str, default: Any = None) -> Any:
        values = [value for name, value in self.settings if name == key]
        return values[-1] if values else default

    def keys(self) -> list[str]:
        return [name for name, _ in self.settings]


@dataclass
class Condition:
    tree: Any  # lark tree of the condition
    text: str


@dataclass
class Branch:
    clauses: list[tuple[Condition | None, list[Plugin | Branch]]]


@dataclass
class Config:
    sections: dict[str, list[Plugin | Branch]] = field(default_factory=dict)

    def plugins(self, section: str, name: str | None = None) -> list[Plugin]:
        """Every plugin of a section, also those inside conditionals, in file order."""
        found: list[Plugin] = []

        def walk(statements: list[Plugin | Branch]) -> None:
            for statement in statements:
                if isinstance(statement, Plugin):
                    if name is None or statement.name == name:
                        found.append(statement)
                else:
                    for _, body in statement.clauses:
                        walk(body)

        walk(self.sections.get(section, []))
        return found


@dataclass(frozen=True)
class Selector:
    path: tuple[str, ...]


@dataclass(frozen=True)
class Bareword:
    word: str


@dataclass(frozen=True)
class Regexp:
    pattern: str


def _unquote(text: str) -> str:
    # Logstash keeps backslashes literally unless config.support_escapes is on; only the
    # escaped quote character has to be handled for the string to end where it does.
    quote = text[0]
    return text[1:-1].replace("\\" + quote, quote)


@v_args(inline=True)
class _ToModel(Transformer):
    def __init__(self, source: str):
        super().__init__()
        self._source = source

    def start(self, *sections):
        config = Config()
        for kind, statements in sections:
            config.sections.setdefault(kind, []).extend(statements)
        return config

    def section(self, kind, *statements):
        return str(kind), list(statements)

    def plugin(self, name, *attributes):
        return Plugin(name=_name(name), settings=list(attributes))

    def attribute(self, name, value):
        return _name(name), value

    def bareword(self, token):
        return Bareword(str(token))

    def string(self, token):
        return _unquote(str(token))

    def number(self, token):
        text = str(token)
        return float(text) if "." in text else int(text)

    def array(self, *values):
        return list(values)

    def hash(self, *entries):
        return dict(entries)

    def hash_entry(self, key, value):
        return _name(key), value

    def selector(self, *elements):
        return Selector(tuple(str(element)[1:-1] for element in elements))

    def regexp(self, token):
        return Regexp(str(token)[1:-1])

    def branch(self, *clauses):
        return Branch(clauses=list(clauses))

    def if_clause(self, condition, *statements):
        return condition, list(statements)

    else_if_clause = if_clause

    def else_clause(self, *statements):
        return None, list(statements)

    @v_args(inline=False, meta=True)
    def condition(self, meta, children):
        tree = ("condition", children)
        text = self._source[meta.start_pos : meta.end_pos] if not meta.empty else ""
        return Condition(tree=tree, text=text)


def _name(value: Any) -> str:
    return value.word if isinstance(value, Bareword) else str(value)


_PARSER = Lark(
    GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False, propagate_positions=True
)


def parse(text: str) -> Config:
    """Parse a Logstash pipeline configuration; raises lark's errors on invalid syntax."""
    tree = _PARSER.parse(text)
    return _ToModel(text).transform(tree)


def parse_file(path: str | Path) -> Config:
    return parse(Path(path).read_text(encoding="utf-8"))


# ── evaluation ───────────────────────────────────────────────────────────────────────────

_FIELD_REF = re.compile(r"\[([^\[\]]+)\]")
_SPRINTF = re.compile(r"%\{([^}]+)\}")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}")


def field_path(reference: str) -> tuple[str, ...]:
    """'[a][b]' -> ('a', 'b'); 'a' -> ('a',)."""
    parts = _FIELD_REF.findall(reference)
    return tuple(parts) if parts else (reference,)


def substitute_env(value: Any, env: dict[str, str]) -> Any:
    """Logstash's ${VAR} / ${VAR:default} substitution in setting values."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is None:
                raise KeyError(f"environment variable {name} is not set and has no default")
            return default

        return _ENV.sub(replace, value)
    if isinstance(value, list):
        return [substitute_env(item, env) for item in value]
    if isinstance(value, dict):
        return {key: substitute_env(item, env) for key, item in value.items()}
    return value


class Event:
    """A Logstash event: data plus @metadata, with field-reference access."""

    def __init__(self, data: dict[str, Any], metadata: dict[str, Any] | None = None):
        self.data = data
        self.metadata = metadata or {}

    def clone(self) -> Event:
        return Event(copy.deepcopy(self.data), copy.deepcopy(self.metadata))

    def _root(self, path: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        if path and path[0] == "@metadata":
            return self.metadata, path[1:]
        return self.data, path

    def get(self, reference: str | tuple[str, ...]) -> Any:
        path = field_path(reference) if isinstance(reference, str) else reference
        node: Any
        node, rest = self._root(path)
        for part in rest:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and re.fullmatch(r"-?[0-9]+", part):
                index = int(part)
                if -len(node) <= index < len(node):
                    node = node[index]
                else:
                    return None
            else:
                return None
        return node

    def set(self, reference: str | tuple[str, ...], value: Any) -> None:
        path = field_path(reference) if isinstance(reference, str) else reference
        node, rest = self._root(path)
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value

    def remove(self, reference: str | tuple[str, ...]) -> Any:
        path = field_path(reference) if isinstance(reference, str) else reference
        node, rest = self._root(path)
        for part in rest[:-1]:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node.pop(rest[-1], None) if isinstance(node, dict) else None

    def includes(self, reference: str) -> bool:
        path = field_path(reference)
        node, rest = self._root(path)
        for part in rest:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def tag(self, name: str) -> None:
        tags = self.data.setdefault("tags", [])
        if name not in tags:
            tags.append(name)

    def sprintf(self, template: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = self.get(match.group(1))
            if value is None:
                return match.group(0)  # Logstash leaves unknown references as they are
            if isinstance(value, (dict, list)):
                return json.dumps(value, separators=(",", ":"))
            return str(value)

        return _SPRINTF.sub(replace, template)


@dataclass
class OutputCall:
    plugin: Plugin
    settings: dict[str, Any]
    event: Event


def ruby_available() -> bool:
    return shutil.which("ruby") is not None


_RUBY_HARNESS = r"""
require 'json'
class TapEvent
  def initialize(data, metadata)
    @data = data
    @metadata = metadata
  end
  attr_reader :data, :metadata
  def path(ref)
    parts = ref.scan(/\[([^\[\]]+)\]/).flatten
    parts = [ref] if parts.empty?
    if parts.first == '@metadata'
      [@metadata, parts.drop(1)]
    else
      [@data, parts]
    end
  end
  # Like Logstash's Event#get, a copy: changing it does not change the event.
  def get(ref)
    node, parts = path(ref)
    parts.each do |part|
      return nil unless node.is_a?(Hash) && node.key?(part)
      node = node[part]
    end
    Marshal.load(Marshal.dump(node))
  end
  def set(ref, value)
    node, parts = path(ref)
    parts[0..-2].each { |part| node = (node[part] ||= {}) }
    node[parts.last] = Marshal.load(Marshal.dump(value))
  end
  def remove(ref)
    node, parts = path(ref)
    parts[0..-2].each { |part| node = node[part]; return nil unless node.is_a?(Hash) }
    node.delete(parts.last)
  end
  def include?(ref)
    node, parts = path(ref)
    parts.each do |part|
      return false unless node.is_a?(Hash) && node.key?(part)
      node = node[part]
    end
    true
  end
end
input = JSON.parse(STDIN.read)
code = File.read(ARGV[0])
results = input.map do |item|
  event = TapEvent.new(item['data'], item['metadata'])
  tags = []
  begin
    instance_eval(code)
  rescue StandardError => e
    tags << '_rubyexception'
    STDERR.puts("ruby filter exception: #{e.class}: #{e.message}")
  end
  { 'data' => event.data, 'metadata' => event.metadata, 'tags' => tags }
end
puts JSON.generate(results)
"""


def run_ruby_code(code: str, events: list[Event], workdir: Path) -> list[Event]:
    """Run a ruby filter's `code` over events with a real Ruby and an Event stand-in."""
    harness = workdir / "tap_ruby_harness.rb"
    harness.write_text(_RUBY_HARNESS, encoding="utf-8")
    code_file = workdir / "tap_ruby_code.rb"
    code_file.write_text(code, encoding="utf-8")
    payload = json.dumps([{"data": e.data, "metadata": e.metadata} for e in events])
    result = subprocess.run(
        ["ruby", str(harness), str(code_file)],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = []
    for item in json.loads(result.stdout):
        event = Event(item["data"], item["metadata"])
        for tag in item["tags"]:
            event.data.setdefault("tags", []).append(tag)
        out.append(event)
    return out


_SCRIPT_HARNESS = r"""
require 'json'
# A ruby filter script file the way logstash-filter-ruby runs it
# (lib/logstash/filters/ruby/script/context.rb): the file is instance_eval'd in a blank
# object, register(params) once, then filter(event) -> the events to keep, per event. One
# process serves one filter instance, so the script's state lasts from batch to batch.
context = Object.new
context.instance_eval(File.read(ARGV[0]), ARGV[0], 1)
context.register(JSON.parse(ARGV[1])) if context.respond_to?(:register)
STDOUT.sync = true
STDIN.each_line do |line|
  results = JSON.parse(line).map do |item|
    event = TapEvent.new(item['data'], item['metadata'])
    begin
      kept = context.filter(event)
      { 'events' => kept.map { |e| { 'data' => e.data, 'metadata' => e.metadata } } }
    rescue StandardError => e
      { 'exception' => "#{e.class}: #{e.message}", 'data' => event.data,
        'metadata' => event.metadata }
    end
  end
  puts JSON.generate(results, allow_nan: true)
end
"""


class RubyScript:
    """A ruby filter script file running in one long-lived Ruby process."""

    def __init__(self, path: Path, params: dict[str, Any], workdir: Path):
        event_class = _RUBY_HARNESS.split("input = JSON.parse")[0]
        harness = workdir / f"tap_script_harness_{path.stem}.rb"
        harness.write_text(event_class + _SCRIPT_HARNESS, encoding="utf-8")
        self.process = subprocess.Popen(
            ["ruby", str(harness), str(path), json.dumps(params)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def filter(self, events: list[Event]) -> list[Event]:
        """Each event's results, in order; an exception tags the event like the plugin."""
        payload = json.dumps([{"data": e.data, "metadata": e.metadata} for e in events])
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(payload + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the ruby script process ended")
        out: list[Event] = []
        for item in json.loads(line):
            if "exception" in item:
                event = Event(item["data"], item["metadata"])
                event.tag("_rubyexception")
                event.metadata["ruby_exception"] = item["exception"]
                out.append(event)
            else:
                out += [Event(e["data"], e["metadata"]) for e in item["events"]]
        return out

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


# The http filter's request, as the test answers it: (verb, url, query, body, user, password)
# -> (status code, response headers, parsed JSON body or text); raise OSError for no answer.
HttpCall = Callable[[str, str, dict[str, str], Any, str | None, str | None], tuple[int, dict, Any]]


class Pipeline:
    """Evaluates a parsed pipeline's filter and output sections over events."""

    def __init__(
        self,
        config: Config,
        env: dict[str, str] | None = None,
        ruby: Callable[[str, list[Event]], list[Event]] | None = None,
        scripts: dict[str, Path] | None = None,
        workdir: Path | None = None,
        http: HttpCall | None = None,
    ):
        """ruby runs inline ruby code; scripts maps a ruby filter's `path` (as Logstash sees
        it) to the local file, run in workdir; http answers the http filter's requests."""
        self.config = config
        self.env = env or {}
        self.ruby = ruby
        self.scripts = scripts or {}
        self.workdir = workdir
        self.http = http
        self._running: dict[int, RubyScript] = {}

    def close(self) -> None:
        for script in self._running.values():
            script.close()
        self._running.clear()

    # filters
    def filter(self, events: list[Event]) -> list[Event]:
        """One batch through the filter section."""
        return self._run(self.config.sections.get("filter", []), events)

    def _run(self, statements: list[Plugin | Branch], events: list[Event]) -> list[Event]:
        current = events
        for statement in statements:
            if isinstance(statement, Plugin):
                current = self._apply(statement, current)
            else:
                current = self._branch(statement, current)
        return current

    def _branch(self, branch: Branch, events: list[Event]) -> list[Event]:
        """Each clause's body runs once over the events that take it; what the events become
        stays in the place of the event it came from."""
        chosen: list[int | None] = []
        for event in events:
            index = next(
                (
                    i
                    for i, (condition, _) in enumerate(branch.clauses)
                    if condition is None or evaluate(condition, event)
                ),
                None,
            )
            chosen.append(index)
        produced: dict[int, list[Event]] = {}
        for clause, (_, body) in enumerate(branch.clauses):
            positions = [p for p, c in enumerate(chosen) if c == clause]
            if not positions:
                continue
            for position, result in zip(
                positions, self._run_each(body, [events[p] for p in positions]), strict=True
            ):
                produced[position] = result
        out: list[Event] = []
        for position, event in enumerate(events):
            out += produced.get(position, [event])
        return out

    def _run_each(self, body: list[Plugin | Branch], events: list[Event]) -> list[list[Event]]:
        """What each event becomes through body, run over all of them at once."""
        # A mark in @metadata (clones and splits copy it; a branch inside has its own key).
        key = f"_tap_eval_origin_{id(body)}"
        marks = [str(n) for n in range(len(events))]
        for event, mark in zip(events, marks, strict=True):
            event.metadata[key] = mark
        results = self._run(body, events)
        grouped: dict[str, list[Event]] = {mark: [] for mark in marks}
        for result in results:
            grouped[result.metadata.pop(key)].append(result)
        for event in events:
            event.metadata.pop(key, None)
        return [grouped[mark] for mark in marks]

    def _apply(self, plugin: Plugin, events: list[Event]) -> list[Event]:
        settings = {k: substitute_env(v, self.env) for k, v in plugin.settings}
        if plugin.name == "ruby" and settings.get("path"):
            return self._ruby_script(plugin, settings, events)
        handler = getattr(self, f"_filter_{plugin.name}", None)
        if handler is None:
            raise NotImplementedError(f"filter plugin '{plugin.name}' is not evaluated here")
        out: list[Event] = []
        for event in events:
            out += handler(settings, event)
        return out

    def _ruby_script(
        self, plugin: Plugin, settings: dict[str, Any], events: list[Event]
    ) -> list[Event]:
        if id(plugin) not in self._running:
            if not ruby_available() or self.workdir is None:
                raise NotImplementedError("a ruby script needs a Ruby interpreter and a workdir")
            local = self.scripts[settings["path"]]
            params = settings.get("script_params") or {}
            self._running[id(plugin)] = RubyScript(local, params, self.workdir)
        results = self._running[id(plugin)].filter(events) if events else []
        for event in results:
            self._common(settings, event)
        return results

    @staticmethod
    def _common(settings: dict[str, Any], event: Event) -> None:
        # Logstash's decorate step for a matched filter: add_field, then remove_field.
        for key, value in (settings.get("add_field") or {}).items():
            _add_field(event, event.sprintf(key), event.sprintf(value))
        for key in _as_list(settings.get("remove_field")):
            event.remove(event.sprintf(key))

    def _filter_mutate(self, settings: dict[str, Any], event: Event) -> list[Event]:
        # Order of operations as documented for mutate: ... rename, replace, ... then the
        # common add_field/remove_field.
        for source, target in (settings.get("rename") or {}).items():
            if event.includes(source):
                event.set(target, event.remove(source))
        for key, value in (settings.get("replace") or {}).items():
            event.set(key, event.sprintf(value))
        self._common(settings, event)
        return [event]

    def _filter_clone(self, settings: dict[str, Any], event: Event) -> list[Event]:
        out = [event]
        for name in _as_list(settings.get("clones")):
            clone = event.clone()
            clone.set("type", name)  # ecs_compatibility disabled: the clone name goes to [type]
            self._common(settings, clone)
            out.append(clone)
        return out

    def _filter_split(self, settings: dict[str, Any], event: Event) -> list[Event]:
        source = settings.get("field", "message")
        target = settings.get("target") or source
        value = event.get(source)
        if not isinstance(value, list):
            raise NotImplementedError("only array splits are evaluated here")
        out = []
        for piece in value:
            if piece in ({}, [], "", None):
                continue
            clone = event.clone()
            clone.set(target, copy.deepcopy(piece))
            self._common(settings, clone)
            out.append(clone)
        return out

    def _filter_prune(self, settings: dict[str, Any], event: Event) -> list[Event]:
        keep = [re.compile(p) for p in _as_list(settings.get("whitelist_names"))]
        for name in list(event.data):
            if keep and not any(p.search(name) for p in keep):
                del event.data[name]
        self._common(settings, event)
        return [event]

    def _filter_json(self, settings: dict[str, Any], event: Event) -> list[Event]:
        # logstash-filter-json (lib/logstash/filters/json.rb, filter): no source, nothing done;
        # not JSON, or no object without a target: tagged _jsonparsefailure.
        source = event.get(settings["source"])
        if source is None:
            return [event]
        try:
            parsed = json.loads(source, parse_constant=_no_constant)
        except ValueError:
            for tag in _as_list(settings.get("tag_on_failure") or ["_jsonparsefailure"]):
                event.tag(tag)
            return [event]
        target = settings.get("target")
        if target:
            event.set(target, parsed)
        elif isinstance(parsed, dict):
            for key, value in parsed.items():
                event.set(key, value)
        else:
            event.tag("_jsonparsefailure")
            return [event]
        self._common(settings, event)
        return [event]

    def _filter_drop(self, settings: dict[str, Any], event: Event) -> list[Event]:
        return []

    def _filter_http(self, settings: dict[str, Any], event: Event) -> list[Event]:
        # logstash-filter-http (lib/logstash/filters/http.rb, filter): url, query and body
        # sprintf'd; no answer or not 2xx: tagged _httprequestfailure; else the JSON body to
        # target_body, the headers to target_headers.
        if self.http is None:
            raise NotImplementedError("an http filter needs an http callable")
        url = event.sprintf(settings["url"])
        query = {k: event.sprintf(str(v)) for k, v in (settings.get("query") or {}).items()}
        body = _sprintf_object(event, settings.get("body"))
        try:
            code, headers, answer = self.http(
                settings.get("verb", "GET"),
                url,
                query,
                body,
                settings.get("user"),
                settings.get("password"),
            )
        except OSError:
            code = None
        if code is None or not 200 <= code <= 299:
            for tag in _as_list(settings.get("tag_on_request_failure") or ["_httprequestfailure"]):
                event.tag(tag)
            return [event]
        event.set(settings.get("target_headers", "[headers]"), headers)
        event.set(settings.get("target_body", "[body]"), answer)
        self._common(settings, event)
        return [event]

    def _filter_ruby(self, settings: dict[str, Any], event: Event) -> list[Event]:
        if self.ruby is None:
            raise NotImplementedError("a ruby filter needs a Ruby interpreter (ruby_available())")
        [result] = self.ruby(settings["code"], [event])
        self._common(settings, result)
        return [result]

    # outputs
    def output(self, events: list[Event]) -> list[OutputCall]:
        calls: list[OutputCall] = []
        for event in events:
            self._route(self.config.sections.get("output", []), event, calls)
        return calls

    def _route(self, statements: list[Plugin | Branch], event: Event, calls: list[OutputCall]):
        for statement in statements:
            if isinstance(statement, Plugin):
                settings = {k: substitute_env(v, self.env) for k, v in statement.settings}
                calls.append(OutputCall(statement, settings, event))
            else:
                for condition, body in statement.clauses:
                    if condition is None or evaluate(condition, event):
                        self._route(body, event, calls)
                        break


# ── the outputs, delivered ───────────────────────────────────────────────────────────────


@dataclass
class DeadLetter:
    """A record the kafka output wrote: key, value and headers as text."""

    key: str | None
    value: str
    headers: list[tuple[str, str]]


@dataclass
class Delivered:
    """What a batch's outputs did."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Documents the elasticsearch output put in Logstash's own dead letter queue: (index, id,
    # status).
    dlq: list[tuple[str, str, int]] = field(default_factory=list)


class ModelElasticsearch:
    """Elasticsearch as TAP's pipeline meets it, in memory: `create` keeps the first document
    (409 after), a realtime _mget sees every write."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def bulk(self, actions: list[tuple[str, str, str, dict[str, Any]]]) -> list[int]:
        statuses = []
        for action, index, doc_id, doc in actions:
            if action == "create" and (index, doc_id) in self.docs:
                statuses.append(409)
                continue
            self.docs[(index, doc_id)] = copy.deepcopy(doc)
            statuses.append(201)
        return statuses

    def http(self, verb, url, query, body, user, password) -> tuple[int, dict, Any]:
        match = re.fullmatch(r"https?://[^/]+/([^/]+)/_mget", url)
        if verb != "POST" or not match:
            return 404, {}, {}
        index = match.group(1)
        docs = []
        for doc_id in body["ids"]:
            stored = self.docs.get((index, doc_id))
            if stored is None:
                docs.append({"found": False})
            else:
                fields = query.get("_source_includes", "").split(",")
                docs.append(
                    {"_source": {k: stored[k] for k in fields if k in stored}, "found": True}
                )
        return 200, {"content-type": "application/json"}, {"docs": docs}


def deliver(pipeline: Pipeline, events: list[Event], elasticsearch: Any) -> Delivered:
    """Hand one filtered batch to the outputs, as Logstash does: one output after another in
    the order of the config (CompiledPipeline.compileOutputs builds one dataset per output
    leaf, in the graph's insertion order, and DatasetCompiler.terminalOutputDataset computes
    them in turn), each with all its events of the batch. The elasticsearch output's answer
    rules are its own (plugin_mixins/elasticsearch/common.rb, submit): 2xx written, 409
    dropped, 400/404 and dlq_custom_codes to the dead letter queue, anything else retried
    (here: an error, since the models never answer so)."""
    outputs = pipeline.config.plugins("output")
    calls = pipeline.output(events)
    calls.sort(key=lambda call: next(i for i, o in enumerate(outputs) if o is call.plugin))
    done = Delivered()
    for plugin in outputs:
        mine = [call for call in calls if call.plugin is plugin]
        if not mine:
            continue
        if plugin.name == "kafka":
            done.dead_letters += [_kafka_record(call) for call in mine]
        elif plugin.name == "elasticsearch":
            _elasticsearch(mine, elasticsearch, done)
        else:
            raise NotImplementedError(f"output plugin '{plugin.name}' is not delivered here")
    return done


def _kafka_record(call: OutputCall) -> DeadLetter:
    settings, event = call.settings, call.event
    codec = settings.get("codec")
    template = codec.get("format") if isinstance(codec, Plugin) else None
    value = event.sprintf(template) if template else json.dumps(event.data)
    key = event.sprintf(settings["message_key"]) if settings.get("message_key") else None
    headers = [(k, event.sprintf(v)) for k, v in (settings.get("message_headers") or {}).items()]
    return DeadLetter(key, value, headers)


def _elasticsearch(calls: list[OutputCall], elasticsearch: Any, done: Delivered) -> None:
    actions = []
    for call in calls:
        settings, event = call.settings, call.event
        actions.append(
            (
                event.sprintf(settings.get("action", "index")),
                event.sprintf(settings["index"]),
                event.sprintf(settings["document_id"]),
                event.data,
            )
        )
    dlq_codes = {400, 404, *_as_list(calls[0].settings.get("dlq_custom_codes"))}
    for (_, index, doc_id, _), status in zip(actions, elasticsearch.bulk(actions), strict=True):
        if 200 <= status < 300 or status == 409:
            continue
        if status in dlq_codes:
            done.dlq.append((index, doc_id, status))
        else:
            raise RuntimeError(f"the output would retry {index}/{doc_id} ({status}) forever")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _sprintf_object(event: Event, value: Any) -> Any:
    if isinstance(value, list):
        return [_sprintf_object(event, item) for item in value]
    if isinstance(value, dict):
        return {_sprintf_object(event, k): _sprintf_object(event, v) for k, v in value.items()}
    if isinstance(value, str):
        return event.sprintf(value)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _add_field(event: Event, key: str, value: Any) -> None:
    existing = event.get(key)
    if existing is None:
        event.set(key, value)
    elif isinstance(existing, list):
        existing.append(value)
    else:
        event.set(key, [existing, value])


# ── conditions ───────────────────────────────────────────────────────────────────────────


def evaluate(condition: Condition, event: Event) -> bool:
    return _truthy(_eval(condition.tree, event))


def _truthy(value: Any) -> bool:
    # Logstash: a field reference is true when it exists and is not false/nil.
    return value is not None and value is not False


def _eval(node: Any, event: Event) -> Any:
    if isinstance(node, tuple) and node and node[0] == "condition":
        return _eval_condition(node[1], event)
    if isinstance(node, Condition):
        return _eval(node.tree, event)
    if isinstance(node, Selector):
        return event.get(node.path)
    if isinstance(node, Regexp | Bareword):
        return node
    if hasattr(node, "data"):  # lark Tree
        kind = node.data
        children = node.children
        if kind == "negation":
            return not _truthy(_eval(children[0], event))
        if kind == "comparison":
            left, op, right = children
            return _compare(_eval(left, event), str(op), _eval(right, event))
        if kind == "regexp_match":
            left, op, pattern = children
            value = _eval(left, event)
            regex = pattern.pattern if isinstance(pattern, Regexp) else str(pattern)
            matched = isinstance(value, str) and re.search(regex, value) is not None
            return matched if str(op) == "=~" else not matched
        if kind in ("in_expression", "not_in_expression"):
            needle, haystack = (_eval(child, event) for child in children)
            found = _contains(haystack, needle)
            return found if kind == "in_expression" else not found
        if kind == "method_call":
            raise NotImplementedError("method calls in conditions are not evaluated here")
        raise NotImplementedError(f"condition node {kind}")
    return node  # literals: str, int, float, list


def _eval_condition(children: list[Any], event: Event) -> bool:
    result = _truthy(_eval(children[0], event))
    index = 1
    while index < len(children):
        operator = str(children[index])
        right = _truthy(_eval(children[index + 1], event))
        if operator == "and":
            result = result and right
        elif operator == "or":
            result = result or right
        elif operator == "xor":
            result = result != right
        elif operator == "nand":
            result = not (result and right)
        index += 2
    return result


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    except TypeError:
        return False


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return needle in haystack
    if isinstance(haystack, str) and isinstance(needle, str):
        return needle in haystack
    if isinstance(haystack, dict):
        return needle in haystack
    return False


__all__ = [
    "Branch",
    "Condition",
    "Config",
    "Event",
    "GRAMMAR",
    "OutputCall",
    "DeadLetter",
    "Delivered",
    "HttpCall",
    "ModelElasticsearch",
    "Pipeline",
    "Plugin",
    "RubyScript",
    "Selector",
    "deliver",
    "evaluate",
    "field_path",
    "parse",
    "parse_file",
    "ruby_available",
    "run_ruby_code",
    "substitute_env",
]
