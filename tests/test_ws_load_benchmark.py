"""benchmarks/ws_load.py keeps working: a tiny load against the real `app.py ws` server, and its report."""

from __future__ import annotations

from benchmarks import ws_load


def test_a_small_load_is_measured_end_to_end():
    result = ws_load.measure(ws_load.ROOT, clients=2, messages=2, py_spy=None)
    assert result["messages"] == 4 and result["bad"] == 0
    assert 0 < result["p50"] <= result["p95"] <= result["max"]
    assert result["by_n"] >= 1 and result["idle_p50"] > 0 and result["rate"] > 0
    result["label"] = "this"
    text = ws_load.table([result], clients=2, messages=2)
    assert "| this `" in text and "0 / 4" in text and ("Target met" in text or "Target missed" in text)


def test_profile_summary_reads_py_spy_stacks(tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text("process 1;thread (0x1);main (app.py:1);build (client.py:9) 30\n"
                   "process 1;thread (0x2);main (app.py:1);step (agent.py:5) 10\n")
    summary = ws_load._top_frames(raw)
    assert summary.startswith("40 samples")
    assert "75.0%  build (client.py:9)" in summary and "100.0%  main (app.py:1)" in summary
