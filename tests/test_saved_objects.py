"""The Kibana saved objects, checked as deeply as possible without a Kibana (none can run here):
the committed ndjson is what the generator builds from panels.py, every id is fixed and unique,
every reference resolves, every field a panel names is in the index template with a type that
fits its use, and `tap kibana import` sends what Kibana's import API documents (fake server)."""

from __future__ import annotations

import base64
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from tapstack import contracts
from tapstack.cli import app
from tapstack.elastic.templates import mapping_properties
from tapstack.kibana import saved_objects
from tapstack.report.panels import DASHBOARD, TIME_FIELDS

OBJECTS = saved_objects.load()
BY_ID = {o["id"]: o for o in OBJECTS}
DASHBOARD_OBJECT = BY_ID["tap-dashboard-ceo"]
LENS = [o for o in OBJECTS if o["type"] == "lens"]
SEARCHES = [o for o in OBJECTS if o["type"] == "search"]
INDEX_BY_DATA_VIEW = {
    o["id"]: o["attributes"]["title"] for o in OBJECTS if o["type"] == "index-pattern"
}
ROLE_BY_INDEX = {contracts.index(role): role for role in TIME_FIELDS}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# -- the file ----------------------------------------------------------------------------------


def test_committed_file_is_what_the_generator_builds():
    committed = saved_objects.NDJSON_FILE.read_text(encoding="utf-8")
    assert committed == saved_objects.to_ndjson(saved_objects.build()), (
        "kibana/saved_objects/tap-ceo-dashboard.ndjson is stale: run `tap kibana build`"
    )


def test_every_line_is_a_saved_object():
    lines = saved_objects.NDJSON_FILE.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.strip() for line in lines)
    for line in lines:
        obj = json.loads(line)
        assert set(obj) >= {"id", "type", "attributes", "references"}
        assert obj["type"] in {"index-pattern", "lens", "search", "dashboard"}
        assert obj["coreMigrationVersion"] == "8.8.0"
        # Older or equal to the target Kibana: Kibana refuses objects "from the future".
        assert _version(obj["typeMigrationVersion"]) <= _version(saved_objects.KIBANA_VERSION)


def test_ids_are_fixed_and_unique():
    ids = [o["id"] for o in OBJECTS]
    assert len(ids) == len(set(ids))
    expected = {
        "tap-orders",
        "tap-ledger",
        "tap-statuses",
        "tap-quality",
        "tap-drift",
        "tap-models",
    }
    expected.add("tap-dashboard-ceo")
    expected |= {
        f"tap-{'search' if p.chart == 'records' else 'lens'}-{p.key}" for p in DASHBOARD.panels
    }
    assert set(ids) == expected
    assert saved_objects.build() == saved_objects.build()  # nothing random (no uuid4, no clock)


def test_data_views_are_the_indices_of_the_settings():
    assert {
        "tap-orders": contracts.index("orders"),
        "tap-ledger": contracts.index("ledger"),
        "tap-statuses": contracts.index("statuses"),
        "tap-quality": contracts.index("quality"),
        "tap-drift": contracts.index("drift"),
        "tap-models": contracts.index("models"),
    } == INDEX_BY_DATA_VIEW
    for oid in INDEX_BY_DATA_VIEW:
        attributes = BY_ID[oid]["attributes"]
        role = ROLE_BY_INDEX[attributes["title"]]
        # The time field is a date of the index it filters.
        assert attributes["timeFieldName"] == TIME_FIELDS[role]
        assert mapping_properties(role)[TIME_FIELDS[role]]["type"] == "date"
        for name in json.loads(attributes["fieldFormatMap"]):
            assert name in mapping_properties(role)


# -- references ------------------------------------------------------------------------------


def test_every_reference_resolves():
    for obj in OBJECTS:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert ref["id"] in BY_ID, f"{obj['id']} -> missing {ref['type']} {ref['id']}"
            assert BY_ID[ref["id"]]["type"] == ref["type"]


def test_lens_layers_reference_their_data_view():
    for obj in LENS:
        refs = {r["name"]: r["id"] for r in obj["references"]}
        layers = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        assert layers
        for layer_id in layers:
            assert refs[f"indexpattern-datasource-layer-{layer_id}"] in INDEX_BY_DATA_VIEW


def test_the_dashboard_shows_every_visualization_and_search():
    attributes = DASHBOARD_OBJECT["attributes"]
    panels = json.loads(attributes["panelsJSON"])
    refs = {r["name"]: r for r in DASHBOARD_OBJECT["references"]}
    shown = set()
    for panel in panels:
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"]
        shown.add(ref["id"])
    assert shown == {o["id"] for o in LENS + SEARCHES}
    assert len(panels) == len(DASHBOARD.panels)
    # Every object is used by something (no orphans in the file).
    used = {r["id"] for o in OBJECTS for r in o["references"]}
    assert used | {"tap-dashboard-ceo"} == set(BY_ID)


