#!/usr/bin/env bash
# repl_ext benchmarks, side by side with PostgreSQL's own replication measured
# on the same machine in the same run.  On demand only (make bench), never in
# CI.  This is the one entry point; the scenarios other than "copy" live in
# files this script sources: sync.sh, switchover.sh, throughput.sh (capture,
# apply, sustain) and failover.sh.
#
#   sudo bash test/bench/run.sh
#   sudo BENCH_ROWS=100000 BENCH_RUNS=3 bash test/bench/run.sh
#   sudo BENCH_SCENARIOS=sync BENCH_SECONDS=60 bash test/bench/run.sh
#   sudo BENCH_NO_INSTALL=1 BENCH_SCENARIOS=capture BENCH_SCALE=1 BENCH_SECONDS=5 bash test/bench/run.sh
#
# Scenarios, run in this order whatever the order of BENCH_SCENARIOS (each
# on instances initialized for it; the tables are printed at the end, in
# the same order):
#   capture     M1, capture overhead: pgbench tpcb-like, 4 clients, with one
#               asynchronous follower of all four tables, against no
#               replication (throughput.sh)
#   apply       M2, apply throughput: a backlog of single-row INSERTs,
#               UPDATEs and DELETEs written while the follower is paused,
#               then the time until it has applied it (throughput.sh)
#   sync        M3, sync commit latency: one client, single-row INSERTs,
#               synchronous and asynchronous replicas (sync.sh)
#   copy        M4, initial copy of a new follower (below)
#   sustain     M5, sustainable throughput: a fixed pgbench tpcb-like run;
#               transactions / (pgbench start until the follower has caught
#               up) (throughput.sh)
#   switchover  planned switchover under load: time without writes
#               (switchover.sh)
#   failover    M6, the leader killed (pg_ctl stop -m immediate) under a
#               single-client INSERT load, synchronous follower: time until
#               the first write on the new leader, no acknowledged row lost
#               (failover.sh)
#
# Scenario "copy" (M4, initial copy): bring a new, empty follower up to date
# with a table of BENCH_ROWS rows (default 1,000,000, about 140 MB with its
# key):
#   repl_ext: wall-clock time from repl.add_follower() on the leader until
#             repl.wait_for_catchup('f1', '600 s') returns true (the follower
#             has no table beforehand: repl_ext creates it, copies the rows,
#             builds the key, catches up);
#   built-in: wall-clock time from CREATE SUBSCRIPTION ... WITH (copy_data =
#             true) until every table of the subscription is in state 'r'
#             (ready); built-in replication needs the subscriber's table to
#             exist beforehand, with its key.
# Both copies are checked against their source (row count and an md5 over
# id, amount and label); any difference fails the script.  The result table
# shows each run, and the median when BENCH_RUNS > 1, with the ratio
# repl_ext / built-in (below 1: repl_ext is faster) and rows per second.
#
# Environment:
#   BENCH_SCENARIOS   comma list of the scenarios to run (default all:
#                     "capture,apply,sync,copy,sustain,switchover,failover")
#   BENCH_NO_INSTALL  1: do not build and install repl_ext (use the one
#                     installed already, e.g. while the tree is being edited
#                     and built by someone else); packages are still checked
#   BENCH_ROWS        copy: rows in the table (default 1000000)
#   BENCH_RUNS        copy, switchover, failover: repetitions of the
#                     measurement (default 1), median reported.  copy: between
#                     runs the follower side is dropped (repl.remove_follower
#                     + DROP TABLE; DROP SUBSCRIPTION + TRUNCATE), then 6 s
#                     pass so that neither system's 5 s worker restart
#                     throttle is measured
#   BENCH_ONLY        copy: repl_ext | builtin: run only that half (every
#                     other scenario always measures every system); builtin
#                     with copy alone does not build repl_ext
#   BENCH_SECONDS     seconds each pgbench -T runs: sync, per configuration
#                     (default 20), and capture, per system (default 30),
#                     split into BENCH_ROUNDS runs
#   BENCH_ROUNDS      sync, capture: how many times the configurations
#                     take turns, each running its share of BENCH_SECONDS
#                     (default 5)
#   BENCH_SCALE       capture, sustain: pgbench scale factor (default 10,
#                     about 160 MB)
#   BENCH_APPLY_ROWS  apply: rows inserted in the backlog (default 200000;
#                     then half as many updated and a quarter deleted, all
#                     single-row statements, a commit every 2000)
#   BENCH_SUSTAIN_TX  sustain: pgbench transactions per client, 4 clients
#                     (default 20000, about 30 s without replication on a
#                     2-core VM)
# A default run of all scenarios should take about 11 minutes on a 2-core VM
# (sum of the parts: capture 2, apply 1, sync 3.5, copy 0.5, sustain 3,
# switchover and failover 0.5 each).
#
# Instances (initdb -A trust -U postgres, shared_buffers 256MB, max_wal_size
# 4GB, checkpoint_timeout 30min, fsync and synchronous_commit at defaults),
# listening on 127.0.0.1 and a unix socket in a temporary directory under /tmp:
#   repl_leader 55431, repl_follower 55432, repl_third 55437 (failover only):
#     shared_preload_libraries repl_ext
#   pub 55433 (wal_level logical), sub 55434
#   primary 55435, standby 55436 (pg_basebackup -R of primary)
# Each scenario stops its instances when it is done: only the instances
# being measured run (sync runs its three pairs side by side).
# Every wait is bounded (600 s for the copies and for any catch-up, pgbench
# -T gets its duration + 120 s, pgbench -t 30 min, statement_timeout 30 min
# for any statement); the script exits non-zero on any failure, printing the
# tail of the server logs, and always stops its own instances (pg_ctl -D
# <its directory> stop) and removes the directory.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
BIN=/usr/lib/postgresql/15/bin

