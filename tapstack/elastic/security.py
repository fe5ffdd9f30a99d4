"""Elasticsearch users and roles from contracts/security.toml.

The same definitions on both paths (`roles`, `users`): compose's es-users setup container
applies them with the security API (`apply`, run as `tap es security`; every call is a
create-or-update, so applying again is safe and re-syncs passwords); the native node holds them
in its file realm (tapstack.native.elasticsearch), because the integ-test-zip cannot create the
security index that API-made users live in. tests/test_security.py proves every right and
refusal on the real native node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

from tapstack import contracts


def role_body(role: Mapping[str, Any]) -> dict[str, Any]:
    """A role of the contract as the security API takes it (index roles -> index names)."""
    body: dict[str, Any] = {"cluster": list(role.get("cluster", []))}
    body["indices"] = [
        {
            "names": [contracts.index(name) for name in grant["names"]],
            "privileges": list(grant["privileges"]),
        }
        for grant in role.get("indices", [])
    ]
    if role.get("applications"):
        body["applications"] = [dict(app) for app in role["applications"]]
    return body


def roles() -> dict[str, dict[str, Any]]:
    return {
        name: role_body(role)
        for name, role in contracts.security()["elasticsearch"]["roles"].items()
    }


def users() -> dict[str, list[str]]:
    """User name -> the roles it holds."""
    section = contracts.security()["elasticsearch"]
    return {section["users"][key]: list(section["grants"][key]) for key in section["users"]}


def password_variables() -> dict[str, str]:
    """User name -> the environment variable holding its password (compose)."""
    section = contracts.security()["elasticsearch"]
    names = {key: contracts.es_user(key) for key in ("admin", *section["users"])}
    return {
        names.get(key, key): variable for key, variable in section["password_variables"].items()
    }


def apply(admin: Elasticsearch, passwords: Mapping[str, str]) -> list[str]:
    """Create or update every role and user; passwords maps user name -> password (a built-in
    user such as kibana_system gets its password set when one is given). Returns the users
    written."""
    for name, body in roles().items():
        admin.security.put_role(name=name, **body)
    written = []
    for user, held in users().items():
        admin.security.put_user(username=user, password=passwords[user], roles=held)
        written.append(user)
    admin_user = contracts.es_user("admin")
    for user in password_variables():
        if user not in users() and user != admin_user and user in passwords:
            admin.security.change_password(username=user, password=passwords[user])
            written.append(user)
    return written