def test_controls_filter_by_behaviour_and_category():
    attributes = DASHBOARD_OBJECT["attributes"]
    controls = json.loads(attributes["controlGroupInput"]["panelsJSON"])
    refs = {r["name"]: r["id"] for r in DASHBOARD_OBJECT["references"]}
    fields = {}
    for cid, control in controls.items():
        assert control["type"] == "optionsListControl"
        assert control["explicitInput"]["id"] == cid
        view = refs[f"controlGroup_{cid}:optionsListDataView"]
        fields[control["explicitInput"]["fieldName"]] = INDEX_BY_DATA_VIEW[view]
    assert fields == {
        "purchase_behaviour": contracts.index("orders"),
        "categories": contracts.index("orders"),
    }
    json.loads(attributes["controlGroupInput"]["ignoreParentSettingsJSON"])


def test_dashboard_title_time_range_and_layout():
    attributes = DASHBOARD_OBJECT["attributes"]
    shop = contracts.settings()["shop"]["name"]
    assert attributes["title"] == f"[{shop}] CEO view"
    assert attributes["timeRestore"] is True
    assert attributes["timeFrom"].startswith("now-") and attributes["timeTo"] == "now"
    panels = json.loads(attributes["panelsJSON"])
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['panelIndex']} overlaps another"
        cells |= area
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles))
    for wanted in (
        "Net revenue",
        "Gross revenue",
        "Refunds",
        "Orders",
        "Average order value",
        "Net revenue per day",
        "Top products by units",
        "Top products by revenue",
        "Impulsive vs Reasoned buyers",
        "Net revenue by behaviour",
        "Spender type",
        "High Demand orders",
        "High Demand alerts",
        "Top customers by lifetime value",
        "Recent orders",
        "Orders by status",
        "Top refunded products",
        "Cancellations",
    ):
        assert wanted in titles


# -- Lens state and fields -------------------------------------------------------------------


def test_lens_state_is_consistent():
    for obj in LENS:
        state = obj["attributes"]["state"]
        ((layer_id, layer),) = state["datasourceStates"]["formBased"]["layers"].items()
        columns = layer["columns"]
        assert sorted(layer["columnOrder"]) == sorted(columns)  # same ids, each once
        for column in columns.values():
            assert column["operationType"] in {
                "count",
                "sum",
                "average",
                "last_value",
                "terms",
                "date_histogram",
            }, "only server-core aggregations"
            order = column.get("params", {}).get("orderBy", {})
            if order.get("type") == "column":
                assert order["columnId"] in columns
        vis = state["visualization"]
        kind = obj["attributes"]["visualizationType"]
        if kind == "lnsMetric":
            accessors = [vis["metricAccessor"]]
            assert vis["layerId"] == layer_id
        elif kind == "lnsDatatable":
            accessors = [c["columnId"] for c in vis["columns"]]
            assert vis["layerId"] == layer_id
        elif kind == "lnsPie":
            (pie,) = vis["layers"]
            accessors = pie["primaryGroups"] + pie["metrics"]
            assert pie["layerId"] == layer_id
        else:
            assert kind == "lnsXY"
            (xy,) = vis["layers"]
            accessors = [xy["xAccessor"], *xy["accessors"]]
            assert xy["layerId"] == layer_id
        assert set(accessors) == set(columns), obj["id"]


def test_metric_charts_show_a_number():
    """Lens's metric chart takes numeric columns only in Kibana 8 sources such as
    x-pack/plugins/lens/public/visualizations/metric/visualization.tsx at elastic/kibana
    03f43b73 (`supportedDataTypes = new Set(['number'])`); newer ones widen the set, so a
    number is safe on every release. A date or text figure goes in a table."""
    for obj in LENS:
        if obj["attributes"]["visualizationType"] != "lnsMetric":
            continue
        state = obj["attributes"]["state"]
        ((_, layer),) = state["datasourceStates"]["formBased"]["layers"].items()
        shown = layer["columns"][state["visualization"]["metricAccessor"]]
        assert shown["dataType"] == "number", obj["id"]


def test_every_named_field_is_in_the_template_with_a_fitting_type():
    named = saved_objects.named_fields(OBJECTS)
    assert {usage for _, _, usage in named} >= {
        "sum",
        "average",
        "terms",
        "date_histogram",
        "last_value",
        "control",
        "column",
        "time",
    }
    for index, field, usage in named:
        properties = mapping_properties(ROLE_BY_INDEX[index])
        assert field in properties, f"{field} is not in the {index} template"
        kind = properties[field]["type"]
        assert kind in saved_objects.FIELD_TYPES[usage], f"{usage} on {field} ({kind})"


def test_panel_descriptions_name_only_template_fields():
    for panel in DASHBOARD.panels:
        properties = mapping_properties(panel.role)
        for field in panel.fields():
            assert field in properties, f"{panel.key}: {field}"


# -- the import command against a fake Kibana ----------------------------------------------------


