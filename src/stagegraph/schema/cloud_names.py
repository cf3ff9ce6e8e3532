"""The naming rules of the cloud resources a config names, in one place, checked offline.

A cloud refuses a bad name only when the stage applies, minutes into a deploy (Nebari
passes `<project>-<namespace>` and node group names through unchecked). Each rule here is
the cloud's own documented limit; the schema validators use them for the names a user
writes (node groups) and for the names derived from project_name and namespace, and the
stage renderers derive those names with the same functions, so what is checked is what
is rendered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """One cloud's limit on one kind of name: a pattern, a length range and how to say it."""

    what: str
    pattern: str
    min_len: int
    max_len: int
    says: str

    def problem(self, name: str) -> str | None:
        """Why `name` breaks the rule (a sentence naming the limit), or None."""
        if not self.min_len <= len(name) <= self.max_len:
            return f"{self.what} {name!r} has {len(name)} characters; {self.says}"
        if _compiled(self.pattern).match(name) is None:
            return f"{self.what} {name!r} is not allowed; {self.says}"
        return None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# -- names a user writes: node groups ----------------------------------------------------
#: AKS Linux pools (the only kind stagegraph creates); Windows pools would allow 1-6.
AKS_POOL = NameRule(
    "the AKS node pool name",
    r"^[a-z][a-z0-9]*$",
    1,
    12,
    "AKS Linux node pool names are 1-12 lowercase letters and digits starting with a letter; rename the group",
)
GKE_POOL = NameRule(
    "the GKE node pool name",
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
    1,
    40,
    "GKE node pool names are 1-40 lowercase letters, digits or hyphens, starting with a letter and "
    "ending with a letter or digit; rename the group",
)
#: EKS allows a leading digit and a trailing `_`; stagegraph names a Terraform resource and the
#: `dedicated` node label after the group, which allow neither.
EKS_GROUP = NameRule(
    "the EKS node group name",
    r"^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?$",
    1,
    63,
    "EKS node group names here are 1-63 letters, digits, - or _, starting with a letter and ending "
    "with a letter or digit; rename the group",
)

# -- names derived from project_name and namespace ---------------------------------------
ACR = NameRule(
    "the Azure container registry name",
    r"^[A-Za-z0-9]+$",
    5,
    50,
    "ACR names are 5-50 letters and digits, unique across Azure",
)
STORAGE_ACCOUNT = NameRule(
    "the Azure state storage account name",
    r"^[a-z0-9]+$",
    3,
    24,
    "storage account names are 3-24 lowercase letters and digits, unique across Azure",
)
RESOURCE_GROUP = NameRule(
    "the Azure resource group name",
    r"^[\w\-.()]*[\w\-()]$",
    1,
    90,
    "resource group names are 1-90 letters, digits, _ - . ( ), not ending with a period",
)
AKS_CLUSTER = NameRule(
    "the AKS cluster name",
    r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$",
    1,
    63,
    "AKS cluster names are 1-63 letters, digits, - or _, starting and ending with a letter or digit",
)
GKE_CLUSTER = NameRule(
    "the GKE cluster name",
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
    1,
    40,
    "GKE cluster names are 1-40 lowercase letters, digits or hyphens, starting with a letter",
)
ARTIFACT_REPOSITORY = NameRule(
    "the Artifact Registry repository id",
    r"^[a-z]([a-z0-9-]*[a-z0-9])?$",
    1,
    63,
    "repository ids are 1-63 lowercase letters, digits or hyphens, starting with a letter",
)
GCS_BUCKET = NameRule(
    "the GCS state bucket name",
    r"^[a-z0-9][a-z0-9_.-]*[a-z0-9]$",
    3,
    63,
    "bucket names are 3-63 lowercase letters, digits, - _ or .",
)
S3_BUCKET = NameRule(
    "the S3 state bucket name",
    r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
    3,
    63,
    "S3 bucket names are 3-63 lowercase letters, digits, - or .",
)
ECR_REPOSITORY = NameRule(
    "the ECR repository name",
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$",
    2,
    256,
    "ECR repository names are lowercase letters and digits separated by single - _ or .",
)
IAM_ROLE = NameRule(
    "the IAM role name",
    r"^[\w+=,.@-]+$",
    1,
    64,
    "IAM role names are 1-64 characters",
)

#: Suffixes stagegraph (as Nebari) appends to the cluster name `<project>-<namespace>`.
ECR_SUFFIX = "-jupyterlab"
STATE_BUCKET_SUFFIX = "-terraform-state"
#: Azure appends this to a resource group name for the node resource group (max 90 chars).
AZURE_NODE_GROUP_SUFFIX = "-node-resource-group"
#: IAM roles of stage 02 on AWS: the cluster's, the shared node role, and the node role of
#: a group with a permissions boundary of its own (`<cluster>-<group>-node-role`).
CLUSTER_ROLE_SUFFIX = "-eks-cluster-role"
NODE_ROLE_SUFFIX = "-eks-node-group-role"


