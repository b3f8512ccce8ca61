"""The instruction-count benchmark's pure parts: reading callgrind's dumps, the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.instructions import _dumped, page


def test_a_dump_is_read_by_its_totals_line(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    Path(f"{out}.2").write_text("version: 1\nevents: Ir\nsummary: 900\ntotals: 1234567\nfn=x\n")
    assert _dumped(out, 2) == 1234567
    Path(f"{out}.3").write_text("version: 1\nevents: Ir\n")
    with pytest.raises(RuntimeError, match="no totals"):
        _dumped(out, 3)


def test_the_page_gives_each_server_and_sluices_part_beyond_its_transport() -> None:
    text = page({"noop": (132_258, 2_746), "sluice": (393_483, 521)}, 10)
    assert "| noop | 132,258 | 2,746 |" in text
    assert "| sluice | 393,483 | 521 |" in text
    assert "261,225 instructions per call" in text
