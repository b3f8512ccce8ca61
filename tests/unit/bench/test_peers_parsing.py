"""Peer benchmark plumbing: /proc CPU accounting, wrk and grpcload reports, client argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.peers_env import Tools
from bench.peers_load import grpc_argv, parse_grpcload, parse_wrk, wrk_argv
from bench.peers_servers import parse_stat, tree_ticks

TOOLS = Tools(wrk=Path("/usr/bin/wrk"), grpcload=Path("/cache/grpcload"))


def test_parse_stat_counts_fields_after_a_command_name_with_spaces_and_parens() -> None:
    line = "4242 (python (worker) 1) S 17 4242 4242 0 -1 4194560 " + "0 " * 4 + "250 35 0 0 20 0 9"
    assert parse_stat(line) == (4242, 17, 285)


def test_parse_stat_reads_this_process() -> None:
    pid, ppid, ticks = parse_stat(Path("/proc/self/stat").read_text())
    assert (pid, ppid) == (os.getpid(), os.getppid())
    assert ticks >= 0


def test_tree_ticks_sums_descendants_only() -> None:
    stats = {
        10: (1, 100),  # root
        11: (10, 20),  # child
        12: (11, 3),  # grandchild
        13: (1, 999),  # unrelated
        14: (13, 999),  # child of the unrelated one
    }
    assert tree_ticks(10, stats) == 123
    assert tree_ticks(11, stats) == 23
    assert tree_ticks(99, stats) == 0


def test_parse_wrk_reads_the_script_line_and_drops_status_errors() -> None:
    stdout = (
        "Running 2s test @ http://127.0.0.1:1/v2/models/mlp/infer\n"
        '{"requests": 10000, "duration_us": 2000000, "p50_us": 1500, "p99_us": 4200, '
        '"mean_us": 1600.0, "connect_errors": 0, "read_errors": 1, "write_errors": 0, '
        '"status_errors": 4, "timeouts": 2}\n'
    )
    got = parse_wrk(stdout, client_cpu_s=0.25)
    assert got.requests == 9996
    assert got.rps == pytest.approx(4998.0)
    assert (got.p50_ms, got.p99_ms) == (1.5, 4.2)
    assert got.errors == 7
    assert got.client_cpu_s == 0.25


def test_parse_grpcload_reads_its_json_line() -> None:
    stdout = (
        '{"requests":4000,"errors":3,"codes":{"ResourceExhausted":3},"seconds":2.0,'
        '"p50_us":750,"p99_us":2100,"mean_us":800.5}\n'
    )
    got = parse_grpcload(stdout, client_cpu_s=0.5)
    assert got.requests == 4000
    assert got.rps == pytest.approx(2000.0)
    assert (got.p50_ms, got.p99_ms) == (0.75, 2.1)
    assert got.errors == 3
    assert got.client_cpu_s == 0.5


def test_wrk_argv_adds_the_header_length_only_for_binary_bodies() -> None:
    url = "http://127.0.0.1:8/v2/models/m/infer"
    plain = wrk_argv(TOOLS, url, 16, 2, Path("b.json"), None)
    binary = wrk_argv(TOOLS, url, 16, 2, Path("b.bin"), 154)
    assert plain[:4] == ["/usr/bin/wrk", "-t1", "-c16", "-d2s"]
    assert plain[-3:] == ["--", "b.json", "application/json"]
    assert binary[-4:] == ["--", "b.bin", "application/octet-stream", "154"]


def test_grpc_argv_replays_the_body_over_one_connection() -> None:
    argv = grpc_argv(TOOLS, "127.0.0.1:9", 64, 2, Path("r.grpc"))
    assert argv[0] == "/cache/grpcload"

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert (flag("-addr"), flag("-body"), flag("-c")) == ("127.0.0.1:9", "r.grpc", "64")
    assert (flag("-connections"), flag("-procs"), flag("-duration")) == ("1", "1", "2s")
    assert flag("-method") == "/inference.GRPCInferenceService/ModelInfer"
