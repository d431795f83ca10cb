#!/usr/bin/env bash
# Build Coffer in release mode and run every benchmark; each prints its
# figures next to a baseline measured in the same run and keeps them as
# JSON in bench/results/. Run it on a quiet machine: the figures are
# timings. Sizes: RUNS (provisioning runs, default 5), BACKUP_GB (default
# 1), SCALE_N (instances, default 200). At the end, bench/compare.py sets
# each benchmark's figures next to its previous run's (when there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh >/dev/null
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coffer-target}"
cargo build --release --quiet --bin coffer --bin coffer-agent
bin="$CARGO_TARGET_DIR/release/coffer"
python3 bench/provision.py "$bin" --runs "${RUNS:-5}"
python3 bench/backup.py "$bin" --gb "${BACKUP_GB:-1}"
python3 bench/scale.py "$bin" --instances "${SCALE_N:-200}"
python3 bench/api.py "$bin"
# Informational: a comparison that cannot be made does not fail the run.
python3 bench/compare.py || echo "bench/compare.py could not compare the results (see above)" >&2
