"""The router's nginx configuration, rendered from upstream addresses and weights.

The builder takes `host:port` addresses as input so the exact text a cluster runs can be
rendered for 127.0.0.1 ports and run under a real nginx in the tests.

How requests are split: `split_clients` hashes a key into the weight ranges. The key is the
sticky header's value when one is configured and present (the same caller always lands on the
same revision, callers spread by weight, and raising a weight moves only the callers in the
added slice), otherwise the request id, which is random per request. The request id is the
caller's `X-Request-ID` when sent, else one nginx generates; it is passed upstream and returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sluice_operator.settings import GRPC_PORT, HTTP_PORT, ROUTER_HEALTH_PORT

_UPSTREAM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HEADER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


@dataclass(frozen=True)
class Upstream:
    """One revision behind the router: its name, its HTTP and gRPC addresses, its share."""

    revision: str
    http: str
    grpc: str
    weight: int


@dataclass(frozen=True)
class RouterConfig:
    """Everything the nginx config depends on; `runtime_dir` holds the pid and temp files."""

    upstreams: tuple[Upstream, ...]
    sticky_header: str | None = None
    listen_host: str | None = None
    http_port: int = HTTP_PORT
    grpc_port: int = GRPC_PORT
    health_port: int = ROUTER_HEALTH_PORT
    runtime_dir: str = "/tmp"
    worker_processes: str = "auto"
    connect_timeout_seconds: int = 2
    read_timeout_seconds: int = 120
    max_body_bytes: int = 64 * 1024 * 1024
    keepalive_connections: int = 64
    access_log: str | None = "/dev/stdout"


def validate(config: RouterConfig) -> None:
    """Refuse inputs that would render a config nginx rejects or that routes wrongly."""
    live = [u for u in config.upstreams if u.weight > 0]
    if not live:
        raise ValueError("router upstreams: at least one needs a weight above 0")
    if sum(u.weight for u in config.upstreams) != 100:
        raise ValueError("router upstreams: weights must sum to 100")
    names = [u.revision for u in config.upstreams]
    if len(set(names)) != len(names):
        raise ValueError(f"router upstreams: revision names repeat: {names}")
    for upstream in config.upstreams:
        if not _UPSTREAM_NAME.match(upstream.revision):
            raise ValueError(f"router upstream revision {upstream.revision!r}: not a DNS label")
        for address in (upstream.http, upstream.grpc):
            if not _ADDRESS.match(address):
                raise ValueError(f"router upstream {upstream.revision}: bad address {address!r}")
        if not 0 <= upstream.weight <= 100:
            raise ValueError(f"router upstream {upstream.revision}: weight must be 0..100")
    if config.sticky_header is not None and not _HEADER.match(config.sticky_header):
        raise ValueError(f"router sticky header {config.sticky_header!r}: not a header name")


def render(config: RouterConfig) -> str:
    """The full nginx.conf: main context, one http block, three servers."""
    validate(config)
    live = [u for u in config.upstreams if u.weight > 0]
    return "\n".join(
        [
            *_main(config),
            "http {",
            *_indent(_http_common(config)),
            *_indent(_split(config, live)),
            *_indent(line for u in live for line in _upstream_blocks(u, config)),
            *_indent(_http_server(config)),
            *_indent(_grpc_server(config)),
            *_indent(_health_server(config)),
            "}",
            "",
        ]
    )


def _indent(lines: Iterable[str]) -> list[str]:
    return [f"    {line}" if line else "" for line in lines]


def _listen(config: RouterConfig, port: int, extra: str = "") -> str:
    address = f"{config.listen_host}:{port}" if config.listen_host else str(port)
    return f"listen {address}{extra};"


def _main(config: RouterConfig) -> list[str]:
    run = config.runtime_dir
    return [
        "# Rendered by sluice-operator; edits are overwritten.",
        "daemon off;",
        f"worker_processes {config.worker_processes};",
        f"pid {run}/nginx.pid;",
        "error_log stderr notice;",
        "events {",
        "    worker_connections 4096;",
        "}",
    ]


def _http_common(config: RouterConfig) -> list[str]:
    run = config.runtime_dir
    return [
        f"client_body_temp_path {run}/client_body;",
        f"proxy_temp_path {run}/proxy;",
        f"fastcgi_temp_path {run}/fastcgi;",
        f"uwsgi_temp_path {run}/uwsgi;",
        f"scgi_temp_path {run}/scgi;",
        "server_tokens off;",
        *_access_log(config),
        f"client_max_body_size {config.max_body_bytes};",
        "client_body_buffer_size 1m;",
        "keepalive_timeout 75s;",
        "keepalive_requests 10000;",
        "map $http_x_request_id $sluice_request_id {",
        '    "" $request_id;',
        "    default $http_x_request_id;",
        "}",
        "",
    ]


def _access_log(config: RouterConfig) -> list[str]:
    if config.access_log is None:
        return ["access_log off;"]
    return [
        'log_format sluice escape=json \'{"time":"$time_iso8601","request_id":'
        '"$sluice_request_id","revision":"$sluice_revision","method":'
        '"$request_method","uri":"$request_uri","status":$status,'
        '"upstream_status":"$upstream_status","duration":$request_time}\';',
        f"access_log {config.access_log} sluice;",
    ]


def _split(config: RouterConfig, live: list[Upstream]) -> list[str]:
    key = "$sluice_request_id"
    lines: list[str] = []
    if config.sticky_header is not None:
        header = "$http_" + config.sticky_header.lower().replace("-", "_")
        lines += [
            f"map {header} $sluice_split_key {{",
            '    "" $sluice_request_id;',
            f"    default {header};",
            "}",
        ]
        key = "$sluice_split_key"
    lines.append(f'split_clients "{key}" $sluice_revision {{')
    for upstream in live[:-1]:
        lines.append(f"    {upstream.weight}% {upstream.revision};")
    lines.append(f"    * {live[-1].revision};")
    lines += ["}", ""]
    return lines


def _upstream_blocks(upstream: Upstream, config: RouterConfig) -> list[str]:
    lines: list[str] = []
    for protocol, address in (("http", upstream.http), ("grpc", upstream.grpc)):
        lines += [
            f"upstream {upstream.revision}_{protocol} {{",
            f"    server {address} max_fails=0;",
            f"    keepalive {config.keepalive_connections};",
            "    keepalive_timeout 60s;",
            "}",
        ]
    lines.append("")
    return lines


def _http_server(config: RouterConfig) -> list[str]:
    connect = config.connect_timeout_seconds
    read = config.read_timeout_seconds
    return [
        "server {",
        f"    {_listen(config, config.http_port)}",
        "    location / {",
        "        proxy_pass http://${sluice_revision}_http;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Request-ID $sluice_request_id;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        f"        proxy_connect_timeout {connect}s;",
        f"        proxy_send_timeout {read}s;",
        f"        proxy_read_timeout {read}s;",
        "        proxy_next_upstream off;",
        "        proxy_request_buffering off;",
        "        proxy_hide_header X-Request-ID;",
        "        add_header X-Request-ID $sluice_request_id always;",
        "        add_header X-Sluice-Revision $sluice_revision always;",
        "        error_page 502 503 = @unavailable;",
        "        error_page 504 = @timeout;",
        "    }",
        "    location @unavailable {",
        "        default_type application/json;",
        "        add_header X-Request-ID $sluice_request_id always;",
        "        add_header X-Sluice-Revision $sluice_revision always;",
        '        return 502 \'{"error":"revision $sluice_revision is unavailable",'
        '"request_id":"$sluice_request_id"}\';',
        "    }",
        "    location @timeout {",
        "        default_type application/json;",
        "        add_header X-Request-ID $sluice_request_id always;",
        "        add_header X-Sluice-Revision $sluice_revision always;",
        '        return 504 \'{"error":"revision $sluice_revision did not answer in time",'
        '"request_id":"$sluice_request_id"}\';',
        "    }",
        "}",
        "",
    ]


def _grpc_server(config: RouterConfig) -> list[str]:
    connect = config.connect_timeout_seconds
    read = config.read_timeout_seconds
    return [
        "server {",
        f"    {_listen(config, config.grpc_port, ' http2')}",
        "    location / {",
        "        grpc_pass grpc://${sluice_revision}_grpc;",
        "        grpc_set_header X-Request-ID $sluice_request_id;",
        f"        grpc_connect_timeout {connect}s;",
        f"        grpc_send_timeout {read}s;",
        f"        grpc_read_timeout {read}s;",
        "        grpc_next_upstream off;",
        "        grpc_hide_header X-Request-ID;",
        "        add_header X-Request-ID $sluice_request_id always;",
        "        add_header X-Sluice-Revision $sluice_revision always;",
        "        error_page 502 503 504 = @unavailable;",
        "    }",
        "    location @unavailable {",
        "        default_type application/grpc;",
        "        add_header grpc-status 14 always;",
        '        add_header grpc-message "revision $sluice_revision is unavailable" always;',
        "        add_header X-Request-ID $sluice_request_id always;",
        "        add_header X-Sluice-Revision $sluice_revision always;",
        "        return 204;",
        "    }",
        "}",
        "",
    ]


def _health_server(config: RouterConfig) -> list[str]:
    return [
        "server {",
        f"    {_listen(config, config.health_port)}",
        "    location = /healthz {",
        "        default_type text/plain;",
        "        return 200 'ok';",
        "    }",
        "}",
    ]
