"""Peer benchmark arithmetic: medians over repeats, ratios to each peer, issue 7's targets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.peers_page import write_page
from bench.peers_report import (
    KSERVE,
    MLSERVER,
    NOOP,
    SLUICE,
    SLUICE_BATCH,
    Point,
    Row,
    Sample,
    Settings,
    checks,
    cpu_ratio,
    ratio_table,
    rows_table,
    summarize,
)


def sample(requests: int, p50: float = 1.0, cpu: float = 1.0, errors: int = 0) -> Sample:
    return Sample(
        requests=requests, seconds=2.0, p50_ms=p50, p99_ms=2 * p50, errors=errors,
        server_cpu_s=cpu, client_cpu_s=cpu / 10,
    )  # fmt: skip


def row(server: str, rps: float, cpu_ms: float, p50: float = 1.0, p99: float = 5.0,
        protocol: str = "grpc", c: int = 16) -> Row:  # fmt: skip
    return Row(Point("mlp", protocol, c, server), rps, p50, p99, cpu_ms, cpu_ms / 10, 0, 3)


def test_summarize_takes_each_figure_median_and_sums_errors() -> None:
    point = Point("mlp", "grpc", 16, SLUICE)
    samples = [sample(2000, p50=1.0, cpu=1.0), sample(4000, p50=9.0, cpu=1.0, errors=2),
               sample(3000, p50=2.0, cpu=3.0)]  # fmt: skip
    got = summarize(point, samples)
    assert got.rps == 1500.0  # 2000/2, 4000/2, 3000/2 -> median 1500
    assert got.p50_ms == 2.0
    assert got.p99_ms == 4.0
    assert got.server_cpu_ms == pytest.approx(0.5)  # 0.5, 0.25 and 1.0 ms per request
    assert got.errors == 2
    assert got.repeats == 3


def test_summarize_cpu_per_request_is_the_median_of_per_run_ratios() -> None:
    samples = [sample(1000, cpu=1.0), sample(1000, cpu=2.0), sample(1000, cpu=9.0)]
    got = summarize(Point("mlp", "grpc", 1, SLUICE), samples)
    assert got.server_cpu_ms == pytest.approx(2.0)
    assert got.client_headroom == pytest.approx(10.0)


def test_summarize_refuses_no_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarize(Point("mlp", "grpc", 1, SLUICE), [])


def _rows(*rows: Row) -> dict[Point, Row]:
    return {r.point: r for r in rows}


def test_checks_meet_targets_when_sluice_is_far_ahead() -> None:
    rows = _rows(
        row(SLUICE, 6000, 0.1, c=16), row(KSERVE, 1500, 0.6, c=16), row(MLSERVER, 800, 1.5, c=16),
        row(SLUICE, 6000, 0.1, c=64), row(KSERVE, 1500, 0.6, c=64, p99=40.0),
        row(MLSERVER, 800, 1.5, c=64), row(SLUICE_BATCH, 9000, 0.05, c=64, p99=10.0),
        row(SLUICE, 3000, 0.12, c=1, p50=0.40), row(NOOP, 5000, 0.05, c=1, p50=0.20),
        row(KSERVE, 900, 0.7, c=1),
    )  # fmt: skip
    found = {check.target: check for check in checks(rows, (1, 16, 64))}
    assert all(check.met for check in found.values()), found
    assert len(found) == 6
    cpu = next(c for t, c in found.items() if t.startswith("server CPU"))
    assert cpu.worst.startswith("0.17x")  # 0.12 / 0.7 is the worst of 0.1/0.6, 0.12/0.7


def test_checks_report_the_worst_point_and_fail_it() -> None:
    rows = _rows(
        row(SLUICE, 3000, 0.3, c=16), row(KSERVE, 1500, 0.6, c=16),
        row(SLUICE, 2000, 0.3, c=64, protocol="rest-json"),
        row(KSERVE, 1500, 0.6, c=64, protocol="rest-json"),
        row(SLUICE, 2000, 0.3, c=1, p50=1.2), row(NOOP, 9000, 0.05, c=1, p50=0.2),
    )  # fmt: skip
    found = {check.target: check for check in checks(rows, (1, 16, 64))}
    throughput = found["throughput c16/c64 ≥ 2x KServe"]
    assert not throughput.met
    assert throughput.worst == "1.33x (rest-json c64)"
    latency = found["c1 p50 within 0.5 ms of the do-nothing server"]
    assert not latency.met
    assert latency.worst == "+1.000 ms (grpc)"
    assert "throughput c16/c64 ≥ 3x MLServer" not in found  # no MLServer rows: no verdict


def test_ratio_table_marks_absent_peers() -> None:
    rows = _rows(row(SLUICE, 3000, 0.2, protocol="rest-binary"),
                 row(KSERVE, 1000, 0.6, protocol="rest-binary"))  # fmt: skip
    lines = ratio_table(rows, "mlp")
    assert lines[2] == "| rest-binary | 16 | 3.00x | - | 3.00x | - | - | - |"


def test_rows_table_has_one_line_per_point() -> None:
    rows = _rows(row(SLUICE, 3000, 0.2), row(KSERVE, 1000, 0.6), row(KSERVE, 900, 0.6, c=1))
    lines = rows_table(rows, "mlp")
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| grpc | 1 | kserve | 900 |")


def test_a_server_that_answered_nothing_gives_no_ratio() -> None:
    stalled = summarize(Point("mlp", "grpc", 64, KSERVE), [sample(0, cpu=0.3), sample(0, cpu=0.2)])
    assert stalled.rps == 0.0
    assert stalled.server_cpu_ms != stalled.server_cpu_ms  # NaN: no per-request cost to show
    rows = _rows(row(SLUICE, 3000, 0.2, c=64), stalled)
    assert ratio_table(rows, "mlp")[2] == "| grpc | 64 | - | - | - | - | - | - |"
    assert "stalled" in rows_table(rows, "mlp")[2]
    assert not [c for c in checks(rows, (64,)) if "KServe" in c.target and "CPU" in c.target]


def test_summarize_keeps_the_most_the_idle_servers_took_of_the_core() -> None:
    point = Point("mlp", "grpc", 1, SLUICE)
    quiet = sample(2000)
    busy = replace(quiet, others_cpu_s=0.05)  # 0.05 s of a 2 s window
    assert summarize(point, [quiet, busy, quiet]).others_cpu_share == pytest.approx(0.025)
    assert summarize(point, [quiet]).others_cpu_share == 0.0


def test_the_page_says_how_much_of_the_core_the_idle_servers_took(tmp_path: Path) -> None:
    rows = {r.point: r for r in (row(SLUICE, 4000, 0.2), row(KSERVE, 800, 1.2))}
    rows[Point("mlp", "grpc", 16, NOOP)] = replace(row(NOOP, 9000, 0.05), others_cpu_share=0.031)
    settings = Settings(seconds=2, warmup=1, repeats=3, concurrency=(16,), batch=64,
                        batch_delay_us=500)  # fmt: skip
    out = tmp_path / "peers.md"
    write_page(out, rows, {}, {"mlp": "MLP"}, settings, [], "0.5 0.5 0.5")
    assert "(their CPU meanwhile: at most 3.1% of the core at any point)" in out.read_text()


def test_cpu_ratios_pair_the_rounds_when_both_servers_ran_in_the_same_ones() -> None:
    # This session's gRPC c1 figures: the medians give 0.306 / 1.043 = 0.29x, but round by
    # round Sluice was at 0.27x, 0.34x and 0.39x of KServe: the paired median is 0.34x.
    def measured(server: str, rounds: tuple[float, ...]) -> Row:
        return replace(row(server, 1000, sorted(rounds)[1], c=1), cpu_rounds=rounds)

    sluice, kserve = (
        measured(SLUICE, (0.306, 0.288, 0.402)),
        measured(KSERVE, (1.116, 0.854, 1.043)),
    )
    assert cpu_ratio(sluice, kserve) == pytest.approx(0.288 / 0.854)
    found = {c.target: c for c in checks({r.point: r for r in (sluice, kserve)}, [1])}
    cpu = next(c for target, c in found.items() if target.startswith("server CPU"))
    assert not cpu.met
    assert cpu.worst == "0.34x (grpc c1)"
    # Rows from different rounds (or none recorded) fall back to the ratio of the medians.
    assert cpu_ratio(replace(sluice, cpu_rounds=()), kserve) == pytest.approx(0.306 / 1.043)
