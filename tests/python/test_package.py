"""The Python package (`pip install .`): in-memory results against the command line's
Parquet, spec forms, errors, interrupts, the `mpr-sweep` console script and the readers.

Skipped when `mpr_sweep` is not installed, unless MPR_SWEEP_REQUIRE_PACKAGE=1 (set by
.ci/run, which builds and installs the wheel), which turns the skip into a failure.
"""

import _thread
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARDED_SPEC, mpr_sweep, write_spec

if os.environ.get("MPR_SWEEP_REQUIRE_PACKAGE") == "1":
    import mpr_sweep as mpr
else:
    mpr = pytest.importorskip("mpr_sweep", reason="the mpr_sweep package is not installed")

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

# The dict form of SHARDED_SPEC (white noise on v as an axis, replicates with drawn initial
# rates, traces of a few runs).
SHARDED_DICT = {
    "name": "python-sharded",
    "model": {"eta": {"linspace": [-8, -2, 4]}, "J": [0.0, 5.0, 10.0], "delta": 1.0},
    "init": {"r_hz": {"uniform": [0, 50]}, "v": -2.0},
    "noise": {"v": {"white": {"sigma": [0.0, 0.05]}}},
    "simulation": {"dt_ms": 0.01, "duration_ms": 5},
    "sweep": {"seed": 7, "replicates": 3},
    "output": {"traces": {"every_ms": 0.5, "runs": {"ids": [0, 1, 25, 40, 71]}}},
}

# Stochastic sweeps from sweeps/: white noise with traces, OU noise with rk4, heun.
NOISY_SWEEPS = ["noise.yaml", "ou-noise.yaml", "heun-noise.yaml"]


def assert_bitwise_equal(memory, disk, *, compare_metadata=True):
    """Same schema (names, types, nullability), same rows, every value bit for bit."""
    assert memory.schema.remove_metadata().equals(disk.schema.remove_metadata()), (
        f"{memory.schema}\n!=\n{disk.schema}"
    )
    if compare_metadata:
        disk_meta = {k: v for k, v in disk.schema.metadata.items() if k != b"ARROW:schema"}
        assert memory.schema.metadata == disk_meta
    assert memory.num_rows == disk.num_rows
    for name in memory.column_names:
        a = memory[name].combine_chunks()
        b = disk[name].combine_chunks()
        if pa.types.is_floating(a.type):
            # Compare the bits, not the values: -0.0 == 0.0 and NaN != NaN would hide
            # differences or report false ones.
            a, b = a.view(pa.uint64()), b.view(pa.uint64())
        assert a.equals(b), f"column {name} differs"


@pytest.mark.parametrize("name", NOISY_SWEEPS)
def test_in_memory_results_equal_the_cli_parquet_bit_for_bit(tmp_path, name):
    spec = REPO / "sweeps" / name
    out = tmp_path / "out"
    mpr_sweep("run", spec, "--out", out, "--quiet", "--threads", "2")
    res = mpr.run(spec, threads=3)
    assert res.out is None
    assert_bitwise_equal(pa.table(res.summary), pq.read_table(out / "summary"))
    assert (res.traces is not None) == (out / "traces").is_dir()
    if res.traces is not None:
        assert_bitwise_equal(pa.table(res.traces), pq.read_table(out / "traces"))
    # Noise really is in these sweeps: replicates of one point differ.
    s = res.summary.to_pandas()
    assert s.groupby("point_id")["r_hz_final"].nunique().max() > 1


