#!/usr/bin/env bash
# benches/serve_imap.sh: serve the 6,046-message corpus Maildir with
# `ownmail serve-imap` and with Dovecot (dovecot-imapd, maildir, loopback) in
# one run, and measure both with the same Python imaplib client:
#
#   - login + SELECT INBOX, cold (first ever) and warm (the median of 9 new
#     connections' SELECT);
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
#   REPEATS=5 benches/serve_imap.sh     (the whole sequence 5 times; 3 by
#                                        default)
#   CACHE=cold benches/serve_imap.sh    (each server's copy evicted from the
#                                        page cache before its turn)
#   KEEP_WORK=1 benches/serve_imap.sh   (keeps the temporary folder)
#
# One sample of a latency swings by a third from run to run on either side,
# so the whole sequence runs REPEATS times, each time with fresh copies of
# the Maildir (no index, no uidlist) and freshly started servers, one server
# at a time (the other is not running), the order alternated from one
# repeat to the next. The table gives the best of the repeats (the lowest
# latency, the most operations per second; CPU and RSS: the median), and a
# second block every sample. About 75 s per repeat on a quiet machine (the
# two 20 s loops, the copies, the rest; 110 s at a load of 6), so 4 to 6
# minutes by default.
#
# The page cache is treated alike for both: by default each copy has just
# been written (so both are wholly cached); with CACHE=cold, each server's
# copy is evicted (posix_fadvise DONTNEED on every file and folder) right
# before its turn, so its first reads come from the disk.
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

repeats=${REPEATS:-3}
case $repeats in ''|*[!0-9]*|0) echo "serve_imap.sh: REPEATS must be a positive number" >&2; exit 1;; esac
cache=${CACHE:-warm}
case $cache in warm|cold) ;; *) echo "serve_imap.sh: CACHE is warm or cold" >&2; exit 1;; esac

work=$(mktemp -d /tmp/ownmail-bench-imap.XXXXXX)
chmod 711 "$work"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
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

# The master copy of the Maildir: every corpus message, named with S= and W=.
python3 - "$corpus" "$work/master" <<'EOF'
import os, sys
src, d = sys.argv[1], sys.argv[2]
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
        with open(os.path.join(d, "cur", fname), "wb") as f:
            f.write(data)
print(n, "messages", file=sys.stderr)
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Both servers verify the same password hash: the {ARGON2ID} one `ownmail
# user add` writes (Dovecot reads our passwd-file format), so "login" costs
# the same password check on each side.
mkdir -p "$work/users"
cat > "$work/users/ownmail.yaml" <<EOF
hostname: localhost
data_dir: data
EOF
printf '%s\n' "$password" | "$ownmail" --config "$work/users/ownmail.yaml" user add "$user" --password-stdin >/dev/null
hash=$(grep "^$user:" "$work/users/data/passwd" | cut -d: -f2)
case $hash in "{ARGON2ID}"*) ;; *) echo "serve_imap.sh: unexpected hash $hash" >&2; exit 1;; esac

# The client: one server's whole sequence, its figures as JSON.
cat > "$work/measure.py" <<'EOF'
import imaplib, json, os, socket, sys, threading, time

port, user, password, pid, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
for _ in range(400):
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

def connect():
    M = imaplib.IMAP4("127.0.0.1", port, timeout=300)
    M.login(user, password)
    return M

def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r

r = {}
r["select_cold"], _ = timed(lambda: connect().select("INBOX"))
# Warm: the SELECT of a new connection to the folder opened before, the
# median of 9 (one takes a millisecond, and one sample's noise is as large).
warm = []
for _ in range(9):
    C = connect()
    t, (typ, data) = timed(lambda: C.select("INBOX"))
    warm.append(t)
    C.logout()
