#!/usr/bin/env bash
# Load test of `syslens serve` on loopback: 20 concurrent scrapers for 10 s against
# ~400 processes, with ab (apt-get install apache2-utils). Prints p50 / p99 scrape
# latency, failed requests and the exporter's peak RSS, once with the default 1 s
# cache and once with --cache 0 (every scrape collects; collections are serialised).
# For comparison, the same load against node_exporter when it is installed.
# Then the attack of issue 14 (python3): 70 connections trickling a byte every 0.3 s
# and 300 sending nothing, while one scrape a second (2 s client timeout) asks for
# /metrics, 20 times: scrapes answered 200 and their p50 / p99 latency, without the
# attack, with an attacker that holds its sockets, and with one that opens a new
# connection whenever the server lets go of one.
# BIN=path measures another build (an older one, for a before / after).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/syslens}
[ -x "$bin" ] || cargo build --release --quiet
conc=${CONC:-20}
secs=${SECS:-10}
target=${PROCS:-400}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
# Counted by the glob: `ls` fails when a process exits between the glob and its stat.
processes() { local p=(/proc/[0-9]*); echo ${#p[@]}; }
have=$(processes)
for _ in $(seq $((target > have ? target - have : 0))); do sleep 3600 & pids+=($!); done
echo "processes: $(processes); $conc scrapers for $secs s"
load() {
  local name=$1 port=$2 pid=$3
  sleep 1
  local out
  out=$(ab -q -c "$conc" -t "$secs" -n 1000000 "http://127.0.0.1:$port/metrics" 2>&1)
  local n failed p50 p99 hwm
  n=$(awk '/^Complete requests/ {print $3}' <<<"$out")
  # ab counts a body whose length differs from the first one as failed ("Length");
  # metrics change between scrapes, so only connect, receive and exceptions count.
  failed=$(grep -A1 '^Failed requests' <<<"$out" | grep -o 'Connect: [0-9]*, Receive: [0-9]*' | awk '{s=$2+$4} END {print s+0}')
  exc=$(grep -o 'Exceptions: [0-9]*' <<<"$out" | awk '{print $2}')
  failed=$((failed + ${exc:-0}))
  non2xx=$(awk '/^Non-2xx responses/ {print $3}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  hwm=$(awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  printf '%-26s %7s scrapes  p50 %4s ms  p99 %4s ms  failed %s  non-2xx %s  peak RSS %s MiB\n' \
    "$name" "$n" "$p50" "$p99" "$failed" "${non2xx:-0}" "$hwm"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
if command -v ab >/dev/null; then
  "$bin" serve --listen 127.0.0.1:9155 2>/dev/null & load "syslens serve (1 s cache)" 9155 $!
  "$bin" serve --listen 127.0.0.1:9156 --cache 0 2>/dev/null & load "syslens serve (--cache 0)" 9156 $!
  if command -v prometheus-node-exporter >/dev/null; then
    prometheus-node-exporter --web.listen-address=127.0.0.1:9157 2>/dev/null & load "node_exporter" 9157 $!
  fi
else
  echo "SKIPPED: the load test: ab not installed (apt-get install apache2-utils)"
fi

command -v python3 >/dev/null || { echo "SKIPPED: the attack: python3 not installed"; exit 0; }
# The attack of issue 14, from one address (127.0.0.1) like the scraper. Arguments:
# port, trickling connections, idle connections, scrapes, hold | reopen.
attack() {
  python3 - "$@" <<'PY'
import selectors, socket, sys, threading, time

port, tricklers, idle, scrapes = map(int, sys.argv[1:5])
reopen = sys.argv[5] == "reopen"
sel = selectors.DefaultSelector()
stop = threading.Event()
reopened = 0

def connect(trickles):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return
    sel.register(s, selectors.EVENT_READ, trickles)

def let_go(s):
    # The server answered or closed it: an attacker that reopens takes another.
    global reopened
    trickles = sel.get_key(s).data
    sel.unregister(s)
    s.close()
    if reopen:
        reopened += 1
        connect(trickles)

def attacker():
    for i in range(tricklers + idle):
        connect(i < tricklers)
    next_byte = time.monotonic()
    while not stop.is_set():
        if reopen:
            for key, _ in sel.select(timeout=0.02):
                let_go(key.fileobj)
        else:
            time.sleep(0.02)
        if time.monotonic() >= next_byte:
            next_byte += 0.3
            for key in [k for k in sel.get_map().values() if k.data]:
                try:
                    key.fileobj.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    let_go(key.fileobj)

def scrape():
    started = time.monotonic()
    status = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while True:
                c.settimeout(max(0.001, 2 - (time.monotonic() - started)))
                chunk = c.recv(65536)
                if not chunk:
                    break
                answer += chunk
        if time.monotonic() - started <= 2 and answer.startswith(b"HTTP/1.1 "):
            status = int(answer.split(b" ", 2)[1])
    except (OSError, ValueError):
        pass
    return status, time.monotonic() - started

threading.Thread(target=attacker, daemon=True).start()
time.sleep(2)
results = []
for _ in range(scrapes):
    status, took = scrape()
    results.append((status, took))
    time.sleep(max(0.0, 1 - took))
stop.set()
lat = sorted(t for _, t in results)
pct = lambda p: lat[min(len(lat) - 1, round(p / 100 * (len(lat) - 1)))] * 1000
codes = {}
for s, _ in results:
    codes[s] = codes.get(s, 0) + 1
what = f"{tricklers} trickling + {idle} idle, {sys.argv[5]}" if tricklers + idle else "no attack"
print(f"{what:<32} {codes.get(200, 0):2}/{scrapes} answered 200  p50 {pct(50):5.0f} ms  "
      f"p99 {pct(99):5.0f} ms  answers {dict(sorted(codes.items()))} (0: none in 2 s)  "
      f"{reopened} attack connections reopened")
PY
}
for run in "0 0 hold" "70 300 hold" "70 300 reopen"; do
  set -- $run
  "$bin" serve --listen 127.0.0.1:9158 2>/dev/null &
  pid=$!
  sleep 1
  attack 9158 "$1" "$2" 20 "$3"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
