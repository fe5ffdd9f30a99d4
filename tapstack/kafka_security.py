"""Kafka users and ACLs from contracts/security.toml, applied through the admin API.

The same code on both paths: the native stack runs `apply` once its broker is up; compose's
setup container runs it as `tap kafka security`. Applying is idempotent and exact: every user
of the contract gets its password (re-synced on each run), every grant becomes ACLs, and an
ACL on the broker that the contract does not describe is deleted. The admin is the broker's
super user (super.users) and holds no ACL.

Grants -> ACLs (Kafka's implied operations: READ and WRITE each imply DESCRIBE on the topic,
and WRITE on any topic implies the cluster's IDEMPOTENT_WRITE, KIP-679 in Kafka 3.0):
  read  = [topic roles]   ALLOW READ on each topic (literal)
  write = [topic roles]   ALLOW WRITE on each topic (literal)
  groups = [...]          ALLOW READ on each group: "prefix*" prefixed, "@role" the
                          [consumer_groups] entry of that role, anything else literal
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from tapstack import contracts, kafka_clients
from tapstack.native.errors import StackError

Acl = tuple[str, str, str, str, str]  # principal, resource type, name, pattern, operation


def users() -> dict[str, str]:
    """Role key -> user name, the admin excluded."""
    return dict(contracts.security()["kafka"]["users"])


def _group(pattern: str) -> tuple[str, str]:
    if pattern.startswith("@"):
        return contracts.consumer_group(pattern[1:]), "LITERAL"
    if pattern.endswith("*"):
        return pattern[:-1], "PREFIXED"
    return pattern, "LITERAL"


def wanted() -> set[Acl]:
    """Every ACL the contract's grants describe, as comparable tuples."""
    acls: set[Acl] = set()
    grants = contracts.security()["kafka"]["grants"]
    for role, name in users().items():
        principal = f"User:{name}"
        grant = grants.get(role, {})
        for operation in ("read", "write"):
            for topic_role in grant.get(operation, []):
                acls.add(
                    (principal, "TOPIC", contracts.topic(topic_role), "LITERAL", operation.upper())
                )
        for pattern in grant.get("groups", []):
            group, kind = _group(pattern)
            acls.add((principal, "GROUP", group, kind, "READ"))
    return acls


def _acl(entry: Acl) -> ACL:
    principal, resource, name, pattern, operation = entry
    return ACL(
        principal=principal,
        host="*",
        operation=ACLOperation[operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType[resource], name, ACLResourcePatternType[pattern]
        ),
    )


def _entry(acl: ACL) -> Acl:
    pattern = acl.resource_pattern
    return (
        acl.principal,
        ResourceType(pattern.resource_type).name,
        pattern.resource_name,
        ACLResourcePatternType(pattern.pattern_type).name,
        ACLOperation(acl.operation).name,
    )


_EVERYTHING = ACLFilter(
    principal=None,
    host=None,
    operation=ACLOperation.ANY,
    permission_type=ACLPermissionType.ANY,
    resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def _all(admin: KafkaAdminClient) -> list[ACL]:
    acls, error = admin.describe_acls(_EVERYTHING)
    if getattr(error, "errno", 0):
        raise StackError(f"describe_acls failed: {error}")
    return list(acls)


def _exact(acl: ACL) -> bool:
    """An ACL of the kind the contract makes: ALLOW, from any host."""
    return acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*"


def present(admin: KafkaAdminClient) -> set[Acl]:
    """Every ACL on the broker as tuples; one of another kind (DENY, a host) is marked in its
    operation ("DENY:READ@10.0.0.1"), so it never equals a contract entry."""
    found = set()
    for acl in _all(admin):
        entry = _entry(acl)
        if not _exact(acl):
            kind = ACLPermissionType(acl.permission_type).name
            entry = (*entry[:4], f"{kind}:{entry[4]}@{acl.host}")
        found.add(entry)
    return found


def set_passwords(admin: KafkaAdminClient, passwords: Mapping[str, str]) -> list[str]:
    """Create or update the SCRAM credential of every contract user; passwords maps user name
    -> password. Returns the users written."""
    names = list(users().values())
    errors = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(name, ScramMechanism[_mechanism()], passwords[name])
            for name in names
        ]
    )
    failed = {name: error for name, error in errors.items() if error}
    if failed:
        raise StackError(f"SCRAM credentials not set: {failed}")
    return names


def _mechanism() -> str:
    return kafka_clients.mechanism().replace("-", "_")


def set_acls(admin: KafkaAdminClient) -> None:
    """Make the broker's ACLs exactly the contract's: delete the others, create the missing."""
    target = wanted()
    extra = [acl for acl in _all(admin) if not _exact(acl) or _entry(acl) not in target]
    if extra:
        admin.delete_acls(extra)
    missing = target - present(admin)
    if missing:
        result = admin.create_acls([_acl(entry) for entry in sorted(missing)])
        if result.get("failed"):
            raise StackError(f"ACLs not created: {result['failed']}")


def apply(
    admin: KafkaAdminClient, passwords: Mapping[str, str], timeout: float = 30.0
) -> list[str]:
    """Users and ACLs of the contract on the broker, waited for until the broker serves them
    (metadata reaches the broker a moment after the controller commits it)."""
    written = set_passwords(admin, passwords)
    set_acls(admin)
    deadline = time.monotonic() + timeout
    while present(admin) != wanted() or not _users_known(admin, written):
        if time.monotonic() > deadline:
            raise StackError("the broker did not serve the contract's users and ACLs in time")
        time.sleep(0.2)
    return written


def _users_known(admin: KafkaAdminClient, names: list[str]) -> bool:
    """Every user has a credential of the contract's mechanism on the broker."""
    described = admin.describe_user_scram_credentials(names)
    mechanism = ScramMechanism[_mechanism()]
    return all(
        any(
            info["mechanism"] == mechanism
            for info in described.get(name, {}).get("credential_infos", [])
        )
        for name in names
    )


# -- passwords from the environment (compose) -----------------------------------------------


def password_variables() -> dict[str, str]:
    """User name -> the environment variable holding its password (admin included)."""
    section = contracts.security()["kafka"]
    return {
        kafka_clients.user(key): variable for key, variable in section["password_variables"].items()
    }


def from_environment(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list]:
    """Passwords by user name from <VARIABLE>, else from the file named by <VARIABLE>_FILE
    (Docker secrets); also the variables found in neither."""
    environ = os.environ if environ is None else environ
    passwords, missing = {}, []
    for name, variable in password_variables().items():
        value = environ.get(variable)
        if not value and environ.get(f"{variable}_FILE"):
            value = Path(environ[f"{variable}_FILE"]).read_text().strip()
        if value:
            passwords[name] = value
        else:
            missing.append(variable)
    return passwords, sorted(missing)
