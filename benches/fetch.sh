#!/usr/bin/env bash
# benches/fetch.sh: fetch the 6,046-message corpus from one Dovecot POP3
# server on loopback with ownmail, fetchmail and getmail6, one run each,
# each into a fresh Maildir, and print seconds, messages per second and
# the ratios.
#
#   benches/fetch.sh            (needs root or the peers installed:
#                                dovecot-pop3d, fetchmail, getmail6, procmail)
#
# The three read the same mailbox in keep mode with UIDL (nothing is
# deleted, so each starts from the same server state):
#   - ownmail fetch: deliver_to a Maildir; batches written, each message
#     fsynced (file data, then one folder fsync per batch) before it is
#     recorded as fetched; POP3 pipelined (Dovecot offers PIPELINING).
#   - fetchmail (keep, uidl) with procmail as its MDA, delivering into a
#     Maildir (procmail fsyncs each message file before linking it in).
#   - getmail6: SimplePOP3Retriever, its own Maildir destination (fsyncs
#     each message file). getmail 6.18 has a lost-wakeup race when it waits
#     for the child that writes each message (ForkingBase._wait_for_child:
#     a SIGCHLD handled before the wait starts leaves it waiting 60 s, then
#     it aborts without saving what it fetched). It strikes every few
#     thousand messages here, so getmail runs through a small shim that
#     replaces only that wait with a plain waitpid(2) (and installs no
#     SIGCHLD handler); its delivery work is unchanged.
# Dovecot's index is built before the first run, so no tool pays for it.
# Nothing leaves 127.0.0.1; no name is looked up (every peer gets the
# literal address).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

for cmd in dovecot fetchmail getmail procmail python3; do
  if ! command -v "$cmd" >/dev/null && [ ! -x "/usr/sbin/$cmd" ]; then
    echo "fetch.sh: $cmd is missing: run scripts/install-peers.sh" >&2
    exit 1
  fi
done
[ -x /usr/lib/dovecot/pop3 ] || { echo "fetch.sh: dovecot-pop3d is missing: run scripts/install-peers.sh" >&2; exit 1; }
dovecot=$(command -v dovecot || echo /usr/sbin/dovecot)

cargo build --release --quiet
ownmail=$root/target/release/ownmail
corpus=$(scripts/corpus.sh)

work=$(mktemp -d /tmp/ownmail-bench-fetch.XXXXXX)
chmod 711 "$work"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

user=remote
password=bench-secret
if [ "$(id -u)" -eq 0 ]; then
  mail_uid=$(id -u nobody) mail_gid=$(id -g nobody)
  internal="default_internal_user = dovecot
default_login_user = dovenull
service auth {
  user = root
}
service auth-worker {
  user = root
}"
  chroot=""
else
  mail_uid=$(id -u) mail_gid=$(id -g)
  me=$(id -un)
  internal="default_internal_user = $me
default_login_user = $me
service anvil {
  chroot =
}"
  chroot="  chroot ="
fi

# The server's mailbox: every corpus message, its mbox From line removed.
server_md=$work/server/Maildir
mkdir -p "$server_md"/{cur,new,tmp} "$work/server/home" "$work/run" "$work/state"
python3 - "$corpus" "$server_md/cur" <<'EOF'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
n = 0
for group in sorted(os.listdir(src)):
    d = os.path.join(src, group)
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        if not name.endswith(".txt"):
            continue
        data = open(os.path.join(d, name), "rb").read()
        if data.startswith(b"From "):
            data = data[data.index(b"\n") + 1:] if b"\n" in data else b""
        n += 1
        with open(os.path.join(dst, "1700000000.M%dP1.bench:2," % n), "wb") as f:
            f.write(data)
print(n, "messages", file=sys.stderr)
EOF
total=$(ls "$server_md/cur" | wc -l)
chown -R "$mail_uid:$mail_gid" "$work/server"
chmod 711 "$work/server"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "$user:{PLAIN}$password:$mail_uid:$mail_gid::$work/server/home::userdb_mail=maildir:$server_md:LAYOUT=maildir++" > "$work/passwd"
chmod 600 "$work/passwd"
cat > "$work/dovecot.conf" <<EOF
instance_name = ownmail-bench-$$
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
hostname = localhost
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_use_winbind = no
mail_max_userip_connections = 100
first_valid_uid = $mail_uid
last_valid_uid = 0
$internal
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $work/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $work/passwd
}
service pop3-login {
$chroot
  inet_listener pop3 {
    address = 127.0.0.1
    port = $port
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
"$dovecot" -F -c "$work/dovecot.conf" </dev/null >"$work/dovecot.stderr" 2>&1 &
pid=$!
for _ in $(seq 200); do
  python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),1); sys.exit(0 if s.recv(3)==b'+OK' else 1)" 2>/dev/null && break
  sleep 0.05
done
# Build Dovecot's index before any tool is timed.
doveadm -c "$work/dovecot.conf" index -u "$user" INBOX 2>/dev/null \
  || python3 - "$port" "$user" "$password" <<'EOF'
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1])); p.user(sys.argv[2]); p.pass_(sys.argv[3]); p.uidl(); p.quit()
EOF

