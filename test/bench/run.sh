#!/usr/bin/env bash
# repl_ext benchmarks, side by side with PostgreSQL's built-in logical
# replication measured in the same run.  On demand only (make bench), never in CI.
#
#   sudo bash test/bench/run.sh
#
# Scenario "initial copy": bring a new, empty follower up to date with a
# table of BENCH_ROWS rows (default 1,000,000, about 100 MB):
#   repl_ext: time from repl.add_follower() until repl.wait_for_catchup()
#             returns true (tables created, rows copied, indexes built,
#             caught up);
#   built-in: time from CREATE SUBSCRIPTION ... WITH (copy_data = true) until
#             every table of the subscription is in state 'r' (ready); the
#             subscriber's table must exist beforehand, with its key.
# Both results are checked (row count and checksum) against the source.
#
# Environment: BENCH_ROWS (rows, default 1000000), BENCH_RUNS (repetitions,
# default 1; the median is printed too), BENCH_ONLY=repl_ext|builtin.
# Instances: four throwaway clusters on ports 55431-55434, 127.0.0.1 and a
# unix socket in a temporary directory, removed at the end.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
BIN=/usr/lib/postgresql/15/bin

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
	echo "== building and installing repl_ext"
	make -s -C "$src" PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s -C "$src" PG_CONFIG="$PG_CONFIG" install >/dev/null
	dir=$(mktemp -d /tmp/repl_ext_bench.XXXXXX)
	cp "${BASH_SOURCE[0]}" "$dir/run.sh"
	chown -R postgres "$dir"
	exec runuser -u postgres -- env BENCH_ROWS="${BENCH_ROWS:-}" BENCH_RUNS="${BENCH_RUNS:-}" \
		BENCH_ONLY="${BENCH_ONLY:-}" bash "$dir/run.sh" --as-postgres "$dir"
fi

if [ "${1:-}" != "--as-postgres" ]; then
	echo "run as root: sudo bash test/bench/run.sh" >&2
	exit 1
fi
dir=$2
rows=${BENCH_ROWS:-1000000}
runs=${BENCH_RUNS:-1}
only=${BENCH_ONLY:-}
[ -z "$rows" ] && rows=1000000
[ -z "$runs" ] && runs=1
names=(repl_leader repl_follower pub sub)
ports=(55431 55432 55433 55434)

cleanup() {
	for n in "${names[@]}"; do
		if [ -f "$dir/$n/postmaster.pid" ]; then
			"$BIN/pg_ctl" -D "$dir/$n" -m fast stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$dir"
}
trap cleanup EXIT

q() { "$BIN/psql" -X -q -A -t -h "$dir" -p "$1" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }
now() { date +%s.%N; }
conn() { echo "host=$dir port=$1 dbname=postgres"; }

echo "== starting four instances in $dir"
for i in 0 1 2 3; do
	n=${names[$i]}
	"$BIN/initdb" -D "$dir/$n" -A trust -U postgres >/dev/null
	cat >> "$dir/$n/postgresql.conf" <<CONF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
max_worker_processes = 16
CONF
	if [ $i -lt 2 ]; then
		printf "shared_preload_libraries = 'repl_ext'\nrepl_ext.database = 'postgres'\n" >> "$dir/$n/postgresql.conf"
	else
		echo "wal_level = logical" >> "$dir/$n/postgresql.conf"
	fi
	"$BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w start >/dev/null
done
q 55431 "CREATE EXTENSION repl_ext"
q 55432 "CREATE EXTENSION repl_ext"

table_sql="CREATE TABLE bench_copy (id bigint PRIMARY KEY, grp int NOT NULL, amount numeric(12,2),
	label text, created timestamptz NOT NULL DEFAULT now())"
fill_sql="INSERT INTO bench_copy SELECT g, g % 1000, (g % 100000) / 100.0, repeat(md5(g::text), 2),
	'2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $rows) g"
check_sql="SELECT count(*) || ' ' || md5(string_agg(id::text || ':' || amount::text || ':' || label, ',' ORDER BY id)) FROM bench_copy"

echo "== loading $rows rows on the repl_ext leader and on the publisher"
for p in 55431 55433; do
	q $p "$table_sql"
	q $p "$fill_sql"
	q $p "VACUUM ANALYZE bench_copy"
done
echo "   table size: $(q 55431 "SELECT pg_size_pretty(pg_total_relation_size('bench_copy'))")"
expected=$(q 55431 "$check_sql")
q 55431 "SELECT repl.init_leader('leader', '$(conn 55431)')" >/dev/null
q 55431 "SELECT repl.add_table('bench_copy')" >/dev/null
q 55433 "CREATE PUBLICATION bench_pub FOR TABLE bench_copy"

repl_times=()
builtin_times=()
for run in $(seq 1 "$runs"); do
	if [ "$only" != builtin ]; then
		t0=$(now)
		q 55431 "SELECT repl.add_follower('f1', '$(conn 55432)')" >/dev/null
		ok=$(q 55431 "SELECT repl.wait_for_catchup('f1', '600 s')")
		t1=$(now)
		[ "$ok" = t ] || { echo "repl_ext follower did not catch up" >&2; exit 1; }
		got=$(q 55432 "$check_sql")
		[ "$got" = "$expected" ] || { echo "repl_ext copy differs: $got vs $expected" >&2; exit 1; }
		repl_times+=("$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')")
		q 55431 "SELECT repl.remove_follower('f1')" >/dev/null
		q 55432 "DROP TABLE bench_copy"
	fi
	if [ "$only" != repl_ext ]; then
		q 55434 "$table_sql"
		t0=$(now)
		q 55434 "CREATE SUBSCRIPTION bench_sub CONNECTION '$(conn 55433)' PUBLICATION bench_pub WITH (copy_data = true)"
		deadline=$(( $(date +%s) + 600 ))
		until [ "$(q 55434 "SELECT count(*) > 0 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel")" = t ]; do
			[ "$(date +%s)" -lt $deadline ] || { echo "built-in subscription did not get ready" >&2; exit 1; }
			sleep 0.05
		done
		t1=$(now)
		got=$(q 55434 "$check_sql")
		[ "$got" = "$expected" ] || { echo "built-in copy differs: $got vs $expected" >&2; exit 1; }
		builtin_times+=("$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')")
		q 55434 "DROP SUBSCRIPTION bench_sub"
		q 55434 "DROP TABLE bench_copy"
	fi
	echo "   run $run: repl_ext ${repl_times[-1]:-n/a} s, built-in ${builtin_times[-1]:-n/a} s"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
r=$(median "${repl_times[@]}")
b=$(median "${builtin_times[@]}")

echo
echo "== initial copy of a new follower, $rows rows, median of $runs run(s)"
printf '%-12s %12s %14s\n' system seconds rows/s
for s in repl_ext built-in; do
	t=$r; [ $s = built-in ] && t=$b
	if [ "$t" = n/a ]; then
		printf '%-12s %12s %14s\n' $s n/a n/a
	else
		printf '%-12s %12s %14s\n' $s "$t" "$(echo "$rows $t" | awk '{printf "%.0f", $1 / $2}')"
	fi
done
if [ "$r" != n/a ] && [ "$b" != n/a ]; then
	echo "ratio repl_ext / built-in: $(echo "$r $b" | awk '{printf "%.2f", $1 / $2}') (below 1: repl_ext is faster)"
fi
