"""Kibana 8.19 saved objects for the CEO dashboard, generated from tapstack/report/panels.py.

The result is committed as kibana/saved_objects/tap-ceo-dashboard.ndjson (`tap kibana build`
writes it; tests/test_saved_objects.py fails when the committed file and the generator disagree).

Objects, all with fixed ids:
  index-pattern  tap-orders, tap-lines,   data views on the indices (titles from settings)
                 tap-quality, tap-drift, tap-models
  lens           tap-lens-<panel>         one per chart panel, by reference from the dashboard
  search         tap-search-<panel>       one per records panel (a saved Discover session)
  dashboard      tap-dashboard-ceo        the grid, the options-list controls, the time range

Formats follow what Kibana 8.x exports (its eCommerce sample dashboard among them): Lens state with
the formBased datasource, dashboard panels by reference (`panelRefName` + `<panel>:panel_<panel>`
references), controls in controlGroupInput with `controlGroup_<id>:optionsListDataView`
references. typeMigrationVersion values are those exported by earlier 8.x releases, so Kibana
runs any later migrations itself on import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tapstack import contracts
from tapstack.elastic.templates import mapping_properties
from tapstack.report.panels import (
    DASHBOARD,
    SHOP,
    TIME_FIELDS,
    Control,
    Dashboard,
    Metric,
    Panel,
    Split,
)

NDJSON_FILE = contracts.ROOT / "kibana" / "saved_objects" / "tap-ceo-dashboard.ndjson"

CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {
    "index-pattern": "7.11.0",
    "search": "7.9.3",
    "lens": "8.9.0",
    "dashboard": "8.7.0",
}
# The Kibana release the panels are written for: same version as the Elastic stack in settings.
KIBANA_VERSION = contracts.version("elasticsearch")

DATA_VIEW_NAMES = {
    "orders": "orders",
    "lines": "order lines",
    "ledger": "money ledger",
    "statuses": "order statuses",
    "quality": "data quality",
    "drift": "model drift",
    "models": "behaviour models",
}
LENS_TYPES = {
    "metric": "lnsMetric",
    "line": "lnsXY",
    "bar": "lnsXY",
    "bar_horizontal": "lnsXY",
    "donut": "lnsPie",
    "table": "lnsDatatable",
}
LENS_OPERATIONS = {"count": "count", "sum": "sum", "avg": "average", "last_value": "last_value"}
MONEY_FORMAT = {"id": "number", "params": {"pattern": "0,0.00"}}
INTEGER_FORMAT = {"id": "number", "params": {"pattern": "0,0"}}


def data_view_id(role: str) -> str:
    return f"tap-{role}"


def object_id(panel: Panel) -> str:
    kind = "search" if panel.chart == "records" else "lens"
    return f"tap-{kind}-{panel.key}"


def object_type(panel: Panel) -> str:
    return "search" if panel.chart == "records" else "lens"


def dashboard_id(dashboard: Dashboard = DASHBOARD) -> str:
    return f"tap-dashboard-{dashboard.key}"


def _saved_object(kind: str, oid: str, attributes: dict, references: list[dict]) -> dict:
    return {
        "attributes": attributes,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "id": oid,
        "managed": False,
        "references": references,
        "type": kind,
        "typeMigrationVersion": TYPE_MIGRATION_VERSION[kind],
    }


def _dumps(value: Any) -> str:
    """JSON inside a saved object's string attribute (panelsJSON, searchSourceJSON, ...)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _kql(where: tuple[tuple[str, str], ...]) -> str:
    return " and ".join(f'{name} : "{value}"' for name, value in where)


# -- data views --------------------------------------------------------------------------------


def data_view(role: str) -> dict:
    mapped = mapping_properties(role)
    money = {"total", "line_total", "unit_price", "avg_unit_price"} & set(mapped)
    formats = {name: MONEY_FORMAT for name in sorted(money)}
    attributes = {
        "fieldAttrs": "{}",
        "fieldFormatMap": _dumps(formats),
        "fields": "[]",
        "name": f"{SHOP} {DATA_VIEW_NAMES[role]}",
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "timeFieldName": TIME_FIELDS[role],
        "title": contracts.index(role),
        "typeMeta": "{}",
    }
    return _saved_object("index-pattern", data_view_id(role), attributes, [])


# -- Lens --------------------------------------------------------------------------------------


