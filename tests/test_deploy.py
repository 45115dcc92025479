"""The Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate, offline), and
against what the server and the container really do."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)", quantity).groups()
    return float(number) * units[unit]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(path):
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), kubernetes_validate.latest_version(), strict=True)


def test_the_schema_check_catches_a_misspelt_field():
    deployment = load("deployment.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"tcpSocket": {"port": 8000}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_probes_point_at_the_real_health_route_and_port():
    from sentitune.config import ServeConfig
    from sentitune.serving.app import create_app

    routes = set(create_app(ServeConfig(auth_enabled=False)).openapi()["paths"])
    container = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] in routes
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    served = yaml.safe_load(load("configmap.yaml")["data"]["deploy.yaml"])
    assert ports[container["readinessProbe"]["httpGet"]["port"]] == served["port"]


def test_the_config_map_is_a_valid_serve_config(tmp_path):
    from sentitune.config import ServeConfig, load_config

    path = tmp_path / "deploy.yaml"
    path.write_text(load("configmap.yaml")["data"]["deploy.yaml"])
    config = load_config(ServeConfig, path)
    assert config.host == "0.0.0.0" and config.auth_enabled


def test_api_keys_come_from_a_secret_reference_never_inlined():
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] != "Secret", f"{path.name} commits a Secret"
            assert "api_keys" not in yaml.safe_dump(doc), f"{path.name} names API keys inline"
    env = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["env"]
    [key] = [e for e in env if e["name"] == "API_KEY"]
    assert set(key) == {"name", "valueFrom"} and "secretKeyRef" in key["valueFrom"]


def test_memory_request_covers_the_measured_rss():
    """The request must hold the RSS the container check measured, with headroom under the limit."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    section = re.search(r"<!-- container:start -->(.*?)<!-- container:end -->", results, re.S)
    assert section, "run scripts/check_container.sh: benchmarks/RESULTS.md has no container section"
    rss = float(re.search(r"RSS after warm-up \(MiB\) \| ([\d,.]+)", section[1])[1].replace(",", ""))
    resources = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]["resources"]
    request, limit = memory_mib(resources["requests"]["memory"]), memory_mib(resources["limits"]["memory"])
    assert 1.2 * rss <= request <= 3 * rss, (rss, request)
    assert limit >= 1.5 * request
