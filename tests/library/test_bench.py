"""softgrad bench: the report's structure and arithmetic (never a time), the CLI, and the progress bar."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from softgrad import bench, cli, kernels, progress

# Far smaller than --quick: the tests check the report, not the machine.
TINY = replace(bench.PRESETS["quick"], name="tiny", rows=64, classes=128, repeats=2, warmup=1,
               jacobian_sizes=(16, 64), vocabulary=2048, vocab_rows=16, hidden=8, chunk_sizes=(256,),
               gpu_rows=64, gpu_classes=128, compile=False, limits_bytes=2**18, exp_samples=2**12)


@pytest.fixture(scope="module")
def report():
    return bench.run(TINY, threads=2)


def test_report_has_every_section_and_is_json(report):
    assert set(report) >= {"preset", "machine", "limits", "exp_accuracy", "tables", "jacobian", "vocabulary",
                           "notes"}
    assert json.loads(json.dumps(report)) == report
    operations = {(t["operation"], t["device"]) for t in report["tables"]}
    assert {("cross_entropy", "cpu"), ("softmax", "cpu")} <= operations
    names = [r["name"] for r in report["tables"][0]["rows"]]
    for expected in ("naive NumPy", "stable NumPy (chapter 4)", "fused NumPy, 2 threads"):
        assert expected in names
    if kernels.available():
        assert {"fused Numba, 1 thread", "fused Numba, always shifting", "fused Numba, 2 threads"} <= set(names)
    else:
        assert "fused Numba" in names


def test_both_exp_floors_are_measured_in_the_same_run(report):
    for limits in [report["limits"]] + [t["limits"] for t in report["tables"] if t["device"] == "cpu"]:
        assert limits["exp_seconds"] > 0  # NumPy's exp
        vectorised = {name: limits[f"{key}_seconds"] for name, key in
                      (("torch.exp", "torch_exp"), ("softgrad.kernels.exp", "compiled_exp"))
                      if f"{key}_seconds" in limits}
        assert ("torch.exp" in vectorised) == (bench._torch() is not None)
        assert ("softgrad.kernels.exp" in vectorised) == kernels.available()
        if vectorised:  # the floor is the fastest vectorised pass into a new array
            assert limits["vector_exp_seconds"] == min(vectorised.values())
            assert limits["vector_exp_name"] == min(vectorised, key=vectorised.get)
            assert all(limits[f"{key}_compute_seconds"] > 0 for key in ("torch_exp", "compiled_exp")
                       if f"{key}_seconds" in limits)


def test_the_accuracy_of_every_exp_is_measured_in_ulps(report):
    entries = {e["name"]: e for e in report["exp_accuracy"]}
    assert set(entries) == {"np.exp", "torch.exp", "softgrad.kernels.exp"}
    for entry in entries.values():
        if "note" in entry:
            assert entry["note"].startswith("not available")
            continue
        assert entry["samples"] > 0.99 * TINY.exp_samples
        assert 0 <= entry["mean_ulp"] <= entry["max_ulp"] < 4  # every float32 exp here is within a few ulps
        assert 0 < entry["correctly_rounded"] <= 1
    if kernels.available():
        assert entries["softgrad.kernels.exp"]["max_ulp"] <= 1.1


def test_the_machine_limits_are_measured_beyond_the_tables_size(report):
    limits = report["limits"]
    assert limits["array_bytes"] >= TINY.limits_bytes > 64 * 128 * 4
    assert limits["copy_bytes"] == 2 * limits["array_bytes"]
    assert limits["exp_compute_seconds"] > 0 and limits["exp_seconds"] > 0
    for table in report["tables"]:
        if table["device"] == "cpu":  # each CPU table's ratios use the limits measured at its own size
            assert table["limits"]["array_bytes"] == 64 * 128 * 4
            assert table["limits"] != limits


def test_one_thread_gives_one_row_per_thread_count(report):
    one = bench.run(replace(TINY, jacobian_sizes=(8,), chunk_sizes=(), limits_bytes=0), threads=1, gpu=False)
    names = [r["name"] for r in one["tables"][0]["rows"]]
    assert "fused NumPy, 1 thread" in names and not any("1 threads" in n for n in names)
    assert one["limits"] == one["tables"][0]["limits"]  # tables as large as limits_bytes: one measurement
    assert any("fused NumPy, 2 threads" == r["name"] for r in report["tables"][0]["rows"])


def test_ratios_are_consistent_with_the_timings(report):
    limits = report["limits"]
    assert limits["copy_bandwidth"] == pytest.approx(limits["copy_bytes"] / limits["copy_seconds"])
    for table in report["tables"]:
        n, c = table["shape"]
        if table["operation"] == "cross_entropy":
            assert table["bytes_moved"] == 2 * n * c * 4 + n * 8  # float32 logits and gradient, int64 targets
        else:
            assert table["bytes_moved"] == 4 * n * c * 4
        eager = next((r["seconds"] for r in table["rows"] if r["name"] == "PyTorch eager F.cross_entropy"), None)
        for row in table["rows"]:
            if row["seconds"] is None:
                assert row["note"].startswith("not available"), row
                continue
            assert row["seconds"] > 0
            assert row["bandwidth"] == pytest.approx(table["bytes_moved"] / row["seconds"])
            assert row["copy_fraction"] == pytest.approx(row["bandwidth"] / table["limits"]["copy_bandwidth"])
            if table["device"] == "cpu":
                assert row["exp_ratio"] == pytest.approx(row["seconds"] / table["limits"]["exp_seconds"])
                if "vector_exp_seconds" in table["limits"]:
                    assert row["vector_exp_ratio"] == pytest.approx(
                        row["seconds"] / table["limits"]["vector_exp_seconds"])
            else:
                assert row["vector_exp_ratio"] is None
            if eager is not None and table["operation"] == "cross_entropy":
                assert row["speedup_vs_torch"] == pytest.approx(eager / row["seconds"])


def test_jacobian_and_vocabulary_sections_measure_the_right_things(report):
    for entry in report["jacobian"]:
        assert entry["max_difference"] < 1e-12  # both ways compute the same VJP
    small, large = report["jacobian"]
    # the n x n Jacobian: 16 times more entries when n grows 4 times
    assert large["jacobian_peak_bytes"] > 8 * small["jacobian_peak_bytes"]
    assert large["jacobian_peak_bytes"] > 64 * 64 * 8 > large["vjp_peak_bytes"]
    naive, chunked = report["vocabulary"]
    assert naive["chunk_size"] is None and chunked["chunk_size"] == 256
    assert naive["peak_bytes"] > naive["logits_bytes"] > chunked["peak_bytes"] - chunked["outputs_bytes"]
    assert chunked["max_difference"] < 1e-5


def test_without_torch_the_torch_rows_are_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(bench, "_torch", lambda: None)
    report = bench.run(replace(TINY, jacobian_sizes=(8,)), threads=1)
    rows = {r["name"]: r for r in report["tables"][0]["rows"]}
    assert rows["PyTorch eager"]["seconds"] is None
    assert "not installed" in rows["PyTorch eager"]["note"]
    assert all(r["speedup_vs_torch"] is None for r in rows.values())
    assert any("PyTorch is not installed" in n for n in report["notes"])
    assert "PyTorch eager" in bench.format_report(report)


def test_without_numba_the_compiled_rows_say_why(monkeypatch):
    monkeypatch.setattr(kernels, "numba", None)
    monkeypatch.setattr(kernels, "UNAVAILABLE", "Numba is not installed (pip install numba)")
    report = bench.run(replace(TINY, jacobian_sizes=(8,), chunk_sizes=()), threads=1, gpu=False)
    rows = {r["name"]: r for r in report["tables"][0]["rows"]}
    assert rows["fused Numba"]["seconds"] is None
    assert rows["fused Numba"]["note"] == "not available: Numba is not installed (pip install numba)"
    assert "compiled_exp_seconds" not in report["limits"]
    if bench._torch() is not None:  # the vectorised floor is PyTorch's exp alone
        assert report["limits"]["vector_exp_name"] == "torch.exp"
    assert "fused Numba" in bench.format_report(report)


def test_the_compiled_rows_are_float32_only():
    report = bench.run(replace(TINY, jacobian_sizes=(8,), chunk_sizes=()), threads=1, gpu=False, dtype="float64")
    rows = {r["name"]: r for r in report["tables"][0]["rows"]}
    assert rows["fused Numba"]["seconds"] is None
    assert rows["fused Numba"]["note"].startswith("not available: ")
    assert "compiled_exp_seconds" not in report["limits"]


def test_a_failing_torch_compile_is_reported_not_raised(monkeypatch):
    torch = pytest.importorskip("torch")

    def broken(function):
        raise RuntimeError("no compiler here\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    report = bench.run(replace(TINY, compile=True, jacobian_sizes=(8,)), threads=1, gpu=False)
    rows = {r["name"]: r for r in report["tables"][0]["rows"]}
    assert rows["torch.compile F.cross_entropy"]["note"] == "not available: RuntimeError: no compiler here"
    assert rows["torch.compile F.cross_entropy"]["seconds"] is None


def test_table_text_shows_every_row(report):
    text = bench.format_report(report)
    for table in report["tables"]:
        for row in table["rows"]:
            assert row["name"] in text
    assert "limits: copy" in text and "np.exp pass" in text and "into a written one" in text
    assert "x np.exp" in text and "x vec exp" in text and "in ulps" in text
    if "vector_exp_seconds" in report["limits"]:
        assert "vectorised exp floor: " + report["limits"]["vector_exp_name"] in text
    assert "against the limits at this size" in text


def test_progress_bar_counts_and_writes_lines():
    stream = io.StringIO()
    bar = bench.Progress(3, stream)
    for label in ("a", "b", "c"):
        bar.step(label)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("[" + "#" * 28 + "]")
    bench.Progress(2).step("silent")  # no stream: nothing to write, nothing raised


def test_progress_bar_says_the_time_left_until_the_last_step():
    stream = io.StringIO()
    bar = bench.Progress(3, stream)
    for label in ("a", "b", "c"):
        bar.step(label, time_left=True)
    lines = stream.getvalue().splitlines()
    assert all(re.search(r"\(about \d+ s left\)$", line) for line in lines[:2]), lines
    assert lines[-1].endswith(" c"), "nothing is left after the last step"
    assert progress.duration(59.4) == "59 s" and progress.duration(185) == "3 min 05 s"


def test_cli_dispatches_and_rejects_unknown_commands(capsys):
    assert cli.main([]) == 0
    assert "bench" in capsys.readouterr().out
    assert cli.main(["nonsense"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_python_m_softgrad_bench_prints_the_table_and_writes_json(tmp_path, monkeypatch):
    # The real command line, in a subprocess, with the tiny preset swapped in for --quick.
    path = tmp_path / "bench.json"
    code = ("import sys; from dataclasses import replace; from softgrad import bench; "
            f"bench.PRESETS['quick'] = replace(bench.PRESETS['quick'], rows=32, classes=64, repeats=1, "
            f"jacobian_sizes=(8,), vocabulary=512, vocab_rows=8, hidden=4, chunk_sizes=(128,)); "
            f"from softgrad.cli import main; sys.exit(main(['bench', '--quick', '--threads', '1', "
            f"'--no-gpu', '--json', {str(path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "softmax cross-entropy, forward + backward" in done.stdout
    assert "/" in done.stderr and "#" in done.stderr  # the progress bar went to stderr
    written = json.loads(path.read_text())
    assert written["preset"]["rows"] == 32 and written["machine"]["threads"] == 1


def test_the_gpu_table_has_chapter_9s_triton_row():
    """The GPU table times PyTorch and the Triton kernel; on a device Triton cannot compile for, it says why."""
    torch = pytest.importorskip("torch")
    from softgrad import gpu

    logits = np.zeros((4, 8), dtype=np.float32)
    target = np.zeros(4, dtype=np.int64)
    rows = bench._gpu_candidates(torch, logits, target, torch.device("cpu"), compile=False)
    assert callable(rows["PyTorch eager F.cross_entropy"])
    assert isinstance(rows[gpu.BENCH_ROW], str) and rows[gpu.BENCH_ROW].startswith("not available")