def _data_type(role: str, field: str) -> str:
    kind = mapping_properties(role)[field]["type"]
    if kind == "date":
        return "date"
    if kind in ("keyword", "text", "boolean", "ip"):
        return "string"
    return "number"


def _format(fmt: str) -> dict | None:
    if fmt == "money":
        return MONEY_FORMAT
    if fmt == "integer":
        return INTEGER_FORMAT
    return None


def _metric_column(panel: Panel, metric: Metric) -> dict:
    column: dict[str, Any] = {
        "customLabel": True,
        "isBucketed": False,
        "label": metric.label,
        "operationType": LENS_OPERATIONS[metric.op],
    }
    if metric.op == "count":
        column.update(
            dataType="number",
            scale="ratio",
            sourceField="___records___",
            params={"emptyAsNull": False},
        )
    elif metric.op == "last_value":
        data_type = _data_type(panel.role, metric.field)
        column.update(
            dataType=data_type,
            scale="ordinal" if data_type == "string" else "ratio",
            sourceField=metric.field,
            params={"sortField": metric.sort_field, "showArrayValues": False},
        )
    else:
        params: dict[str, Any] = {"emptyAsNull": True}
        if _format(metric.format):
            params["format"] = _format(metric.format)
        column.update(dataType="number", scale="ratio", sourceField=metric.field, params=params)
    return column


