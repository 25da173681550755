"""Shared helpers for the Python tests of mpr-sweep's output.

The tests make the sweeps they read with the mpr-sweep binary named by the environment
variable MPR_SWEEP_BIN (``.ci/run`` sets it to the debug binary that ``cargo test`` built);
without it they fall back to ``cargo run --quiet --`` from the repository root.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def mpr_sweep_command():
    """The argv prefix that runs mpr-sweep."""
    binary = os.environ.get("MPR_SWEEP_BIN")
    if binary:
        if not Path(binary).is_file():
            raise RuntimeError(f"MPR_SWEEP_BIN={binary!r} is not a file")
        return [binary]
    return ["cargo", "run", "--quiet", "--"]


def mpr_sweep(*args):
    """Run mpr-sweep with ``args`` (from the repository root); return its stdout."""
    argv = mpr_sweep_command() + [str(a) for a in args]
    # Inside a Slurm job, SLURM_* variables change run's defaults (threads, array shards)
    # and add metadata; the tests describe a plain run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited with {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc.stdout


def write_spec(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_sweep(spec_path, out_dir, shards=None):
    """Run a spec into ``out_dir``: whole, or as ``shards`` separate shard runs."""
    if shards is None:
        mpr_sweep("run", spec_path, "--out", out_dir, "--quiet")
    else:
        for i in range(shards):
            mpr_sweep("run", spec_path, "--out", out_dir, "--shard", f"{i}/{shards}", "--quiet")
    return Path(out_dir)


def plan_json(spec_path, shards=None):
    args = ["plan", spec_path, "--json"]
    if shards is not None:
        args += ["--shards", shards]
    return json.loads(mpr_sweep(*args))


# A small sweep with everything the loaders must handle: two swept model axes, a swept
# noise axis (an extra parameter column), replicates with a drawn initial rate, traces of
# a few runs in every shard, constant inputs (so the fp_* columns are filled).
SHARDED_SPEC = """\
name: python-sharded
model:
  eta: {linspace: [-8, -2, 4]}
  J: [0.0, 5.0, 10.0]
  delta: 1.0
init:
  r_hz: {uniform: [0, 50]}
  v: -2.0
noise:
  v: {white: {sigma: [0.0, 0.05]}}
simulation:
  dt_ms: 0.01
  duration_ms: 5
sweep:
  seed: 7
  replicates: 3
output:
  traces:
    every_ms: 0.5
    runs: {ids: [0, 1, 25, 40, 71]}
"""
SHARDED_RUNS = 4 * 3 * 2 * 3
SHARDED_TRACED = [0, 1, 25, 40, 71]
SHARDED_TRACE_ROWS_PER_RUN = round(5 / 0.5) + 1
SHARDS = 3


@pytest.fixture(scope="session")
def sharded_sweep(tmp_path_factory):
    """A sweep run as shards 0/3, 1/3 and 2/3 into one directory."""
    base = tmp_path_factory.mktemp("sharded")
    spec = write_spec(base / "sharded.yaml", SHARDED_SPEC)
    return run_sweep(spec, base / "out", shards=SHARDS)
