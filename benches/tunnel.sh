#!/usr/bin/env bash
# benches/tunnel.sh: `ownmail tunnel tls` against stunnel4, in one run, on
# 127.0.0.1. A plaintext client talks to a client-mode tunnel, which
# carries it over TLS to a server-mode tunnel, which hands it in plaintext
# to a backend:
#
#   driver --plain--> client mode --TLS--> server mode --plain--> backend
#
# Four chains, so each mode is also measured against the other tool:
# ownmail -> ownmail, stunnel -> stunnel, ownmail client -> stunnel server,
# stunnel client -> ownmail server. For each chain:
#   - throughput: 1 GiB from the backend to the driver (as a mail client
#     downloads), and 1 GiB from the driver to the backend (as it sends);
#     wall time, and the CPU time both tunnel processes used;
#   - latency: CONNS sequential connections, each until the backend's
#     one-line greeting arrives (connect, TLS handshake, two connects
#     onward), against the same without any tunnel.
# ROUNDS rounds (default 3), chains interleaved within each round; the
# best round of each is reported, and every round is printed.
#
#   benches/tunnel.sh            (needs stunnel4, python3, openssl:
#                                 scripts/install-peers.sh)
#
# Both tools use the system's OpenSSL 3, the same certificate (P-256 ECDSA,
# made here by openssl) and their default TLS settings (TLS 1.3, the same
# cipher suite); both client modes verify the server's certificate against
# it as a CA, with the address checked (ownmail --ca, stunnel
# verifyChain + checkIP). stunnel runs in its default threading mode and
# keeps its default client session cache (so its client resumes TLS
# sessions); ownmail's client mode does a full handshake every time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

for cmd in stunnel4 python3 openssl; do
  command -v "$cmd" >/dev/null || { echo "tunnel.sh: $cmd is missing: run scripts/install-peers.sh" >&2; exit 1; }
done

cargo build --release --quiet
ownmail=$root/target/release/ownmail

work=$(mktemp -d /tmp/ownmail-bench-tunnel.XXXXXX)
cleanup() {
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
printf 'hostname: bench.test\ndata_dir: data\ntls:\n  cert: %s\n  key: %s\n' \
  "$work/cert.pem" "$work/key.pem" >"$work/ownmail.yaml"

OWNMAIL=$ownmail WORK=$work ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-300} SIZE=${SIZE:-1073741824} \
  exec python3 - <<'PY'
import os, socket, statistics, subprocess, sys, time

ownmail, work = os.environ["OWNMAIL"], os.environ["WORK"]
rounds, conns, size = int(os.environ["ROUNDS"]), int(os.environ["CONNS"]), int(os.environ["SIZE"])
cert, key, config = f"{work}/cert.pem", f"{work}/key.pem", f"{work}/ownmail.yaml"
procs = []

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port, proc):
    for _ in range(400):
        if proc.poll() is not None:
            sys.exit(f"a process exited at start: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            time.sleep(0.025)
    sys.exit(f"port {port} never opened: {proc.args}")

def spawn(args, port, **kw):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **kw)
    procs.append(p); wait_port(port, p); return p

