#!/usr/bin/env bash
# The Syncplane performance run: ./scripts/perf.sh
#
# Runs every workload of docs/performance.md in one go on this machine — a
# private PostgreSQL cluster (syncplane localpg, in .syncplane/perfpg, with a
# fresh database per run), a real `syncplane serve` (a fresh process per
# workload) and `syncplane loadgen` or the Go benchmarks of ./sync — and
# writes docs/performance.md and docs/performance.json. Not part of the test
# command; it takes about half an hour.
#
# Environment:
#   PERF_REPS          repetitions per workload (default 5; medians are reported)
#   PERF_SNAPSHOT_ROWS rows of the snapshot workload (default 1000000)
#   PERF_DEVICE_REPS   fresh SQLite devices hydrating that snapshot (default
#                      PERF_REPS; every repetition also reads it over HTTP)
#   PERF_WATCHERS      watch streams of the watchers workload (default 10000)
#   PERF_TENANTS       tenants provisioned (default 1000), PERF_ACTIVE active (100)
#   PERF_SECONDS       length of each timed load run (default 15)
#   PERF_NOISY_SECONDS length of the noisy-neighbour runs (default 30)
#   PERF_ONLY          space-separated subset of: push snapshot tenants watchers small noisy
#   PERF_OUT           raw results directory (default .syncplane/perf/<timestamp>)
#   PERF_NO_DOCS=1     leave docs/ alone (raw results only)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x /usr/local/go/bin/go && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
	PATH="/usr/local/go/bin:$PATH"
fi

REPS=${PERF_REPS:-5}
SNAP_ROWS=${PERF_SNAPSHOT_ROWS:-1000000}
DEVICE_REPS=${PERF_DEVICE_REPS:-$REPS}
WATCHERS=${PERF_WATCHERS:-10000}
TENANTS=${PERF_TENANTS:-1000}
ACTIVE=${PERF_ACTIVE:-100}
SECS=${PERF_SECONDS:-15}
# B's p99 is the tail of one run's requests: longer runs make it steadier.
NOISY_SECS=${PERF_NOISY_SECONDS:-30}
ONLY=${PERF_ONLY:-push snapshot tenants watchers small noisy}
OUT=${PERF_OUT:-.syncplane/perf/$(date -u +%Y%m%dT%H%M%SZ)}
PGDIR=.syncplane/perfpg
DBNAME=perf_$(date -u +%Y%m%d%H%M%S)
ADDR=127.0.0.1:18480
URL=http://$ADDR

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=$OUT/syncplane
log() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
want() { [[ " $ONLY " == *" $1 "* ]]; }

# 10,000 watch streams need as many descriptors in the server and in the
# load generator (separate processes).
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ $(ulimit -n) -ge $((WATCHERS + 1000)) ]] || echo "perf.sh: warning: ulimit -n is $(ulimit -n), below $((WATCHERS + 1000))" >&2

log "building syncplane and the sync benchmarks into $OUT"
go build -o "$BIN" ./cmd/syncplane
go test -c -o "$OUT/sync.test" ./sync

log "starting the private PostgreSQL ($PGDIR, database $DBNAME)"
DB=$("$BIN" localpg start --dir "$PGDIR" --db "$DBNAME" --lease $$)
SERVER_PID=""
stop_server() {
	if [[ -n "$SERVER_PID" ]]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	fi
}
cleanup() {
	stop_server
	if [[ -n "${DB:-}" ]]; then
		# Drop the run's database: every tenant of the run lives in it.
		if command -v psql >/dev/null; then
			for d in "$DBNAME" "${DBNAME}_one"; do
				psql "${DB%/*}/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1 || true
			done
		fi
		"$BIN" localpg release --dir "$PGDIR" --lease $$ || true
	fi
}
trap cleanup EXIT

# checkpoint DB: flush dirty buffers now, so that a workload does not pay for
# the previous one's writes (skipped without psql).
checkpoint() {
	command -v psql >/dev/null && psql "$1" -qc CHECKPOINT >/dev/null 2>&1 || true
}

# vacuum_analyze DB: VACUUM ANALYZE the whole database (skipped without psql).
vacuum_analyze() {
	command -v psql >/dev/null && psql "$1" -qc 'VACUUM ANALYZE' >/dev/null 2>&1 || true
}