now() { date +%s.%N; }
count() { find "$1/new" "$1/cur" -type f | wc -l; }
# The clients run as an ordinary user (getmail and procmail refuse root):
# nobody when we are root, else ourselves.
if [ "$(id -u)" -eq 0 ]; then
  as_client() { setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups "$@"; }
  client_owner=nobody:$(id -gn nobody)
else
  as_client() { "$@"; }
  client_owner=$(id -un):$(id -gn)
fi

# ownmail
mkdir -p "$work/ownmail"
echo "$password" > "$work/ownmail/pass"
chmod 600 "$work/ownmail/pass"
cat > "$work/ownmail/ownmail.yaml" <<EOF
hostname: bench.example.org
data_dir: data
fetch:
  accounts:
    - name: bench
      protocol: pop3
      host: 127.0.0.1
      port: $port
      tls: none
      username: $user
      password_file: pass
      keep: true
      deliver_to: {maildir: Maildir}
EOF
chown -R "$client_owner" "$work/ownmail"
sync
t0=$(now)
as_client "$ownmail" --config "$work/ownmail/ownmail.yaml" fetch -q >/dev/null
t1=$(now)
ownmail_n=$(count "$work/ownmail/Maildir")
echo "ownmail: $ownmail_n messages in $(python3 -c "print($t1-$t0)") s" >&2

# fetchmail + procmail
mkdir -p "$work/fetchmail/Maildir"
cat > "$work/fetchmail/procmailrc" <<EOF
MAILDIR=$work/fetchmail/Maildir/
DEFAULT=$work/fetchmail/Maildir/
LOGFILE=/dev/null
EOF
cat > "$work/fetchmail/fetchmailrc" <<EOF
set no syslog
set no bouncemail
poll 127.0.0.1 service $port protocol pop3 uidl
  user "$user" password "$password" keep sslproto ''
  mda "/usr/bin/procmail -m $work/fetchmail/procmailrc"
EOF
chmod 600 "$work/fetchmail/fetchmailrc"
chown -R "$client_owner" "$work/fetchmail"
sync
t2=$(now)
HOME=$work/fetchmail as_client fetchmail -f "$work/fetchmail/fetchmailrc" --idfile "$work/fetchmail/fetchids" \
  --pidfile "$work/fetchmail/pid" -s --nodetach >/dev/null 2>"$work/fetchmail/log" || {
  rc=$?; [ "$rc" -eq 1 ] || { echo "fetchmail failed ($rc):"; cat "$work/fetchmail/log"; exit 1; }
}
t3=$(now)
fetchmail_n=$(count "$work/fetchmail/Maildir")
echo "fetchmail: $fetchmail_n messages in $(python3 -c "print($t3-$t2)") s" >&2

# getmail6
mkdir -p "$work/getmail/Maildir"/{cur,new,tmp} "$work/getmail/dir"
cat > "$work/getmail/getmailrc" <<EOF
[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = $port
username = $user
password = $password

[destination]
type = Maildir
path = $work/getmail/Maildir/

[options]
delete = false
read_all = false
verbose = 0
message_log_syslog = false
EOF
chown -R "$client_owner" "$work/getmail"
sync
t4=$(now)
cat > "$work/getmail/shim.py" <<'SHIM'
import os, runpy
from getmailcore import baseclasses
from getmailcore.exceptions import getmailOperationError

def _prepare_child(self):
    pass  # no SIGCHLD handler: the wait below reaps the child itself

def _wait_for_child(self, childpid):
    pid, status = os.waitpid(childpid, 0)
    if not os.WIFEXITED(status):
        raise getmailOperationError('child pid %d failed to exit' % pid)
    return os.WEXITSTATUS(status)

baseclasses.ForkingBase._prepare_child = _prepare_child
baseclasses.ForkingBase._wait_for_child = _wait_for_child
runpy.run_path('/usr/bin/getmail', run_name='__main__')
SHIM
HOME=$work/getmail as_client /usr/bin/python3 "$work/getmail/shim.py" --getmaildir "$work/getmail/dir" --rcfile "$work/getmail/getmailrc" ${GETMAIL_ARGS:-} >/dev/null
t5=$(now)
getmail_n=$(count "$work/getmail/Maildir")

kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""

python3 - "$total" "$t0" "$t1" "$ownmail_n" "$t2" "$t3" "$fetchmail_n" "$t4" "$t5" "$getmail_n" <<'EOF'
import sys
a = sys.argv[1:]
total = int(a[0])
rows = [("ownmail fetch", float(a[2]) - float(a[1]), int(a[3])),
        ("fetchmail + procmail", float(a[5]) - float(a[4]), int(a[6])),
        ("getmail6", float(a[8]) - float(a[7]), int(a[9]))]
print(f"fetch: {total} messages from Dovecot POP3 on 127.0.0.1, keep mode, UIDL, each into a fresh Maildir")
print(f"{'tool':<22} {'messages':>9} {'seconds':>9} {'msg/s':>9} {'ownmail is':>12}")
own = rows[0][1]
for name, secs, n in rows:
    ratio = "" if name.startswith("ownmail") else f"{secs / own:.1f}x faster"
    print(f"{name:<22} {n:>9} {secs:>9.2f} {n / secs:>9.0f} {ratio:>12}")
bad = [name for name, _, n in rows if n != total]
if bad:
    print("incomplete:", ", ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