def test_out_writes_what_the_cli_writes(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", SHARDED_SPEC)
    mpr_sweep("run", spec, "--out", tmp_path / "cli", "--quiet")
    res = mpr.run(spec, out=tmp_path / "py")
    assert res.out == tmp_path / "py"
    for sub in ["summary", "traces"]:
        cli_files = sorted(p.name for p in (tmp_path / "cli" / sub).iterdir())
        py_files = sorted(p.name for p in (tmp_path / "py" / sub).iterdir())
        assert cli_files == py_files == ["part-00000-of-00001.parquet"]
        assert_bitwise_equal(
            pq.read_table(tmp_path / "py" / sub), pq.read_table(tmp_path / "cli" / sub)
        )
    assert (tmp_path / "py" / "spec.yaml").read_text() == SHARDED_SPEC
    assert_bitwise_equal(res.summary.to_arrow(), pq.read_table(tmp_path / "cli" / "summary"))
    assert res.traces is not None and res.traces.num_rows == 5 * 11


def test_shards_of_the_cli_and_the_package_agree(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", SHARDED_SPEC)
    mpr_sweep("run", spec, "--out", tmp_path / "cli", "--shard", "1/3", "--quiet")
    res = mpr.run(spec, shard=(1, 3))
    assert res.runs == (24, 48)
    assert_bitwise_equal(
        pa.table(res.summary),
        pq.read_table(tmp_path / "cli" / "summary" / "part-00001-of-00003.parquet"),
    )


def data_only(table):
    """The table without the metadata that names the spec text (which differs by form)."""
    return table.replace_schema_metadata(None)


def test_dict_path_and_text_specs_agree(tmp_path):
    path = write_spec(tmp_path / "s.yaml", SHARDED_SPEC)
    by_path = mpr.run(path)
    by_str_path = mpr.run(str(path))
    by_text = mpr.run(SHARDED_SPEC)
    by_dict = mpr.run(SHARDED_DICT)
    reference = pa.table(by_path.summary)
    assert reference.num_rows == 72
    for other in [by_str_path, by_text]:
        assert_bitwise_equal(pa.table(other.summary), reference)
        assert_bitwise_equal(pa.table(other.traces), pa.table(by_path.traces))
    # The dict's YAML text differs from the file's, so its spec metadata does too.
    assert_bitwise_equal(
        data_only(pa.table(by_dict.summary)), data_only(reference), compare_metadata=False
    )
    assert_bitwise_equal(
        data_only(pa.table(by_dict.traces)),
        data_only(pa.table(by_path.traces)),
        compare_metadata=False,
    )
    assert mpr.plan(SHARDED_DICT)["runs"] == mpr.plan(path)["runs"] == 72


BAD_SPEC = """\
name: bad
model:
  eta: -5.0
  J: 15.0
simulation:
  dt_ms: 0.01
  duraton_ms: 100
"""


def cli_error(*args):
    proc = subprocess.run(
        [*cli_prefix(), *map(str, args)], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 2, proc.stderr
    prefix = "mpr-sweep: error: "
    assert proc.stderr.startswith(prefix), proc.stderr
    return proc.stderr[len(prefix):].rstrip("\n")


def cli_prefix():
    from conftest import mpr_sweep_command

    return mpr_sweep_command()


def test_bad_spec_raises_spec_error_with_the_cli_message(tmp_path):
    path = write_spec(tmp_path / "bad.yaml", BAD_SPEC)
    message = cli_error("plan", path)
    assert "duraton_ms" in message and "line 7" in message, message
    with pytest.raises(mpr.SpecError) as by_path:
        mpr.run(path)
    assert str(by_path.value) == message
    assert isinstance(by_path.value, ValueError)
    with pytest.raises(mpr.SpecError) as by_text:
        mpr.run(BAD_SPEC)
    # Given as text, the message is the file's without the file name.
    assert message == f"{path}: {by_text.value}"
    with pytest.raises(mpr.SpecError) as by_plan:
        mpr.plan(BAD_SPEC)
    assert str(by_plan.value) == str(by_text.value)
    bad_dict = {**SHARDED_DICT, "simulation": {"dt_ms": -0.01, "duration_ms": 5}}
    with pytest.raises(mpr.SpecError, match="dt_ms"):
        mpr.run(bad_dict)


def test_running_and_usage_errors_are_typed(tmp_path):
    with pytest.raises(ValueError, match="shard"):
        mpr.run(SHARDED_SPEC, shard="3/2")
    with pytest.raises(mpr.UsageError, match="threads"):
        mpr.run(SHARDED_SPEC, threads=0)
    with pytest.raises(mpr.UsageError, match="isa"):
        mpr.run(SHARDED_SPEC, isa="sse9")
    with pytest.raises(mpr.OutputError):
        mpr.run(tmp_path / "missing.yaml")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((mpr.UsageError, mpr.OutputError)):
        mpr.run(SHARDED_SPEC, out=blocker)


# About 3e9 run-steps: minutes of work, far longer than the interrupt's deadline.
LONG_SPEC = """\
name: long
model:
  eta: {linspace: [-10, 0, 64]}
  J: 15.0
simulation:
  dt_ms: 0.001
  duration_ms: 50000
"""


@pytest.mark.parametrize("to_disk", [False, True])
def test_an_interrupt_stops_a_long_run_promptly_with_nothing_written(tmp_path, to_disk):
    out = tmp_path / "out" if to_disk else None
    fired = []

    def interrupt():
        fired.append(time.monotonic())
        _thread.interrupt_main()

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mpr.run(LONG_SPEC, out=out, threads=2)
        stopped = time.monotonic()
    finally:
        timer.cancel()
    assert fired, "the run ended before the interrupt"
    latency = stopped - fired[0]
    # The kernels poll every few thousand steps and Python's handlers every 50 ms.
    assert latency < 1.0, f"stopped {latency:.3f} s after the interrupt"
    if to_disk:
        # The directory is claimed (spec.yaml) as by `mpr-sweep run`; no part, no temporary.
        assert sorted(p.name for p in (out / "summary").iterdir()) == []
    # The package is usable after an interrupt.
    assert mpr.run(SHARDED_SPEC).summary.num_rows == 72


def console_script():
    script = Path(sys.executable).parent / "mpr-sweep"
    assert script.is_file(), f"no console script beside {sys.executable}"
    return script


def test_console_script_runs_plan(tmp_path):
    spec = REPO / "sweeps" / "quickstart.yaml"
    proc = subprocess.run(
        [console_script(), "plan", spec, "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(mpr_sweep("plan", spec, "--json"))
    assert json.loads(proc.stdout) == mpr.plan(spec)
    bad = write_spec(tmp_path / "bad.yaml", BAD_SPEC)
    proc = subprocess.run([console_script(), "plan", bad], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"mpr-sweep: error: {cli_error('plan', bad)}\n"


def test_console_script_runs_a_sweep(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", SHARDED_SPEC)
    proc = subprocess.run(
        [console_script(), "run", spec, "--out", tmp_path / "out", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert_bitwise_equal(
        pq.read_table(tmp_path / "out" / "summary"), pa.table(mpr.run(spec).summary)
    )


def test_console_script_sbatch_calls_the_console_script(tmp_path):
    proc = subprocess.run(
        [console_script(), "sbatch", REPO / "sweeps" / "quickstart.yaml",
         "--out", tmp_path / "out", "--shards", "2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    # The array tasks run the installed command, not the Python interpreter.
    assert f"exec {console_script().resolve()} run " in proc.stdout, proc.stdout


def test_polars_and_duckdb_consume_the_tables():
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    res = mpr.run(SHARDED_SPEC)
    expected = pa.table(res.summary)
    frame = pl.DataFrame(res.summary)
    assert frame.shape == (72, expected.num_columns)
    assert frame["run_id"].to_list() == list(range(72))
    # Polars reads any Arrow stream as a Series of structs: one struct field per column.
    assert pl.from_arrow(res.summary).struct.unnest().equals(frame)
    assert res.summary.to_polars().equals(frame)
    assert res.summary.to_pandas()["r_hz_mean"].tolist() == expected["r_hz_mean"].to_pylist()
    summary = res.summary
    traces = res.traces
    rows = duckdb.sql(
        "SELECT s.J, count(*) AS n FROM traces t JOIN summary s USING (run_id) "
        "GROUP BY s.J ORDER BY s.J"
    ).fetchall()
    assert sum(n for _, n in rows) == 5 * 11
    means = duckdb.sql("SELECT avg(r_hz_mean) FROM summary").fetchall()[0][0]
    assert means == pytest.approx(sum(expected["r_hz_mean"].to_pylist()) / 72, rel=1e-12)


def test_readme_python_quick_start_runs(monkeypatch):
    text = (REPO / "README.md").read_text()
    start = text.index("### Python quick start")
    block = text[text.index("```python\n", start) + len("```python\n"):]
    block = block[: block.index("```")]
    assert "import mpr_sweep" in block
    monkeypatch.chdir(REPO)
    scope = {}
    exec(compile(block, "README.md (Python quick start)", "exec"), scope)
    assert scope["rmap"].shape == (21, 21)
    assert scope["res"].traces.num_rows == 9 * 1001


def test_help_documents_run():
    doc = mpr.run.__doc__
    for word in ["spec", "threads", "out", "shard", "progress", "SpecError", "KeyboardInterrupt"]:
        assert word in doc
