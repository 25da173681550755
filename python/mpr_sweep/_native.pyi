"""Type stubs of the native module ``mpr_sweep._native`` (the Rust engine)."""

from typing import Any

VERSION: str

class SpecError(ValueError):
    """The spec is invalid or cannot be planned (the command line's message)."""

class UsageError(ValueError):
    """A bad argument or result directory; nothing was run or written."""

class OutputError(OSError):
    """Reading the spec file or writing results failed."""

class RunError(RuntimeError):
    """A failure while running."""

class Table:
    """A result table in memory, exported through the Arrow PyCapsule protocol."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    @property
    def num_rows(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    @property
    def metadata(self) -> dict[str, str]: ...

def run(
    text: str | None,
    path: str | None,
    *,
    threads: int | None = None,
    out: str | None = None,
    shard: str | None = None,
    progress: bool = False,
    isa: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    force: bool = False,
) -> tuple[Table | None, Table | None, Table | None, Table | None, dict[str, Any]]: ...
def plan(
    text: str | None, path: str | None, *, shards: int = 1, threads: int | None = None
) -> str: ...
def main(argv: list[str], exe: str | None = None) -> int: ...