all_scenarios=(capture apply sync copy sustain switchover failover)
scenarios=${BENCH_SCENARIOS:-capture,apply,sync,copy,sustain,switchover,failover}
no_install=${BENCH_NO_INSTALL:-}
rows=${BENCH_ROWS:-1000000}
runs=${BENCH_RUNS:-1}
only=${BENCH_ONLY:-}
seconds_env=${BENCH_SECONDS:-}
seconds=${seconds_env:-20}	# sync
capture_seconds=${seconds_env:-30}
rounds=${BENCH_ROUNDS:-5}	# sync, capture
scale=${BENCH_SCALE:-10}
apply_rows=${BENCH_APPLY_ROWS:-200000}
sustain_tx=${BENCH_SUSTAIN_TX:-20000}
declare -A want=()
IFS=, read -r -a scenario_list <<< "$scenarios"
for s in ${scenario_list[@]+"${scenario_list[@]}"}; do
	case " ${all_scenarios[*]} " in
		*" $s "*) want[$s]=1 ;;
		*) echo "BENCH_SCENARIOS must be a comma list of $(IFS=,; echo "${all_scenarios[*]}"), not '$scenarios'" >&2; exit 2 ;;
	esac
done
[ ${#want[@]} -gt 0 ] || { echo "BENCH_SCENARIOS names no scenario: '$scenarios'" >&2; exit 2; }
wants() { [ -n "${want[$1]:-}" ]; }
case $no_install in
	'' | 0 | 1) ;;
	*) echo "BENCH_NO_INSTALL must be 1 (or 0 or empty), not '$no_install'" >&2; exit 2 ;;
esac
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$1 must be a positive integer, not '$2'" >&2; exit 2; }; }
posint BENCH_ROWS "$rows"
posint BENCH_RUNS "$runs"
posint BENCH_ROUNDS "$rounds"
[ -z "$seconds_env" ] || posint BENCH_SECONDS "$seconds_env"
posint BENCH_SCALE "$scale"
posint BENCH_APPLY_ROWS "$apply_rows"
posint BENCH_SUSTAIN_TX "$sustain_tx"
case $only in
	'' | repl_ext | builtin) ;;
	*) echo "BENCH_ONLY must be repl_ext or builtin, not '$only'" >&2; exit 2 ;;
