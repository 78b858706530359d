"""Worker network: custom-mode VPC, subnet, Dataflow firewall rule, optional IAP SSH and NAT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type, resource_name

DATAFLOW_SHUFFLE_PORTS = "12345-12346"
"""TCP ports Dataflow workers use to talk to each other (streaming shuffle and data exchange)."""

IAP_TCP_FORWARDING_RANGE = "35.235.240.0/20"
"""Source range of Identity-Aware Proxy TCP forwarding, from the IAP documentation."""


@dataclass(frozen=True)
class IapSsh:
    """SSH from Identity-Aware Proxy to the workers, for debugging a running job."""

    source_ranges: Sequence[str] = (IAP_TCP_FORWARDING_RANGE,)


@dataclass(frozen=True)
class CloudNat:
    """Cloud Router and NAT, so workers without external IPs reach hosts outside Google."""

    log_filter: str = "ERRORS_ONLY"
    """NAT log filter: ERRORS_ONLY, TRANSLATIONS_ONLY or ALL."""


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of ``Network``."""

    project: str
    region: str
    prefix: str
    """Deterministic name prefix such as ``anomaly-dev``."""

    subnet_cidr: str
    """Primary range of the worker subnet; config validation checks that it is private."""

    worker_service_account: pulumi.Input[str]
    """Email of the Dataflow worker service account; firewall rules match on it."""

    iap_ssh: IapSsh | None = None
    """IAP SSH settings, or ``None`` for no SSH access."""

    cloud_nat: CloudNat | None = None
    """NAT settings, or ``None`` for no egress to the internet."""

    flow_log_sampling: float = 0.5
    """Fraction of flows recorded in the subnet's VPC flow logs."""


class Network(pulumi.ComponentResource):
    """Custom-mode VPC with one regional subnet for the Dataflow workers."""

    network: gcp.compute.Network
    subnetwork: gcp.compute.Subnetwork
    firewalls: dict[str, gcp.compute.Firewall]
    router: gcp.compute.Router | None
    nat: gcp.compute.RouterNat | None

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("network", "Network"), name, None, opts)

        self.network = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            name=resource_name("compute", args.prefix, "vpc"),
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child_opts(self, opts),
        )

        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-subnet",
            project=args.project,
            region=args.region,
            name=resource_name("compute", args.prefix, "workers"),
            network=self.network.id,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC",
                flow_sampling=args.flow_log_sampling,
                metadata="INCLUDE_ALL_METADATA",
            ),
            opts=child_opts(self, opts),
        )

        self.firewalls = {"dataflow": self._dataflow_rule(name, args, opts)}
        if args.iap_ssh is not None:
            self.firewalls["iap-ssh"] = self._iap_rule(name, args, args.iap_ssh, opts)

        self.router = None
        self.nat = None
        if args.cloud_nat is not None:
            self._create_nat(name, args, args.cloud_nat, opts)

        self.register_outputs(
            {
                "network": self.network.id,
                "subnetwork": self.subnetwork.self_link,
                "firewalls": sorted(self.firewalls),
            }
        )

    def _dataflow_rule(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None
    ) -> gcp.compute.Firewall:
        return gcp.compute.Firewall(
            f"{name}-fw-dataflow",
            project=args.project,
            name=resource_name("compute", args.prefix, "allow-dataflow-workers"),
            description="Dataflow worker-to-worker traffic (shuffle) between workers only.",
            network=self.network.id,
            direction="INGRESS",
            priority=1000,
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[DATAFLOW_SHUFFLE_PORTS])],
            source_service_accounts=[args.worker_service_account],
            target_service_accounts=[args.worker_service_account],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            opts=child_opts(self, opts),
        )

    def _iap_rule(
        self,
        name: str,
        args: NetworkArgs,
        settings: IapSsh,
        opts: pulumi.ResourceOptions | None,
    ) -> gcp.compute.Firewall:
        return gcp.compute.Firewall(
            f"{name}-fw-iap-ssh",
            project=args.project,
            name=resource_name("compute", args.prefix, "allow-iap-ssh"),
            description="SSH to Dataflow workers through Identity-Aware Proxy TCP forwarding.",
            network=self.network.id,
            direction="INGRESS",
            priority=1000,
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["22"])],
            source_ranges=list(settings.source_ranges),
            target_service_accounts=[args.worker_service_account],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            opts=child_opts(self, opts),
        )

    def _create_nat(
        self,
        name: str,
        args: NetworkArgs,
        settings: CloudNat,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        self.router = gcp.compute.Router(
            f"{name}-router",
            project=args.project,
            region=args.region,
            name=resource_name("compute", args.prefix, "router"),
            network=self.network.id,
            opts=child_opts(self, opts),
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            project=args.project,
            region=args.region,
            name=resource_name("compute", args.prefix, "nat"),
            router=self.router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(
                    name=self.subnetwork.id,
                    source_ip_ranges_to_nats=["ALL_IP_RANGES"],
                )
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter=settings.log_filter),
            opts=child_opts(self, opts),
        )