# start_server [--db URL] [--no-migrate]: a fresh server process (on the
# run's database unless --db names another). After the tenants are
# provisioned the server starts without --auto-migrate: they are migrated,
# and migrating 1,000 tenants at start holds one connection per tenant
# (see docs/performance.md, findings).
start_server() {
	stop_server
	local migrate=--auto-migrate db=$DB
	if [[ "${1:-}" == --db ]]; then
		db=$2
		shift 2
	fi
	[[ "${1:-}" == --no-migrate ]] && migrate=--auto-migrate=false
	"$BIN" serve --database-url "$db" --http-addr "$ADDR" --metrics-addr "" "$migrate" --log-level error \
		>>"$OUT/serve.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 300); do
		if curl -fsS "$URL/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "perf.sh: the server did not become ready; see $OUT/serve.log" >&2
	exit 1
}

loadavg() { echo "$(printf '%-10s' "$1") $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"; }
MIGRATED="" # --no-migrate once the tenants workload has provisioned its tenants
lg() { "$BIN" loadgen --url "$URL" --server-pid "$SERVER_PID" --quiet "$@"; }

if want push; then
	log "push ingest: BenchmarkPush10k × $REPS (and its CPU profile)"
	loadavg push
	SYNCPLANE_TEST_DATABASE_URL=$DB "$OUT/sync.test" -test.run '^$' -test.bench '^BenchmarkPush10k$' \
		-test.benchtime 3x -test.count "$REPS" -test.cpuprofile "$OUT/push.cpu.pprof" | tee "$OUT/push_bench.txt"
	go tool pprof -top -nodecount 30 "$OUT/sync.test" "$OUT/push.cpu.pprof" >"$OUT/push_cpu_top.txt" 2>/dev/null || true
fi

if want snapshot; then
	log "snapshot: $SNAP_ROWS rows to fresh devices"
	loadavg snapshot
	start_server
	lg --database-url "$DB" --tenants 1 --workload snapshot --snapshot-rows "$SNAP_ROWS" --reps "$REPS" \
		--device-reps "$DEVICE_REPS" --json "$OUT/snapshot.json" | tee "$OUT/snapshot.txt"
	stop_server
	SYNCPLANE_TEST_DATABASE_URL=$DB "$OUT/sync.test" -test.run '^$' -test.bench '^BenchmarkSnapshot100k$' \
		-test.benchtime 3x -test.cpuprofile "$OUT/snapshot.cpu.pprof" | tee "$OUT/snapshot_bench.txt"
	go tool pprof -top -nodecount 30 "$OUT/sync.test" "$OUT/snapshot.cpu.pprof" >"$OUT/snapshot_cpu_top.txt" 2>/dev/null || true
fi

if want tenants; then
	log "tenants: one tenant × $((ACTIVE * 10)) devices, then $ACTIVE of $TENANTS tenants × 10 devices, interleaved"
	loadavg tenants
	# The single tenant lives in a database of its own, so that it is the
	# only tenant of its platform; the many tenants in the run's database.
	DB_ONE=$("$BIN" localpg start --dir "$PGDIR" --db "${DBNAME}_one" --lease $$)
	start_server --db "$DB_ONE"
	lg --database-url "$DB_ONE" --tenants 1 --setup-only --write-tenants "$OUT/tenants_one.json"
	start_server
	# In batches of 100 per process: tenant provisioning keeps one
	# PostgreSQL connection per migrated tenant until its process exits.
	t0=$(date +%s)
	files=()
	for b in $(seq 1 $(((TENANTS + 99) / 100))); do
		n=$((TENANTS - (b - 1) * 100))
		((n > 100)) && n=100
		"$BIN" loadgen --database-url "$DB" --tenants "$n" --setup-only --write-tenants "$OUT/tenants_many_$b.json" --quiet
		files+=("$OUT/tenants_many_$b.json")
	done
	MANY=$(IFS=,; echo "${files[*]}")
	echo "$((TENANTS + 1)) (provisioned in $(($(date +%s) - t0)) s)" >"$OUT/tenants_provisioned.txt"
	MIGRATED=--no-migrate # later workloads' servers need not check 1,000 tenants' migrations
	# A platform's tenants exist long before a busy hour: vacuum the
	# catalogs the provisioning churned and give the new tables their
	# statistics now, instead of autovacuum doing it during the measurement.
	vacuum_analyze "$DB_ONE"
	vacuum_analyze "$DB"
	# Repetitions alternate one tenant and many, each on a fresh server after
	# a checkpoint, so that neither side always runs after the provisioning's
	# write burst or on a warmer machine.
	# A fresh server's connections start with cold caches (prepared
	# statements, plans, relcache), per tenant: each repetition first runs
	# the same load unmeasured for 20 s (reported apart as the cold figure),
	# then measures the warm server, as a long-running replica is.
	tenants_rep() { # NAME [loadgen flags]
		local name=$1
		shift
		lg "$@" --mode http --devices-per-user 2 --push-ratio 0.5 --rows-per-push 1 --duration 20s --attach-parallel 64 \
			--json "$OUT/tenants_warm-${name}_$i.json" >/dev/null
		lg "$@" --mode http --devices-per-user 2 --push-ratio 0.5 --rows-per-push 1 --duration "${SECS}s" --attach-parallel 64 \
			--json "$OUT/tenants_${name}_$i.json"
	}
	for i in $(seq 1 "$REPS"); do
		checkpoint "$DB_ONE"
		start_server --db "$DB_ONE" --no-migrate
		tenants_rep single --tenants-file "$OUT/tenants_one.json" --devices $((ACTIVE * 10))
		checkpoint "$DB"
		start_server --no-migrate
		tenants_rep multi --tenants-file "$MANY" --active "$ACTIVE" --devices 10
	done
	stop_server
