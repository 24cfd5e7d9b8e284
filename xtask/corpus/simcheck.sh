#!/usr/bin/env bash
# The built-in profile against the simulated fleet (cargo build --release;
# bash xtask/corpus/simcheck.sh): false alerts on a normal
# fleet, and which attacks it raises (all on 127.0.0.1).
set -u
B=${BULWARK:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/bulwark}
run() { # name devices duration attack
  local D=/tmp/simsrv-$1; rm -rf $D
  $B server --data-dir $D --listen 127.0.0.1:18080 --device-listen 127.0.0.1:18443 --mqtt-listen 127.0.0.1:18883 >$D.log 2>&1 &
  local S=$!
  for i in $(seq 50); do [ -f $D/admin.token ] && break; sleep 0.2; done; sleep 1
  export BULWARK_SERVER=http://127.0.0.1:18080 BULWARK_TOKEN=$(cat $D/admin.token)
  local T=$($B enroll-token create --group fleet --env staging --uses 1000 --ttl 1h)
  local extra=()
  [ -n "${4:-}" ] && extra=(--attack $4 --attack-at 30s --attack-devices 3)
  $B sim --server https://127.0.0.1:18443 --ca $D/ca.pem --enroll-token "$T" --devices $2 \
     --gateway 127.0.0.1:18883 --telemetry-interval 5s --duration $3 "${extra[@]}" >$D.sim 2>&1
  echo "== $1 ($2 devices, $3, attack ${4:-none})"
  $B alerts list --json | python3 -c '
import json,sys,collections
d=json.load(sys.stdin)["detections"]
c=collections.Counter((a["behaviour"]) for a in d)
devs=collections.Counter(a.get("device_id", a.get("device")) for a in d)
print("alerts:", dict(c), "devices alerted:", len(devs))
for a in d[:3]: print("  ", a["behaviour"], a["message"][:160])'
  kill $S; wait $S 2>/dev/null
}
run normal 300 150s
for a in mirai-scan bruteforce exfil c2-beacon new-listener; do run $a 50 75s $a; done
