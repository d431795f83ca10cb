#!/usr/bin/env bash
# The dependency rules of ARCHITECTURE.md, checked on the real crate graph.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
forbid() { # crate, forbidden dependency, reason
  if cargo tree -q -e normal -p "$1" --prefix none 2>/dev/null | awk '{print $1}' | grep -qx "$2"; then
    echo "architecture: $1 must not depend on $2 ($3)"
    fail=1
  fi
}
forbid coffer-agent coffer-meta "the guest agent never touches the metadata store"
for dep in coffer-datastores coffer-bus coffer-meta coffer-compute coffer-storage opendal sqlx; do
  forbid coffer-strategy "$dep" "strategy traits depend on no datastore, storage SDK or bus"
done
for dep in coffer-model coffer-strategy coffer-meta coffer-bus coffer-storage coffer-datastores; do
  forbid coffer-pipeline "$dep" "the pipeline depends on nothing of ours"
done
for dep in coffer-pipeline coffer-storage; do
  forbid coffer-api "$dep" "the API holds no backup keys and never touches storage"
done
forbid coffer-api coffer-datastores "only datastore modules know a datastore's commands and SQL"
forbid coffer-taskmanager coffer-datastores "only datastore modules know a datastore's commands and SQL"
forbid coffer-model sqlx "the model does no I/O"
forbid coffer-model tokio "the model does no I/O"
[ "$fail" = 0 ] && echo "architecture: dependency rules hold"
exit "$fail"
