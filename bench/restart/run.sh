#!/usr/bin/env bash
# Restart time after kill -9: fill a broker through the Kafka protocol (thorload, 1 KiB records,
# 4 partitions, default 1 GiB segments, fsync always) and kill it with SIGKILL under that load
# once its data directory holds GIB gibibytes; start it again and report the start-up time it logs
# ("thorstream started ... startup"). Then stop it with SIGTERM and report the start-up time after
# a clean stop.
#
#   bench/restart/run.sh 1      # 1 GiB
#   bench/restart/run.sh 10     # 10 GiB (needs about 11 GB of free disk)
set -euo pipefail
gib=${1:-1}
cd "$(dirname "$0")/../.."
make -s build
dir=$(mktemp -d /tmp/thorstream-restart.XXXXXX)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 20000))
kport=$((port + 1))
export THORSTREAM_DATA_DIR=$dir/data THORSTREAM_ADDR=127.0.0.1:$port THORSTREAM_KAFKA_ADDR=127.0.0.1:$kport

start() {
	bin/thorstream >"$dir/broker.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		if grep -q "thorstream started" "$dir/broker.log"; then return; fi
		sleep 0.1
	done
	echo "broker did not start"; cat "$dir/broker.log"; exit 1
}
startup() { grep "thorstream started" "$dir/broker.log" | sed 's/.*"startup": \([0-9.e+-]*\).*/\1 s/'; }

start
# Produce without end and kill the broker once the data directory holds GIB gibibytes, so the kill
# lands under load with unsynced appends in flight.
bin/thorload produce --brokers 127.0.0.1:$kport --topic restart --partitions 4 --record-size 1000 \
	--records $((gib * 4 * 1024 * 1024)) --producers 2 --quiet >"$dir/load.log" 2>&1 &
load=$!
want=$((gib * 1024 * 1024))
while [ "$(du -sk "$dir/data" | cut -f1)" -lt $want ]; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null || true
kill $load 2>/dev/null || true; wait $load 2>/dev/null || true
start
echo "data: $(du -sh "$dir/data" | cut -f1); start-up after kill -9 under load: $(startup)"
echo "torn tails repaired: $(grep -c "truncated torn tail" "$dir/broker.log" || true)"
kill -TERM $pid; wait $pid 2>/dev/null || true
start
echo "start-up after a clean stop: $(startup)"
kill -TERM $pid; wait $pid 2>/dev/null || true