esac

if [ "$(id -u)" = 0 ]; then
	missing=()
	for p in postgresql-15 postgresql-server-dev-15 make gcc; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	# every scenario but a "copy" restricted to built-in replication uses repl_ext
	if [ "$no_install" = 1 ]; then
		echo "== BENCH_NO_INSTALL=1: using the installed repl_ext ($("$PG_CONFIG" --pkglibdir)/repl_ext.so)"
	elif [ "${#want[@]}" -gt 1 ] || ! wants copy || [ "$only" != builtin ]; then
		echo "== building and installing repl_ext"
		make -s -C "$src" PG_CONFIG="$PG_CONFIG" install >/dev/null
	fi
	dir=$(mktemp -d /tmp/repl_ext_bench.XXXXXX)
	cp "${BASH_SOURCE[0]}" "$dir/run.sh"
	for f in sync.sh switchover.sh throughput.sh failover.sh; do
		cp "$(dirname "${BASH_SOURCE[0]}")/$f" "$dir/$f"
	done
	chown -R postgres "$dir"
	exec runuser -u postgres -- env BENCH_SCENARIOS="$scenarios" BENCH_ROWS="$rows" BENCH_RUNS="$runs" \
		BENCH_ONLY="$only" BENCH_SECONDS="$seconds_env" BENCH_SCALE="$scale" BENCH_APPLY_ROWS="$apply_rows" \
		BENCH_SUSTAIN_TX="$sustain_tx" bash "$dir/run.sh" --as-postgres "$dir"
fi

if [ "${1:-}" != "--as-postgres" ] || [ -z "${2:-}" ]; then
	echo "run as root: sudo bash test/bench/run.sh" >&2
	exit 1
fi
dir=$2
cd "$dir"

names=(repl_leader repl_follower pub sub primary standby repl_third)
ports=(55431 55432 55433 55434 55435 55436 55437)
case $only in
	repl_ext) use=(0 1) ;;
	builtin) use=(2 3) ;;
	*) use=(0 1 2 3) ;;
esac
LEADER=55431 FOLLOWER=55432 PUB=55433 SUB=55434 THIRD=55437
WAIT=600	# seconds, for each copy and each catch-up
SETTLE=6	# seconds between runs, see below

