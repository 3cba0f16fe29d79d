#!/usr/bin/env bash
# benches/serve_imap.sh: serve the 6,046-message corpus Maildir with
# `ownmail serve-imap` and with Dovecot (dovecot-imapd, maildir, loopback) in
# one run, and measure both with the same Python imaplib client:
#
#   - login + SELECT INBOX, cold (first ever) and warm;
#   - UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), first and repeated;
#   - UID FETCH 1:* BODY.PEEK[];
#   - UID SEARCH TEXT "viagra" (decoded text, case-insensitive), first and
#     repeated (ownmail's first one may find its index still being filled
#     in the background);
#   - 20 concurrent clients looping SELECT / FETCH / STORE for 20 s:
#     operations per second, server CPU seconds (user + system of every
#     server process), and the servers' total RSS with the 20 connected.
#
#   benches/serve_imap.sh      (needs root or the peers installed:
#                               dovecot-imapd, python3)
#   OWNMAIL=/path/to/ownmail benches/serve_imap.sh
#                              (that binary, not built here: to compare two
#                               builds under the same load)
#   KEEP_WORK=1 benches/serve_imap.sh   (keeps the temporary folder)
#
# Each server gets its own copy of the same Maildir (files named as
# `ownmail deliver` and Dovecot name them, with S= and W= sizes), so neither
# sees the other's uidlist or index. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

for cmd in python3; do
  command -v "$cmd" >/dev/null || { echo "serve_imap.sh: $cmd is missing: run scripts/install-peers.sh" >&2; exit 1; }
done
[ -x /usr/lib/dovecot/imap ] || { echo "serve_imap.sh: dovecot-imapd is missing: run scripts/install-peers.sh" >&2; exit 1; }
dovecot=$(command -v dovecot || echo /usr/sbin/dovecot)

if [ -n "${OWNMAIL:-}" ]; then
  ownmail=$OWNMAIL
else
  cargo build --release --quiet
  ownmail=$root/target/release/ownmail
fi
corpus=$(scripts/corpus.sh)

