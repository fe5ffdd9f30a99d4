"""Import the CEO dashboard into a running Kibana (what compose's kibana-import container runs).

1. Wait until GET /api/status reports the overall level "available" (retries with tenacity until
   a timeout; a 401/403 stops at once: retrying cannot fix credentials).
2. Optionally turn on the space setting courier:ignoreFilterIfFieldNotInIndex (POST
   /api/kibana/settings): the dashboard mixes the orders and the order-lines data views, and a
   control on an orders-only field (categories) must not blank the line panels.
3. POST the ndjson to /api/saved_objects/_import?overwrite=true as the multipart field `file`,
   with the kbn-xsrf header; fail clearly unless the answer says success.

Credentials (basic auth) come from the environment: TAP_KIBANA_USER/TAP_KIBANA_PASSWORD, else
KIBANA_USER/KIBANA_PASSWORD, else TAP_ES_USER/TAP_ES_PASSWORD (Kibana authenticates against
Elasticsearch's users); none natively.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from tapstack import contracts
from tapstack.kibana.saved_objects import NDJSON_FILE
from tapstack.native.errors import StackError

XSRF_HEADER = {"kbn-xsrf": "tap"}
SPACE_SETTINGS = {"courier:ignoreFilterIfFieldNotInIndex": True}
_CREDENTIAL_PAIRS = (
    ("TAP_KIBANA_USER", "TAP_KIBANA_PASSWORD"),
    ("KIBANA_USER", "KIBANA_PASSWORD"),
    ("TAP_ES_USER", "TAP_ES_PASSWORD"),
)


class KibanaError(StackError):
    """Kibana refused or failed the import; the message says why."""


class NotReady(Exception):
    """Kibana answers, but not yet with an available status (or not at all)."""


@dataclass
class ImportResult:
    success_count: int
    objects: list[dict[str, Any]] = field(default_factory=list)


def kibana_url(url: str | None = None) -> str:
    base = url or os.environ.get("TAP_KIBANA_URL") or f"http://localhost:{contracts.port('kibana')}"
    return base.rstrip("/")


def kibana_auth() -> tuple[str, str] | None:
    for user_var, password_var in _CREDENTIAL_PAIRS:
        user, password = os.environ.get(user_var), os.environ.get(password_var)
        if user and password:
            return user, password
    return None


def _session(auth: tuple[str, str] | None) -> requests.Session:
    session = requests.Session()
    session.auth = auth
    session.headers.update(XSRF_HEADER)
    return session


def _status_level(body: Any) -> str:
    """The overall status: v8 format `status.overall.level`, legacy `status.overall.state`."""
    try:
        overall = body["status"]["overall"]
    except (KeyError, TypeError):
        return "unknown"
    return str(overall.get("level") or overall.get("state") or "unknown")


def _check_status(session: requests.Session, base: str, request_timeout: float) -> None:
    try:
        response = session.get(f"{base}/api/status", timeout=request_timeout)
    except requests.RequestException as exc:
        raise NotReady(f"no answer from {base}: {exc.__class__.__name__}") from exc
    if response.status_code in (401, 403):
        raise KibanaError(
            f"Kibana at {base} refused the credentials ({response.status_code}); set "
            "TAP_KIBANA_USER/TAP_KIBANA_PASSWORD (or KIBANA_USER/KIBANA_PASSWORD)."
        )
    if response.status_code != 200:
        raise NotReady(f"/api/status answered {response.status_code}")
    try:
        level = _status_level(response.json())
    except ValueError as exc:
        raise NotReady("/api/status did not answer JSON") from exc
    if level not in ("available", "green"):
        raise NotReady(f"Kibana status is {level}")


def wait_available(
    session: requests.Session, base: str, timeout: float = 300, request_timeout: float = 10
) -> None:
    """Return once Kibana reports available; KibanaError after `timeout` seconds."""
    retrying = Retrying(
        retry=retry_if_exception_type(NotReady),
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.5, max=5),
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                _check_status(session, base, request_timeout)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise KibanaError(
            f"Kibana at {base} is not available after {timeout:g} s: {last}"
        ) from None


def apply_space_settings(session: requests.Session, base: str, request_timeout: float = 30) -> None:
    response = session.post(
        f"{base}/api/kibana/settings", json={"changes": SPACE_SETTINGS}, timeout=request_timeout
    )
    if response.status_code != 200:
        raise KibanaError(
            f"Kibana refused the advanced settings ({response.status_code}): {response.text[:300]}"
        )


def _describe(error: dict[str, Any]) -> str:
    what = f"{error.get('type', '?')} {error.get('id', '?')}"
    if error.get("title"):
        what += f" ({error['title']})"
    detail = error.get("error", {})
    kind = detail.get("type", "error")
    if kind == "missing_references":
        missing = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references", []))
        return f"{what}: missing references: {missing}"
    message = detail.get("message") or detail.get("reason") or ""
    return f"{what}: {kind}{': ' + message if message else ''}"


def post_import(
    session: requests.Session,
    base: str,
    path: Path,
    overwrite: bool = True,
    request_timeout: float = 60,
) -> ImportResult:
    """POST the ndjson to the saved objects import API; KibanaError unless it succeeded."""
    with path.open("rb") as handle:
        response = session.post(
            f"{base}/api/saved_objects/_import",
            params={"overwrite": "true" if overwrite else "false"},
            files={"file": (path.name, handle, "application/ndjson")},
            timeout=request_timeout,
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        reason = body.get("message") if isinstance(body, dict) else response.text[:300]
        raise KibanaError(f"the saved objects import failed ({response.status_code}): {reason}")
    if not body.get("success"):
        errors = body.get("errors") or []
        lines = "\n  ".join(_describe(e) for e in errors) or "no error details"
        raise KibanaError(
            f"Kibana imported {body.get('successCount', 0)} objects from {path.name} and rejected "
            f"{len(errors)}:\n  {lines}"
        )
    return ImportResult(body.get("successCount", 0), body.get("successResults") or [])


def import_dashboard(
    url: str | None = None,
    path: Path = NDJSON_FILE,
    timeout: float = 300,
    space_settings: bool = True,
) -> ImportResult:
    """Wait for Kibana, set the space setting (optional), import the saved objects."""
    if not path.exists():
        raise KibanaError(f"{path} does not exist; run `tap kibana build` first")
    base = kibana_url(url)
    with _session(kibana_auth()) as session:
        wait_available(session, base, timeout=timeout)
        if space_settings:
            apply_space_settings(session, base)
        return post_import(session, base, path)
