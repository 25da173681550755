"""A sharded sweep directory read by pandas, Polars, DuckDB and pyarrow: every run exactly
once, the documented column types, the key-value metadata, and traces joined to summaries."""

import hashlib

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import (
    SHARDED_RUNS,
    SHARDED_SPEC,
    SHARDED_TRACE_ROWS_PER_RUN,
    SHARDED_TRACED,
    SHARDS,
)

# The documented summary columns of SHARDED_SPEC, by kind (docs/output.md, "Output").
IDS = {"run_id": "u64", "point_id": "u64", "replicate": "u32"}
PARAMS = [
    "tau_ms",
    "eta",
    "J",
    "delta",
    "input_r_hz",
    "input_v",
    "noise_v_sigma",
    "dt_ms",
    "init_r_hz",
    "init_v",
]
STATS = [
    f"{var}_{stat}" for var in ("r_hz", "v") for stat in ("mean", "std", "min", "max", "final")
]
FP_FLOATS = ["fp_r_hz_low", "fp_v_low", "fp_r_hz_high", "fp_v_high"]
EXPECTED = {
    **IDS,
    **{c: "f64" for c in PARAMS + STATS + FP_FLOATS + ["diverged_at_ms"]},
    "diverged": "bool",
    "fp_count": "u8",
    "fp_settled": "str",
    "dt_stable": "bool",
    "dt_stable_max_ms": "f64",
}

PANDAS = {
    "u64": np.dtype("uint64"),
    "u32": np.dtype("uint32"),
    "u8": np.dtype("uint8"),
    "f64": np.dtype("float64"),
    "bool": np.dtype("bool"),
}
POLARS = {
    "u64": pl.UInt64,
    "u32": pl.UInt32,
    "u8": pl.UInt8,
    "f64": pl.Float64,
    "bool": pl.Boolean,
    "str": pl.String,
}
DUCKDB = {
    "u64": "UBIGINT",
    "u32": "UINTEGER",
    "u8": "UTINYINT",
    "f64": "DOUBLE",
    "bool": "BOOLEAN",
    "str": "VARCHAR",
}
ARROW = {
    "u64": pa.uint64(),
    "u32": pa.uint32(),
    "u8": pa.uint8(),
    "f64": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}

TRACE_EXPECTED = {"run_id": "u64", "t_ms": "f64", "r_hz": "f64", "v": "f64"}


def parts(d, kind="summary"):
    found = sorted((d / kind).glob("*.parquet"))
    assert [p.name for p in found] == [
        f"part-{i:05d}-of-{SHARDS:05d}.parquet" for i in range(SHARDS)
    ]
    return found


def check_columns(names):
    assert list(names)[:3] == ["run_id", "point_id", "replicate"]
    assert sorted(names) == sorted(EXPECTED)


def check_all_runs_once(run_ids):
    run_ids = np.asarray(run_ids)
    assert len(run_ids) == SHARDED_RUNS
    assert np.array_equal(np.sort(run_ids), np.arange(SHARDED_RUNS))


def check_values(df):
    """Shared value checks on a pandas frame, whichever library produced it."""
    df = df.sort_values("run_id").reset_index(drop=True)
    assert (df.run_id == df.point_id * 3 + df.replicate).all()
    assert not df.diverged.any()
    assert set(df.fp_settled) <= {"low", "high", "none"}
    assert df.fp_count.between(1, 3).all()
    assert df.init_r_hz.between(0, 50).all() and (df.init_v == -2.0).all()
    assert sorted(df.eta.unique()) == [-8.0, -6.0, -4.0, -2.0]


def test_pandas_reads_the_directory(sharded_sweep):
    parts(sharded_sweep)
    d = pd.read_parquet(sharded_sweep / "summary")
    check_columns(d.columns)
    check_all_runs_once(d.run_id)
    for col, kind in EXPECTED.items():
        if kind == "str":
            # object in pandas 2, the "str" dtype in pandas 3: a string column either way
            assert pd.api.types.is_string_dtype(d[col].dtype), (col, d[col].dtype)
        else:
            assert d[col].dtype == PANDAS[kind], (col, d[col].dtype)
    check_values(d)


