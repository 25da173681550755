"""The Python package's network tables: `Result.nodes` and `Result.fc`, in memory and read
back from `out`, None for a single-node sweep; a network's files relative to the working
folder (text, dict) or to the spec file (path); a bad weights file as a `SpecError`.

Skipped when `mpr_sweep` is not installed, unless MPR_SWEEP_REQUIRE_PACKAGE=1 (set by
.ci/run, which builds and installs the wheel), which turns the skip into a failure.
"""

import json
import os

import pytest

from conftest import write_spec

if os.environ.get("MPR_SWEEP_REQUIRE_PACKAGE") == "1":
    import mpr_sweep as mpr
else:
    mpr = pytest.importorskip("mpr_sweep", reason="the mpr_sweep package is not installed")

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

N = 4
PAIRS = N * (N - 1) // 2
RUNS = 2 * 2  # k x replicates

# Row = target, column = source; the diagonal is ignored. Lengths in mm, speed 3 mm/ms:
# delays of 0.3 to 1.2 ms.
WEIGHTS = "0 0.9 0 0.4\n0.3 0 0.7 0\n0 0.5 0 1.1\n0.8 0 0.2 0\n"
LENGTHS = "0 1 2 3\n1 0 1.5 2.5\n2 1.5 0 3.6\n3 2.5 3.6 0\n"

NETWORK = {
    "name": "python-package-network",
    "model": {"eta": -5.0, "J": 15.0, "delta": 1.0},
    "init": {"r_hz": {"uniform": [50, 150]}, "v": -2.0},
    "noise": {"v": {"white": {"sigma": 0.5}}},
    "simulation": {"method": "heun", "dt_ms": 0.01, "duration_ms": 20, "transient_ms": 5},
    "sweep": {"seed": 11, "replicates": 2},
    "network": {
        "weights": "w.txt",
        "tract_lengths_mm": "lengths.txt",
        "speed_mm_per_ms": 3.0,
        "k": [0.0, 0.5],
        "fc_sample_ms": 0.1,
    },
    "output": {"fc": True},
}

SINGLE_NODE = {
    "name": "python-package-single",
    "model": {"eta": [-5.0, -4.0], "J": 15.0, "delta": 1.0},
    "simulation": {"dt_ms": 0.01, "duration_ms": 2},
}