fi

if want watchers; then
	log "watchers: $WATCHERS streams on one fresh server"
	loadavg watchers
	start_server $MIGRATED
	lg --database-url "$DB" --tenants 1 --workload watchers --mode http --watchers "$WATCHERS" --watchers-per-user 10 \
		--commits 50 --reps "$REPS" --attach-parallel 200 --json "$OUT/watchers.json" | tee "$OUT/watchers.txt"
	stop_server
fi

if want small; then
	log "small pushes: 1-row pushes from 50 and 200 real devices"
	loadavg small
	start_server $MIGRATED
	lg --database-url "$DB" --tenants 1 --setup-only --write-tenants "$OUT/tenants_small.json"
	for i in $(seq 1 "$REPS"); do
		for n in 50 200; do
			lg --tenants-file "$OUT/tenants_small.json" --mode device --devices "$n" --push-ratio 1 --rows-per-push 1 \
				--duration "${SECS}s" --dir "$OUT/devices" --json "$OUT/small${n}_$i.json"
			rm -rf "$OUT/devices"
		done
	done
	stop_server
fi

if want noisy; then
	NOISY_RPS=100
	echo "$NOISY_RPS" >"$OUT/noisy_rps.txt"
	log "noisy neighbour: tenant B alone, and with tenant A pressing at $NOISY_RPS requests/s (harsh flood, reference-like client)"
	loadavg noisy
	start_server $MIGRATED
	lg --database-url "$DB" --tenants 1 --noisy --noisy-rps "$NOISY_RPS" --setup-only --write-tenants "$OUT/tenants_noisy.json"
	# Each repetition runs B alone between the two floods it is compared
	# with: the harsh one (20 devices retrying every 429 after 20 ms) and the
	# reference-like one (backing off 100 ms-1 s, honouring Retry-After).
	# The flood runs in a load-generator process of its own at nice 19,
	# started before B's run and ending after it: A's devices are its users'
	# phones, not the server's cores (the report says so beside the figure).
	b_run() { lg --tenants-file "$OUT/tenants_noisy.json" --mode http --devices 10 --op-interval 50ms --push-ratio 0.5 \
		--duration "${NOISY_SECS}s" --json "$OUT/$1.json"; }
	flood_run() { # NAME [flood flags]: B's run NAME during A's flood NAME-a
		local name=$1 fp
		shift
		nice -n 19 "$BIN" loadgen --url "$URL" --server-pid -1 --quiet --tenants-file "$OUT/tenants_noisy.json" --noisy-only \
			--noisy-devices 20 "$@" --mode http --duration "$((NOISY_SECS + 8))s" --json "$OUT/${name%_*}-a_${name##*_}.json" >/dev/null &
		fp=$!
		sleep 3
		b_run "$name"
		wait "$fp"
	}
	for i in $(seq 1 "$REPS"); do
		flood_run "noisy_flood_$i" --noisy-backoff 20ms
		b_run "noisy_base_$i"
		flood_run "noisy_ref_$i"
	done
	stop_server
fi
loadavg end

if [[ "${PERF_NO_DOCS:-}" != 1 ]]; then
	log "writing docs/performance.md and docs/performance.json"
	"$BIN" loadgen report --dir "$OUT" --database-url "$DB" --commit "$(git rev-parse --short HEAD)" \
		--command "./scripts/perf.sh" --md docs/performance.md --json docs/performance.json
fi
log "done; raw results in $OUT"
