#!/usr/bin/env bash
# Runs every test: installs the peers the interop tests talk to, fetches the
# real-world corpus, then the whole cargo test suite (unit, transcript,
# integration, interop, stress). This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
scripts/corpus.sh >/dev/null
cargo test --locked --all-targets "$@"