def _split_column(panel: Panel, split: Split) -> dict:
    if split.op == "date_histogram":
        return {
            "customLabel": True,
            "dataType": "date",
            "isBucketed": True,
            "label": split.label,
            "operationType": "date_histogram",
            "params": {"interval": split.interval, "includeEmptyRows": True, "dropPartials": False},
            "scale": "interval",
            "sourceField": split.field,
        }
    order_by = (
        panel.metric(split.order_by)
        if split.order_by
        else next((m for m in panel.metrics if m.op == "count"), None)
    )
    order = (
        {"type": "column", "columnId": _column_id(panel, order_by.key)}
        if order_by is not None
        else {"type": "alphabetical", "fallback": True}
    )
    return {
        "customLabel": True,
        "dataType": _data_type(panel.role, split.field),
        "isBucketed": True,
        "label": split.label,
        "operationType": "terms",
        "params": {
            "size": split.size,
            "orderBy": order,
            "orderDirection": "desc",
            "otherBucket": False,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
        "scale": "ordinal",
        "sourceField": split.field,
    }


def _layer_id(panel: Panel) -> str:
    return f"layer-{panel.key}"


def _column_id(panel: Panel, key: str) -> str:
    return f"{panel.key}-{key}"


def _visualization(panel: Panel) -> dict:
    layer = _layer_id(panel)
    metric_ids = [_column_id(panel, m.key) for m in panel.metrics]
    split_id = _column_id(panel, panel.split.key) if panel.split else None
    if panel.chart == "metric":
        return {"layerId": layer, "layerType": "data", "metricAccessor": metric_ids[0]}
    if panel.chart == "donut":
        return {
            "shape": "donut",
            "layers": [
                {
                    "layerId": layer,
                    "layerType": "data",
                    "primaryGroups": [split_id],
                    "metrics": metric_ids,
                    "numberDisplay": "percent",
                    "categoryDisplay": "default",
                    "legendDisplay": "show",
                    "nestedLegend": False,
                }
            ],
        }
    if panel.chart == "table":
        return {
            "layerId": layer,
            "layerType": "data",
            # Without a split the table is one row of figures (Lens accepts metric-only tables).
            "columns": [{"columnId": c} for c in [split_id, *metric_ids] if c],
            "rowHeight": "single",
            "rowHeightLines": 1,
        }
    series = {"line": "area", "bar": "bar", "bar_horizontal": "bar_horizontal"}[panel.chart]
    return {
        "legend": {"isVisible": False, "position": "right"},
        "valueLabels": "show" if panel.chart != "line" else "hide",
        "fittingFunction": "Zero",
        "preferredSeriesType": series,
        "axisTitlesVisibilitySettings": {"x": False, "yLeft": True, "yRight": True},
        "layers": [
            {
                "layerId": layer,
                "layerType": "data",
                "seriesType": series,
                "xAccessor": split_id,
                "accessors": metric_ids,
            }
        ],
    }


def lens_object(panel: Panel) -> dict:
    layer = _layer_id(panel)
    columns = {}
    order = []
    if panel.split:
        columns[_column_id(panel, panel.split.key)] = _split_column(panel, panel.split)
        order.append(_column_id(panel, panel.split.key))
    for metric in panel.metrics:
        columns[_column_id(panel, metric.key)] = _metric_column(panel, metric)
        order.append(_column_id(panel, metric.key))
    attributes = {
        "description": panel.description,
        "state": {
            "adHocDataViews": {},
            "datasourceStates": {
                "formBased": {
                    "layers": {
                        layer: {"columnOrder": order, "columns": columns, "incompleteColumns": {}}
                    }
                }
            },
            "filters": [],
            "internalReferences": [],
            "query": {"language": "kuery", "query": _kql(panel.where)},
            "visualization": _visualization(panel),
        },
        "title": f"[{SHOP}] {panel.title}",
        "visualizationType": LENS_TYPES[panel.chart],
    }
    references = [
        {
            "id": data_view_id(panel.role),
            "name": f"indexpattern-datasource-layer-{layer}",
            "type": "index-pattern",
        }
    ]
    return _saved_object("lens", object_id(panel), attributes, references)


# -- saved searches (records panels) -----------------------------------------------------------


def search_object(panel: Panel) -> dict:
    source = {
        "query": {"language": "kuery", "query": _kql(panel.where)},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    attributes = {
        "columns": [c.field for c in panel.columns],
        "description": panel.description,
        "grid": {},
        "hideChart": True,
        "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": _dumps(source)},
        "rowsPerPage": panel.size,
        "sampleSize": max(panel.size, 100),
        "sort": [[panel.sort_field, "desc"]],
        "title": f"[{SHOP}] {panel.title}",
    }
    references = [
        {
            "id": data_view_id(panel.role),
            "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            "type": "index-pattern",
        }
    ]
    return _saved_object("search", object_id(panel), attributes, references)


# -- the dashboard -----------------------------------------------------------------------------


def _control_id(control: Control) -> str:
    return f"control-{control.key}"


def _control_group(controls: tuple[Control, ...]) -> dict:
    panels = {}
    for order, control in enumerate(controls):
        cid = _control_id(control)
        panels[cid] = {
            "order": order,
            "width": "medium",
            "grow": True,
            "type": "optionsListControl",
            "explicitInput": {
                "id": cid,
                "fieldName": control.field,
                "title": control.title,
                "searchTechnique": "prefix",
                "selectedOptions": [],
                "sort": {"by": "_count", "direction": "desc"},
                "enhancements": {},
            },
        }
    ignore = {
        "ignoreFilters": False,
        "ignoreQuery": False,
        "ignoreTimerange": False,
        "ignoreValidations": False,
    }
    return {
        "chainingSystem": "HIERARCHICAL",
        "controlStyle": "oneLine",
        "ignoreParentSettingsJSON": _dumps(ignore),
        "panelsJSON": _dumps(panels),
        "showApplySelections": False,
    }


def dashboard_object(dashboard: Dashboard = DASHBOARD) -> dict:
    panels = []
    references = []
    for panel in dashboard.panels:
        grid = panel.grid
        panels.append(
            {
                "version": KIBANA_VERSION,
                "type": object_type(panel),
                "gridData": {"x": grid.x, "y": grid.y, "w": grid.w, "h": grid.h, "i": panel.key},
                "panelIndex": panel.key,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{panel.key}",
                "title": panel.title,
            }
        )
        references.append(
            {
                "id": object_id(panel),
                "name": f"{panel.key}:panel_{panel.key}",
                "type": object_type(panel),
            }
        )
    for control in dashboard.controls:
        references.append(
            {
                "id": data_view_id(control.role),
                "name": f"controlGroup_{_control_id(control)}:optionsListDataView",
                "type": "index-pattern",
            }
        )
    attributes = {
        "controlGroupInput": _control_group(dashboard.controls),
        "description": dashboard.description,
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": _dumps({"query": {"language": "kuery", "query": ""}, "filter": []})
        },
        "optionsJSON": _dumps(
            {
                "useMargins": True,
                "syncColors": True,
                "syncCursor": True,
                "syncTooltips": False,
                "hidePanelTitles": False,
            }
        ),
        "panelsJSON": _dumps(panels),
        "refreshInterval": {"pause": False, "value": dashboard.refresh_seconds * 1000},
        "timeFrom": dashboard.time_from,
        "timeRestore": True,
        "timeTo": dashboard.time_to,
        "title": dashboard.title,
        "version": 1,
    }
    return _saved_object("dashboard", dashboard_id(dashboard), attributes, references)


