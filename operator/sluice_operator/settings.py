"""Operator-wide settings: what the chart configures, not what an InferenceService says."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sluice_operator import __version__

HTTP_PORT = 8080
GRPC_PORT = 8081
ROUTER_HEALTH_PORT = 8082
SERVICE_HTTP_PORT = 80
"""The `<isvc>` Service's HTTP port: the status URL has no port, so it is 80."""
SERVICE_GRPC_PORT = 8081


class Settings(BaseModel):
    """Defaults the builders fill in where a spec says nothing (images, domain, timings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime_image: str = Field(
        default=f"ghcr.io/sluice-dev/sluice-runtime:{__version__}",
        min_length=1,
        description="Runtime.",
    )
    router_image: str = Field(
        default="docker.io/nginxinc/nginx-unprivileged:1.29",
        min_length=1,
        description="Stock nginx.",
    )
    router_replicas: int = Field(
        default=2, ge=1, le=50, description="Router pods while a split is on."
    )
    cluster_domain: str = Field(default="cluster.local", min_length=1, description="For URLs.")
    drain_seconds: int = Field(
        default=25, ge=0, le=3600, description="How long a terminating runtime keeps answering."
    )
    resync_seconds: float = Field(
        default=300.0, gt=0, description="Reconcile every InferenceService at least this often."
    )
    run_as_user: int = Field(default=10001, ge=1, description="UID of the runtime containers.")
    router_run_as_user: int = Field(default=101, ge=1, description="UID of nginx-unprivileged.")
