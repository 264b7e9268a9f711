#!/usr/bin/env bash
# Soak test: a leader and two followers (one synchronous) under a steady
# pgbench rate for a bounded time.  On demand only, never in CI.
#
#   sudo bash test/soak/run.sh [seconds] [rate]
#
# Defaults: 600 s at 200 transactions/s (pgbench tpcb-like, scale 5, 4
# clients, -R rate), the pgbench tables replicated (pgbench_history gets a
# bigserial key).  Every 5 s it samples, on the leader:
#   lag      max over the followers of repl.status.lag_seconds and lag_changes
#   log      rows in repl.log and bytes of repl.log_0..2 with their indexes
#   rss      private resident memory (RssAnon, kB: shared buffers a process
#            touches would count in VmRSS) of the supervisor, each sender
#            of the backend applying on each follower
# and at the end prints the maxima, the RSS of each process at the first
# and last quarter of the run, checks that the followers are identical to
# the leader (md5 of each table in key order), and that no server log has
# an ERROR, FATAL or PANIC.  Exit status 1 if the data differ, a log has
# errors, the log did not stay bounded (its size in the last quarter above
# twice the first quarter's maximum plus 8 MB) or a worker's memory grew
# (private RSS: last-quarter median above 1.25 x the first-quarter median plus
# 2 MB).
# Instances on 127.0.0.1:55471-55473 in a temporary directory, stopped at the
# end whatever happens.
set -euo pipefail

seconds=${1:-600}
rate=${2:-200}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" = 0 ]; then
	dir=$(mktemp -d /tmp/repl_ext_soak.XXXXXX)
	cp "${BASH_SOURCE[0]}" "$dir/run.sh"
	chown -R postgres "$dir"
	exec runuser -u postgres -- bash "$dir/run.sh" --as-postgres "$dir" "$seconds" "$rate"
fi
[ "${1:-}" = "--as-postgres" ] || { echo "run as root: sudo bash test/soak/run.sh" >&2; exit 1; }
dir=$2 seconds=$3 rate=$4
cd "$dir"
names=(leader f1 f2)
ports=(55471 55472 55473)

cleanup() {
	local rc=$? n
	for n in "${names[@]}"; do
		[ -f "$dir/$n/postmaster.pid" ] && "$BIN/pg_ctl" -D "$dir/$n" -m fast stop >/dev/null 2>&1 || true
	done
	[ -n "${bench_pid:-}" ] && kill "$bench_pid" 2>/dev/null || true
	echo "== logs and samples in $dir"
	exit $rc
}
trap cleanup EXIT

q() { "$BIN/psql" -X -q -A -t -h "$dir" -p "$1" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }
for i in 0 1 2; do
	n=${names[$i]}
	"$BIN/initdb" -D "$dir/$n" -A trust -U postgres >/dev/null
	cat >> "$dir/$n/postgresql.conf" <<CONF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'repl_ext'
repl_ext.database = 'postgres'
repl_ext.synchronous_mode = degrade
repl_ext.log_rotate_interval = '30s'
max_worker_processes = 16
CONF
	"$BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w start >/dev/null
	q "${ports[$i]}" "CREATE EXTENSION repl_ext"
done
L=${ports[0]}
"$BIN/pgbench" -i -s 5 -q -h "$dir" -p "$L" postgres >/dev/null 2>&1
q "$L" "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY"
q "$L" "SELECT repl.init_leader('leader', 'host=$dir port=$L dbname=postgres')" >/dev/null
q "$L" "SELECT repl.add_table(t) FROM unnest(ARRAY['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history']) t" >/dev/null
q "$L" "SELECT repl.add_follower('f1', 'host=$dir port=${ports[1]} dbname=postgres', synchronous => true)" >/dev/null
q "$L" "SELECT repl.add_follower('f2', 'host=$dir port=${ports[2]} dbname=postgres')" >/dev/null
[ "$(q "$L" "SELECT repl.wait_for_catchup(NULL, '300 s')")" = t ] || { echo "followers did not catch up" >&2; exit 1; }

echo "== soak: $seconds s at $rate tps, leader $L, followers ${ports[1]} (synchronous) and ${ports[2]}"
"$BIN/pgbench" -n -c 4 -j 2 -R "$rate" -T "$seconds" -h "$dir" -p "$L" postgres > pgbench.out 2>&1 &
bench_pid=$!