# -- the file ----------------------------------------------------------------------------------


def build(dashboard: Dashboard = DASHBOARD) -> list[dict]:
    """Every saved object, referenced objects before the objects that reference them."""
    roles = sorted({p.role for p in dashboard.panels} | {c.role for c in dashboard.controls})
    objects = [data_view(role) for role in roles]
    for panel in dashboard.panels:
        objects.append(search_object(panel) if panel.chart == "records" else lens_object(panel))
    objects.append(dashboard_object(dashboard))
    return objects


def to_ndjson(objects: list[dict]) -> str:
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects)


def write(path: Path = NDJSON_FILE, dashboard: Dashboard = DASHBOARD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_ndjson(build(dashboard)), encoding="utf-8")
    return path


def load(path: Path = NDJSON_FILE) -> list[dict]:
    """The saved objects of an ndjson file (blank lines skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# -- reading the objects back: which fields do they name, and how -----------------------------

# usage -> the mapping types that fit it
FIELD_TYPES = {
    "sum": {"long", "integer", "short", "byte", "double", "float", "half_float"},
    "average": {"long", "integer", "short", "byte", "double", "float", "half_float"},
    "terms": {"keyword", "long", "integer", "short", "byte", "boolean", "ip"},
    "date_histogram": {"date", "date_nanos"},
    "time": {"date", "date_nanos"},
    "sort": {"date", "date_nanos", "long", "integer", "double", "keyword"},
    "last_value": {"keyword", "long", "integer", "double", "date", "boolean"},
    "control": {"keyword", "long", "integer", "boolean", "ip"},
    "query": {"keyword", "long", "integer", "double", "boolean", "date"},
    "column": {"keyword", "long", "integer", "double", "date", "boolean"},
}


def named_fields(objects: list[dict]) -> list[tuple[str, str, str]]:
    """(index name, field, usage) for every field the saved objects name.

    Read from the Kibana objects themselves (not from panels.py), so it checks the artefact.
    """
    titles = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    named: list[tuple[str, str, str]] = []
    for obj in objects:
        refs = {r["name"]: r["id"] for r in obj["references"]}
        attrs = obj["attributes"]
        if obj["type"] == "index-pattern":
            named.append((attrs["title"], attrs["timeFieldName"], "time"))
        elif obj["type"] == "lens":
            layers = attrs["state"]["datasourceStates"]["formBased"]["layers"]
            for layer_id, layer in layers.items():
                index = titles[refs[f"indexpattern-datasource-layer-{layer_id}"]]
                for column in layer["columns"].values():
                    source = column.get("sourceField")
                    if source and source != "___records___":
                        named.append((index, source, column["operationType"]))
                    sort_field = column.get("params", {}).get("sortField")
                    if sort_field:
                        named.append((index, sort_field, "sort"))
                for name in _kql_fields(attrs["state"]["query"]["query"]):
                    named.append((index, name, "query"))
        elif obj["type"] == "search":
            index = titles[refs["kibanaSavedObjectMeta.searchSourceJSON.index"]]
            named += [(index, name, "column") for name in attrs["columns"]]
            named += [(index, name, "sort") for name, _ in attrs["sort"]]
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            named += [(index, name, "query") for name in _kql_fields(source["query"]["query"])]
        elif obj["type"] == "dashboard":
            controls = json.loads(attrs["controlGroupInput"]["panelsJSON"])
            for cid, control in controls.items():
                index = titles[refs[f"controlGroup_{cid}:optionsListDataView"]]
                named.append((index, control["explicitInput"]["fieldName"], "control"))
    return named


def _kql_fields(query: str) -> list[str]:
    """Field names of the simple `field : "value" and ...` queries the generator writes."""
    if not query.strip():
        return []
    return [part.split(":", 1)[0].strip() for part in query.split(" and ")]


__all__ = [
    "FIELD_TYPES",
    "NDJSON_FILE",
    "build",
    "dashboard_object",
    "data_view",
    "lens_object",
    "load",
    "named_fields",
    "search_object",
    "to_ndjson",
    "write",
]