def test_polars_scans_the_glob(sharded_sweep):
    lf = pl.scan_parquet(sharded_sweep / "summary" / "*.parquet")
    schema = lf.collect_schema()
    check_columns(schema.names())
    for col, kind in EXPECTED.items():
        assert schema[col] == POLARS[kind], (col, schema[col])
    d = lf.collect()
    check_all_runs_once(d["run_id"].to_numpy())
    assert d["run_id"].n_unique() == SHARDED_RUNS
    check_values(d.to_pandas())


def test_duckdb_reads_the_glob(sharded_sweep):
    src = f"read_parquet('{sharded_sweep}/summary/*.parquet')"
    con = duckdb.connect()
    described = con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall()
    types = {row[0]: row[1] for row in described}
    check_columns([row[0] for row in described])
    for col, kind in EXPECTED.items():
        assert types[col] == DUCKDB[kind], (col, types[col])
    [(n, distinct, lo, hi)] = con.sql(
        f"SELECT count(*), count(DISTINCT run_id), min(run_id), max(run_id) FROM {src}"
    ).fetchall()
    assert (n, distinct, lo, hi) == (SHARDED_RUNS, SHARDED_RUNS, 0, SHARDED_RUNS - 1)
    check_all_runs_once(con.sql(f"SELECT run_id FROM {src}").fetchnumpy()["run_id"])
    check_values(con.sql(f"SELECT * FROM {src}").df())


def test_pyarrow_dataset(sharded_sweep):
    dataset = ds.dataset(sharded_sweep / "summary", format="parquet")
    assert len(dataset.files) == SHARDS
    check_columns(dataset.schema.names)
    for col, kind in EXPECTED.items():
        assert dataset.schema.field(col).type == ARROW[kind], (col, dataset.schema.field(col))
    table = dataset.to_table()
    check_all_runs_once(table["run_id"].to_numpy())
    check_values(table.to_pandas())


def test_trace_dtypes(sharded_sweep):
    parts(sharded_sweep, "traces")
    schema = ds.dataset(sharded_sweep / "traces").schema
    assert schema.names == list(TRACE_EXPECTED)
    assert all(schema.field(c).type == ARROW[k] for c, k in TRACE_EXPECTED.items())
    lf_schema = pl.scan_parquet(sharded_sweep / "traces" / "*.parquet").collect_schema()
    assert all(lf_schema[c] == POLARS[k] for c, k in TRACE_EXPECTED.items())
    t = pd.read_parquet(sharded_sweep / "traces")
    assert all(t[c].dtype == PANDAS[k] for c, k in TRACE_EXPECTED.items())


# --- metadata -------------------------------------------------------------------------


def expected_metadata(i):
    per = SHARDED_RUNS // SHARDS
    return {
        "mpr_sweep.spec": SHARDED_SPEC,
        "mpr_sweep.spec_sha256": hashlib.sha256(SHARDED_SPEC.encode()).hexdigest(),
        "mpr_sweep.shard": f"{i}/{SHARDS}",
        "mpr_sweep.runs": f"{i * per}..{(i + 1) * per}",
    }


def check_metadata(meta, i):
    for key, value in expected_metadata(i).items():
        assert meta[key] == value, key
    assert meta["mpr_sweep.isa"] in {"avx512", "avx2+fma", "portable"}
    assert meta["mpr_sweep.version"]


@pytest.mark.parametrize("kind", ["summary", "traces"])
def test_metadata_pyarrow(sharded_sweep, kind):
    assert (sharded_sweep / "spec.yaml").read_text() == SHARDED_SPEC
    for i, part in enumerate(parts(sharded_sweep, kind)):
        schema_meta = pq.read_schema(part).metadata  # the Arrow schema's pairs
        footer_meta = pq.read_metadata(part).metadata  # the Parquet footer's pairs
        for raw in (schema_meta, footer_meta):
            check_metadata({k.decode(): v.decode() for k, v in raw.items()}, i)
    # A dataset's schema carries the pairs too (those of its first part).
    meta = ds.dataset(sharded_sweep / kind).schema.metadata
    assert meta[b"mpr_sweep.spec_sha256"] == expected_metadata(0)["mpr_sweep.spec_sha256"].encode()


