"""VPC rules: no public ingress, firewall and subnet flow logging, custom-mode VPC, NAT logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from policies.model import Resource, Rule, Severity, rule
from policies.rules.common import NOT_SET, get, items, violation
from policies.settings import Settings

RULES: list[Rule] = []

FIREWALL = "gcp:compute/firewall:Firewall"
NETWORK = "gcp:compute/network:Network"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
ROUTER_NAT = "gcp:compute/routerNat:RouterNat"

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}

# Only ordinary (PRIVATE) subnets host VMs. pulumi_gcp 10.2.0 documents that
# proxy-only subnets (REGIONAL_/GLOBAL_MANAGED_PROXY) do not support flow logs.
# NOTE: skipping the other special purposes (PRIVATE_SERVICE_CONNECT,
# PRIVATE_NAT, PEER_MIGRATION) for both subnet rules is a judgment, not checked
# against the API.
_VM_SUBNET_PURPOSES = ("PRIVATE", "PRIVATE_RFC_1918")


def _public_sources(props: Mapping[str, Any]) -> list[str]:
    """Return the source ranges that cover the whole IPv4 or IPv6 internet.

    An ingress rule without any source range, tag or service account applies
    to every source: the Compute Engine API then uses 0.0.0.0/0.
    """
    sources = ("sourceRanges", "sourceTags", "sourceServiceAccounts")
    if not any(items(get(props, source)) for source in sources):
        return ["0.0.0.0/0 (no source given)"]

    public: list[str] = []
    for source in items(get(props, "sourceRanges")):
        try:
            network = ipaddress.ip_network(str(source), strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0:
            public.append(str(source))
    return public


def _is_public_ingress(props: Mapping[str, Any]) -> bool:
    direction = get(props, "direction")
    is_ingress = direction is NOT_SET or str(direction).upper() == "INGRESS"
    return is_ingress and bool(items(get(props, "allows"))) and bool(_public_sources(props))


def _port_open(allow: Mapping[str, Any], port: int) -> bool:
    """Return whether one ``allows`` entry admits TCP or UDP traffic to ``port``."""
    protocol = str(allow.get("protocol", "")).lower()
    if protocol not in ("tcp", "udp", "all", "6", "17"):
        return False
    ports = items(allow.get("ports"))
    if not ports:
        return True
    for entry in ports:
        low, _, high = str(entry).partition("-")
        try:
            if int(low) <= port <= int(high or low):
                return True
        except ValueError:
            continue
    return False


@rule(
    RULES,
    name="network-firewall-no-public-ingress",
    description="Ingress firewall rules must not allow traffic from 0.0.0.0/0 or ::/0.",
    severity=Severity.CRITICAL,
    types=[FIREWALL],
)
def firewall_no_public_ingress(resource: Resource, settings: Settings) -> Iterator[str]:
    if _is_public_ingress(resource.props):
        yield violation(
            resource,
            "sourceRanges",
            get(resource.props, "sourceRanges"),
            "internal ranges or Google front-end ranges only (no 0.0.0.0/0 or ::/0) on an "
            "ingress rule with 'allows'",
        )


@rule(
    RULES,
    name="network-firewall-no-public-admin-ports",
    description="Ingress firewall rules must not open SSH (22) or RDP (3389) to the internet.",
    severity=Severity.CRITICAL,
    types=[FIREWALL],
)
def firewall_no_public_admin_ports(resource: Resource, settings: Settings) -> Iterator[str]:
    if not _is_public_ingress(resource.props):
        return
    for allow in items(get(resource.props, "allows")):
        if not isinstance(allow, Mapping):
            continue
        sources = ", ".join(_public_sources(resource.props))
        for port, service in ADMIN_PORTS.items():
            if _port_open(allow, port):
                yield violation(
                    resource,
                    "allows",
                    allow,
                    f"no {service} (port {port}) from {sources}; "
                    "use IAP TCP forwarding (35.235.240.0/20) instead",
                )


@rule(
    RULES,
    name="network-firewall-logging",
    description="Firewall rules must log matched connections through logConfig.",
    severity=Severity.MEDIUM,
    types=[FIREWALL],
)
def firewall_logging(resource: Resource, settings: Settings) -> Iterator[str]:
    metadata = get(resource.props, "logConfig.metadata")
    if metadata not in ("INCLUDE_ALL_METADATA", "EXCLUDE_ALL_METADATA"):
        yield violation(
            resource,
            "logConfig.metadata",
            metadata,
            '"INCLUDE_ALL_METADATA" or "EXCLUDE_ALL_METADATA"',
        )


@rule(
    RULES,
    name="network-vpc-custom-mode",
    description="VPC networks must be custom mode, without automatically created subnets.",
    severity=Severity.HIGH,
    types=[NETWORK],
)
def vpc_custom_mode(resource: Resource, settings: Settings) -> Iterator[str]:
    # The provider creates auto-mode networks when the field is absent.
    value = get(resource.props, "autoCreateSubnetworks")
    if value is not False:
        yield violation(resource, "autoCreateSubnetworks", value, "false (custom-mode VPC)")


def _is_vm_subnet(props: Mapping[str, Any]) -> bool:
    purpose = get(props, "purpose")
    return purpose is NOT_SET or str(purpose) in _VM_SUBNET_PURPOSES


@rule(
    RULES,
    name="network-subnet-private-google-access",
    description="Subnets must enable Private Google Access so private workers reach Google APIs.",
    severity=Severity.HIGH,
    types=[SUBNETWORK],
)
def subnet_private_google_access(resource: Resource, settings: Settings) -> Iterator[str]:
    value = get(resource.props, "privateIpGoogleAccess")
    if _is_vm_subnet(resource.props) and value is not True:
        yield violation(resource, "privateIpGoogleAccess", value, "true")


@rule(
    RULES,
    name="network-subnet-flow-logs",
    description="Subnets must export VPC flow logs through logConfig.",
    severity=Severity.MEDIUM,
    types=[SUBNETWORK],
)
def subnet_flow_logs(resource: Resource, settings: Settings) -> Iterator[str]:
    log_config = get(resource.props, "logConfig")
    if _is_vm_subnet(resource.props) and not isinstance(log_config, Mapping):
        yield violation(
            resource,
            "logConfig",
            log_config,
            "an object such as "
            '{"aggregationInterval": "INTERVAL_5_SEC", "flowSampling": 0.5, '
            '"metadata": "INCLUDE_ALL_METADATA"}',
        )


@rule(
    RULES,
    name="network-nat-logging",
    description="Cloud NAT gateways must log translations and errors.",
    severity=Severity.MEDIUM,
    types=[ROUTER_NAT],
)
def nat_logging(resource: Resource, settings: Settings) -> Iterator[str]:
    enabled = get(resource.props, "logConfig.enable")
    log_filter = get(resource.props, "logConfig.filter")
    if enabled is not True:
        yield violation(resource, "logConfig.enable", enabled, "true")
    elif log_filter not in (NOT_SET, "ALL", "ERRORS_ONLY", "TRANSLATIONS_ONLY"):
        yield violation(
            resource, "logConfig.filter", log_filter, '"ALL", "ERRORS_ONLY" or "TRANSLATIONS_ONLY"'
        )
