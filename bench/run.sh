#!/usr/bin/env bash
# The standard performance set of issue 6: release build, criterion benches, then short load runs
# of lookout-loadgen against a fresh `lookout serve` each (SQLite temp file or a fresh Postgres
# database). Every run is bounded in time and count; everything runs on loopback.
#
#   bench/run.sh            # standard set (< 10 minutes on the 2-core machine)
#   bench/run.sh --full     # load runs at full length (60 s persistence runs)
#   bench/run.sh --no-bench # skip criterion
#   ONLY=pg_pageviews bench/run.sh --no-bench   # one load run (names below)
#   bench/run.sh --cluster  # also the cluster runs (issue 7; ~5 more minutes, so not standard)
#   ONLY='cluster_*' bench/run.sh --no-bench --cluster   # the cluster runs alone (ONLY: a glob)
#
# Postgres runs need LOOKOUT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres);
# they are skipped when it does not answer. Cluster runs also need Redis at LOOKOUT_TEST_REDIS,
# else REDIS_URL, else redis://127.0.0.1:6379: 4 `lookout serve` nodes on one fresh Postgres
# database (3 for 15,000 visitors each, 1 for the admins, so that every visitor→admin frame and
# every admin→visitor message crosses the bus), 3 load generator workers of 15,000 sockets.
# The bench's channels are its own site's (`lk:s:{site}`, a fresh site per run); only the
# nodes' heartbeat channel is shared with whatever else uses that Redis. Results: one JSON line per run in $OUT/results.jsonl
# (default target/bench-results/), the human tables on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

FULL=0
BENCH=1
CLUSTER=0
for a in "$@"; do
  case "$a" in
    --full) FULL=1 ;;
    --no-bench) BENCH=0 ;;
    --cluster) CLUSTER=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
PG_ADMIN="${LOOKOUT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="${OUT:-target/bench-results}"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
SERVER="$TARGET_DIR/release/lookout"
LOADGEN="$TARGET_DIR/release/lookout-loadgen"
LONG=20
[ "$FULL" = 1 ] && LONG=60

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
cargo build --release --bin lookout --bin lookout-loadgen

pg_ok=0
if command -v psql >/dev/null && psql "$PG_ADMIN" -Atc "select 1" >/dev/null 2>&1; then pg_ok=1; fi

if [ "$BENCH" = 1 ]; then
  echo "== criterion benches"
  if [ "$pg_ok" = 1 ]; then
    LOOKOUT_TEST_POSTGRES="$PG_ADMIN" cargo bench --bench protocol --bench hub --bench writer --bench targeting 2>&1 \
      | grep -E "^[a-z_]+/|time:|thrpt:" | tee "$OUT/criterion.txt"
  else
    cargo bench 2>&1 | grep -E "^[a-z_]+/|time:|thrpt:" | tee "$OUT/criterion.txt"
  fi
fi

SP=""
DBNAME=""
WORK=""
start_server() { # $1 = sqlite|postgres; extra env in SERVER_ENV
  local backend=$1 url
  WORK=$(mktemp -d /tmp/lookout-bench.XXXXXX)
  # Below the ephemeral range (32768+ here), so no outgoing connection already holds the port.
  PORT=$(( 12000 + RANDOM % 20000 ))
  if [ "$backend" = postgres ]; then
    DBNAME="lookout_bench_$(date +%s)_$RANDOM"
    psql "$PG_ADMIN" -qAtc "create database $DBNAME" >/dev/null
    url="${PG_ADMIN%/*}/$DBNAME"
  else
    DBNAME=""
    url="sqlite://$WORK/lookout.db"
  fi
  env LOOKOUT_MAX_CONNECTIONS_PER_IP=100000 LOOKOUT_MAX_FRAMES_PER_SECOND=1000 RUST_LOG=warn \
      ${SERVER_ENV:-} "$SERVER" serve --addr "127.0.0.1:$PORT" --database-url "$url" >"$WORK/server.log" 2>&1 &
  SP=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$WORK/server.log" >&2; return 1
}
stop_server() {
  if [ -n "$SP" ]; then kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; SP=""; fi
  if [ -n "$DBNAME" ]; then psql "$PG_ADMIN" -qAtc "drop database if exists $DBNAME with (force)" >/dev/null || true; DBNAME=""; fi
  [ -n "$WORK" ] && rm -rf "$WORK"; WORK=""
}
trap stop_server EXIT

run() { # name backend loadgen-args...
  local name=$1 backend=$2; shift 2
  # shellcheck disable=SC2053 # ONLY may be a glob
  if [ -n "${ONLY:-}" ] && [[ $name != $ONLY ]]; then return 0; fi
  if [ "$backend" = postgres ] && [ "$pg_ok" = 0 ]; then echo "== $name: skipped (no Postgres)"; return 0; fi
  echo "== $name ($backend) — load: $(cut -d' ' -f1-3 /proc/loadavg)"
  start_server "$backend"
  "$LOADGEN" "$@" --url "http://127.0.0.1:$PORT" --server-pid "$SP" --label "$name/$backend" \
      --json-out "$RESULTS" | grep -v '^{' || echo "!! $name failed"
  stop_server
}

