"""IAM rules for every service: no public principals, basic roles, keys or project-wide SA roles."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import get, items, violation
from policies.settings import Settings

RULES: list[Rule] = []

SERVICE_ACCOUNT_KEY = "gcp:serviceaccount/key:Key"

# Every service spells the IAM types its own way (projects/iAMMember:IAMMember,
# bigquery/datasetIamMember:DatasetIamMember, storage/bucketIAMMember:...),
# so the class name is matched case-insensitively.
_IAM_CLASS = re.compile(r"iam(member|binding|policy)$", re.IGNORECASE)
_PROJECT_IAM_TYPES = frozenset(
    {
        "gcp:projects/iAMMember:IAMMember",
        "gcp:projects/iAMBinding:IAMBinding",
        "gcp:projects/iAMPolicy:IAMPolicy",
    }
)

PUBLIC_PRINCIPALS = frozenset({"allUsers", "allAuthenticatedUsers"})
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
IMPERSONATION_ROLES = frozenset(
    {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"}
)
_ADMIN_ROLE = re.compile(r"(\.admin|Admin)$")


def is_iam_type(resource_type: str) -> bool:
    """Return whether ``resource_type`` is an IamMember, IamBinding or IamPolicy of any service."""
    return resource_type.startswith("gcp:") and bool(
        _IAM_CLASS.search(resource_type.rsplit(":", 1)[-1])
    )


@dataclass(frozen=True)
class Grant:
    """One role given to some members, and the property path it was read from."""

    path: str
    role: Any
    members: tuple[Any, ...]


def policy_bindings(policy_data: Any) -> list[Mapping[str, Any]] | None:
    """Parse an IamPolicy's policyData JSON into its bindings; None when it is not valid."""
    try:
        document = json.loads(policy_data) if isinstance(policy_data, str) else policy_data
    except json.JSONDecodeError:
        return None
    if not isinstance(document, Mapping):
        return None
    return [binding for binding in items(document.get("bindings")) if isinstance(binding, Mapping)]


def grants(resource: Resource) -> list[Grant]:
    """Return the role grants an IAM resource declares, whatever its shape."""
    props = resource.props
    role = get(props, "role")
    if "member" in props:
        return [Grant("member", role, (props["member"],))]
    if "members" in props:
        return [Grant("members", role, tuple(items(props["members"])))]

    found: list[Grant] = []
    for index, binding in enumerate(policy_bindings(get(props, "policyData")) or []):
        members = tuple(items(binding.get("members")))
        found.append(Grant(f"policyData.bindings[{index}]", binding.get("role"), members))
    return found


@rule(
    RULES,
    name="iam-no-public-principals",
    description="No IAM grant of any service may include allUsers or allAuthenticatedUsers.",
    severity=Severity.CRITICAL,
    applies=is_iam_type,
)
def no_public_principals(resource: Resource, settings: Settings) -> Iterator[str]:
    policy_data = get(resource.props, "policyData")
    if policy_data and policy_bindings(policy_data) is None:
        yield violation(resource, "policyData", policy_data, "a JSON IAM policy with 'bindings'")
    for grant in grants(resource):
        public = sorted(str(member) for member in grant.members if member in PUBLIC_PRINCIPALS)
        if public:
            yield violation(
                resource,
                f"{grant.path} (role {grant.role})",
                public,
                "named principals only, without allUsers or allAuthenticatedUsers",
            )


@rule(
    RULES,
    name="iam-no-basic-roles",
    description="No IAM grant may use the basic roles owner, editor or viewer.",
    severity=Severity.HIGH,
    applies=is_iam_type,
)
def no_basic_roles(resource: Resource, settings: Settings) -> Iterator[str]:
    for grant in grants(resource):
        if grant.role in BASIC_ROLES:
            yield violation(
                resource, f"{grant.path} role", grant.role, "a predefined or custom role"
            )


@rule(
    RULES,
    name="iam-no-service-account-keys",
    description="The stack must not create user-managed service account keys.",
    severity=Severity.CRITICAL,
    types=[SERVICE_ACCOUNT_KEY],
)
def no_service_account_keys(resource: Resource, settings: Settings) -> Iterator[str]:
    yield violation(
        resource,
        "resource type",
        resource.type,
        "no service account keys; attach the service account to the workload instead",
    )


@rule(
    RULES,
    name="iam-no-project-service-account-impersonation",
    description="Service account user and token creator roles must not be granted per project.",
    severity=Severity.HIGH,
    types=_PROJECT_IAM_TYPES,
)
def no_project_impersonation(resource: Resource, settings: Settings) -> Iterator[str]:
    for grant in grants(resource):
        if grant.role in IMPERSONATION_ROLES:
            yield violation(
                resource,
                f"{grant.path} role",
                grant.role,
                "the role granted on the one service account (serviceaccount.IAMMember), "
                "not on the project",
            )


@rule(
    RULES,
    name="iam-no-project-admin-for-service-accounts",
    description="Service accounts must not hold admin roles (*.admin, *Admin) on the project.",
    severity=Severity.HIGH,
    types=_PROJECT_IAM_TYPES,
)
def no_project_admin_for_service_accounts(resource: Resource, settings: Settings) -> Iterator[str]:
    for grant in grants(resource):
        if not isinstance(grant.role, str) or not _ADMIN_ROLE.search(grant.role):
            continue
        accounts = sorted(
            str(member) for member in grant.members if str(member).startswith("serviceAccount:")
        )
        if accounts:
            yield violation(
                resource,
                f"{grant.path} role",
                grant.role,
                f"a narrower role for {', '.join(accounts)}, or the admin role on one resource",
            )