work=$(mktemp -d /tmp/ownmail-bench-imap.XXXXXX)
chmod 711 "$work"
dpid="" opid=""
cleanup() {
  for p in $dpid $opid; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

user=bench
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

# Two copies of one Maildir: every corpus message, named with S= and W=.
python3 - "$corpus" "$work/dovecot/Maildir" "$work/ownmail/data/mail/$user" <<'EOF'
import os, sys
src, dsts = sys.argv[1], sys.argv[2:]
for d in dsts:
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
n = 0
for group in sorted(os.listdir(src)):
    g = os.path.join(src, group)
    if not os.path.isdir(g):
        continue
    for name in sorted(os.listdir(g)):
        if not name.endswith(".txt"):
            continue
        data = open(os.path.join(g, name), "rb").read()
        if data.startswith(b"From "):
            data = data[data.index(b"\n") + 1:] if b"\n" in data else b""
        n += 1
        w = len(data) + sum(1 for i, b in enumerate(data) if b == 10 and (i == 0 or data[i - 1] != 13))
        fname = "1700000000.M%dP1Q%d.bench,S=%d,W=%d:2,%s" % (n, n, len(data), w, "S" if n % 3 == 0 else "")
        for d in dsts:
            with open(os.path.join(d, "cur", fname), "wb") as f:
                f.write(data)
print(n, "messages", file=sys.stderr)
EOF
mkdir -p "$work/dovecot/home" "$work/run" "$work/state"
chown -R "$mail_uid:$mail_gid" "$work/dovecot"
chmod 711 "$work/dovecot"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dport=$(free_port) oport=$(free_port)

# Both servers verify the same password hash: the {ARGON2ID} one `ownmail
# user add` writes (Dovecot reads our passwd-file format), so "login" costs
# the same password check on each side.
cat > "$work/ownmail/ownmail.yaml" <<EOF
hostname: localhost
data_dir: data
EOF
printf '%s\n' "$password" | "$ownmail" --config "$work/ownmail/ownmail.yaml" user add "$user" --password-stdin >/dev/null
hash=$(grep "^$user:" "$work/ownmail/data/passwd" | cut -d: -f2)
case $hash in "{ARGON2ID}"*) ;; *) echo "serve_imap.sh: unexpected hash $hash" >&2; exit 1;; esac
echo "$user:$hash:$mail_uid:$mail_gid::$work/dovecot/home::userdb_mail=maildir:$work/dovecot/Maildir:LAYOUT=maildir++" > "$work/passwd"
chmod 600 "$work/passwd"
cat > "$work/dovecot.conf" <<EOF
instance_name = ownmail-bench-imap-$$
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
hostname = localhost
protocols = imap
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
service imap-login {
$chroot
  inet_listener imap {
    address = 127.0.0.1
    port = $dport
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
"$dovecot" -F -c "$work/dovecot.conf" &
dpid=$!

"$ownmail" -q --config "$work/ownmail/ownmail.yaml" serve-imap --listen "127.0.0.1:$oport" &
opid=$!

python3 - "$dport" "$oport" "$user" "$password" "$dpid" "$opid" <<'EOF'
import imaplib, os, re, socket, sys, threading, time

dport, oport, user, password, dpid, opid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
for port in (dport, oport):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.05)

def tree(pid):
    """The server's processes: pid and its descendants."""
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out

def cpu(pid):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except OSError:
            pass
    return total / tick

def rss(pid):
    total = 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024

def connect(port):
    M = imaplib.IMAP4("127.0.0.1", port, timeout=300)
    M.login(user, password)
    return M

def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r

results = {}
for name, port, pid in (("dovecot", dport, dpid), ("ownmail", oport, opid)):
    r = {}
    r["select_cold"], _ = timed(lambda: connect(port).select("INBOX"))
    M = connect(port)
    r["select_warm"], (typ, data) = timed(lambda: M.select("INBOX"))
    exists = int(data[0])
    r["fetch_env_first"], (typ, d1) = timed(lambda: M.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
    r["fetch_env_again"], _ = timed(lambda: M.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
    r["fetch_bodies"], (typ, d2) = timed(lambda: M.uid("FETCH", "1:*", "(BODY.PEEK[])"))
    body_bytes = sum(len(x[1]) for x in d2 if isinstance(x, tuple))
    r["search_text"], (typ, hits) = timed(lambda: M.uid("SEARCH", "TEXT", "viagra"))
    r["hits"] = len(hits[0].split())
    r["search_text_again"], _ = timed(lambda: M.uid("SEARCH", "TEXT", "viagra"))
    r["exists"], r["body_bytes"] = exists, body_bytes
    # 20 clients, 20 seconds: SELECT, FETCH of 50 headers' flags, STORE a flag.
    stop = time.time() + 20
    ops = [0] * 20
    clients = [connect(port) for _ in range(20)]
    def loop(i):
        C = clients[i]
        n = 0
        while time.time() < stop:
            C.select("INBOX")
            lo = (n * 37 + i * 101) % (exists - 60) + 1
            C.fetch(f"{lo}:{lo + 49}", "(UID FLAGS RFC822.SIZE)")
            C.store(str(lo), "+FLAGS", "(\\Flagged)" if n % 2 else "(\\Answered)")
            n += 1
            ops[i] += 3
    cpu0 = cpu(pid)
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(10)
    r["rss_mb_20_clients"] = rss(pid)
    for t in threads:
        t.join()
    r["cpu_s"] = cpu(pid) - cpu0
    r["ops_per_s"] = sum(ops) / 20
    for C in clients:
        C.logout()
    M.logout()
    results[name] = r

d, o = results["dovecot"], results["ownmail"]
print(f"messages: {o['exists']} (dovecot {d['exists']}); bodies {o['body_bytes']} bytes (dovecot {d['body_bytes']}); SEARCH TEXT hits {o['hits']} (dovecot {d['hits']})")
print(f"{'':34} {'dovecot':>10} {'ownmail':>10} {'dovecot/ownmail':>16}")
for key, label in (("select_cold", "login + SELECT, cold (s)"), ("select_warm", "SELECT, warm (s)"),
                   ("fetch_env_first", "FETCH FLAGS SIZE ENVELOPE (s)"), ("fetch_env_again", "  the same, again (s)"),
                   ("fetch_bodies", "FETCH BODY.PEEK[] (s)"), ("search_text", "SEARCH TEXT (s)"),
                   ("search_text_again", "  the same, again (s)")):
    print(f"{label:34} {d[key]:10.3f} {o[key]:10.3f} {d[key] / o[key]:15.2f}x")
print(f"{'20 clients: operations/s':34} {d['ops_per_s']:10.0f} {o['ops_per_s']:10.0f} {o['ops_per_s'] / d['ops_per_s']:15.2f}x (ownmail/dovecot)")
print(f"{'20 clients: server CPU (s)':34} {d['cpu_s']:10.2f} {o['cpu_s']:10.2f}")
print(f"{'20 clients: server RSS (MB)':34} {d['rss_mb_20_clients']:10.1f} {o['rss_mb_20_clients']:10.1f} {d['rss_mb_20_clients'] / o['rss_mb_20_clients']:15.2f}x")
EOF
