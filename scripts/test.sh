#!/usr/bin/env bash
# The test command: install what the tests need, then lint and run every
# test (unit, conformance, real MariaDB/PostgreSQL, the real coffer binary).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# Compiled dependencies outlive the clone, so later runs start warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coffer-target}"
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== architecture rules"
bash scripts/check-architecture.sh
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee "${TMPDIR:-/tmp}/coffer-test.log"
status=${PIPESTATUS[0]}
# One closing line with the totals of every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "coffer: %d passed, %d failed, %d skipped\n", p, f, i }' \
  "${TMPDIR:-/tmp}/coffer-test.log"
exit "$status"
