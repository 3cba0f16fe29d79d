#!/usr/bin/env bash
# Receiving mail over SMTP into a Maildir, ownmail against Postfix, in one
# run: Postfix's smtp-source sends 5,000 messages of 5 KB over 10 parallel
# sessions (one connection each, -d) to
#
#   ownmail serve-smtp   loopback, local delivery: each message durably in
#                        the Maildir (file and directory fsynced) before its 250
#   Postfix 3.x          an instance of its own in a temporary folder
#                        (postfix -c), loopback, virtual(8) Maildir delivery;
#                        its queue file is fsynced before the 250, the Maildir
#                        file by virtual(8) when it delivers
#
# and reports, for each, the time from the first byte until the last message
# is in the Maildir's new/ (counted by polling every 10 ms), messages per
# second, and the ratio ownmail/Postfix. Checks that each Maildir holds
# exactly MESSAGES files and that both stored the same message bytes.
#
#   benches/serve_smtp.sh
#   ROUNDS=3 benches/serve_smtp.sh     # each 3 times, interleaved; best kept
#   MESSAGES=1000 benches/serve_smtp.sh
#
# Needs root (Postfix's daemons drop privileges to postfix and nobody).
# Debian packages: postfix (smtp-source, and the daemons; install with
# "No configuration": the distribution's own instance stays stopped).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${ROUNDS:-1}
messages=${MESSAGES:-5000}
sessions=${SESSIONS:-10}
size=${SIZE:-5120}

die() { echo "serve_smtp.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (Postfix's daemons need it)"
for p in /usr/sbin/smtp-source /usr/sbin/postfix /usr/lib/postfix/sbin/master; do
  [ -x "$p" ] || die "$p not found: install the Debian package postfix"
done
command -v python3 >/dev/null || die "python3 not found"

cargo build --release --locked --quiet
ownmail=$root/target/release/ownmail

work=$(mktemp -d "${TMPDIR:-/var/tmp}/ownmail-smtp-bench.XXXXXX")
chmod 755 "$work"
pf_pid=""; om_pid=""
cleanup() {
  [ -n "$om_pid" ] && kill "$om_pid" 2>/dev/null || true
  /usr/sbin/postfix -c "$work/pf" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 500); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.02
  done
  die "nothing listens on port $1"
}
count() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

# Sends the load to 127.0.0.1:$1 and waits until $2 holds $messages files;
# prints the seconds from the first byte.
run_load() {
  local port=$1 dir=$2 start end
  start=$EPOCHREALTIME
  /usr/sbin/smtp-source -d -c -s "$sessions" -m "$messages" -l "$size" \
    -f sender@example.net -t bench@bench.example "127.0.0.1:$port" >/dev/null
  while [ "$(count "$dir")" -lt "$messages" ]; do sleep 0.01; done
  end=$EPOCHREALTIME
  echo "$start $end" | awk '{ printf "%.3f\n", $2 - $1 }'
}

# --- Postfix: its own instance, virtual(8) Maildir delivery -----------------
setup_postfix() {
  local pf=$work/pf
  rm -rf "$pf" "$work/pfq" "$work/pfdata" "$work/vmail"
  mkdir -p "$pf" "$work/pfq" "$work/pfdata" "$work/vmail/bench"
  chown postfix "$work/pfdata"
  chown -R nobody:nogroup "$work/vmail"
  pf_port=$(free_port)
  cat > "$pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/pfq
data_directory = $work/pfdata
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = pf.bench.example
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = bench.example
virtual_mailbox_base = $work/vmail
virtual_mailbox_maps = texthash:$pf/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_destination_concurrency_limit = 20
default_process_limit = 100
smtpd_client_connection_rate_limit = 0
maillog_file = $work/pfdata/maillog
smtputf8_enable = no
biff = no
EOF
  echo "bench@bench.example bench/" > "$pf/vmailbox"
  # The distribution's master.cf, chroot off (nothing is set up inside a
  # chroot here), the SMTP listener on our port.
  awk -v port="$pf_port" '
    /^#/ || /^[ \t]/ || NF < 8 { print; next }
    $1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port }
    { $5 = "n"; print }
  ' /usr/share/postfix/master.cf.dist > "$pf/master.cf"
  /usr/sbin/postfix -c "$pf" set-permissions >/dev/null 2>&1 || true
  /usr/sbin/postfix -c "$pf" start >/dev/null 2>&1 || die "postfix did not start: $(cat "$work/pfdata/maillog" 2>/dev/null | tail -5)"
  wait_port "$pf_port"
}

# --- ownmail ---------------------------------------------------------------
setup_ownmail() {
  local om=$work/om
  rm -rf "$om"
  mkdir -p "$om"
  om_port=$(free_port)
  printf 'hostname: om.bench.example\ndomains: [bench.example]\ndata_dir: data\nsmtp:\n  listen: ["127.0.0.1:%s"]\n  max_connections: 100\n' "$om_port" > "$om/ownmail.yaml"
  echo secret | "$ownmail" -q -c "$om/ownmail.yaml" user add bench --password-stdin >/dev/null
  "$ownmail" -q -c "$om/ownmail.yaml" serve-smtp 2>"$om/log" &
  om_pid=$!
  wait_port "$om_port"
}

best_om=""; best_pf=""
for r in $(seq "$rounds"); do
  setup_ownmail
  t=$(run_load "$om_port" "$work/om/data/mail/bench/new")
  n=$(count "$work/om/data/mail/bench/new")
  [ "$n" -eq "$messages" ] || die "ownmail: $n messages in the Maildir, expected $messages"
  kill "$om_pid"; wait "$om_pid" 2>/dev/null || true; om_pid=""
  echo "round $r: ownmail  ${t}s"
  best_om=$(printf '%s\n%s\n' "$t" "${best_om:-$t}" | sort -g | head -1)
  om_sample=$(find "$work/om/data/mail/bench/new" -type f -print -quit)

  setup_postfix
  t=$(run_load "$pf_port" "$work/vmail/bench/new")
  n=$(count "$work/vmail/bench/new")
  [ "$n" -eq "$messages" ] || die "postfix: $n messages in the Maildir, expected $messages"
  echo "round $r: postfix  ${t}s"
  best_pf=$(printf '%s\n%s\n' "$t" "${best_pf:-$t}" | sort -g | head -1)
  pf_sample=$(find "$work/vmail/bench/new" -type f -print -quit)
  # Same body: compare what follows the header section.
  cmp -s <(sed '1,/^$/d' "$om_sample") <(sed '1,/^$/d' "$pf_sample") \
    || die "the stored bodies differ: $om_sample $pf_sample"
  /usr/sbin/postfix -c "$work/pf" stop >/dev/null 2>&1 || true
done

awk -v m="$messages" -v o="$best_om" -v p="$best_pf" 'BEGIN {
  printf "%d messages of %d bytes over %d sessions (best of rounds)\n", m, '"$size"', '"$sessions"'
  printf "ownmail serve-smtp  %7.3f s  %7.0f msg/s\n", o, m / o
  printf "postfix             %7.3f s  %7.0f msg/s\n", p, m / p
  printf "ratio ownmail/postfix: %.2fx\n", p / o
}'
