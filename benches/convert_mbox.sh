#!/usr/bin/env bash
# convert-mbox against its peers, in one run, on the same data:
#
#   ownmail convert-mbox  --maildir, durable: each message written into an
#                         unnamed file (O_TMPFILE); per batch of 2,048 or
#                         more, one syncfs, then the links into new/ or cur/
#                         (made by a namer thread while the next batch
#                         syncs), durable by the next syncfs (and one last)
#   mb2md                 Debian's mb2md -s FILE -d DIR (no fsync at all)
#   Python's mailbox      benches/python_mailbox_convert.py (an fsync per
#                         file, none of the directory: `strace -f -c` shows it)
#
# on two mboxes written by tests/data/make_mbox.py (mboxrd):
#
#   corpus  the 6,046 SpamAssassin messages, 32 MB
#   1g      the corpus repeated to 1 GB (187,426 messages)
#
# Each tool converts each mbox into a fresh Maildir. After each run the
# script runs sync(1) so that no tool pays for the previous one's
# write-back, then checks the message count. It prints seconds, MB/s of mbox
# and the ratios tool/ownmail, and ownmail's peak RSS. The targets are on
# those seconds. Beside them it prints each tool's seconds until its
# Maildir is on disk (the run and the sync(1) after it: for ownmail, which
# syncs its own files before it exits, the two are the same but for the
# sync's own cost) and the ratios of those. Outputs are deleted only at
# the end: ext4 scans past inodes freed in the last minutes when it
# allocates new ones, so deleting 187,000 files between runs would slow the
# next tool down (rerunning within ~5 minutes of a previous run is slower too).
#
#   benches/convert_mbox.sh              # about 25 minutes: Python on 1 GB is most of it
#   SETS=corpus benches/convert_mbox.sh  # the corpus only: a quick look
#   GB=2 benches/convert_mbox.sh         # a 2 GB mbox instead of 1 GB
#   PYTHON_SETS=corpus benches/...       # Python's mailbox on the corpus only
#                                        # (it takes ~20 minutes on 1 GB)
#   REPEATS=3 benches/convert_mbox.sh    # ownmail and mb2md 3 times each, in
#                                        # alternating order, each run into a
#                                        # fresh Maildir; ratios from the best
#                                        # (Python runs once)
#   OWNMAIL=/path/to/ownmail benches/... # that binary, not a fresh release build
#   BENCH_DIR=/big/disk benches/...      # where the mboxes and Maildirs go
#                                        # (default: bench-results/, git-ignored)
#
# Where the Maildirs go matters as much as any tool: on ext4 a new folder
# deep in a file system that has held and lost millions of files can
# create files ten times slower than a new directory at its top (the
# inode allocator walks past freed inodes). Alternate, repeat, and prefer a
# BENCH_DIR on a file system with no mass deletion in the last minutes.
#
# Debian packages: mb2md, python3, time (GNU time, for the RSS column).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sets=${SETS:-corpus 1g}
python_sets=${PYTHON_SETS:-$sets}
gb=${GB:-1}
repeats=${REPEATS:-1}

die() { echo "convert_mbox.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found: install the Debian package $2"; }
need mb2md mb2md
need python3 python3
[ -x /usr/bin/time ] || die "/usr/bin/time not found: install the Debian package time"

if [ -n "${OWNMAIL:-}" ]; then
  ownmail=$OWNMAIL # a binary built before (no rebuild)
else
  cargo build --release --locked --quiet
  ownmail=$root/target/release/ownmail
fi
corpus=$(scripts/corpus.sh)

base=${BENCH_DIR:-$root/bench-results}
mkdir -p "$base"
work=$(mktemp -d "$base/convert-mbox.XXXXXX")
trap 'echo "removing $work" >&2; rm -rf "$work"' EXIT

echo "writing the mboxes into $work" >&2
python3 tests/data/make_mbox.py mboxrd "$corpus" "$work/corpus.mbox"
if [[ " $sets " == *" 1g "* ]]; then
  python3 tests/data/make_mbox.py mboxrd "$corpus" "$work/1g.mbox" --min-bytes $((gb * 1000000000))
fi
expected_count() {
  grep -c '^From ' "$1"
}

