"""The README's Python snippets run as written, on real results.

Every ```python block of README.md's "Loading results" section is executed, each on its
own (so each is complete), from a directory holding results/quickstart made from
sweeps/quickstart.yaml, once as one part and once as three shards; then the values the
blocks computed are checked against the files read directly. The Python blocks of the other
sections that read results/quickstart (the Quick start, the Output section) are run too.
"""

import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_sweep

SECTION = "Loading results"
QUICKSTART = REPO / "sweeps" / "quickstart.yaml"
N_RUNS = 441
TRACED = list(range(0, N_RUNS, 50))  # runs: {every: 50}
ROWS_PER_TRACE = 1001  # t = 0, then every 0.1 ms to 100 ms


def readme_sections():
    """{section title: [(line number, code), ...]} for the ```python blocks of README.md."""
    sections, title, block, start = {}, None, None, 0
    for n, line in enumerate((REPO / "README.md").read_text().splitlines(), 1):
        if block is not None:
            if line.startswith("```"):
                sections.setdefault(title, []).append((start, "\n".join(block) + "\n"))
                block = None
            else:
                block.append(line)
        elif line.startswith("## "):
            title = line[3:].strip()
        elif line.strip() == "```python":
            block, start = [], n + 1
    return sections


def run_block(line, code):
    namespace = {"__name__": f"readme_line_{line}"}
    exec(compile(code, f"README.md, line {line}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module", params=[1, 3], ids=["one-part", "three-shards"])
def quickstart_cwd(request, tmp_path_factory):
    """A directory holding results/quickstart, run whole or as three shards."""
    base = tmp_path_factory.mktemp(f"readme-{request.param}")
    shards = None if request.param == 1 else request.param
    run_sweep(QUICKSTART, base / "results" / "quickstart", shards=shards)
    return base, request.param


@pytest.fixture(scope="module")
def reference(quickstart_cwd):
    base, _ = quickstart_cwd
    summary = pq.read_table(base / "results/quickstart/summary").to_pandas()
    summary = summary.sort_values("run_id").reset_index(drop=True)
    rmap = np.array(
        [
            [
                summary[(summary.J == j) & (summary.eta == e)].r_hz_mean.item()
                for e in np.linspace(-10, 0, 21)
            ]
            for j in np.linspace(0, 30, 21)
        ]
    )
    return summary, rmap


def check_pandas(ns, summary, rmap):
    assert len(ns["summary"]) == N_RUNS
    assert ns["summary"].run_id.dtype == np.dtype("uint64")
    assert ns["rmap"].shape == (21, 21)
    np.testing.assert_array_equal(ns["rmap"].to_numpy(), rmap)
    np.testing.assert_allclose(ns["rmap"].index, np.linspace(0, 30, 21))
    np.testing.assert_allclose(ns["rmap"].columns, np.linspace(-10, 0, 21))
    assert len(ns["traced"]) == len(TRACED) * ROWS_PER_TRACE
    assert sorted(ns["traced"].run_id.unique()) == TRACED
    assert {"eta", "J", "fp_settled"} <= set(ns["traced"].columns)
    run50 = ns["run50"]
    assert len(run50) == ROWS_PER_TRACE and set(run50.eta) == {summary.eta[50]}


def check_polars(ns, summary, rmap):
    assert ns["upper"].height == (summary.eta > -5).sum()
    p = ns["rmap"]
    assert p.columns[0] == "J" and p.shape == (21, 22)
    np.testing.assert_allclose([float(c) for c in p.columns[1:]], np.linspace(-10, 0, 21))
    np.testing.assert_array_equal(p.drop("J").to_numpy(), rmap)
    assert ns["traced"].height == len(TRACED) * ROWS_PER_TRACE
    assert sorted(ns["traced"]["run_id"].unique().to_list()) == TRACED


def check_duckdb(ns, summary, rmap):
    by_eta = ns["by_eta"]
    assert len(by_eta) == 21 and (by_eta.runs == 21).all()
    np.testing.assert_allclose(
        by_eta.r_hz_mean, summary.groupby("eta").r_hz_mean.mean(), rtol=1e-12
    )
    np.testing.assert_array_equal(ns["rmap"], rmap)
    traced = ns["traced"]
    assert len(traced) == len(TRACED) * ROWS_PER_TRACE
    first = traced.groupby("run_id").first()  # ordered by t_ms: the t = 0 rows
    assert (first.t_ms == 0).all() and (first.r_hz == 100.0).all() and (first.v == -2.0).all()


def check_pyarrow(ns, summary, rmap):
    high = ns["settled_high"]
    assert high.num_rows == (summary.fp_settled == "high").sum()
    assert high.column_names == ["run_id", "eta", "J", "r_hz_final"]
    two = ns["two_runs"]
    assert sorted(two.run_id.unique()) == [0, 400] and len(two) == 2 * ROWS_PER_TRACE


def check_metadata(ns, summary, rmap, parts):
    spec = QUICKSTART.read_text()
    assert ns["spec_text"] == spec
    footer = {k.decode(): v.decode() for k, v in ns["footer_meta"].items()}
    schema = {k.decode(): v.decode() for k, v in ns["schema_meta"].items()}
    assert "ARROW:schema" in footer
    for key in [
        "mpr_sweep.spec",
        "mpr_sweep.spec_sha256",
        "mpr_sweep.shard",
        "mpr_sweep.runs",
        "mpr_sweep.isa",
        "mpr_sweep.version",
    ]:
        assert footer[key] == schema[key] == ns["pl_meta"][key], key
    assert ns["pl_meta"]["mpr_sweep.shard"] == f"0/{parts}"
    kv = ns["kv"]
    assert "mpr_sweep.spec" not in set(kv.key)
    for key in [
        "mpr_sweep.spec_sha256",
        "mpr_sweep.shard",
        "mpr_sweep.runs",
        "mpr_sweep.isa",
        "mpr_sweep.version",
    ]:
        assert (kv.key == key).sum() == parts, key  # once per part
    assert sorted(kv[kv.key == "mpr_sweep.shard"].value) == [f"{i}/{parts}" for i in range(parts)]
    assert kv[kv.key == "mpr_sweep.spec_sha256"].value.nunique() == 1


# Which check a block gets: by a call only that block makes.
CHECKS = {
    "pd.read_parquet(": check_pandas,
    "pl.scan_parquet(": check_polars,
    "list(r_hz_mean ORDER BY eta)": check_duckdb,
    "ds.dataset(": check_pyarrow,
    "parquet_kv_metadata(": check_metadata,
}


def test_loading_results_blocks(quickstart_cwd, reference, monkeypatch):
    base, parts = quickstart_cwd
    blocks = readme_sections().get(SECTION)
    assert blocks, f'README.md has no ```python block under "## {SECTION}"'
    monkeypatch.chdir(base)
    checked = set()
    for line, code in blocks:
        ns = run_block(line, code)
        markers = [m for m in CHECKS if m in code]
        # the metadata block also uses Polars and DuckDB: its own marker wins
        if "parquet_kv_metadata(" in markers:
            markers = ["parquet_kv_metadata("]
        assert len(markers) == 1, (line, markers)
        check = CHECKS[markers[0]]
        if check is check_metadata:
            check(ns, *reference, parts)
        else:
            check(ns, *reference)
        checked.add(markers[0])
    assert checked == set(CHECKS), set(CHECKS) - checked


def other_quickstart_blocks():
    out = []
    for title, blocks in readme_sections().items():
        if title == SECTION:
            continue
        for line, code in blocks:
            dirs = set(re.findall(r"results/([\w.-]+)", code))
            if dirs == {"quickstart"}:
                out.append(pytest.param(line, code, id=f"{title}, line {line}"))
    return out


@pytest.fixture(scope="module")
def quickstart_one_part(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme-other")
    run_sweep(QUICKSTART, base / "results" / "quickstart")
    return base


@pytest.mark.parametrize("line, code", other_quickstart_blocks())
def test_other_readme_blocks_run(quickstart_one_part, monkeypatch, line, code):
    monkeypatch.chdir(quickstart_one_part)
    run_block(line, code)


def test_readme_blocks_are_found():
    sections = readme_sections()
    assert len(sections.get(SECTION, [])) >= len(CHECKS)
