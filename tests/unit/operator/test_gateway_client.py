"""The gateway's API client keeps a connection per reconcile thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sluice_operator import gateway, handlers


def test_the_client_pool_has_a_connection_for_every_reconcile_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # The kubernetes client reads KUBECONFIG once, at import; point its default there instead.
    monkeypatch.setattr(
        "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )
    api = gateway.load_api_client()
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.configuration.connection_pool_maxsize == gateway.CONNECTIONS
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == gateway.CONNECTIONS
    assert gateway.CONNECTIONS >= handlers.RECONCILE_THREADS > 6  # beyond asyncio's default pool
