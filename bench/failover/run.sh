#!/usr/bin/env bash
# Partition failover on a three-node cluster on this host: for each of RUNS runs, start a fresh
# cluster (the README's three nodes, on ports 29600-29602, Kafka listeners on +100, admin HTTP
# off), and run bench/failover against it: a franz-go producer at its defaults writes 2000
# records/s (100 B) to one partition of a 3-partition topic (replication factor 3), the
# partition's leader is killed with SIGKILL, and the command reports when Metadata names a new
# leader and when the producer's next record is acknowledged. Prints min/median/max at the end.
#
#   bench/failover/run.sh                 # 5 runs, the killed leader is not the active controller
#   KILL=controller bench/failover/run.sh # the killed leader is also the active controller
#   RUNS=3 bench/failover/run.sh -metadata-min-age 250ms   # more flags go to the command
set -euo pipefail
runs=${RUNS:-5}
kill=${KILL:-leader}
cd "$(dirname "$0")/../.."
dir=$(mktemp -d /tmp/thorstream-failover.XXXXXX)
go build -o "$dir/" ./cmd/thorstream ./bench/failover
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
kafka=127.0.0.1:29700,127.0.0.1:29701,127.0.0.1:29702

start() {
	pids=()
	for i in 0 1 2; do
		peers=""
		for j in 0 1 2; do [ "$j" = "$i" ] || peers="$peers${peers:+,}$j=127.0.0.1:2960$j"; done
		THORSTREAM_NODE_ID=$i THORSTREAM_ADDR=127.0.0.1:2960$i THORSTREAM_CLUSTER_PEERS=$peers \
			THORSTREAM_DATA_DIR=$dir/data/node-$i THORSTREAM_HTTP_ADDR=off \
			"$dir/thorstream" >"$dir/node-$i.log" 2>&1 &
		pids+=($!)
	done
	for _ in $(seq 1 300); do
		if [ "$(kcat -L -b 127.0.0.1:29700 -m 2 2>/dev/null | grep -c '  broker ')" = 3 ]; then return; fi
		sleep 0.1
	done
	echo "the cluster did not form"; tail -n 20 "$dir"/node-*.log; exit 1
}

: >"$dir/results"
for r in $(seq 1 "$runs"); do
	start
	"$dir/failover" -brokers "$kafka" -pids "0=${pids[0]},1=${pids[1]},2=${pids[2]}" -kill "$kill" "$@" | tee -a "$dir/results"
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$dir/data"
done
summary() { # field
	grep '^result' "$dir/results" | sed "s/.*$1=\([0-9]*\).*/\1/" | sort -n |
		awk -v f="$1" '{v[NR]=$1} END {printf "%s: min %d, median %d, max %d ms (%d runs)\n", f, v[1], v[int((NR+1)/2)], v[NR], NR}'
}
summary leader_ms
summary next_ack_ms