def group_node_role(cluster: str, group: str) -> str:
    """The node role of a node group that carries its own permissions boundary."""
    return f"{cluster}-{group}-node-role"


def nebari_escape(text: str) -> str:
    """`text` with every character but letters and digits escaped as Nebari escapes names.

    Nebari (`escape_string(..., escape_char="a")`) writes each byte of such a character as
    `a<HEX>`, and `a` itself as `a61` so the result stays unambiguous. Alphanumeric text is
    left as it is, so the names of Nebari deployments that worked are kept.
    """
    if text.isascii() and text.isalnum():
        return text
    out = []
    for char in text:
        if char != "a" and char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.extend(f"a{byte:X}" for byte in char.encode())
    return "".join(out)


def acr_name(project_name: str, namespace: str) -> str:
    """Nebari's ACR name: the escaped project name and the namespace, run together.

    Nebari escapes the project name only when it holds a hyphen and never the namespace, so
    a `_` in either made an ACR name Azure refused; both are escaped here when needed, which
    gives Nebari's name wherever Nebari's was valid.
    """
    return nebari_escape(project_name) + nebari_escape(namespace)


def storage_account_name(project_name: str, namespace: str, postfix: str) -> str:
    """Nebari's state storage account (`<project><namespace><postfix>`, hyphens dropped), lowercased."""
    return re.sub(r"[^a-z0-9]", "", f"{project_name}{namespace}{postfix}".lower())


@dataclass(frozen=True)
class Derived:
    """A name built from config fields, and the rule the cloud holds it to."""

    rule: NameRule
    build: Callable[[dict[str, str]], str]
    fields: tuple[str, ...]


def _cluster(v: dict[str, str]) -> str:
    return f"{v['project_name']}-{v['namespace']}"


def _group_role(field: str) -> Callable[[dict[str, str]], str]:
    return lambda v: group_node_role(_cluster(v), v[field])


def derived_names(
    provider: str, *, remote_state: bool, own_resource_group: bool, own_role_groups: tuple[str, ...] = ()
) -> list[Derived]:
    """The names a `provider` deployment derives from project_name and namespace, as rendered.

    own_role_groups: the fields (`amazon_web_services.node_groups.<name>`, valued with the
    group's name) of AWS node groups that get a node role of their own.
    """
    both = ("project_name", "namespace")
    out: list[Derived] = []
    if provider == "aws":
        out = [
            Derived(ECR_REPOSITORY, lambda v: _cluster(v) + ECR_SUFFIX, both),
            Derived(IAM_ROLE, lambda v: _cluster(v) + NODE_ROLE_SUFFIX, both),
        ]
        out += [Derived(IAM_ROLE, _group_role(group), (*both, group)) for group in own_role_groups]
        if remote_state:
            out.append(Derived(S3_BUCKET, lambda v: _cluster(v) + STATE_BUCKET_SUFFIX, both))
    elif provider == "gcp":
        out = [Derived(GKE_CLUSTER, _cluster, both), Derived(ARTIFACT_REPOSITORY, _cluster, both)]
        if remote_state:
            out.append(Derived(GCS_BUCKET, lambda v: _cluster(v) + STATE_BUCKET_SUFFIX, both))
    elif provider == "azure":
        out = [
            Derived(AKS_CLUSTER, _cluster, both),
            Derived(ACR, lambda v: acr_name(v["project_name"], v["namespace"]), both),
        ]
        if not own_resource_group:
            # `<project>-<namespace>` plus the longest suffix Azure or the state stage adds.
            out.append(Derived(RESOURCE_GROUP, lambda v: _cluster(v) + AZURE_NODE_GROUP_SUFFIX, both))
        if remote_state:
            out.append(
                Derived(
                    STORAGE_ACCOUNT,
                    lambda v: storage_account_name(
                        v["project_name"], v["namespace"], v["azure.storage_account_postfix"]
                    ),
                    (*both, "azure.storage_account_postfix"),
                )
            )
    return out


def derived_name_problem(derived: list[Derived], values: dict[str, str]) -> tuple[str, str] | None:
    """The first derived name a cloud would refuse: (the field to change, a one-line why and what to do)."""
    for item in derived:
        problem = item.rule.problem(item.build(values))
        if problem is not None:
            return _blame(item, values, problem)
    return None


def _blame(item: Derived, values: dict[str, str], problem: str) -> tuple[str, str]:
    """The field whose value makes the name bad: the one that, made plain, makes it good.

    A field is "made plain" by replacing it with as many `x`s (same length, allowed
    everywhere); when no single field fixes the name, the fault is the length, and the
    longest field is the one to shorten.
    """
    for field in item.fields:
        plain = {**values, field: "x" * len(values[field])}
        if item.rule.problem(item.build(plain)) is None:
            return field, f"{problem}; change {field}"
    field = max(item.fields, key=lambda f: len(values[f]))
    return field, f"{problem}; shorten {field} (the name joins {', '.join(item.fields)})"