# one line per sample: t lag_s lag_changes log_rows log_bytes then pid=rss ...
rss_of() {
	local port=$1 filter=$2 pid
	for pid in $(q "$port" "SELECT pid FROM pg_stat_activity WHERE $filter ORDER BY pid"); do
		printf ' %s:%s=%s' "$port" "$pid" "$(awk '/RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
	done
}
start=$(date +%s)
: > samples
while kill -0 "$bench_pid" 2>/dev/null; do
	t=$(( $(date +%s) - start ))
	line="$t $(q "$L" "SELECT coalesce(max(lag_seconds), 0)::numeric(10,3) || ' ' || coalesce(max(lag_changes), 0) FROM repl.status")"
	line="$line $(q "$L" "SELECT (SELECT count(*) FROM repl.log) || ' ' || (SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['repl.log_0', 'repl.log_1', 'repl.log_2']::regclass[]) c)")"
	line="$line$(rss_of "$L" "backend_type IN ('repl_ext supervisor', 'repl_ext sender')")"
	line="$line$(rss_of "${ports[1]}" "application_name LIKE 'repl_ext:%'")"
	line="$line$(rss_of "${ports[2]}" "application_name LIKE 'repl_ext:%'")"
	echo "$line" >> samples
	sleep 5
done
wait "$bench_pid" || { cat pgbench.out; echo "pgbench failed" >&2; exit 1; }
[ "$(q "$L" "SELECT repl.wait_for_catchup(NULL, '300 s')")" = t ] || { echo "followers did not catch up" >&2; exit 1; }

fail=0
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
	sum="SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM $t x"
	a=$(q "$L" "$sum")
	for p in "${ports[1]}" "${ports[2]}"; do
		[ "$(q "$p" "$sum")" = "$a" ] || { echo "table $t differs on $p" >&2; fail=1; }
	done
done
errors=$(cat leader.log f1.log f2.log | grep -cE "ERROR|FATAL|PANIC" || true)

awk -v secs="$seconds" -v rate="$rate" -v errors="$errors" '
function median(arr, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
	return n ? arr[int((n + 1) / 2)] : 0
}
{
	n++; t[n] = $1; lag[n] = $2; lagc[n] = $3; rows[n] = $4; bytes[n] = $5
	if ($2 > maxlag) maxlag = $2; if ($3 > maxlagc) maxlagc = $3
	if ($4 > maxrows) maxrows = $4; if ($5 > maxbytes) maxbytes = $5
	for (i = 6; i <= NF; i++) { split($i, kv, "="); key[kv[1]] = 1; rss[kv[1], n] = kv[2] }
}
END {
	q = int(n / 4); if (q < 1) q = 1
	for (i = 1; i <= q; i++) if (bytes[i] > firstbytes) firstbytes = bytes[i]
	for (i = n - q + 1; i <= n; i++) if (bytes[i] > lastbytes) lastbytes = bytes[i]
	printf "\n| soak | value |\n|---|---|\n"
	printf "| duration, rate | %d s at %d tps, %d samples |\n", secs, rate, n
	printf "| max lag | %.3f s, %d changes |\n", maxlag, maxlagc
	printf "| replication log | max %d rows, %.1f MB; first quarter max %.1f MB, last quarter max %.1f MB |\n", maxrows, maxbytes / 1048576, firstbytes / 1048576, lastbytes / 1048576
	bad = 0
	if (lastbytes > 2 * firstbytes + 8 * 1048576) { bad = 1; print "| LOG NOT BOUNDED | |" }
	for (k in key) {
		a = 0; b = 0; delete fa; delete la
		for (i = 1; i <= q; i++) if ((k, i) in rss) fa[++a] = rss[k, i]
		for (i = n - q + 1; i <= n; i++) if ((k, i) in rss) la[++b] = rss[k, i]
		if (a == 0 || b == 0) continue
		f = median(fa, a); l = median(la, b)
		grow = (l > 1.25 * f + 2048)
		if (grow) bad = 1
		printf "| RSS %s (port:pid) | first quarter %d kB, last quarter %d kB%s |\n", k, f, l, grow ? " GREW" : ""
	}
	printf "| errors in server logs | %d |\n", errors
	exit bad
}' samples || fail=1
[ "$errors" = 0 ] || { grep -hE "ERROR|FATAL|PANIC" leader.log f1.log f2.log | head -20; fail=1; }
tail -3 pgbench.out
[ "$fail" = 0 ] && echo "== soak passed: followers identical, log bounded, no memory growth, no errors" ||
	{ echo "== soak FAILED" >&2; exit 1; }
