"""The nginx config: split, stickiness, request ids, failure answers, keep-alive, validation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sluice_operator import router
from sluice_operator.builders.traffic import router_objects
from sluice_operator.naming import ANNOTATION_CONFIG_HASH, config_hash
from sluice_operator.traffic import Traffic

from tests.unit.operator.kit import SETTINGS, find, with_canary


def _upstreams(*weights: int) -> tuple[router.Upstream, ...]:
    return tuple(
        router.Upstream(f"rev-{i}", f"127.0.0.1:{9000 + 2 * i}", f"127.0.0.1:{9001 + 2 * i}", w)
        for i, w in enumerate(weights)
    )


def _render(*weights: int, **options: object) -> str:
    return router.render(router.RouterConfig(upstreams=_upstreams(*weights), **options))  # type: ignore[arg-type]


def _block(text: str, opener: str) -> str:
    start = text.index(opener)
    return text[start : text.index("}", start) + 1]


def test_weights_become_split_ranges_with_the_last_taking_the_rest() -> None:
    split = _block(_render(90, 10), "split_clients")
    assert split.splitlines()[1:] == ["        90% rev-0;", "        * rev-1;", "    }"]
    assert 'split_clients "$sluice_request_id"' in split


def test_zero_weight_revisions_are_left_out() -> None:
    text = _render(100, 0)
    assert "rev-1" not in text
    assert _block(text, "split_clients").splitlines()[1] == "        * rev-0;"


def test_sticky_header_keys_the_split_and_falls_back_to_the_request_id() -> None:
    text = _render(50, 50, sticky_header="X-User-Id")
    sticky = _block(text, "map $http_x_user_id $sluice_split_key")
    assert '"" $sluice_request_id;' in sticky
    assert "default $http_x_user_id;" in sticky
    assert 'split_clients "$sluice_split_key"' in text


def test_request_id_is_the_callers_or_generated_and_passed_both_ways() -> None:
    text = _render(100)
    request_id = _block(text, "map $http_x_request_id $sluice_request_id")
    assert '"" $request_id;' in request_id
    assert "default $http_x_request_id;" in request_id
    assert "proxy_set_header X-Request-ID $sluice_request_id;" in text
    assert "grpc_set_header X-Request-ID $sluice_request_id;" in text
    assert text.count("add_header X-Request-ID $sluice_request_id always;") >= 4


def test_each_revision_has_keepalive_upstreams_for_http_and_grpc() -> None:
    text = _render(70, 30, keepalive_connections=16)
    for name, address in (("rev-0_http", "127.0.0.1:9000"), ("rev-1_grpc", "127.0.0.1:9003")):
        block = _block(text, f"upstream {name} {{")
        assert f"server {address} max_fails=0;" in block
        assert "keepalive 16;" in block
    assert 'proxy_set_header Connection "";' in text
    assert "proxy_http_version 1.1;" in text


def test_grpc_listens_http2_and_answers_unavailable_as_grpc_status_14() -> None:
    text = _render(100, grpc_port=7001, listen_host="127.0.0.1")
    grpc = text[text.index("listen 127.0.0.1:7001 http2;") :]
    assert "grpc_pass grpc://${sluice_revision}_grpc;" in grpc
    assert "add_header grpc-status 14 always;" in grpc


def test_http_failures_answer_502_or_504_fast_and_never_retry() -> None:
    text = _render(100, connect_timeout_seconds=1)
    assert "proxy_connect_timeout 1s;" in text
    assert "proxy_next_upstream off;" in text
    assert "return 502" in text
    assert "return 504" in text


def test_runtime_dir_holds_pid_and_temp_files() -> None:
    text = _render(100, runtime_dir="/run/x")
    assert "pid /run/x/nginx.pid;" in text
    assert "client_body_temp_path /run/x/client_body;" in text


@pytest.mark.parametrize(
    ("upstreams", "sticky", "message"),
    [
        (_upstreams(50, 40), None, "sum to 100"),
        (_upstreams(0, 0), None, "at least one"),
        ((*_upstreams(100), router.Upstream("rev-0", "a:1", "a:2", 0)), None, "repeat"),
        ((router.Upstream("Bad_Name", "a:1", "a:2", 100),), None, "DNS label"),
        ((router.Upstream("ok", "no-port", "a:2", 100),), None, "bad address"),
        (_upstreams(100), "x user", "header"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(
    upstreams: tuple[router.Upstream, ...], sticky: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        router.render(router.RouterConfig(upstreams=upstreams, sticky_header=sticky))


def test_router_objects_roll_on_config_change_and_record_the_traffic() -> None:
    resource = with_canary("2", 10)
    first = Traffic(weights=(("a-x", 90), ("b-x", 10)), via_router=True)
    second = Traffic(weights=(("a-x", 50), ("b-x", 50)), via_router=True)
    one = router_objects(resource, first, SETTINGS)
    two = router_objects(resource, second, SETTINGS)
    config_one = find(one, "ConfigMap")["data"]["nginx.conf"]
    template = find(one, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"][ANNOTATION_CONFIG_HASH] == config_hash(config_one)
    assert (
        find(two, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        != template["metadata"]["annotations"]
    )
    stored = find(one, "ConfigMap")["metadata"]["annotations"]["sluice.dev/traffic"]
    assert Traffic.from_json(stored) == first
    assert "a-x.risk.svc.cluster.local:8080" in config_one


def test_router_pods_are_unprivileged_with_a_graceful_stop() -> None:
    deployment = find(router_objects(with_canary("2", 10), _traffic(), SETTINGS), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (nginx,) = pod["containers"]
    assert nginx["image"] == SETTINGS.router_image
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert nginx["securityContext"]["readOnlyRootFilesystem"] is True
    assert nginx["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert {m["mountPath"] for m in nginx["volumeMounts"]} == {"/etc/sluice-router", "/tmp"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _traffic() -> Traffic:
    return Traffic(weights=(("a-x", 100),), via_router=True)


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    assert found, "nginx is missing: run `make system-deps` (hack/deps.d/30-nginx.sh)"
    return found


@pytest.mark.parametrize("sticky", [None, "x-user-id"])
def test_real_nginx_accepts_the_rendered_config(tmp_path: Path, sticky: str | None) -> None:
    config = router.RouterConfig(
        upstreams=_upstreams(90, 10),
        sticky_header=sticky,
        listen_host="127.0.0.1",
        runtime_dir=str(tmp_path),
        access_log=None,
    )
    path = tmp_path / "nginx.conf"
    path.write_text(router.render(config))
    checked = subprocess.run(
        [_nginx(), "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