@pytest.fixture
def network_dir(tmp_path, monkeypatch):
    """A folder with the connectome's files, made the working folder."""
    (tmp_path / "w.txt").write_text(WEIGHTS)
    (tmp_path / "lengths.txt").write_text(LENGTHS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sorted_frame(table, keys):
    return table.to_pandas().sort_values(keys).reset_index(drop=True)


def test_in_memory_network_has_nodes_and_fc_tables(network_dir):
    res = mpr.run(NETWORK, threads=2)
    assert res.out is None
    assert res.nodes is not None and res.fc is not None
    summary = res.summary.to_pandas()
    nodes = res.nodes.to_pandas()
    fc = res.fc.to_pandas()
    assert sorted(summary["run_id"]) == list(range(RUNS))

    # One row per run and node, the nodes numbered as the rows of the weights.
    assert len(nodes) == RUNS * N
    for run_id, rows in nodes.groupby("run_id"):
        assert sorted(rows["node"]) == list(range(N)), run_id
    assert not nodes["diverged"].any()

    # One row per run and pair i < j, every pair once.
    assert len(fc) == RUNS * PAIRS
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    for run_id, rows in fc.groupby("run_id"):
        assert sorted(zip(rows["i"], rows["j"])) == pairs, run_id
    # With noise every node's rate fluctuates: every pair has a correlation.
    assert fc["fc"].notna().all()
    assert fc["fc"].between(-1.0, 1.0).all()

    # The summary's fc_mean is the mean of the run's pairs (same f64 values, summed in
    # another order: 1e-12 covers the rounding).
    assert "fc_mean" in summary.columns
    mean_of_pairs = fc.groupby("run_id")["fc"].mean()
    for _, row in summary.iterrows():
        assert row["fc_mean"] == pytest.approx(mean_of_pairs[row["run_id"]], abs=1e-12)

    # The tables carry the part footer's metadata (the spec text among it).
    metadata = res.nodes.to_arrow().schema.metadata
    assert json.loads(metadata[b"mpr_sweep.spec"]) == NETWORK


def test_network_written_to_out_reads_back_the_same_tables(network_dir):
    memory = mpr.run(NETWORK, threads=2)
    disk = mpr.run(NETWORK, threads=1, out=network_dir / "out")
    assert disk.nodes is not None and disk.fc is not None
    assert disk.nodes.path == network_dir / "out" / "nodes"
    assert disk.fc.path == network_dir / "out" / "fc"
    assert (network_dir / "out" / "nodes" / "part-00000-of-00001.parquet").is_file()
    assert disk.traces is None
    # Bitwise equal values (check_exact), whatever the threads.
    for name, keys in [
        ("summary", ["run_id"]),
        ("nodes", ["run_id", "node"]),
        ("fc", ["run_id", "i", "j"]),
    ]:
        pd.testing.assert_frame_equal(
            sorted_frame(getattr(memory, name), keys),
            sorted_frame(getattr(disk, name), keys),
            check_exact=True,
        )


def test_network_fc_table_is_none_without_output_fc(network_dir):
    spec = {key: value for key, value in NETWORK.items() if key != "output"}
    res = mpr.run(spec, threads=2)
    assert res.fc is None
    assert res.nodes is not None and res.nodes.num_rows == RUNS * N
    # Without output.fc or fc_target no FC is computed: no fc_* columns either.
    columns = set(res.summary.to_pandas().columns)
    assert "fc_mean" not in columns and "fc_fit" not in columns


def test_single_node_sweep_has_no_network_tables(tmp_path):
    res = mpr.run(SINGLE_NODE, threads=1)
    assert res.nodes is None and res.fc is None
    assert res.summary.num_rows == 2
    disk = mpr.run(SINGLE_NODE, threads=1, out=tmp_path / "out")
    assert disk.nodes is None and disk.fc is None
    assert not (tmp_path / "out" / "nodes").exists()


def test_a_bad_weights_file_raises_spec_error_naming_the_key(network_dir):
    (network_dir / "w.txt").write_text("0 1 2\n1 0 2\n")  # 2 x 3: not square
    with pytest.raises(mpr.SpecError, match=r"network\.weights"):
        mpr.run(NETWORK)
    with pytest.raises(mpr.SpecError, match=r"network\.weights"):
        mpr.plan(NETWORK)


def test_network_files_resolve_against_the_working_folder_or_the_spec_file(
    network_dir, tmp_path_factory, monkeypatch
):
    # Text and dict: relative to the working folder. (One line of text, longer than a
    # file name may be: still text.)
    text = json.dumps(NETWORK)
    assert "\n" not in text and len(text) > 255
    assert mpr.plan(text)["runs"] == RUNS
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    with pytest.raises(mpr.SpecError, match=r"network\.weights.*cannot read"):
        mpr.run(NETWORK)
    # A path: relative to the spec file, whatever the working folder.
    spec_file = write_spec(network_dir / "net.yaml", text)
    assert mpr.plan(spec_file)["runs"] == RUNS
    assert mpr.run(str(spec_file), threads=2).nodes.num_rows == RUNS * N
    # Absolute paths in a dict work from anywhere.
    absolute = {
        **NETWORK,
        "network": {
            **NETWORK["network"],
            "weights": str(network_dir / "w.txt"),
            "tract_lengths_mm": str(network_dir / "lengths.txt"),
        },
    }
    assert mpr.run(absolute, threads=2).fc.num_rows == RUNS * PAIRS