# The backend: a separate process (no GIL shared with the driver). It
# greets, then obeys one line: "DOWN n" sends n bytes and closes,
# "UP n" reads n bytes and answers "OK".
BACKEND = r'''
import socket, sys, threading
def serve(c):
    try:
        c.sendall(b"220 backend ready\r\n")
        f = c.makefile("rb")
        line = f.readline()
        if line.startswith(b"DOWN "):
            n = int(line[5:]); buf = b"x" * (1 << 20)
            while n > 0:
                c.sendall(buf[:min(n, len(buf))]); n -= min(n, len(buf))
        elif line.startswith(b"UP "):
            n = int(line[3:]); got = 0
            while got < n:
                b = f.read1(min(1 << 20, n - got))
                if not b: break
                got += len(b)
            c.sendall(b"OK %d\r\n" % got)
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''
backend = free_port()
spawn([sys.executable, "-c", BACKEND, str(backend)], backend)

def ownmail_server(port):
    return spawn([ownmail, "--config", config, "-q", "tunnel", "tls",
                  "--accept", f"127.0.0.1:{port}", "--to", f"127.0.0.1:{backend}"], port)

def ownmail_client(port, server_port):
    return spawn([ownmail, "-q", "tunnel", "tls", "--connect", f"127.0.0.1:{server_port}",
                  "--listen", f"127.0.0.1:{port}", "--ca", cert], port)

def stunnel(name, port, lines):
    conf = f"{work}/{name}.conf"
    with open(conf, "w") as f:
        f.write(f"foreground = yes\npid =\nsyslog = no\ndebug = 3\noutput = {work}/{name}.log\n"
                f"[{name}]\naccept = 127.0.0.1:{port}\n" + "".join(l + "\n" for l in lines))
    return spawn(["stunnel4", conf], port, stderr=subprocess.DEVNULL)

def stunnel_server(port):
    return stunnel(f"server{port}", port, [f"connect = 127.0.0.1:{backend}", f"cert = {cert}", f"key = {key}"])

def stunnel_client(port, server_port):
    return stunnel(f"client{port}", port, ["client = yes", f"connect = 127.0.0.1:{server_port}",
                                            f"CAfile = {cert}", "verifyChain = yes", "checkIP = 127.0.0.1"])

ports = {k: free_port() for k in ["os", "ss", "oc", "sc", "oc2", "sc2"]}
os_ = ownmail_server(ports["os"]); ss = stunnel_server(ports["ss"])
chains = {
    "ownmail -> ownmail": (ports["oc"], [ownmail_client(ports["oc"], ports["os"]), os_]),
    "stunnel -> stunnel": (ports["sc"], [stunnel_client(ports["sc"], ports["ss"]), ss]),
    "ownmail client -> stunnel server": (ports["oc2"], [ownmail_client(ports["oc2"], ports["ss"]), ss]),
    "stunnel client -> ownmail server": (ports["sc2"], [stunnel_client(ports["sc2"], ports["os"]), os_]),
}

def cpu(ps):
    total = 0
    for p in ps:
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")

def greet(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    line = f.readline()
    assert line.startswith(b"220 "), line
    return s, f

def down(port):
    s, f = greet(port)
    s.sendall(b"DOWN %d\n" % size)
    t = time.perf_counter(); got = 0
    while True:
        b = f.read1(1 << 20)
        if not b: break
        got += len(b)
    el = time.perf_counter() - t; s.close()
    assert got == size, (got, size)
    return el

def up(port):
    s, f = greet(port)
    s.sendall(b"UP %d\n" % size)
    t = time.perf_counter(); buf = b"x" * (1 << 20); n = size
    while n > 0:
        s.sendall(buf[:min(n, len(buf))]); n -= min(n, len(buf))
    line = f.readline(); el = time.perf_counter() - t; s.close()
    assert line.strip() == b"OK %d" % size, line
    return el

def latency(port):
    times = []
    for _ in range(conns):
        t = time.perf_counter()
        s, f = greet(port)
        times.append(time.perf_counter() - t)
        s.close()
    return statistics.median(times) * 1000, statistics.mean(times) * 1000

for name, (port, _) in chains.items():   # warm up: the first connection of each
    greet(port)[0].close()

results = {name: [] for name in chains}
direct = []
print(f"{size / 2**30:g} GiB each way, {conns} connections for latency, {rounds} rounds; "
      f"load average {os.getloadavg()[0]:.1f}", flush=True)
for r in range(rounds):
    direct.append(latency(backend))
    for name, (port, ps) in chains.items():
        c0 = cpu(ps); d = down(port); c1 = cpu(ps); u = up(port); c2 = cpu(ps)
        lat = latency(port); c3 = cpu(ps)
        lat = (lat[0], lat[1], (c3 - c2) / conns * 1000)
        results[name].append((d, c1 - c0, u, c2 - c1, lat))
        print(f"round {r + 1} {name:34} down {size / d / 1e6:7.0f} MB/s ({c1 - c0:5.2f} s CPU)"
              f"  up {size / u / 1e6:7.0f} MB/s ({c2 - c1:5.2f} s CPU)"
              f"  setup {lat[0]:6.2f} ms median, {lat[1]:6.2f} mean, {lat[2]:.2f} ms CPU"
              f"  (direct {direct[-1][0]:.2f} ms)", flush=True)

best_direct = min(d[0] for d in direct)
print(f"\nbest of {rounds} rounds (direct connection, no tunnel: {best_direct:.3f} ms to the greeting)")
print(f"{'chain':34} {'down MB/s':>9} {'CPU s/GiB':>9} {'up MB/s':>9} {'CPU s/GiB':>9} {'setup ms':>8} {'extra ms':>8} {'CPU ms':>6}")
best = {}
for name, rs in results.items():
    d = min(x[0] for x in rs); u = min(x[2] for x in rs)
    cd = min(x[1] for x in rs) / (size / 2**30); cu = min(x[3] for x in rs) / (size / 2**30)
    lat = min(x[4][0] for x in rs); lcpu = min(x[4][2] for x in rs)
    best[name] = (size / d / 1e6, size / u / 1e6, lat)
    print(f"{name:34} {size / d / 1e6:9.0f} {cd:9.2f} {size / u / 1e6:9.0f} {cu:9.2f} {lat:8.3f} {lat - best_direct:8.3f} {lcpu:6.2f}")
o, s = best["ownmail -> ownmail"], best["stunnel -> stunnel"]
print(f"\nownmail / stunnel: down {o[0] / s[0]:.2f}x, up {o[1] / s[1]:.2f}x, "
      f"extra setup latency {(o[2] - best_direct) / (s[2] - best_direct):.2f}x stunnel's")
for p in procs:
    p.terminate()
for p in procs:
    p.wait()
PY