cleanup() {
	local rc=$? n
	trap - EXIT INT TERM HUP
	if [ $rc -ne 0 ]; then
		echo "== FAILED (exit status $rc); last lines of the server logs:" >&2
		for n in "${names[@]}"; do
			[ -f "$dir/$n.log" ] || continue
			echo "-- $n.log" >&2
			tail -n 20 "$dir/$n.log" >&2
		done
	fi
	for n in "${names[@]}"; do
		if [ -f "$dir/$n/postmaster.pid" ]; then
			"$BIN/pg_ctl" -D "$dir/$n" -m fast -t 60 stop >/dev/null 2>&1 || true
		fi
	done
	cd /
	rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

die() { echo "run.sh: $*" >&2; exit 1; }
# one statement on an instance, unaligned tuples only, any error fatal
q() {
	PGOPTIONS='-c statement_timeout=1800s -c client_min_messages=warning' \
		"$BIN/psql" -X -q -A -t -h "$dir" -p "$1" -d postgres -v ON_ERROR_STOP=1 -c "$2"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
conn() { echo "host=$dir port=$1 dbname=postgres"; }
checkpoint_all() { local i; for i in "${use[@]}"; do q "${ports[$i]}" "CHECKPOINT"; done; }

# is_repl I: instance names[I] runs repl_ext
is_repl() { [[ ${names[$1]} == repl_* ]]; }

# start_instance I [CONF]: initdb and start instance names[I] (not the
# standby, which sync.sh makes with pg_basebackup), with the postgresql.conf
# lines CONF added; the repl_ext ones get the extension
start_instance() {
	local i=$1 n=${names[$1]} extra=${2:-}
	"$BIN/initdb" -D "$dir/$n" -A trust -U postgres >/dev/null
	cat >> "$dir/$n/postgresql.conf" <<CONF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
	if is_repl "$i"; then
		cat >> "$dir/$n/postgresql.conf" <<CONF
shared_preload_libraries = 'repl_ext'
repl_ext.database = 'postgres'
max_worker_processes = 16
CONF
	elif [ "$n" = pub ] || [ "$n" = sub ]; then
		echo "wal_level = logical" >> "$dir/$n/postgresql.conf"
	fi
	if [ -n "$extra" ]; then
		printf '%s\n' "$extra" >> "$dir/$n/postgresql.conf"
	fi
	"$BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -t 120 -w start >/dev/null
	if is_repl "$i"; then
		q "${ports[$i]}" "CREATE EXTENSION repl_ext"
	fi
}

# stop_instance I: stop instance names[I] if it runs; its directory stays
stop_instance() {
	local n=${names[$1]}
	if [ -f "$dir/$n/postmaster.pid" ]; then
		"$BIN/pg_ctl" -D "$dir/$n" -m fast -t 60 stop >/dev/null
	fi
}

# scenario "copy": measure, into repl_times and builtin_times
copy_scenario() {
	local i p run t0 t1 ok got sources=()

	echo "== initial copy: starting ${#use[@]} instances in $dir"
	sync_fresh "${use[@]}"

	table_sql="CREATE TABLE bench_copy (id bigint PRIMARY KEY, grp int NOT NULL, amount numeric(12,2),
	label text, created timestamptz NOT NULL DEFAULT now())"
	fill_sql="INSERT INTO bench_copy SELECT g, g % 1000, (g % 100000) / 100.0, repeat(md5(g::text), 2),
	'2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $rows) g"
	check_sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(id::text || ':' || amount::text || ':' || label,
	',' ORDER BY id)), '-') FROM bench_copy"
	# built-in: wait on the subscriber itself, every 10 ms, until all tables are ready
	ready_sql="DO \$\$
