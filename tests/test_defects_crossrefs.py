"""Issue 11, defects 3 and 4: what one stage names, another must create or allow.

3. The Argo workflow controller reads `keycloak-read-only-user-credentials`: 06 creates the
   read-only Keycloak user and that secret, and the secret-references check would name it
   if no stage did.
4. conda-store's OAuth callback ends in a slash: its Keycloak client allows exactly that,
   and the oauth-redirects check would name a mismatch.
"""

from __future__ import annotations

from typing import Any

from checkhelpers import ROOT, check, doc, edited, problem_lines, render_file

DEFAULT = ROOT / "nebari-config.yaml"
READER = "keycloak-read-only-user-credentials"


def test_keycloak_configuration_creates_the_read_only_user_and_its_secret() -> None:
    main = doc(render_file(DEFAULT), "06-kubernetes-keycloak-configuration")
    twins = main["resource"]["terraform_data"]
    user = twins["keycloak_user__read_only_user"]["input"]
    assert user["username"] == "read-only-user" and user["enabled"] is True
    roles = twins["keycloak_user_roles__read_only_user"]["input"]["role_ids"]
    assert len(roles) == 4
    secret = twins["kubernetes_secret__read_only_user"]["input"]
    assert secret["metadata"][0]["name"] == READER
    assert set(secret["data"]) == {"username", "password", "client_id", "realm"}
    # The password is generated and travels by reference: Terraform state only.
    assert secret["data"]["password"] == user["initial_password"][0]["value"]
    assert "random_password__read_only_user" in twins


def test_the_controller_reads_the_secret_06_creates() -> None:
    stages = render_file(DEFAULT)
    assert problem_lines(check(stages, only=["secret-references"])) == []
    controller = doc(stages, "07-kubernetes-services")["locals"]["workflow_controller_manifest"]
    env = controller["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e} == {READER}


def test_secret_references_check_names_a_secret_nobody_creates() -> None:
    def without_secret(data: dict[str, Any]) -> None:
        del data["resource"]["terraform_data"]["kubernetes_secret__read_only_user"]

    stages = edited(render_file(DEFAULT), "06-kubernetes-keycloak-configuration", without_secret)
    lines = problem_lines(check(stages, only=["secret-references"]))
    assert len(lines) == 2  # username and password
    assert lines[0] == (
        "07-kubernetes-services: secret-references: main.tf.json kubectl_manifest.workflow_controller: "
        "Deployment/nebari-workflow-controller: spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef: "
        f"reads Secret '{READER}', which no stage creates (the pod would wait in CreateContainerConfigError)"
    )


def _conda_client(data: dict[str, Any]) -> dict[str, Any]:
    client: dict[str, Any] = data["resource"]["terraform_data"]["keycloak_openid_client__conda_store"][
        "input"
    ]
    return client


def test_conda_store_client_allows_the_callback_conda_store_uses() -> None:
    stages = render_file(DEFAULT)
    allowed = _conda_client(doc(stages, "06-kubernetes-keycloak-configuration"))["valid_redirect_uris"]
    callback = doc(stages, "07-kubernetes-services")["locals"]["conda_store_settings"]["oauth"][
        "callback_url"
    ]
    assert [u.replace("${var.base_url}", "") for u in allowed] == [
        callback.replace("https://${var.domain}", "")
    ]
    assert callback.endswith("/conda-store/oauth_callback/")
    assert problem_lines(check(stages, only=["oauth-redirects"])) == []


def test_oauth_redirects_check_names_a_callback_that_differs_by_a_slash() -> None:
    def old(data: dict[str, Any]) -> None:
        _conda_client(data)["valid_redirect_uris"] = ["${var.base_url}/conda-store/oauth_callback"]

    stages = edited(render_file(DEFAULT), "06-kubernetes-keycloak-configuration", old)
    lines = problem_lines(check(stages, only=["oauth-redirects"]))
    assert len(lines) == 1
    assert lines[0].startswith(
        "07-kubernetes-services: oauth-redirects: main.tf.json: callback /conda-store/oauth_callback/ "
        "is not a redirect URI of any Keycloak client"
    )
