#!/usr/bin/env bash
# The built-in profile against the simulated fleet, on 127.0.0.1 only
# (cargo build --release first):
#
#   bash xtask/corpus/simcheck.sh normal [DEVICES] [DURATION] [INTERVAL]
#       a normal fleet (default 1000 devices, 1h, 10s): its false alerts
#   bash xtask/corpus/simcheck.sh attacks [DEVICES] [INTERVAL]
#       each of the five attacks by 3 devices (default 1000 devices, 10s;
#       the rarity behaviours judge groups of at least 100, and 3 devices
#       are rare at 1 % from 300 on), and how long after its start each
#       attacking device's first alert came
set -u
B=${BULWARK:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/bulwark}
ulimit -n 20000 2>/dev/null || true

run() { # name devices duration interval [attack]
  local D=/tmp/simsrv-$1
  rm -rf $D
  $B server --data-dir $D --listen 127.0.0.1:18080 --device-listen 127.0.0.1:18443 \
    --mqtt-listen 127.0.0.1:18883 >$D.log 2>&1 &
  local S=$!
  for _ in $(seq 50); do [ -f $D/admin.token ] && break; sleep 0.2; done
  sleep 1
  export BULWARK_SERVER=http://127.0.0.1:18080 BULWARK_TOKEN=$(cat $D/admin.token)
  local T
  T=$($B enroll-token create --group fleet --env staging --uses $2 --ttl 2h)
  local extra=()
  [ -n "${5:-}" ] && extra=(--attack $5 --attack-at 60s --attack-devices 3)
  $B sim --server https://127.0.0.1:18443 --ca $D/ca.pem --enroll-token "$T" --devices $2 \
    --gateway 127.0.0.1:18883 --telemetry-interval $4 --duration $3 "${extra[@]}" >$D.sim 2>&1
  local attack_line
  attack_line=$(grep -m1 '^attack ' $D.sim || true)
  $B alerts list --json >$D.alerts.json
  echo "== $1 ($2 devices, $3, every $4, attack ${5:-none})"
  ATTACK_LINE="$attack_line" INTERVAL="$4" DEVICES="$2" DURATION="$3" python3 - $D.alerts.json <<'EOF'
import collections, datetime, json, os, re, sys
d = json.load(open(sys.argv[1]))["detections"]
def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
def secs(s):
    m = re.fullmatch(r"(\d+)([smh])", s)
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600}[m[2]]
c = collections.Counter(a["behaviour"] for a in d)
print("alerts:", dict(c), "devices alerted:", len({a["device"] for a in d}))
line = os.environ["ATTACK_LINE"]
if not line:
    hours = int(os.environ["DEVICES"]) * secs(os.environ["DURATION"]) / 3600
    print(f"false alerts: {len(d)} in {hours:.0f} device-hours "
          f"({len(d) / hours * 1000:.2f} per 1,000 device-hours)")
    for a in d[:5]:
        print("  ", a["device"], a["behaviour"], a["message"][:200])
    sys.exit(0)
m = re.search(r"\(at ([^)]+)\): (.*)$", line)
start, attackers = ts(m[1]), [x.strip() for x in m[2].split(",")]
interval = secs(os.environ["INTERVAL"])
for dev in attackers:
    mine = sorted(((ts(a["created_at"]), a) for a in d if a["device"] == dev), key=lambda x: x[0])
    if not mine:
        print(f"  {dev}: no alert")
        continue
    t, a = mine[0]
    # The start is printed just after the fleet starts: a few tenths of
    # a second late, hence the clamp.
    delay = max(0.0, (t - start).total_seconds())
    verdict = "within one interval" if delay <= interval else "LATE"
    print(f"  {dev}: {a['behaviour']} after {delay:.1f}s ({verdict}): {a['message'][:160]}")
others = [a for a in d if a["device"] not in attackers]
print(f"  alerts on other devices: {len(others)}")
EOF
  kill $S
  wait $S 2>/dev/null
}

case "${1:-}" in
normal) run normal "${2:-1000}" "${3:-1h}" "${4:-10s}" ;;
attacks)
  for a in mirai-scan bruteforce exfil c2-beacon new-listener; do
    run $a "${2:-1000}" 100s "${3:-10s}" $a
  done
  ;;
*)
  echo "usage: $0 normal [DEVICES] [DURATION] [INTERVAL] | attacks [DEVICES] [INTERVAL]" >&2
  exit 2
  ;;
esac