def test_metadata_polars(sharded_sweep):
    for i, part in enumerate(parts(sharded_sweep)):
        if hasattr(pl, "read_parquet_metadata"):
            meta = pl.read_parquet_metadata(part)
        else:  # older Polars: read the footer with pyarrow
            meta = {k.decode(): v.decode() for k, v in pq.read_metadata(part).metadata.items()}
        check_metadata(meta, i)


def test_polars_has_read_parquet_metadata():
    # docs/output.md uses pl.read_parquet_metadata; it exists in the Polars CI installs.
    assert hasattr(pl, "read_parquet_metadata"), pl.__version__


def test_metadata_duckdb(sharded_sweep):
    rows = duckdb.sql(
        "SELECT file_name, decode(key) AS key, decode(value) AS value "
        f"FROM parquet_kv_metadata('{sharded_sweep}/summary/*.parquet')"
    ).fetchall()
    by_file = {}
    for file_name, key, value in rows:
        by_file.setdefault(file_name, {})[key] = value
    files = [str(p) for p in parts(sharded_sweep)]
    assert sorted(by_file) == sorted(files)
    for i, f in enumerate(files):
        check_metadata(by_file[f], i)


# --- traces joined to summaries ---------------------------------------------------------


def check_joined(j):
    """j: pandas frame of trace rows with the summary's init_r_hz and init_v joined."""
    assert sorted(j.run_id.unique()) == SHARDED_TRACED
    counts = j.groupby("run_id").size()
    assert (counts == SHARDED_TRACE_ROWS_PER_RUN).all(), counts
    for _, g in j.groupby("run_id"):
        g = g.sort_values("t_ms")
        np.testing.assert_allclose(
            g.t_ms, np.arange(SHARDED_TRACE_ROWS_PER_RUN) * 0.5, rtol=0, atol=1e-9
        )
        first = g.iloc[0]
        assert first.t_ms == 0.0
        assert first.r_hz == first.init_r_hz and first.v == first.init_v


def test_traces_join_pandas(sharded_sweep):
    s = pd.read_parquet(sharded_sweep / "summary")
    t = pd.read_parquet(sharded_sweep / "traces")
    assert t.run_id.isin(s.run_id).all()  # every traced run is in the summary
    j = t.merge(
        s[["run_id", "init_r_hz", "init_v"]], on="run_id", how="inner", validate="many_to_one"
    )
    assert len(j) == len(t)
    check_joined(j)


def test_traces_join_polars(sharded_sweep):
    s = pl.scan_parquet(sharded_sweep / "summary" / "*.parquet")
    t = pl.scan_parquet(sharded_sweep / "traces" / "*.parquet")
    orphans = t.join(s, on="run_id", how="anti").collect()
    assert orphans.height == 0
    j = t.join(s.select("run_id", "init_r_hz", "init_v"), on="run_id").collect()
    assert j.height == len(SHARDED_TRACED) * SHARDED_TRACE_ROWS_PER_RUN
    check_joined(j.to_pandas())


def test_traces_join_duckdb(sharded_sweep):
    s = f"read_parquet('{sharded_sweep}/summary/*.parquet')"
    t = f"read_parquet('{sharded_sweep}/traces/*.parquet')"
    orphans = duckdb.sql(
        f"SELECT count(*) FROM {t} AS t ANTI JOIN {s} AS s USING (run_id)"
    ).fetchall()
    assert orphans == [(0,)]
    j = duckdb.sql(
        f"SELECT t.*, s.init_r_hz, s.init_v FROM {t} AS t JOIN {s} AS s USING (run_id)"
    ).df()
    check_joined(j)


def test_plan_agrees_with_the_files(sharded_sweep):
    from conftest import plan_json

    plan = plan_json(sharded_sweep / "spec.yaml", shards=SHARDS)
    assert plan["runs"] == SHARDED_RUNS
    assert plan["trace_rows"] == len(SHARDED_TRACED) * SHARDED_TRACE_ROWS_PER_RUN
    ranges = [
        pq.read_metadata(p).metadata[b"mpr_sweep.runs"].decode() for p in parts(sharded_sweep)
    ]
    assert ranges == [f"{a}..{b}" for a, b in plan["shard_runs"]]
