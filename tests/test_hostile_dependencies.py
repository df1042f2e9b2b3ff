"""Hostile input for `why`'s dependency links: secret values that look like Service names, and
credentials beside the host a ConfigMap value names, planted in the real cluster, must neither make a
link nor reach the answer (through `python -m k8sbot ask --json`, this checkout's code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import apply, patch
from scenarios import deploy_checkout
from scenarios_layers import deploy_payments, scale_as

from bot.kube.client import KubeClient
from tests.why_helpers import ask_json

pytestmark = pytest.mark.hostile

PLANTED = "hunter2-zq81"


def test_secret_looking_values_never_link_nor_show(
    kube: KubeClient, namespace: str, cluster: Any, tmp_path: Path
) -> None:
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-db", "namespace": namespace},
            # Credentials in the URL are masked before its host is read; the key names the link.
            "data": {"DB_URL": f"postgres://app:{PLANTED}@payments:5432/shop", "API_TOKEN": "ledger"},
        },
    )
    deploy_checkout(kube, namespace)
    env = [
        {"name": "PAYMENT_API_URL", "value": "http://localhost:8080"},  # no link through this one
        {"name": "DB_PASSWORD", "value": "ledger"},  # a password that happens to be a Service name
    ]
    template = {"containers": [{"name": "app", "env": env, "envFrom": [{"configMapRef": {"name": "checkout-db"}}]}]}
    patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"spec": {"template": {"spec": template}}})
    scale_as(kube, deploy_payments(kube, namespace), 0)
    scale_as(kube, deploy_checkout(kube, namespace, name="ledger"), 0)
    data = ask_json(cluster.kubeconfig, f"why deploy/checkout -n {namespace}", tmp_path)
    text = json.dumps(data)
    dependencies = [c for c in data["causes"] if c["category"] == "dependency"]
    assert dependencies and "payments" in dependencies[0]["title"], data
    assert any("DB_URL" in e and "checkout-db" in e for e in dependencies[0]["evidence"]), dependencies
    assert "ledger" not in text, "a secret-looking value made a link"
    assert PLANTED not in text