DECLARE deadline timestamptz := clock_timestamp() + interval '$WAIT s';
BEGIN
	LOOP
		EXIT WHEN (SELECT count(*) > 0 AND count(*) FILTER (WHERE srsubstate <> 'r') = 0
			FROM pg_subscription_rel);
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'built-in subscription: tables not ready after $WAIT s';
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$"

	if [ "$only" != builtin ]; then sources+=("$LEADER"); fi
	if [ "$only" != repl_ext ]; then sources+=("$PUB"); fi
	echo "== loading $rows rows into bench_copy on the source instance(s)"
	for p in "${sources[@]}"; do
		q "$p" "$table_sql"
		q "$p" "$fill_sql"
		q "$p" "VACUUM ANALYZE bench_copy"
	done
	size=$(q "${sources[0]}" "SELECT pg_size_pretty(pg_total_relation_size('bench_copy'))")
	expected=$(q "${sources[0]}" "$check_sql")
	for p in "${sources[@]}"; do
		got=$(q "$p" "$check_sql")
		[ "$got" = "$expected" ] || die "the sources differ: $got on port $p, $expected on port ${sources[0]}"
	done
	echo "   table size: $size (with its key); rows and md5: $expected"

	if [ "$only" != builtin ]; then
		q $LEADER "SELECT repl.init_leader('leader', '$(conn $LEADER)')" >/dev/null
		q $LEADER "SELECT repl.add_table('bench_copy')" >/dev/null
		[ "$(q $FOLLOWER "SELECT to_regclass('bench_copy') IS NULL")" = t ] ||
			die "the repl_ext follower must not have bench_copy beforehand"
	fi
	if [ "$only" != repl_ext ]; then
		q $PUB "CREATE PUBLICATION bench_pub FOR TABLE bench_copy"
		q $SUB "$table_sql"
	fi

	repl_times=()
	builtin_times=()
	for run in $(seq 1 "$runs"); do
		if [ "$run" -gt 1 ]; then
			# drop the follower side of the previous run
			if [ "$only" != builtin ]; then
				[ "$(q $LEADER "SELECT repl.remove_follower('f1')")" = t ] ||
					die "repl.remove_follower('f1') returned false"
				q $FOLLOWER "DROP TABLE bench_copy"
			fi
			if [ "$only" != repl_ext ]; then
				q $SUB "DROP SUBSCRIPTION bench_sub"
				q $SUB "TRUNCATE bench_copy"
			fi
			# Both systems throttle worker starts to one per 5 s by default
			# (repl_ext.retry_interval per follower slot; wal_retrieve_retry_interval
			# in the PG 15 launcher, which DROP SUBSCRIPTION trips by starting a
			# worker for the subscription being dropped).  Let that pass, so that
			# neither measurement includes it.
			sleep $SETTLE
		fi
		if [ "$only" != builtin ]; then
			checkpoint_all
			t0=$(now)
			q $LEADER "SELECT repl.add_follower('f1', '$(conn $FOLLOWER)')" >/dev/null
			ok=$(q $LEADER "SELECT repl.wait_for_catchup('f1', '$WAIT s')")
			t1=$(now)
			if [ "$ok" != t ]; then
				q $LEADER "SELECT * FROM repl.status" >&2 || true
				die "run $run: the repl_ext follower did not catch up within $WAIT s"
			fi
			got=$(q $FOLLOWER "$check_sql")
			[ "$got" = "$expected" ] || die "run $run: the repl_ext follower has '$got', the leader '$expected'"
			repl_times+=("$(elapsed "$t0" "$t1")")
		fi
		if [ "$only" != repl_ext ]; then
			checkpoint_all
			t0=$(now)
			q $SUB "CREATE SUBSCRIPTION bench_sub CONNECTION '$(conn $PUB)' PUBLICATION bench_pub
			WITH (copy_data = true)"
			q $SUB "$ready_sql"
			t1=$(now)
			got=$(q $SUB "$check_sql")
			[ "$got" = "$expected" ] || die "run $run: the subscriber has '$got', the publisher '$expected'"
			builtin_times+=("$(elapsed "$t0" "$t1")")
		fi
		echo "   run $run: repl_ext ${repl_times[run-1]:-n/a} s, built-in ${builtin_times[run-1]:-n/a} s"
	done
	for i in "${use[@]}"; do
		stop_instance "$i"
	done
}

median() {
	[ $# -eq 0 ] && { echo n/a; return; }
	printf '%s\n' "$@" | sort -g |
		awk '{a[NR] = $1} END {if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2];
			else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi; }
rate() { if [ "$1" = n/a ]; then echo n/a; else awk -v r="$rows" -v t="$1" 'BEGIN {printf "%.0f", r / t}'; fi; }
row() { printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
line() { row "initial copy" "$1" "$rows" "$2" "$3" "$(ratio "$2" "$3")" "$(rate "$2")" "$(rate "$3")"; }

# scenario "copy": the result table
copy_report() {
	local run
	echo
	echo "== initial copy of a new follower: $rows rows, $size; ratio = repl_ext / built-in (lower is better for repl_ext)"
	echo
	row scenario run rows "repl_ext s" "built-in s" ratio "repl_ext rows/s" "built-in rows/s"
	echo "|---|---|---|---|---|---|---|---|"
	for run in $(seq 1 "$runs"); do
		line "$run" "${repl_times[run-1]:-n/a}" "${builtin_times[run-1]:-n/a}"
	done
	if [ "$runs" -gt 1 ]; then
		line median "$(median ${repl_times[@]+"${repl_times[@]}"})" "$(median ${builtin_times[@]+"${builtin_times[@]}"})"
	fi
}

# NAME_scenario and NAME_report of the other scenarios: sync, switchover,
# capture, apply, sustain, failover
source "$dir/sync.sh"
source "$dir/switchover.sh"
source "$dir/throughput.sh"
source "$dir/failover.sh"

for s in "${all_scenarios[@]}"; do
	if wants "$s"; then
		"${s}_scenario"
	fi
done
for s in "${all_scenarios[@]}"; do
	if wants "$s"; then
		"${s}_report"
	fi
done
