"""The documentation's Python snippets run as written, on real results; its links resolve.

Every ```python block of the "Loading results" section of docs/output.md is executed, each
on its own (so each is complete), from a directory holding results/quickstart made from
sweeps/quickstart.yaml, once as one part and once as three shards; then the values the
blocks computed are checked against the files read directly. The Python blocks of the other
sections of README.md and docs/*.md that read results/quickstart only (README's Quick start,
the Output section of docs/output.md) are run too.

Every relative link and image of README.md and docs/*.md must name an existing file or
directory, and a link with a #fragment into a Markdown file must name one of its headings.
"""

import re
from urllib.parse import unquote

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_sweep

LOADING_PAGE = "docs/output.md"
SECTION = "Loading results"
QUICKSTART = REPO / "sweeps" / "quickstart.yaml"
N_RUNS = 441
TRACED = list(range(0, N_RUNS, 50))  # runs: {every: 50}
ROWS_PER_TRACE = 1001  # t = 0, then every 0.1 ms to 100 ms


def doc_pages():
    """README.md and docs/*.md, as paths relative to the repository root."""
    pages = ["README.md"] + sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")
    )
    assert LOADING_PAGE in pages, pages
    return pages


def page_sections(page):
    """{section title: [(line number, code), ...]} for the ```python blocks of one page.

    A section starts at a "# " or "## " heading; "### " subsections belong to their section.
    """
    sections, title, block, start, fenced = {}, None, None, 0, False
    for n, line in enumerate((REPO / page).read_text().splitlines(), 1):
        if block is not None:
            if line.startswith("```"):
                sections.setdefault(title, []).append((start, "\n".join(block) + "\n"))
                block = None
            else:
                block.append(line)
        elif fenced:  # another language's block: its "# " lines are comments
            fenced = not line.startswith("```")
        elif line.startswith(("# ", "## ")):
            title = line.split(" ", 1)[1].strip()
        elif line.strip() == "```python":
            block, start = [], n + 1
        elif line.startswith("```"):
            fenced = True
    return sections


def run_block(page, line, code):
    namespace = {"__name__": f"doc_line_{line}"}
    exec(compile(code, f"{page}, line {line}", "exec"), namespace)
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
    blocks = page_sections(LOADING_PAGE).get(SECTION)
    assert blocks, f'{LOADING_PAGE} has no ```python block under "## {SECTION}"'
    monkeypatch.chdir(base)
    checked = set()
    for line, code in blocks:
        ns = run_block(LOADING_PAGE, line, code)
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
    """(page, section, line, code) of every other block that reads results/quickstart only."""
    out = []
    for page in doc_pages():
        for title, blocks in page_sections(page).items():
            if (page, title) == (LOADING_PAGE, SECTION):
                continue
            for line, code in blocks:
                dirs = set(re.findall(r"results/([\w.-]+)", code))
                if dirs == {"quickstart"}:
                    out.append((page, title, line, code))
    return out


@pytest.fixture(scope="module")
def quickstart_one_part(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme-other")
    run_sweep(QUICKSTART, base / "results" / "quickstart")
    return base


@pytest.mark.parametrize(
    "page, line, code",
    [
        pytest.param(page, line, code, id=f"{page}, {title}, line {line}")
        for page, title, line, code in other_quickstart_blocks()
    ],
)
def test_other_doc_blocks_run(quickstart_one_part, monkeypatch, page, line, code):
    monkeypatch.chdir(quickstart_one_part)
    run_block(page, line, code)


def test_doc_blocks_are_found():
    assert len(page_sections(LOADING_PAGE).get(SECTION, [])) >= len(CHECKS)
    # The blocks test_other_doc_blocks_run must find: a missing one fails here, not skips.
    found = {(page, title) for page, title, _, _ in other_quickstart_blocks()}
    assert {("README.md", "Quick start"), (LOADING_PAGE, "Output")} <= found, found


# [text](target) and ![alt](target), outside code; target up to the first space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(path):
    """(line number, text) of the lines of a Markdown file outside fenced blocks."""
    fenced = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def heading_anchors(path):
    """GitHub's anchors for the headings of a Markdown file ("-1", "-2" on repeats)."""
    anchors, seen = set(), {}
    for _, line in prose_lines(path):
        m = re.match(r"#{1,6} (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links():
    """(page, line, target) of every relative link and image of the documentation."""
    out = []
    for page in doc_pages():
        # Code spans (which may wrap) are blanked, keeping their line breaks; the text of
        # a link may wrap, its target may not.
        lines = list(prose_lines(REPO / page))
        text = "\n".join(line for _, line in lines)
        text = re.sub(r"`[^`]*`", lambda m: "`" + "\n" * m[0].count("\n") + "`", text)
        numbers = [n for n, _ in lines]
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            out.append((page, numbers[text.count("\n", 0, m.start(1))], target))
    return out


def test_relative_links_resolve():
    links = relative_links()
    broken = []
    for page, line, target in links:
        path, _, fragment = target.partition("#")
        file = (REPO / page).parent / unquote(path) if path else REPO / page
        where = f"{page}:{line}: {target}"
        if not file.exists():
            broken.append(f"{where}: no such file")
        elif fragment and file.suffix == ".md":
            if fragment not in heading_anchors(file):
                broken.append(f"{where}: no heading with anchor #{fragment}")
    assert not broken, "\n".join(broken)
    # README.md is the way in: it links every page of docs/.
    linked = {
        ((REPO / page).parent / target.partition("#")[0]).resolve()
        for page, _, target in links
        if page == "README.md"
    }
    unlinked = [p for p in doc_pages()[1:] if (REPO / p).resolve() not in linked]
    assert not unlinked, f"pages of docs/ that README.md does not link: {unlinked}"
    # The checker sees the links it is meant to check (an image, a fragment, ../).
    targets = {t for _, _, t in links}
    expected = {"bistability.png", "output.md#loading-results", "../benches/peers/README.md"}
    assert expected <= targets, targets
