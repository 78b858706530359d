"""Cloud KMS key ring, one key per service, and each service agent's access to exactly its key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.components.conventions import child_opts, component_type, iam_member, resource_name

ROTATION_PERIOD = "7776000s"
"""90 days, the longest rotation period the policy pack accepts (``maxRotationDays``)."""

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"

KEY_USERS: Mapping[str, tuple[str, ...]] = {
    "pubsub": ("pubsub",),
    "bigquery": ("bigquery",),
    "bigtable": ("bigtable",),
    "storage": ("storage", "artifactregistry"),
    "dataflow": ("dataflow", "compute", "storage"),
}
"""Service agents that use each key.

The storage key also encrypts the Docker repository, so that ``Storage`` takes one
key like every other component. The Dataflow key is used by Dataflow's agent and by
the Compute Engine agent for worker disks. The Cloud Storage agent needs it as well,
because ``StreamingJob`` encrypts the template spec object with the job's key."""


@dataclass(frozen=True)
class EncryptionArgs:
    """Inputs of ``Encryption``."""

    project: str
    region: str
    """Location of the key ring; BigQuery, Bigtable and Artifact Registry need keys in
    the same region as the data."""

    prefix: str
    service_agents: Mapping[str, pulumi.Input[str]]
    """Service agent emails by agent name (``ProjectServices.agents``); every agent that
    ``KEY_USERS`` lists for ``keys`` must be present."""

    keys: Sequence[str] = tuple(KEY_USERS)
    """Purposes to create keys for; each must be a key of ``KEY_USERS``."""

    labels: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    """Pulumi ``protect`` and ``deletion_policy = "PREVENT"`` on the key ring and keys.

    Cloud KMS never deletes a key ring or key. Destroying a key schedules its versions
    for destruction, and after that the data encrypted with it is unreadable."""

    rotation_period: str = ROTATION_PERIOD

    def __post_init__(self) -> None:
        unknown = sorted(set(self.keys) - set(KEY_USERS))
        if unknown:
            msg = f"unknown key purposes {unknown}; expected a subset of {sorted(KEY_USERS)}"
            raise ValueError(msg)
        missing = sorted(set(key_agents(self.keys)) - set(self.service_agents))
        if missing:
            msg = (
                f"service_agents lacks {missing}; create them with "
                "ProjectServicesArgs(service_agents=key_agents(keys))"
            )
            raise ValueError(msg)


def key_agents(purposes: Sequence[str]) -> tuple[str, ...]:
    """List the service agents that need access to the keys of ``purposes``, sorted."""
    return tuple(sorted({agent for purpose in purposes for agent in KEY_USERS[purpose]}))


class Encryption(pulumi.ComponentResource):
    """Customer-managed encryption keys for the stack's data services."""

    key_ring: gcp.kms.KeyRing
    keys: dict[str, gcp.kms.CryptoKey]
    key_ids: dict[str, pulumi.Output[str]]
    """Key resource names by purpose, as services take them in ``kms_key_name``."""
    grants: list[gcp.kms.CryptoKeyIAMMember]

    def __init__(
        self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("security", "Encryption"), name, None, opts)

        self.key_ring = gcp.kms.KeyRing(
            f"{name}-keyring",
            project=args.project,
            location=args.region,
            name=resource_name("kms", args.prefix, "keyring"),
            opts=child_opts(self, opts, protect=args.protect),
        )

        self.keys = {}
        for purpose in args.keys:
            self.keys[purpose] = gcp.kms.CryptoKey(
                f"{name}-{purpose}",
                name=resource_name("kms", args.prefix, purpose),
                key_ring=self.key_ring.id,
                purpose="ENCRYPT_DECRYPT",
                rotation_period=args.rotation_period,
                labels=dict(args.labels),
                deletion_policy="PREVENT" if args.protect else "DELETE",
                opts=child_opts(self, opts, protect=args.protect),
            )
        self.key_ids = {purpose: key.id for purpose, key in self.keys.items()}

        self.grants = []
        for purpose in args.keys:
            for agent in KEY_USERS[purpose]:
                self.grants.append(
                    gcp.kms.CryptoKeyIAMMember(
                        f"{name}-{purpose}-{agent}",
                        crypto_key_id=self.keys[purpose].id,
                        role=ENCRYPTER_DECRYPTER,
                        member=iam_member("serviceAccount", args.service_agents[agent]),
                        opts=child_opts(self, opts),
                    )
                )

        self.register_outputs({"key_ring": self.key_ring.id, "keys": self.key_ids})
