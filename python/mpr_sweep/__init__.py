"""Parameter sweeps of the Montbrió–Pazó–Roxin neural mass model, from Python.

The engine is the ``mpr-sweep`` Rust crate (the same code as the command line, in the
native module ``mpr_sweep._native``): results are bitwise identical to what
``mpr-sweep run`` writes.

>>> import mpr_sweep
>>> res = mpr_sweep.run("sweeps/quickstart.yaml")          # in memory, no files
>>> summary = res.summary.to_pandas()                      # or .to_polars(), pyarrow.table(...)
>>> rmap = summary.pivot(index="J", columns="eta", values="r_hz_mean")
>>> mpr_sweep.plan("sweeps/quickstart.yaml")["runs"]       # what `plan --json` prints
441

Functions: :func:`run`, :func:`plan`. Errors: :class:`SpecError` (a ``ValueError``),
:class:`UsageError` (a ``ValueError``), :class:`OutputError` (an ``OSError``),
:class:`RunError` (a ``RuntimeError``); Ctrl-C raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Union

from . import _native
from ._native import OutputError, RunError, SpecError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import polars
    import pyarrow

__all__ = [
    "run",
    "plan",
    "Result",
    "Table",
    "SpecError",
    "UsageError",
    "OutputError",
    "RunError",
    "__version__",
]

__version__: str = _native.VERSION

#: A spec: YAML text, the path of a YAML file, or a dict of the same schema.
SpecLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def _spec_args(spec: SpecLike) -> tuple[str | None, str | None]:
    """``(text, path)`` for the native functions: a path when ``spec`` names a file."""
    if isinstance(spec, Mapping):
        # JSON is YAML: the dict is validated by the same parser, with the same messages
        # (their line and column refer to this text, one key per line).
        try:
            return json.dumps(spec, indent=2, allow_nan=False), None
        except (TypeError, ValueError) as e:
            raise SpecError(f"spec: the dict cannot be written as YAML: {e}") from None
    if isinstance(spec, os.PathLike):
        return None, os.fspath(spec)
    if isinstance(spec, str):
        # A one-line string naming an existing file is a path; anything else is YAML text
        # (a one-line flow mapping may be too long to be a file name: stat then fails).
        try:
            is_file = "\n" not in spec and bool(spec.strip()) and Path(spec).is_file()
        except OSError:
            is_file = False
        return (None, spec) if is_file else (spec, None)
    raise TypeError(
        f"spec: expected YAML text, a path or a dict, got {type(spec).__name__}"
    )


def _shard_arg(shard: str | tuple[int, int] | None) -> str | None:
    if shard is None or isinstance(shard, str):
        return shard
    index, count = shard
    return f"{index}/{count}"


class Table:
    """One result table: ``summary`` (one row per run), ``traces`` (long format), or a
    network's ``nodes`` (one row per run and node) or ``fc`` (one row per run and node pair).

    It implements the Arrow PyCapsule protocol (``__arrow_c_stream__``), so
    ``pyarrow.table(t)``, ``polars.DataFrame(t)``, ``polars.from_arrow(t)`` and DuckDB
    (``duckdb.sql("SELECT ... FROM t")``) read it without copying. The schema's metadata
    holds the ``mpr_sweep.*`` pairs of a part's footer (spec, sha256, shard, runs, isa).

    In memory (``path`` is ``None``) it holds the Arrow batches of the run; written with
    ``out`` it reads the Parquet parts in ``path`` when asked (pyarrow needed).
    """

    def __init__(self, native: Any = None, path: Path | None = None):
        self._native = native
        #: The directory of the Parquet parts (``OUT/summary``, ``OUT/traces``,
        #: ``OUT/nodes``, ``OUT/fc``), or None.
        self.path = path

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """An Arrow C stream over the table (the Arrow PyCapsule protocol)."""
        if self._native is not None:
            return self._native.__arrow_c_stream__(requested_schema)
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> "pyarrow.Table":
        """The table as a ``pyarrow.Table`` (needs pyarrow)."""
        import pyarrow as pa

        if self._native is not None:
            return pa.table(self._native)
        import pyarrow.parquet as pq

        return pq.read_table(self.path)

    def to_pandas(self) -> "pandas.DataFrame":
        """The table as a pandas DataFrame (needs pandas and pyarrow)."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> "polars.DataFrame":
        """The table as a Polars DataFrame (needs polars; pyarrow only for parts on disk)."""
        import polars as pl

        if self._native is not None:
            return pl.DataFrame(self._native)
        return pl.read_parquet(str(self.path / "*.parquet"))

    @property
    def num_rows(self) -> int:
        """Rows of the table."""
        if self._native is not None:
            return self._native.num_rows
        return self.to_arrow().num_rows

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else str(self.path)
        if self._native is not None:
            return f"<mpr_sweep.Table {self._native.num_rows} rows x {len(self._native.column_names)} columns, {where}>"
        return f"<mpr_sweep.Table {where}>"