class FakeKibana:
    """Answers like Kibana's status, advanced settings and saved-objects import APIs."""

    def __init__(self, not_ready: int = 2, import_answer: dict | None = None, status: int = 200):
        self.requests: list[dict] = []
        self.not_ready = not_ready
        self.import_answer = import_answer
        self.status = status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                url = urlsplit(self.path)
                request = {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length) if length else b"",
                }
                fake.requests.append(request)
                return request

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._record()
                if fake.status != 200:
                    self._answer(fake.status, {"message": "Unauthorized"})
                elif fake.not_ready > 0:
                    fake.not_ready -= 1
                    self._answer(503, {"status": {"overall": {"level": "unavailable"}}})
                else:
                    self._answer(200, {"status": {"overall": {"level": "available"}}})

            def do_POST(self):
                request = self._record()
                if request["path"] == "/api/kibana/settings":
                    self._answer(200, {"settings": {}})
                    return
                parts = fake.multipart(request)
                objects = [json.loads(line) for line in parts["file"][1].splitlines() if line]
                answer = fake.import_answer or {
                    "success": True,
                    "successCount": len(objects),
                    "successResults": [{"type": o["type"], "id": o["id"]} for o in objects],
                }
                self._answer(200, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def multipart(request: dict) -> dict[str, tuple[str | None, bytes]]:
        """field name -> (file name, content) of a multipart/form-data body."""
        head = f"Content-Type: {request['headers']['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request["body"])
        assert message.is_multipart()
        return {
            part.get_param("name", header="content-disposition"): (
                part.get_filename(),
                part.get_payload(decode=True),
            )
            for part in message.iter_parts()
        }

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kibana_env(monkeypatch):
    for name in (
        "TAP_KIBANA_URL",
        "TAP_KIBANA_USER",
        "TAP_KIBANA_PASSWORD",
        "KIBANA_USER",
        "KIBANA_PASSWORD",
        "TAP_ES_USER",
        "TAP_ES_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_import_waits_for_kibana_then_posts_the_ndjson(kibana_env):
    kibana_env.setenv("KIBANA_USER", "tap_setup")
    kibana_env.setenv("KIBANA_PASSWORD", "s3cret")
    with FakeKibana(not_ready=2) as kibana:
        result = CliRunner().invoke(
            app, ["kibana", "import", "--url", kibana.url, "--timeout", "30"]
        )
    assert result.exit_code == 0, result.output
    assert f"Imported {len(OBJECTS)} saved objects" in " ".join(result.output.split())
    statuses = [r for r in kibana.requests if r["path"] == "/api/status"]
    assert len(statuses) == 3  # two 503s, then available
    settings, imported = [r for r in kibana.requests if r["method"] == "POST"]
    assert settings["path"] == "/api/kibana/settings"
    assert json.loads(settings["body"]) == {
        "changes": {"courier:ignoreFilterIfFieldNotInIndex": True}
    }
    assert imported["path"] == "/api/saved_objects/_import"
    assert imported["query"] == {"overwrite": ["true"]}
    expected_auth = "Basic " + base64.b64encode(b"tap_setup:s3cret").decode()
    for request in kibana.requests:
        assert request["headers"]["authorization"] == expected_auth
    assert imported["headers"]["kbn-xsrf"]
    assert imported["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    parts = FakeKibana.multipart(imported)
    assert list(parts) == ["file"]
    filename, content = parts["file"]
    assert filename == "tap-ceo-dashboard.ndjson"
    assert content == saved_objects.NDJSON_FILE.read_bytes()


def test_import_reports_kibana_errors_clearly(kibana_env):
    kibana_env.setenv("TAP_ES_USER", "elastic")
    kibana_env.setenv("TAP_ES_PASSWORD", "pw")
    answer = {
        "success": False,
        "successCount": 16,
        "errors": [
            {
                "id": "tap-lens-orders",
                "type": "lens",
                "title": "[Garderobe] Orders",
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "index-pattern", "id": "tap-orders"}],
                },
            }
        ],
    }
    with FakeKibana(not_ready=0, import_answer=answer) as kibana:
        result = CliRunner().invoke(
            app, ["kibana", "import", "--url", kibana.url, "--no-space-settings"]
        )
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "rejected 1" in output
    assert "lens tap-lens-orders ([Garderobe] Orders)" in output
    assert "missing references: index-pattern tap-orders" in output
    assert [r["path"] for r in kibana.requests] == ["/api/status", "/api/saved_objects/_import"]
    assert kibana.requests[0]["headers"]["authorization"].startswith("Basic ")


def test_import_stops_at_once_on_refused_credentials(kibana_env):
    with FakeKibana(status=401) as kibana:
        result = CliRunner().invoke(app, ["kibana", "import", "--url", kibana.url])
    assert result.exit_code == 1
    assert "refused the credentials (401)" in " ".join(result.output.split())
    assert len(kibana.requests) == 1
    assert "authorization" not in kibana.requests[0]["headers"]


def test_import_gives_up_when_kibana_never_comes(kibana_env):
    with FakeKibana(not_ready=10_000) as kibana:
        result = CliRunner().invoke(
            app, ["kibana", "import", "--url", kibana.url, "--timeout", "2"]
        )
    assert result.exit_code == 1
    assert "not available after 2 s" in " ".join(result.output.split())
    assert all(r["method"] == "GET" for r in kibana.requests)
