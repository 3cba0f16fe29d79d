#!/usr/bin/env bash
# Delivers the 6,046 SpamAssassin corpus messages one process per message,
# in one run, with:
#
#   cat              the floor: the same loop, one process start per message
#   ownmail deliver  --maildir, fsyncs file and directory
#   dovecot-lda      minimal config in a temporary folder (no -d: it runs as
#                    the invoking user, as Postfix's mailbox_command runs it);
#                    default mail_fsync=optimized
#   maildrop         a mailfilter whose DEFAULT is a Maildir
#   procmail         a procmailrc whose DEFAULT is a Maildir (trailing /)
#
# each into a fresh Maildir, and prints messages per second and the ratios
# ownmail/peer. After each run it checks that the Maildir holds exactly 6,046
# messages and nothing is left in tmp/. When run as root, every loop runs as
# nobody (an MTA never runs a delivery agent as root, and dovecot-lda refuses
# root without -d).
#
#   benches/deliver.sh                 # needs the corpus: scripts/corpus.sh
#   ROUNDS=3 benches/deliver.sh        # each tool 3 times, interleaved; best kept
#   LIMIT=500 benches/deliver.sh       # the first 500 messages only: a quick
#                                      # look, not a figure to publish
#
# Debian packages: dovecot-core (dovecot-lda), maildrop, procmail, python3,
# util-linux (setpriv).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${ROUNDS:-1}
limit=${LIMIT:-6046}
lda=${DOVECOT_LDA:-/usr/lib/dovecot/dovecot-lda}

die() { echo "deliver.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found: install the Debian package $2"; }
[ -x "$lda" ] || die "$lda not found: install the Debian package dovecot-core"
need maildrop maildrop
need procmail procmail
need python3 python3
[ "$(id -u)" -ne 0 ] || need setpriv util-linux

cargo build --release --locked --quiet
ownmail=$root/target/release/ownmail
corpus=$(scripts/corpus.sh)

work=$(mktemp -d "${TMPDIR:-/tmp}/ownmail-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

# Bare RFC 5322 messages: the leading mbox "From " line stripped (when there
# is one), once, outside the timed loops.
mkdir "$work/msgs"
python3 - "$corpus" "$work/msgs" "$limit" <<'EOF'
import pathlib, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = sorted(src.glob("*/*.txt"))
assert len(files) == 6046, f"{len(files)} corpus messages in {src}, expected 6046"
for i, f in enumerate(files[: int(sys.argv[3])]):
    raw = f.read_bytes()
    if raw.startswith(b"From "):
        raw = raw[raw.find(b"\n") + 1:]
    (dst / f"{i:05d}.eml").write_bytes(raw)
EOF
total=$(find "$work/msgs" -name '*.eml' | wc -l)
[ "$total" -eq "$limit" ] || die "prepared $total messages, expected $limit"

# The loop, the same for every tool: one process per message, the message
# on stdin. It prints the seconds it took.
cat > "$work/loop.sh" <<'EOF'
set -euo pipefail
msgs=$1
shift
start=$EPOCHREALTIME
for f in "$msgs"/*.eml; do
  "$@" <"$f" >/dev/null
done
end=$EPOCHREALTIME
echo "$start $end" | awk '{ printf "%.3f\n", $2 - $1 }'
EOF

# Who the loops run as, with a clean environment.
if [ "$(id -u)" -eq 0 ]; then
  uid=$(id -u nobody)
  gid=$(id -g nobody)
  as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
  user=nobody
else
  uid=$(id -u)
  gid=$(id -g)
  as_user=()
  user=$(id -un)
fi

# Configuration for the peers, written once; each run gets a fresh Maildir.
mkdir "$work/home"
cat > "$work/dovecot-lda.conf" <<EOF
# Minimal: deliver into out/dovecot-lda; everything else default
# (mail_fsync = optimized: fsync the file before the rename, fdatasync the
# directory after it).
base_dir = $work/lda-run
state_dir = $work/lda-state
log_path = $work/dovecot-lda.log
hostname = localhost
postmaster_address = postmaster@localhost
first_valid_uid = 1
mail_location = maildir:$work/out/dovecot-lda
EOF
cat > "$work/mailfilter" <<EOF
DEFAULT="$work/out/maildrop"
EOF
chmod 600 "$work/mailfilter"
cat > "$work/procmailrc" <<EOF
MAILDIR=$work
DEFAULT=$work/out/procmail/
LOGFILE=
VERBOSE=off
EOF

chown -R "$uid:$gid" "$work"

tools=(cat ownmail dovecot-lda maildrop procmail)
# Sets cmd to the command line of a tool.
command_for() {
  case $1 in
    cat) cmd=(cat) ;;
    ownmail) cmd=("$ownmail" deliver --maildir "$work/out/ownmail") ;;
    dovecot-lda) cmd=("$lda" -c "$work/dovecot-lda.conf") ;;
    maildrop) cmd=(maildrop "$work/mailfilter") ;;
    procmail) cmd=(procmail -m "$work/procmailrc") ;;
  esac
}

declare -A best
run_one() {
  local tool=$1
  rm -rf "$work/out"
  mkdir -p "$work/out"
  if [ "$tool" != cat ]; then
    mkdir -p "$work/out/$tool"/{cur,new,tmp}
  fi
  chown -R "$uid:$gid" "$work/out"
  local cmd seconds
  command_for "$tool"
  if ! seconds=$(cd "$work" && env -i PATH=/usr/bin:/bin HOME="$work/home" USER="$user" \
    LOGNAME="$user" XDG_CONFIG_HOME=/nonexistent "${as_user[@]}" \
    bash "$work/loop.sh" "$work/msgs" "${cmd[@]}" 2>"$work/$tool.stderr"); then
    tail -5 "$work/$tool.stderr" >&2
    die "$tool failed"
  fi
  if [ "$tool" != cat ]; then
    local md=$work/out/$tool n left
    n=$(find "$md/new" "$md/cur" -type f | wc -l)
    left=$(find "$md/tmp" -type f | wc -l)
    [ "$n" -eq "$total" ] || die "$tool: $n messages in $md, expected $total"
    [ "$left" -eq 0 ] || die "$tool: $left files left in $md/tmp"
  fi
  local rate
  rate=$(awk -v n="$total" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
  printf '  %-12s round %d: %8.2f s  %6d msg/s\n' "$tool" "$round" "$seconds" "$rate" >&2
  if [ -z "${best[$tool]:-}" ] || [ "$rate" -gt "${best[$tool]}" ]; then
    best[$tool]=$rate
  fi
}

echo "deliver: $total corpus messages, one process per message, as $user, $rounds round(s)" >&2
for round in $(seq 1 "$rounds"); do
  for tool in "${tools[@]}"; do
    run_one "$tool"
  done
done

own=${best[ownmail]}
mkdir -p "$root/bench-results"
{
  echo
  echo "| tool | messages/s | ownmail / tool |"
  echo "| ---- | ---------: | -------------: |"
  for tool in "${tools[@]}"; do
    label=$tool
    [ "$tool" = cat ] && label="cat (floor)"
    [ "$tool" = ownmail ] && label="ownmail deliver"
    ratio=$(awk -v a="$own" -v b="${best[$tool]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| $label | ${best[$tool]} | $ratio |"
  done
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), $rounds round(s), best of rounds"
} | tee -a "$root/bench-results/deliver.txt"
