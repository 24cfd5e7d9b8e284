#!/usr/bin/env bash
# The detection development corpus (cargo xtask corpus): real tools
# against hosts this script creates in network namespaces, captured with
# tshark, labelled by construction.
#
# Hosts (all made here, all torn down at the end):
#   bwc-bad   10.99.0.66   an infected camera: nmap, masscan, hping3,
#                          hydra, a C&C beacon and retry storm
#   bwc-good  10.99.0.20   a sensor: DNS, NTP, HTTPS API calls, MQTT,
#   bwc-good2 10.99.0.21   firmware downloads over HTTP
#   bwc-net   10.99.0.1, 203.0.113.{53,123,80,83,66}, 198.51.100.20-39
#             "the internet": resolver, NTP, web, MQTT broker, C&C, and
#             twenty hosts with telnet (the scan's targets)
#   bwc-sw    a bridge joining them; tshark captures on it
#
# Every tool targets only those exact addresses, with bounded counts,
# rates and time (see each line). Output: OUT/corpus.pcapng,
# OUT/windows.tsv (what ran when).
set -euo pipefail
OUT=${1:?usage: build.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
PY="python3 $HERE/servers.py"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
NS=(bwc-sw bwc-bad bwc-good bwc-good2 bwc-net)
TARGETS=$(seq -f "198.51.100.%g" 20 39)

cleanup() {
  for n in "${NS[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.5
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup

for n in "${NS[@]}"; do ip netns add "$n"; ip netns exec "$n" ip link set lo up; done
ip netns exec bwc-sw ip link add br0 type bridge
ip netns exec bwc-sw ip link set br0 up
plug() { # ns addr...
  local ns=$1; shift
  ip link add "v-$ns" type veth peer name eth0 netns "$ns"
  ip link set "v-$ns" netns bwc-sw
  ip netns exec bwc-sw ip link set "v-$ns" master br0 up
  for a in "$@"; do ip netns exec "$ns" ip addr add "$a" dev eth0; done
  ip netns exec "$ns" ip link set eth0 up
}
plug bwc-bad 10.99.0.66/24
plug bwc-good 10.99.0.20/24
plug bwc-good2 10.99.0.21/24
plug bwc-net 10.99.0.1/24 203.0.113.53/32 203.0.113.123/32 203.0.113.80/32 203.0.113.83/32 203.0.113.66/32
for t in $TARGETS; do ip netns exec bwc-net ip addr add "$t/32" dev eth0; done
for ns in bwc-bad bwc-good bwc-good2; do
  ip netns exec "$ns" ip route add 203.0.113.0/24 dev eth0
  ip netns exec "$ns" ip route add 198.51.100.0/24 dev eth0
done
NET_MAC=$(ip netns exec bwc-net cat /sys/class/net/eth0/address)

# The internet's services.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/web.key" -out "$OUT/web.crt" \
  -days 2 -subj /CN=cloud >/dev/null 2>&1
mkdir -p "$OUT/www/api"
head -c 300000 /dev/urandom > "$OUT/www/firmware.bin"
echo '{"ok":true}' > "$OUT/www/api/state"
ip netns exec bwc-net $PY dns 203.0.113.53 &
ip netns exec bwc-net $PY ntp 203.0.113.123 &
ip netns exec bwc-net $PY telnet 0.0.0.0 &
ip netns exec bwc-net $PY irc 203.0.113.66 &
(cd "$OUT/www" && exec ip netns exec bwc-net python3 -m http.server 80 --bind 0.0.0.0 >/dev/null 2>&1) &
(cd "$OUT/www" && exec ip netns exec bwc-net python3 -c "
import http.server, ssl
s = http.server.ThreadingHTTPServer(('203.0.113.80', 443), http.server.SimpleHTTPRequestHandler)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('$OUT/web.crt', '$OUT/web.key')
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()" >/dev/null 2>&1) &
printf 'listener 1883 203.0.113.83\nallow_anonymous true\n' > "$OUT/mosquitto.conf"
ip netns exec bwc-net mosquitto -c "$OUT/mosquitto.conf" >/dev/null 2>&1 &
sleep 1

rm -f "$OUT/corpus.pcapng"
ip netns exec bwc-sw tshark -q -i br0 -s 256 -w "$OUT/corpus.pcapng" >/dev/null 2>&1 &
TSHARK=$!
sleep 2
: > "$OUT/windows.tsv"
window() { # name start end
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT/windows.tsv"
}
now() { date +%s.%N; }

# Benign devices, throughout.
ip netns exec bwc-good $PY benign 203.0.113.53 203.0.113.123 203.0.113.80 203.0.113.83 70 &
ip netns exec bwc-good2 $PY benign 203.0.113.53 203.0.113.123 203.0.113.80 203.0.113.83 70 &
sleep 4

# 1. nmap SYN scan of telnet on the twenty targets (at most 200 probes/s).
t0=$(now)
printf '%s\n' $TARGETS > "$OUT/targets.txt"
ip netns exec bwc-bad timeout 30 nmap -sS -Pn -n -p 23,2323 --max-rate 200 -iL "$OUT/targets.txt" >/dev/null 2>&1 || true
window scan-nmap "$t0" "$(now)"
sleep 3

# 2. masscan of the same twenty hosts on three ports (200 packets/s).
t0=$(now)
ip netns exec bwc-bad timeout 15 masscan -p23,2323,8080 $(echo $TARGETS | tr ' ' ',') \
  --rate 200 --wait 2 --adapter eth0 --adapter-ip 10.99.0.66 --router-mac "$NET_MAC" \
  >/dev/null 2>&1 || true
window scan-masscan "$t0" "$(now)"
sleep 3

# 3. hping3 SYN flood of one web host: 1500 SYNs at about 500/s.
t0=$(now)
ip netns exec bwc-bad timeout 20 hping3 -q -S -p 80 -c 1500 -i u2000 198.51.100.30 >/dev/null 2>&1 || true
window flood-hping3 "$t0" "$(now)"
sleep 6

# 4. hydra against one telnet host: 24 passwords, 4 tasks.
t0=$(now)
printf '%s\n' admin root 12345 password default 1234 888888 xc3511 vizxv admin1234 \
  juantech 123456 54321 support user pass 1111 smcadmin klv123 Zte521 hi3518 jvbzd anko 7ujMko0 \
  > "$OUT/passwords.txt"
ip netns exec bwc-bad timeout 40 hydra -l root -P "$OUT/passwords.txt" -t 4 -w 3 -I \
  telnet://198.51.100.25 >/dev/null 2>&1 || true
window bruteforce-hydra "$t0" "$(now)"
sleep 2

# 5. C&C: a beacon every 2 s to an IRC-style server (15 times), and a
#    bot retrying a dead C&C port every second (20 times).
t0=$(now)
ip netns exec bwc-bad $PY beacon 203.0.113.66 6667 2 15 &
ip netns exec bwc-bad $PY beacon 203.0.113.66 4444 1 20 &
wait %%
sleep 12
window c2 "$t0" "$(now)"

sleep 3
kill "$TSHARK"; wait "$TSHARK" 2>/dev/null || true
chmod 644 "$OUT/corpus.pcapng"
echo "corpus: $OUT/corpus.pcapng"
