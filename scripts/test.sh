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
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "${TMPDIR:-/tmp}/coffer-test.log"
status=${PIPESTATUS[0]}
# The end-to-end suite once more, every `coffer up` replaced by the roles as
# separate processes (task manager, API) on PostgreSQL and RabbitMQ.
echo "== cargo test -p coffer, roles apart on PostgreSQL + RabbitMQ"
COFFER_TEST_ROLES_APART=1 cargo test -p coffer --tests --locked --no-fail-fast 2>&1 | tee -a "${TMPDIR:-/tmp}/coffer-test.log"
apart=${PIPESTATUS[0]}
[ "$status" = 0 ] && status=$apart
# One closing line with the totals of every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "coffer: %d passed, %d failed, %d skipped\n", p, f, i }' \
  "${TMPDIR:-/tmp}/coffer-test.log"
exit "$status"