SRC=127.0.0.2-127.0.0.17
# 19,000 idle visitors held by one node (2 worker processes of 9,500 sockets each).
run idle sqlite idle -n 19000 --procs 2 --sources $SRC -d 15
# Handshakes per second: connect + hello + welcome + close cycles.
run churn sqlite churn -r 3000 -d 15 --procs 2 --sources $SRC --connect-concurrency 512
# Page views persisted: 2,000 visitors at a total of 50,000/s (Postgres) and 20,000/s (SQLite).
run pg_pageviews postgres pageviews -n 2000 -r 50000 -d $LONG --procs 2 --sources $SRC --settle 120
run sqlite_pageviews sqlite pageviews -n 2000 -r 20000 -d $LONG --procs 2 --sources $SRC --settle 120
# Visitor → admin latency: 20,000 page views/s fanned out to 10 admins, persistence on.
run fanout postgres pageviews -n 2000 -r 20000 -a 10 -d 20 --procs 2 --sources $SRC --settle 120
# The same at half the rate: where the latency target holds on this machine.
run fanout_10k postgres pageviews -n 2000 -r 10000 -a 10 -d 15 --procs 2 --sources $SRC --settle 120
# Admin → visitor latency: 1,000 messages/s to single visitors.
run push postgres push -n 2000 -r 1000 -a 4 -d 20 --procs 2 --sources $SRC --settle 60

# ---- cluster runs (--cluster)
REDIS="${LOOKOUT_TEST_REDIS:-${REDIS_URL:-redis://127.0.0.1:6379}}"
CPIDS=()
CPORTS=()
stop_cluster() {
  local p
  for p in "${CPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CPIDS=()
  CPORTS=()
  stop_server
}
wait_port() { # port pid log
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "node on port $1 did not start:" >&2; cat "$3" >&2; return 1
}
start_cluster() { # 4 nodes; node 0 takes the admins, nodes 1-3 the visitors
  WORK=$(mktemp -d /tmp/lookout-bench.XXXXXX)
  DBNAME="lookout_bench_$(date +%s)_$RANDOM"
  psql "$PG_ADMIN" -qAtc "create database $DBNAME" >/dev/null
  local url="${PG_ADMIN%/*}/$DBNAME" base=$(( 12000 + RANDOM % 20000 )) i
  # One login secret for all nodes (a token from one node is valid on every node).
  local secret
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  for i in 0 1 2 3; do
    CPORTS[i]=$(( base + i ))
    env LOOKOUT_MAX_CONNECTIONS_PER_IP=100000 LOOKOUT_MAX_FRAMES_PER_SECOND=1000 RUST_LOG=warn \
        LOOKOUT_JWT_SECRET="$secret" "$SERVER" serve --addr "127.0.0.1:${CPORTS[i]}" \
        --database-url "$url" --redis-url "$REDIS" >"$WORK/node$i.log" 2>&1 &
    CPIDS[i]=$!
    # The first node alone runs the migrations of the fresh database.
    if [ "$i" = 0 ]; then wait_port "${CPORTS[0]}" "${CPIDS[0]}" "$WORK/node0.log" || return 1; fi
  done
  for i in 1 2 3; do wait_port "${CPORTS[i]}" "${CPIDS[i]}" "$WORK/node$i.log" || return 1; done
}
cluster_run() { # name loadgen-args...
  local name=$1; shift
  if [ "$CLUSTER" = 0 ]; then return 0; fi
  # shellcheck disable=SC2053 # ONLY may be a glob
  if [ -n "${ONLY:-}" ] && [[ $name != $ONLY ]]; then return 0; fi
  if [ "$pg_ok" = 0 ]; then echo "== $name: skipped (no Postgres)"; return 0; fi
  local rpid
  rpid=$(redis-cli -u "$REDIS" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
  if [ -z "$rpid" ]; then echo "== $name: skipped (no Redis at $REDIS)"; return 0; fi
  echo "== $name (4 nodes, postgres, redis) — load: $(cut -d' ' -f1-3 /proc/loadavg)"
  start_cluster || { stop_cluster; echo "!! $name failed"; return 0; }
  local u="http://127.0.0.1"
  "$LOADGEN" "$@" --url "$u:${CPORTS[1]},$u:${CPORTS[2]},$u:${CPORTS[3]}" --admin-url "$u:${CPORTS[0]}" \
      --server-pid "${CPIDS[1]},${CPIDS[2]},${CPIDS[3]},${CPIDS[0]}" --redis-pid "$rpid" \
      --label "$name/postgres+redis" --json-out "$RESULTS" | grep -v '^{' || echo "!! $name failed"
  stop_cluster
}
trap stop_cluster EXIT
# 45,000 idle visitors, 15,000 on each of 3 nodes (3 workers, one per node).
cluster_run cluster_idle idle -n 45000 --procs 3 --sources $SRC -d 15
# Visitor → admin across nodes: 45,000 visitors send page views at 3,000/s in all, 4 admins on
# the fourth node.
cluster_run cluster_pageviews pageviews -n 45000 -r 3000 -a 4 -d 20 --procs 3 --sources $SRC --settle 120
# Admin → visitor across nodes: 4 admins on the fourth node send 500 messages/s to single
# visitors of the 45,000.
cluster_run cluster_push push -n 45000 -r 500 -a 4 -d 20 --procs 3 --sources $SRC --settle 60
echo "== results: $RESULTS"
