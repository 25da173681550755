"""The example scripts in examples/ run on small sweeps and write real PNG files."""

import importlib.util
import re
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_sweep, write_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=10_000, max_bytes=5_000_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 300 <= width <= 4000 and 300 <= height <= 4000, (width, height)
    assert min_bytes <= len(data) <= max_bytes, len(data)
    assert data.endswith(b"IEND\xaeB`\x82")


def run_example(name, *args):
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    return proc


def import_example(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reduced_bistability_spec():
    """sweeps/bistability.yaml with a coarser grid and a shorter run, otherwise as written."""
    text = (REPO / "sweeps" / "bistability.yaml").read_text()
    for pattern, repl in [
        (r"(eta: \{linspace: \[-10, 0, )\d+(\]\})", r"\g<1>21\g<2>"),
        (r"(J: \{linspace: \[0, 30, )\d+(\]\})", r"\g<1>16\g<2>"),
        (r"(duration_ms: )\d+", r"\g<1>40"),
        (r"(transient_ms: )\d+", r"\g<1>30"),
    ]:
        text, n = re.subn(pattern, repl, text)
        assert n == 1, f"sweeps/bistability.yaml changed: {pattern!r} matched {n} times"
    return text


@pytest.fixture(scope="module")
def bistability_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("bistability")
    spec = write_spec(base / "bistability-small.yaml", reduced_bistability_spec())
    return run_sweep(spec, base / "out")


def test_bistability_map_png(bistability_results, tmp_path):
    out = tmp_path / "map.png"
    proc = run_example("bistability_map.py", bistability_results, out)
    assert proc.returncode == 0, proc.stderr
    check_png(out)


def test_bistability_map_finds_the_wedge(bistability_results):
    # The script's mask (the test at the end of sweeps/bistability.yaml) against the
    # analytic bistable set: a point is bistable when it has a second stable fixed point
    # (fp_r_hz_high not null).
    bm = import_example("bistability_map")
    summary = bm.load_summary(bistability_results)
    assert len(summary) == 21 * 16 * 2
    low, high, bistable = bm.bistable_maps(summary)
    assert bistable.shape == (16, 21)
    analytic = (
        summary[summary.init_r_hz < 1]
        .pivot(index="J", columns="eta", values="fp_r_hz_high")
        .notna()
    )
    assert analytic.to_numpy().sum() > 20  # the reduced grid still spans the wedge
    # Nearly all of the analytic wedge is found. Extra points come from runs that have not
    # settled yet (slow ringing of the high state at large J, slow passage near the fold);
    # they are fewer in the full-length sweep.
    missed = (analytic & ~bistable).to_numpy().sum()
    assert missed <= 0.05 * analytic.to_numpy().sum(), missed
    agree = (bistable == analytic).to_numpy().mean()
    assert agree > 0.9, agree
    # Below the cusp (J < 7.8) nothing is bistable, analytically or in the runs.
    assert not bistable.loc[bistable.index < 7.5].to_numpy().any()
    # Every analytic cusp/saddle-node curve point is a double root of the fixed-point quartic.
    eta, j = bm.saddle_node_curve(1.0, n=50)
    x = np.geomspace(1e-3, 10.0, 50)
    q = np.pi**2 * x**4 - j * x**3 - eta * x**2 - 1 / (4 * np.pi**2)
    dq = 4 * np.pi**2 * x**3 - 3 * j * x**2 - 2 * eta * x
    np.testing.assert_allclose(q, 0, atol=1e-9 * np.abs(j * x**3).max())
    np.testing.assert_allclose(dq, 0, atol=1e-9 * np.abs(3 * j * x**2).max())
    assert bm.cusp(1.0) == pytest.approx((-np.sqrt(3), 4 * np.sqrt(2) * np.pi / 3**0.75))


TRACE_SPEC = """\
name: python-traces
model:
  eta: [-5.0, -2.0]
  J: [10.0, 15.0]
init:
  r_hz: 100.0
  v: -2.0
simulation:
  dt_ms: 0.01
  duration_ms: 20
output:
  traces:
    every_ms: 0.1
    runs: all
"""


@pytest.fixture(scope="module")
def trace_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("traces")
    return run_sweep(write_spec(base / "traces.yaml", TRACE_SPEC), base / "out", shards=2)


@pytest.mark.parametrize("run_ids", [[], [0, 3], [2]])
def test_traces_png(trace_results, tmp_path, run_ids):
    out = tmp_path / "traces.png"
    proc = run_example("traces.py", trace_results, out, *run_ids)
    assert proc.returncode == 0, proc.stderr
    check_png(out)


def test_traces_refuses_an_untraced_run(trace_results, tmp_path):
    out = tmp_path / "traces.png"
    proc = run_example("traces.py", trace_results, out, 0, 99)
    assert proc.returncode == 2
    assert "[99] have no trace" in proc.stderr
    assert not out.exists()


def test_traces_labels_name_the_swept_parameters(trace_results):
    tr = import_example("traces")
    assert tr.traced_run_ids(trace_results).tolist() == [0, 1, 2, 3]
    labels = tr.run_labels(trace_results, [0, 3])
    assert labels == {0: "run 0: eta=-5, J=10", 3: "run 3: eta=-2, J=15"}
    t = tr.load_traces(trace_results, [3])
    assert set(t.run_id) == {3} and len(t) == 201
    assert isinstance(t, pd.DataFrame)


def test_examples_have_a_docstring_with_the_command():
    for name, cmd in [
        ("bistability_map", "mpr-sweep run sweeps/bistability.yaml --out results/bistability"),
        ("traces", "mpr-sweep run sweeps/quickstart.yaml --out results/quickstart"),
    ]:
        doc = import_example(name).__doc__
        assert cmd in doc and f"python examples/{name}.py results/" in doc
