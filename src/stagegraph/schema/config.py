"""The whole `nebari-config.yaml`: `NebariConfig`, the top-level model.

Unlike Nebari, which builds its schema at run time by multiple inheritance of every stage's
input model (so two stages declaring one key clash silently), the top level here is one
explicit model: each key is declared once, in the module of the concept it belongs to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from stagegraph.schema.base import (
    HostName,
    Section,
    field_problem,
    find_placeholder,
    pattern_check,
    pattern_schema,
)
from stagegraph.schema.bootstrap import CICD, TerraformState
from stagegraph.schema.cloud_names import derived_name_problem, derived_names
from stagegraph.schema.environments import CondaEnvironment, CondaStore, default_environments
from stagegraph.schema.extensions import HelmExtension, TerraformExtension, unique_names
from stagegraph.schema.ingress import Certificate, Dns, Ingress
from stagegraph.schema.jupyter import JHubApps, JupyterHub, JupyterLab, Telemetry, Theme
from stagegraph.schema.profiles import Profiles
from stagegraph.schema.providers import (
    AmazonWebServicesProvider,
    AzureProvider,
    ExistingProvider,
    GoogleCloudPlatformProvider,
    LocalProvider,
    SandboxProvider,
)
from stagegraph.schema.registry import ExternalContainerRegistry
from stagegraph.schema.security import Security
from stagegraph.schema.services import ArgoWorkflows, DefaultImages, Monitoring, RookCeph, Storage
from stagegraph.schema.tool import StagegraphSettings
from stagegraph.schema.user_secrets import UserSecrets

#: Validation context key: accept `<your ...>` placeholders (for `doit init`'s template only).
ALLOW_PLACEHOLDERS = "allow_placeholders"

Provider = Literal["sandbox", "local", "existing", "aws", "gcp", "azure"]
ProviderSection = (
    SandboxProvider
    | LocalProvider
    | ExistingProvider
    | AmazonWebServicesProvider
    | GoogleCloudPlatformProvider
    | AzureProvider
)

#: The top-level key holding each provider's settings.
PROVIDER_SECTIONS: dict[str, str] = {
    "sandbox": "sandbox",
    "local": "local",
    "existing": "existing",
    "aws": "amazon_web_services",
    "gcp": "google_cloud_platform",
    "azure": "azure",
}
#: Providers whose section may be left out (every field has a default).
_DEFAULTED_SECTIONS = ("sandbox", "local", "existing")

NEBARI_VERSION = "2025.10.1"

PROJECT_NAME_RE = r"^[A-Za-z][A-Za-z0-9\-_]{1,14}[A-Za-z0-9]$"
NAMESPACE_RE = r"^[A-Za-z][A-Za-z\-_]*[A-Za-z]$"
VERSION_RE = r"^\d{4}\.\d{1,2}\.\d+"

ProjectName = Annotated[
    str,
    pattern_check(
        PROJECT_NAME_RE,
        "should be 3 to 16 letters, digits, - or _, starting with a letter and ending with a letter or digit",
    ),
    pattern_schema(PROJECT_NAME_RE),
]
Namespace = Annotated[
    str,
    pattern_check(NAMESPACE_RE, "should be letters, - or _, starting and ending with a letter (e.g. dev)"),
    pattern_schema(NAMESPACE_RE),
]
NebariVersion = Annotated[
    str, pattern_check(VERSION_RE, "should be a Nebari release such as 2025.10.1"), pattern_schema(VERSION_RE)
]


class NebariConfig(Section):
    """A Nebari deployment: `nebari-config.yaml` as Nebari 2025.10.1 reads it, plus `stagegraph:`."""

    # -- Main ---------------------------------------------------------------------------
    provider: Provider = Field(
        "local",
        description="Where the cluster comes from: local (kind; Nebari's default), existing (your "
        "kubeconfig), aws, gcp, azure, or sandbox (offline stand-ins, a rehearsal). Cannot change "
        "after the first deploy.",
    )
    namespace: Namespace = Field("dev", description="Kubernetes namespace of the platform.")
    nebari_version: NebariVersion = Field(NEBARI_VERSION, description="Nebari release this config follows.")
    project_name: ProjectName = Field(
        description="Name of the deployment, used in resource names. Cannot change after the first deploy.",
    )
    domain: HostName | None = Field(
        None,
        description="Host name the platform answers on, e.g. jupyter.example.com (null: the load "
        "balancer address).",
    )
    prevent_deploy: bool = Field(
        False, description="Refuse to deploy (set by upgrades that need manual steps)."
    )
    # -- Bootstrap and state ------------------------------------------------------------
    ci_cd: CICD = Field(default_factory=dict, validate_default=True, description="CI/CD workflow generation.")
    terraform_state: TerraformState = Field(
        default_factory=dict, validate_default=True, description="Where Terraform state lives."
    )
    # -- Identity -----------------------------------------------------------------------
    security: Security = Field(
        default_factory=dict, validate_default=True, description="Authentication and Keycloak."
    )
    # -- Ingress ------------------------------------------------------------------------
    certificate: Certificate = Field(
        default_factory=dict,
        validate_default=True,
        description="TLS certificate: self-signed, lets-encrypt (acme_email, acme_server), existing "
        "(secret_name) or disabled.",
    )
    ingress: Ingress = Field(
        default_factory=dict, validate_default=True, description="Traefik ingress settings."
    )
    dns: Dns = Field(default_factory=dict, validate_default=True, description="Automatic DNS records.")
    # -- Cluster initialisation -----------------------------------------------------------
    external_container_reg: ExternalContainerRegistry = Field(
        default_factory=dict, validate_default=True, description="External AWS ECR registry for user images."
    )
    # -- Services -----------------------------------------------------------------------
    default_images: DefaultImages = Field(
        default_factory=dict, validate_default=True, description="Hub, lab and worker images."
    )
    storage: Storage = Field(default_factory=dict, validate_default=True, description="Persistent volumes.")
    theme: Theme = Field(default_factory=dict, validate_default=True, description="Look of the web pages.")
    profiles: Profiles = Field(
        default_factory=dict, validate_default=True, description="JupyterLab and Dask worker profiles."
    )
    environments: dict[str, CondaEnvironment] = Field(
        default_factory=default_environments,
        validate_default=True,
        description="Conda environments built at deploy, by file name.",
    )
    conda_store: CondaStore = Field(
        default_factory=dict, validate_default=True, description="The conda-store server."
    )
    argo_workflows: ArgoWorkflows = Field(
        default_factory=dict, validate_default=True, description="Argo Workflows."
    )
    monitoring: Monitoring = Field(
        default_factory=dict, validate_default=True, description="Monitoring and health checks."
    )
    telemetry: Telemetry = Field(
        default_factory=dict, validate_default=True, description="Usage telemetry inside the platform."
    )
    jupyterhub: JupyterHub = Field(
        default_factory=dict, validate_default=True, description="The JupyterHub server."
    )
    jupyterlab: JupyterLab = Field(
        default_factory=dict, validate_default=True, description="JupyterLab user servers."
    )
    jhub_apps: JHubApps = Field(default_factory=dict, validate_default=True, description="jhub-apps.")
    ceph: RookCeph = Field(
        default_factory=dict, validate_default=True, description="Rook Ceph (storage.type cephfs)."
    )
    # -- Extensions -----------------------------------------------------------------------
    helm_extensions: list[HelmExtension] = Field(default_factory=list, description="Extra Helm charts.")
    tf_extensions: list[TerraformExtension] = Field(
        default_factory=list, description="Extra web apps behind the login."
    )
    # -- Secrets for platform users ---------------------------------------------------------
    secrets: UserSecrets = Field(
        default_factory=list,
        description="SOPS-encrypted secrets mounted into the JupyterLab pods of the Keycloak groups "
        "named (as a file, an environment variable or an image pull secret).",
    )
    # -- Providers (only the one named by `provider` may be set) ------------------------------
    sandbox: SandboxProvider | None = Field(None, description="Settings of provider sandbox.")
    local: LocalProvider | None = Field(None, description="Settings of provider local (a kind cluster).")
    existing: ExistingProvider | None = Field(
        None, description="Settings of provider existing (your cluster)."
    )
    amazon_web_services: AmazonWebServicesProvider | None = Field(
        None, description="Settings of provider aws (EKS)."
    )
    google_cloud_platform: GoogleCloudPlatformProvider | None = Field(
        None, description="Settings of provider gcp (GKE)."
    )
    azure: AzureProvider | None = Field(None, description="Settings of provider azure (AKS).")
    # -- This tool ----------------------------------------------------------------------
    stagegraph: StagegraphSettings = Field(
        default_factory=dict, validate_default=True, description="Settings of stagegraph itself."
    )

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        # `doit init` validates its own template, placeholders and all (context flag).
        allowed = isinstance(info.context, dict) and info.context.get(ALLOW_PLACEHOLDERS)
        placeholder = None if allowed else find_placeholder(data)
        if placeholder is not None:
            # `doit init` writes `<your GitHub client id>` where only the user knows the value.
            raise field_problem(placeholder[0], "is a placeholder; put the real value here", placeholder[1])
        provider = data.get("provider")
        if provider is None and "provider" not in data:
            # As Nebari does: a config with one provider section means that provider.
            present = [name for name, key in PROVIDER_SECTIONS.items() if data.get(key) is not None]
            if len(present) == 1:
                provider = present[0]
                data = {**data, "provider": provider}
        if provider is None and "provider" not in data:
            # Nebari's schema default: a minimal Nebari config deploys a kind cluster, never
            # a rehearsal. The sandbox is chosen explicitly (this repository's config does).
            provider = "local"
        if provider in _DEFAULTED_SECTIONS and data.get(provider) is None:
            # Every field of these sections has a default; filling the section in lets stages
            # read `config.<provider>` without a None check.
            data = {**data, provider: {}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> NebariConfig:
        active = PROVIDER_SECTIONS[self.provider]
        if getattr(self, active) is None:
            raise field_problem(active, f"required when provider is {self.provider}")
        for key in PROVIDER_SECTIONS.values():
            if key != active and getattr(self, key) is not None:
                raise field_problem(
                    key,
                    f"set, but provider is {self.provider}; remove this section or change provider",
                    getattr(self, key),
                )
        if self.storage.type == "cephfs" and self.provider in ("local", "sandbox"):
            raise field_problem(
                "storage.type", f"cephfs is not supported with provider {self.provider}", "cephfs"
            )
        if self.storage.type == "efs" and self.provider != "aws":
            raise field_problem("storage.type", "efs is supported only with provider aws", "efs")
        unique_names(self.helm_extensions, self.tf_extensions)
        self._cloud_names()
        if self.certificate.type == "lets-encrypt" and not self.domain:
            # Nebari accepts this with the DNS challenge and fails at deploy; refused here at
            # once, because the ACME certificate is issued for the domain and Traefik routes by it.
            raise field_problem(
                "domain",
                "required when certificate.type is lets-encrypt (the certificate is issued for this "
                "domain); set domain, or use type self-signed until the domain exists",
                self.domain,
            )
        return self

    def _cloud_names(self) -> None:
        """Names the cloud derives from project_name and namespace, checked before it refuses them."""
        values = {"project_name": self.project_name, "namespace": self.namespace}
        if self.azure is not None:
            values["azure.storage_account_postfix"] = self.azure.storage_account_postfix
        aws = self.amazon_web_services
        own_roles: list[str] = []
        groups = sorted(aws.node_groups.items()) if aws is not None else []
        shared = aws.permissions_boundary if aws is not None else None
        for name, group in groups:
            if group.permissions_boundary and group.permissions_boundary != shared:
                # Such a group gets a node role of its own, named after it (stage 02 on AWS).
                values[f"amazon_web_services.node_groups.{name}"] = name
                own_roles.append(f"amazon_web_services.node_groups.{name}")
        derived = derived_names(
            self.provider,
            remote_state=self.terraform_state.type == "remote",
            own_resource_group=bool(self.azure and self.azure.resource_group_name),
            own_role_groups=tuple(own_roles),
        )
        found = derived_name_problem(derived, values)
        if found is not None:
            field, problem = found
            raise field_problem(field, problem, values[field])

    @property
    def offline(self) -> bool:
        """Nothing outside this machine is touched: the sandbox, or a rehearsal of any provider."""
        return self.provider == "sandbox" or self.stagegraph.rehearse

    @property
    def provider_section(self) -> ProviderSection:
        """The settings of the provider in use (never None after validation)."""
        section: ProviderSection | None = getattr(self, PROVIDER_SECTIONS[self.provider])
        assert section is not None  # guaranteed by _consistent
        return section