@dataclass(frozen=True)
class Result:
    """What :func:`run` returns.

    Attributes:
        summary: one row per run (a :class:`Table`).
        traces: the traces in long format, or None when the spec has no ``traces``.
        nodes: a network's per-node statistics, one row per run and node, or None for a
            single-node sweep (no ``network`` section).
        fc: a network's simulated functional connectivity, one row per run and node pair
            ``i < j``, or None without ``output.fc: true``.
        out: the result directory, or None for results in memory.
        runs: the run ids of the shard, ``(start, end)``.
        run_steps: steps integrated, summed over the runs.
        elapsed_s: wall-clock time of the run in seconds.
        diverged: runs that diverged.
        skipped: the shard was already complete in ``out`` and ``resume=True`` skipped it.
        threads: worker threads used.
        isa: the kernel's instruction-set path (e.g. ``portable``, ``avx2+fma``).
    """

    summary: Table
    traces: Table | None
    nodes: Table | None
    fc: Table | None
    out: Path | None
    runs: tuple[int, int]
    run_steps: float
    elapsed_s: float
    diverged: int
    skipped: bool
    threads: int
    isa: str


def run(
    spec: SpecLike,
    *,
    threads: int | None = None,
    out: str | os.PathLike[str] | None = None,
    shard: str | tuple[int, int] | None = None,
    progress: bool = False,
    isa: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    force: bool = False,
) -> Result:
    """Run a sweep and return its results.

    Args:
        spec: the sweep: YAML text, the path of a YAML file (``str`` or ``os.PathLike``),
            or a dict of the same schema (see docs/spec.md). A ``network`` section's files
            are relative to the spec file for a path, and to the working folder
            (``os.getcwd()``) for text or a dict. Invalid specs raise
            :class:`SpecError` with the message of ``mpr-sweep plan`` (key path, line and
            column; for a path, the file's name first).
        threads: worker threads; default: Slurm's allocation inside a job, else every core.
        out: a result directory: write exactly what ``mpr-sweep run SPEC --out OUT``
            writes (Parquet parts, ``spec.yaml``) and return tables that read them. Without
            it, nothing is written and the tables are in memory.
        shard: run only shard ``"I/N"`` (or ``(I, N)``) of the sweep; default: all of it.
        progress: print the progress line on stderr.
        isa: the kernel path: ``"auto"``, ``"portable"``, ``"avx2"`` or ``"avx512"``.
        resume: with ``out``, skip the shard if its parts are complete (``--resume``).
        overwrite: with ``out``, replace results already there (``--overwrite``).
        force: run even when the traces would exceed the size limit (``--force``).

    Returns:
        A :class:`Result`: ``result.summary``, ``result.traces`` (None without traces),
        and for a network ``result.nodes`` and ``result.fc`` (None for a single node; fc
        None without ``output.fc``) are :class:`Table` objects that pyarrow, Polars,
        pandas and DuckDB read through the Arrow PyCapsule protocol, e.g.
        ``result.summary.to_polars()``.

    Raises:
        SpecError: the spec is invalid or cannot be planned, or ``shard`` is not a shard
            of it (a ``ValueError``).
        UsageError: a bad ``isa`` or ``threads``, or ``out`` holds another spec's results
            or an existing part (a ``ValueError``).
        OutputError: the spec file cannot be read or writing failed (an ``OSError``).
        RunError: another failure while running (a ``RuntimeError``).
        KeyboardInterrupt: Ctrl-C (or a Jupyter interrupt) stopped the run, within a
            fraction of a second; nothing of the shard was kept.

    Example:
        >>> res = mpr_sweep.run({"model": {...}, "sweep": {...}})   # doctest: +SKIP
        >>> res.summary.to_pandas().pivot(index="J", columns="eta", values="r_hz_mean")
    """
    text, path = _spec_args(spec)
    out_path = None if out is None else Path(os.fspath(out))
    summary, traces, nodes, fc, report = _native.run(
        text,
        path,
        threads=threads,
        out=None if out_path is None else os.fspath(out_path),
        shard=_shard_arg(shard),
        progress=progress,
        isa=isa,
        resume=resume,
        overwrite=overwrite,
        force=force,
    )
    if out_path is None:
        summary_table = Table(summary)
        traces_table, nodes_table, fc_table = (
            None if t is None else Table(t) for t in (traces, nodes, fc)
        )
    else:
        summary_table = Table(path=out_path / "summary")
        # The run created the directories of exactly the tables its spec has.
        traces_table, nodes_table, fc_table = (
            Table(path=d) if d.is_dir() else None
            for d in (out_path / "traces", out_path / "nodes", out_path / "fc")
        )
    return Result(
        summary=summary_table,
        traces=traces_table,
        nodes=nodes_table,
        fc=fc_table,
        out=out_path,
        runs=tuple(report["runs"]),
        run_steps=report["run_steps"],
        elapsed_s=report["elapsed_s"],
        diverged=report["diverged"],
        skipped=report["skipped"],
        threads=report["threads"],
        isa=report["isa"],
    )


def plan(spec: SpecLike, *, shards: int = 1, threads: int | None = None) -> dict[str, Any]:
    """The plan of a sweep, as the dict that ``mpr-sweep plan --json`` prints.

    Args:
        spec: YAML text, a path or a dict, as for :func:`run`.
        shards: show how the runs split into this many shards (``--shards``).
        threads: threads assumed by the time estimate; default as for :func:`run`.

    Returns:
        The axes, run count, steps, estimated output size and time, and shard ranges.

    Raises:
        SpecError: the spec is invalid or cannot be planned.
    """
    text, path = _spec_args(spec)
    return json.loads(_native.plan(text, path, shards=shards, threads=threads))


def _console() -> int:
    """The ``mpr-sweep`` command installed with the package: the Rust command line."""
    argv = ["mpr-sweep", *sys.argv[1:]]
    # sbatch scripts call the command that is running: this script, not the interpreter.
    exe = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None
    return _native.main(argv, exe)
