"""A tiny network sweep (4 nodes, 3 values of k x 2 replicates, run as 2 shards) read back
by pandas, Polars and DuckDB: DIR/summary has one row per run with fc_fit and fc_mean,
DIR/nodes N rows per run with the node names, DIR/fc N(N-1)/2 rows per run (i < j)."""

import duckdb
import pandas as pd
import polars as pl
import pytest

from conftest import run_sweep, write_spec

N = 4
RUNS = 3 * 2
PAIRS = N * (N - 1) // 2
NAMES = ["V1", "V2", "M1", "PFC"]

NETWORK_SPEC = """\
name: python-network
init: {r_hz: {uniform: [50, 150]}, v: -2.0}
noise:
  v: {white: {sigma: 0.5}}
simulation: {dt_ms: 0.01, duration_ms: 5, method: heun}
sweep: {seed: 3, replicates: 2}
network:
  weights: w.txt
  k: [0.0, 0.5, 1.0]
  node_names: names.txt
  fc_target: fc.csv
output:
  fc: true
"""

NODE_COLUMNS = (
    ["run_id", "node", "node_name", "init_r_hz", "init_v"]
    + [f"{var}_{stat}" for var in ("r_hz", "v") for stat in ("mean", "std", "min", "max", "final")]
    + ["diverged", "diverged_at_ms"]
)


@pytest.fixture(scope="module")
def network_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("network")
    (base / "w.txt").write_text("0 0.9 0 0.4\n0.3 0 0.7 0\n0 0.5 0 1.1\n0.8 0 0.2 0\n")
    (base / "names.txt").write_text("\n".join(NAMES) + "\n")
    (base / "fc.csv").write_text(
        "1,0.5,0.1,0.3\n0.5,1,0.7,-0.2\n0.1,0.7,1,0.4\n0.3,-0.2,0.4,1\n"
    )
    spec = write_spec(base / "net.yaml", NETWORK_SPEC)
    return run_sweep(spec, base / "out", shards=2)


def test_pandas_reads_nodes_fc_and_summary(network_results):
    summary = pd.read_parquet(network_results / "summary")
    nodes = pd.read_parquet(network_results / "nodes")
    fc = pd.read_parquet(network_results / "fc")
    assert len(summary) == RUNS
    assert sorted(summary["run_id"]) == list(range(RUNS))
    assert {"fc_fit", "fc_mean", "k"} <= set(summary.columns)
    assert summary["fc_fit"].between(-1, 1).all()
    assert list(nodes.columns) == NODE_COLUMNS
    assert len(nodes) == N * RUNS
    assert (nodes.groupby("run_id").size() == N).all()
    for _, group in nodes.groupby("run_id"):
        assert list(group.sort_values("node")["node_name"]) == NAMES
    assert list(fc.columns) == ["run_id", "i", "j", "fc"]
    assert len(fc) == PAIRS * RUNS
    assert (fc.groupby("run_id").size() == PAIRS).all()
    assert (fc["i"] < fc["j"]).all()
    # fc_mean is the mean of the run's FC rows.
    joined = fc.groupby("run_id")["fc"].mean().sort_index()
    by_run = summary.set_index("run_id").sort_index()["fc_mean"]
    assert (joined - by_run).abs().max() <= 1e-12


def test_polars_reads_nodes_and_fc(network_results):
    nodes = pl.read_parquet(network_results / "nodes" / "*.parquet")
    fc = pl.read_parquet(network_results / "fc" / "*.parquet")
    assert nodes.columns == NODE_COLUMNS
    assert nodes.schema["node"] == pl.UInt32
    assert nodes.schema["node_name"] == pl.Utf8
    assert nodes.height == N * RUNS
    assert fc.height == PAIRS * RUNS
    assert fc.schema["i"] == pl.UInt32 and fc.schema["j"] == pl.UInt32
    counts = fc.group_by("run_id").len()
    assert counts["len"].to_list() == [PAIRS] * RUNS


def test_duckdb_joins_nodes_to_summary(network_results):
    con = duckdb.connect()
    d = network_results
    rows = con.execute(
        f"""
        SELECT s.run_id, count(*) AS n, any_value(s.k) AS k
        FROM read_parquet('{d}/summary/*.parquet') s
        JOIN read_parquet('{d}/nodes/*.parquet') n USING (run_id)
        GROUP BY s.run_id ORDER BY s.run_id
        """
    ).fetchall()
    assert [r[0] for r in rows] == list(range(RUNS))
    assert all(r[1] == N for r in rows)
    pairs = con.execute(
        f"SELECT count(*) FROM read_parquet('{d}/fc/*.parquet') WHERE i < j"
    ).fetchone()[0]
    assert pairs == PAIRS * RUNS
