#!/usr/bin/env bash
# Build Coffer in release mode and run the benchmarks; each prints its
# figures next to a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coffer-target}"
cargo build --release --quiet --bin coffer
python3 bench/provision.py "$CARGO_TARGET_DIR/release/coffer" --runs "${RUNS:-5}"
python3 bench/backup.py "$CARGO_TARGET_DIR/release/coffer" --gb "${BACKUP_GB:-1}"
