#!/usr/bin/env bash
# W1 against its peers (brainmass on JAX, numba) in one session; see README.md here.
#
#   bash benches/peers/run.sh [bench.py options, e.g. --repeats 5 --no-noise]
#   bash benches/peers/run.sh --network [network.py options]   # the network row
#
# Makes a virtual environment under target/peers-venv (PEERS_VENV to change), installs
# requirements.txt there (the versions that made tests/data; if that set does not
# install, brainmass 0.1.1 with whatever pip resolves, and says so), builds the release
# binary, and runs bench.py. Outputs go to target/peers/. Needs python3 (3.10-3.12)
# with venv, cargo, and taskset (util-linux) for the 1-thread rows.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${PEERS_VENV:-$repo/target/peers-venv}"
python="${PYTHON:-python3}"

cd "$repo"
if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip

echo "== installing the peers (pinned: $here/requirements.txt)"
if ! "${pip[@]}" install -r "$here/requirements.txt"; then
    echo "!! the pinned set did not install; falling back to brainmass 0.1.1 with the" >&2
    echo "!! nearest versions pip resolves (bench.py prints which)" >&2
    "${pip[@]}" install "brainmass==0.1.1" numba pyarrow pandas
fi
"$venv/bin/python" -m pip --disable-pip-version-check list 2>/dev/null \
    | grep -iE '^(brainmass|brainstate|brainunit|braintools|jax|jaxlib|numba|llvmlite|numpy|pyarrow) '

echo "== building mpr-sweep (release)"
cargo build --release --quiet

cd "$here"
if [ "${1:-}" = "--network" ]; then
    shift
    if [ ! -f "$repo/sweeps/network/data/weights.txt" ]; then
        echo "== fetching the connectome"
        python3 "$repo/sweeps/network/fetch_connectome.py"
    fi
    echo "== running the network comparison (2-3 min)"
    exec "$venv/bin/python" network.py --bin "$repo/target/release/mpr-sweep" \
        --py "$venv/bin/python" --work "$repo/target/peers" "$@"
fi
echo "== running the benchmark (a few minutes)"
exec "$venv/bin/python" bench.py --bin "$repo/target/release/mpr-sweep" \
    --work "$repo/target/peers" "$@"