r["select_warm"] = sorted(warm)[len(warm) // 2]
exists = int(data[0])
M = connect()
M.select("INBOX")
r["fetch_env_first"], (typ, d1) = timed(lambda: M.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
r["fetch_env_again"], _ = timed(lambda: M.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE)"))
r["fetch_bodies"], (typ, d2) = timed(lambda: M.uid("FETCH", "1:*", "(BODY.PEEK[])"))
body_bytes = sum(len(x[1]) for x in d2 if isinstance(x, tuple))
del d1, d2
r["search_text"], (typ, hits) = timed(lambda: M.uid("SEARCH", "TEXT", "viagra"))
r["hits"] = len(hits[0].split())
r["search_text_again"], _ = timed(lambda: M.uid("SEARCH", "TEXT", "viagra"))
r["exists"], r["body_bytes"] = exists, body_bytes
# 20 clients, 20 seconds: SELECT, FETCH of 50 headers' flags, STORE a flag.
stop = time.time() + 20
ops = [0] * 20
clients = [connect() for _ in range(20)]
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
json.dump(r, open(out, "w"))
EOF

# Evicts a copy from the page cache (CACHE=cold): every file and folder.
cat > "$work/evict.py" <<'EOF'
import os, sys
for top in sys.argv[1:]:
    for d, _, files in os.walk(top):
        for p in [d] + [os.path.join(d, f) for f in files]:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
EOF

run_dovecot() { # repeat-folder, result file
  local r=$1
  mkdir -p "$r/dovecot/home" "$r/run" "$r/state"
  cp -a "$work/master" "$r/dovecot/Maildir"
  chown -R "$mail_uid:$mail_gid" "$r/dovecot"
  chmod 711 "$r" "$r/dovecot"
  local port
  port=$(free_port)
  echo "$user:$hash:$mail_uid:$mail_gid::$r/dovecot/home::userdb_mail=maildir:$r/dovecot/Maildir:LAYOUT=maildir++" > "$r/passwd"
  chmod 600 "$r/passwd"
  cat > "$r/dovecot.conf" <<EOF
instance_name = ownmail-bench-imap-$$-$(basename "$r")
base_dir = $r/run
state_dir = $r/state
log_path = $r/dovecot.log
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
  args = scheme=PLAIN username_format=%u $r/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $r/passwd
}
service imap-login {
$chroot
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
  if [ "$cache" = cold ]; then python3 "$work/evict.py" "$r/dovecot/Maildir"; fi
  "$dovecot" -F -c "$r/dovecot.conf" &
  server=$!
  python3 "$work/measure.py" "$port" "$user" "$password" "$server" "$2"
  kill -TERM "$server" || true; wait "$server" 2>/dev/null || true; server=""
}

run_ownmail() { # repeat-folder, result file
  local r=$1
  mkdir -p "$r/ownmail/data/mail"
  cp -a "$work/master" "$r/ownmail/data/mail/$user"
  cp "$work/users/ownmail.yaml" "$r/ownmail/"
  cp -a "$work/users/data/passwd" "$r/ownmail/data/"
  local port
  port=$(free_port)
  if [ "$cache" = cold ]; then python3 "$work/evict.py" "$r/ownmail/data/mail/$user"; fi
  "$ownmail" -q --config "$r/ownmail/ownmail.yaml" serve-imap --listen "127.0.0.1:$port" &
  server=$!
  python3 "$work/measure.py" "$port" "$user" "$password" "$server" "$2"
  kill -TERM "$server" || true; wait "$server" 2>/dev/null || true; server=""
}

for i in $(seq 1 "$repeats"); do
  r=$work/r$i
  mkdir -p "$r"
  # The order alternates: Dovecot first in odd repeats, ownmail in even ones.
  if [ $((i % 2)) -eq 1 ]; then order="dovecot ownmail"; else order="ownmail dovecot"; fi
  echo "repeat $i of $repeats: $order" >&2
  for s in $order; do "run_$s" "$r" "$work/$s.$i.json"; done
  rm -rf "$r"
done

python3 - "$work" "$repeats" "$cache" <<'EOF'
import json, statistics, sys
work, n, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {s: [json.load(open(f"{work}/{s}.{i}.json")) for i in range(1, n + 1)] for s in ("dovecot", "ownmail")}
for s, rs in runs.items():
    for k in ("exists", "body_bytes", "hits"):
        if len({r[k] for r in rs}) != 1:
            sys.exit(f"serve_imap.sh: {s} gave different {k} in different repeats: {[r[k] for r in rs]}")
d0, o0 = runs["dovecot"][0], runs["ownmail"][0]
print(f"messages: {o0['exists']} (dovecot {d0['exists']}); bodies {o0['body_bytes']} bytes (dovecot {d0['body_bytes']}); SEARCH TEXT hits {o0['hits']} (dovecot {d0['hits']})")
print(f"{n} repeats, page cache {cache}; best of the repeats (latency: lowest; operations/s: highest; CPU and RSS: median)")
latencies = (("select_cold", "login + SELECT, cold (s)"), ("select_warm", "SELECT, warm (s)"),
             ("fetch_env_first", "FETCH FLAGS SIZE ENVELOPE (s)"), ("fetch_env_again", "  the same, again (s)"),
             ("fetch_bodies", "FETCH BODY.PEEK[] (s)"), ("search_text", "SEARCH TEXT (s)"),
             ("search_text_again", "  the same, again (s)"))
def col(s, k):
    return [r[k] for r in runs[s]]
print(f"{'':34} {'dovecot':>10} {'ownmail':>10} {'dovecot/ownmail':>16}")
for key, label in latencies:
    d, o = min(col("dovecot", key)), min(col("ownmail", key))
    print(f"{label:34} {d:10.4f} {o:10.4f} {d / o:15.2f}x")
d, o = max(col("dovecot", "ops_per_s")), max(col("ownmail", "ops_per_s"))
print(f"{'20 clients: operations/s':34} {d:10.0f} {o:10.0f} {o / d:15.2f}x (ownmail/dovecot)")
d, o = statistics.median(col("dovecot", "cpu_s")), statistics.median(col("ownmail", "cpu_s"))
print(f"{'20 clients: server CPU (s), median':34} {d:10.2f} {o:10.2f}")
d, o = statistics.median(col("dovecot", "rss_mb_20_clients")), statistics.median(col("ownmail", "rss_mb_20_clients"))
print(f"{'20 clients: server RSS (MB), median':34} {d:10.1f} {o:10.1f} {d / o:15.2f}x")
print()
print("every sample, repeat 1 first (odd repeats: Dovecot ran first; even: ownmail)")
fmt = {"ops_per_s": "{:.0f}", "cpu_s": "{:.2f}", "rss_mb_20_clients": "{:.1f}"}
for key, label in latencies + (("ops_per_s", "20 clients: operations/s"), ("cpu_s", "20 clients: server CPU (s)"),
                               ("rss_mb_20_clients", "20 clients: server RSS (MB)")):
    f = fmt.get(key, "{:.4f}")
    for s in ("dovecot", "ownmail"):
        print(f"{label if s == 'dovecot' else '':34} {s:8} " + " ".join(f.format(v) for v in col(s, key)))
EOF
