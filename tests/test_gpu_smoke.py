"""bench/gpu_smoke.py keeps working: run on the CPU (twins) as a user runs it, it writes a result
for every requested card and mode, with a step time or the error that stopped that mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_smoke.py"
CARDS = ("wan2.1-t2v-1.3b", "ltx-video-2b")
MODES = ("none", "group_offload_block")


def test_cpu_run_writes_a_step_time_or_an_error_for_every_card_and_mode(tmp_path):
    out = tmp_path / "smoke.json"
    command = [sys.executable, str(SCRIPT), "--cpu", "--cards", *CARDS, "--modes", *MODES]
    command += ["--steps", "1", "--frames", "9", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    result = json.loads(out.read_text())
    assert result["device_type"] == "cpu" and result["matmul_peak_flops"] > 0
    rows = {(row["card"], row["mode"]): row for row in result["results"]}
    assert set(rows) == {(card, mode) for card in CARDS for mode in MODES}
    for (_card, mode), row in rows.items():
        assert row["built"].startswith("tiny-"), row  # the twin runs on a CPU, not the full size
        assert row.get("error") or row["seconds_per_step"] > 0, row
        if mode == "none":
            # The plain run must always work: it is every other mode's baseline.
            assert "error" not in row, row["error"]
            assert row["frames"] == 9 and row["steps"] == 1
            assert row["peak_rss_gib"] > 0 and 0 < row["mfu"] < 1
            assert row["ratio_to_none"] == 1.0
    # The printed table shows each mode against "none".
    assert "x none" in done.stdout and "group_offload_block" in done.stdout