# Runs one tool; prints "seconds durable_seconds peak_rss_kB messages".
run() {
  local tool=$1 mbox=$2 out=$3
  local start end synced
  sync
  start=$EPOCHREALTIME
  case $tool in
    ownmail) /usr/bin/time -f %M -o "$out.rss" "$ownmail" convert-mbox "$mbox" --maildir "$out" --folder INBOX >/dev/null ;;
    mb2md) /usr/bin/time -f %M -o "$out.rss" mb2md -s "$mbox" -d "$out" >/dev/null 2>&1 ;;
    python) /usr/bin/time -f %M -o "$out.rss" python3 benches/python_mailbox_convert.py "$mbox" "$out" >/dev/null ;;
  esac
  end=$EPOCHREALTIME
  sync
  synced=$EPOCHREALTIME
  local n
  n=$(find "$out/new" "$out/cur" -type f | wc -l)
  echo "$start $end $synced $(tail -1 "$out.rss") $n" |
    awk '{ printf "%.2f %.2f %d %d\n", $2 - $1, $3 - $1, $4, $5 }'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
line() { # set tool seconds bytes ratio durable durable_ratio messages rss
  awk -v s="$1" -v t="$2" -v secs="$3" -v b="$4" -v r="$5" -v d="$6" -v dr="$7" -v n="$8" -v rss="$9" \
    'BEGIN { printf "%-8s %-13s %10.2f %9.1f %12s %10.2f %12s %10d %9d\n", s, t, secs, b / 1e6 / secs, r, d, dr, n, rss }'
}
printf '%-8s %-13s %10s %9s %12s %10s %12s %10s %9s\n' set tool seconds MB/s "tool/ownmail" "durable s" "durable ratio" messages "RSS kB"
# keep_least ARRAY KEY VALUE: ARRAY[KEY] becomes VALUE if it is unset or more.
keep_least() {
  local -n least=$1
  if [ -z "${least[$2]:-}" ] || awk -v a="$3" -v b="${least[$2]}" 'BEGIN { exit !(a < b) }'; then
    least[$2]=$3
  fi
}
for set in $sets; do
  mbox=$work/$set.mbox
  bytes=$(stat -c %s "$mbox")
  want=$(expected_count "$mbox")
  declare -A best=() best_durable=() best_rss=()
  for r in $(seq "$repeats"); do
    # Alternate who goes first: the file system changes as each run fills it.
    tools="ownmail mb2md"
    [ $((r % 2)) -eq 0 ] && tools="mb2md ownmail"
    [ "$r" -eq 1 ] && tools="$tools python"
    for tool in $tools; do
      if [ "$tool" = python ] && [[ " $python_sets " != *" $set "* ]]; then
        printf '%-8s %-13s %10s\n' "$set" python "not run (PYTHON_SETS)"
        continue
      fi
      read -r secs durable rss n < <(run "$tool" "$mbox" "$work/out-$set-$tool-$r")
      [ "$n" -eq "$want" ] || die "$tool stored $n messages of $set, expected $want"
      [ "$repeats" -gt 1 ] && line "$set" "$tool#$r" "$secs" "$bytes" "" "$durable" "" "$n" "$rss"
      keep_least best "$tool" "$secs"
      keep_least best_durable "$tool" "$durable"
      best_rss[$tool]=$(( ${best_rss[$tool]:-0} > rss ? ${best_rss[$tool]:-0} : rss ))
    done
  done
  for tool in ownmail mb2md python; do
    [ -n "${best[$tool]:-}" ] || continue
    ratio=$(awk -v a="${best[$tool]}" -v o="${best[ownmail]}" 'BEGIN { printf "%.2f", a / o }')
    durable_ratio=$(awk -v a="${best_durable[$tool]}" -v o="${best_durable[ownmail]}" 'BEGIN { printf "%.2f", a / o }')
    name=$tool
    [ "$repeats" -gt 1 ] && [ "$tool" != python ] && name="$tool best"
    line "$set" "$name" "${best[$tool]}" "$bytes" "$ratio" "${best_durable[$tool]}" "$durable_ratio" "$want" "${best_rss[$tool]}"
  done
  unset best best_durable best_rss
done
echo "load average before the run: $load_before"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(uname -sr)"
