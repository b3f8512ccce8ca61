"""`sluice-operator` arguments, kopf settings, and the wake-up bookkeeping of the handlers."""

from __future__ import annotations

import asyncio

import pytest
from sluice_operator import cli
from sluice_operator.handlers import Wakeups


def test_a_scope_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parse_args([])
    assert "--namespace" in capsys.readouterr().err


def test_namespaces_repeat_and_exclude_all_namespaces() -> None:
    args = cli.parse_args(["--namespace", "a", "--namespace", "b"])
    assert args.namespaces == ["a", "b"]
    assert not args.all_namespaces
    with pytest.raises(SystemExit):
        cli.parse_args(["--namespace", "a", "--all-namespaces"])


def test_settings_from_flags() -> None:
    args = cli.parse_args(
        [
            "--all-namespaces",
            "--runtime-image",
            "r:1",
            "--router-image",
            "n:1",
            "--drain-seconds",
            "5",
        ]
    )
    settings = cli.settings_from(args)
    assert (settings.runtime_image, settings.router_image, settings.drain_seconds) == (
        "r:1",
        "n:1",
        5,
    )


def test_standalone_by_default() -> None:
    settings = cli.kopf_settings(cli.parse_args(["--all-namespaces"]))
    assert settings.peering.standalone is True
    assert settings.posting.enabled is False
    assert settings.persistence.finalizer == cli.FINALIZER


def test_peering_replicas_get_distinct_priorities_unless_given() -> None:
    args = cli.parse_args(["--all-namespaces", "--peering", "sluice"])
    priorities = {cli.kopf_settings(args).peering.priority for _ in range(5)}
    assert len(priorities) > 1
    fixed = cli.kopf_settings(
        cli.parse_args(["--all-namespaces", "--peering", "s", "--priority", "7"])
    )
    assert (fixed.peering.name, fixed.peering.priority, fixed.peering.standalone) == ("s", 7, False)
    assert fixed.peering.mandatory is True


def test_a_poke_wakes_only_its_own_loop() -> None:
    async def scenario() -> tuple[bool, bool]:
        wakeups = Wakeups()
        mine = wakeups.register(("ns", "a"))
        other = wakeups.register(("ns", "b"))
        wakeups.poke(("ns", "a"))
        wakeups.poke(("ns", "nobody"))
        await asyncio.wait_for(mine.wait(), timeout=5)
        return mine.is_set(), other.is_set()

    assert asyncio.run(scenario()) == (True, False)


def test_only_generation_changes_count_as_spec_changes() -> None:
    wakeups = Wakeups()
    key = ("ns", "a")
    assert wakeups.spec_changed(key, 1)
    assert not wakeups.spec_changed(key, 1)
    assert wakeups.spec_changed(key, 2)
    wakeups.unregister(key)
    assert wakeups.spec_changed(key, 2)


def test_a_deleted_object_is_forgotten() -> None:
    wakeups = Wakeups()
    key = ("ns", "gone")
    assert wakeups.spec_changed(key, 3)
    wakeups.forget(key)
    assert wakeups.spec_changed(key, 3)
