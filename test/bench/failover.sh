# Scenario "failover" (M6) of the repl_ext benchmarks: how long writes stop
# when the leader dies, and that no acknowledged commit is lost.  Not a
# script of its own: run.sh (sudo BENCH_SCENARIOS=failover bash
# test/bench/run.sh) sources it as the postgres user after defining what it
# uses (dir, BIN, names, ports, runs, WAIT, q, die, conn, now, median, ratio,
# start_instance, stop_instance, the cleanup trap) and sourcing sync.sh
# (sync_fresh, sync_poll, sync_standby, PRIMARY, STANDBY) and switchover.sh
# (sw_table_sql, sw_writer, sw_times), and calls failover_scenario, then
# failover_report.
#
# A writer, pgbench -n -c 1 -T 120 -l (one single-row INSERT per
# transaction into bench_sw (id uuid primary key, payload text), every
# completed transaction logged), runs against the leader, whose follower is
# SYNCHRONOUS: a commit is acknowledged only once the follower has applied
# it.  After 2 s the leader is killed (pg_ctl stop -m immediate); the
# writer's client ends at the lost connection.  From the moment the stop is
# issued, single INSERTs (psql, one connection each, every 10 ms) are tried
# on the candidate new leader(s) until one succeeds; a refusal because the
# node is a follower or in recovery (SQLSTATE 25006) or a refused
# connection is retried, any other error fails the script.  The figure is
# the time from the stop until that first successful write.  Measured
# BENCH_RUNS times, each run on fresh instances, median reported.
#   repl_ext manual     leader repl_leader 55431 (n0), synchronous follower
#                       repl_follower 55432 (n1, repl.add_follower(...,
#                       synchronous => true)), asynchronous follower
#                       repl_third 55437 (n2).  As soon as the stop
#                       returns: SELECT repl.promote() on n1, then the
#                       writes on n1 (the time includes the promotion).
#   repl_ext automatic  the same three nodes with repl_ext.auto_failover =
#                       on and repl_ext.leader_timeout = '2s' in their
#                       postgresql.conf; the writes are tried on n1 and n2
#                       in turn until the one elected accepts.
#   physical            primary 55435, standby 55436 (pg_basebackup -R), then
#                       on the primary synchronous_standby_names = '*' and
#                       synchronous_commit = remote_apply (ALTER SYSTEM, after
#                       the base backup, so the standby does not inherit
#                       them).  pg_ctl stop -m immediate of the primary,
#                       pg_ctl promote -w of the standby, then the writes.
#   built-in logical    no failover in PostgreSQL 15: not measured.
# Checks, each run: the new leader holds every row the writer's log says
# was committed (it may hold one more: a commit applied by the follower
# whose acknowledgement the kill swallowed), and the successful write.  For
# repl_ext the follower left (n2, or n1 when n2 was elected) must follow the
# new leader, catch up (repl.wait_for_catchup) and hold the same rows
# (count and md5 over id and payload in id order).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "failover.sh is part of run.sh: sudo BENCH_SCENARIOS=failover bash test/bench/run.sh" >&2
	exit 2
fi

FO_WRITE_LIMIT=60	# seconds one write may take before the script fails
FO_AUTO_CONF="repl_ext.auto_failover = on
repl_ext.leader_timeout = '2s'"
declare -a fo_manual=() fo_auto=() fo_phys=()

# fo_first_write PORT...: try one INSERT on each PORT in turn, every 10 ms,
# until one succeeds; sets fo_t (when it returned) and fo_port
fo_first_write() {
	local end=$((SECONDS + WAIT)) p err rc
	while :; do
		for p in "$@"; do
			rc=0
			err=$(PGOPTIONS='-c client_min_messages=warning' timeout -k 5 $FO_WRITE_LIMIT \
				"$BIN/psql" -X -q -h "$dir" -p "$p" -d postgres -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
				-c "INSERT INTO bench_sw (payload) VALUES ('probe')" 2>&1 >/dev/null) || rc=$?
			if [ $rc -eq 0 ]; then
				fo_t=$(now)
				fo_port=$p
				return 0
			fi
			[ $rc -ne 124 ] && [ $rc -ne 137 ] || die "a write on port $p did not return within $FO_WRITE_LIMIT s"
			case $err in
				*25006*) ;;			# a follower, fenced, or in recovery
				*"connection to server"*) ;;	# not (yet) accepting connections
				*) die "a write on port $p failed: $err" ;;
			esac
		done
		[ $SECONDS -lt $end ] || die "no node accepted a write within $WAIT s of the leader's stop"
		sleep 0.01
	done
}

# fo_check LEADER: the new leader has every row the first writer logged as
# committed (at most one more) and the probe; prints "committed present"
fo_check() {
	local n got
	read -r _ _ n <<< "$(sw_times "$dir/fo1")"
	[ "$n" -gt 0 ] || die "the writer logged no commit before the stop"
	got=$(q "$1" "SELECT count(*) FILTER (WHERE payload = 'fo1') || ' ' || count(*) FILTER (WHERE payload = 'probe')
		FROM bench_sw")
	[ "${got#* }" = 1 ] || die "the new leader (port $1) does not hold the first write exactly once: '$got'"
	got=${got%% *}
	[ "$got" -ge "$n" ] && [ "$got" -le $((n + 1)) ] ||
		die "the writer committed $n rows before the stop, the new leader (port $1) has $got of them"
	echo "$n $got"
}

# fo_fresh CONF I...: (re)initialize and start instances names[I] with the
# postgresql.conf lines CONF
fo_fresh() {
	local conf=$1 i
	shift
	for i in "$@"; do
		stop_instance "$i"
		rm -rf "${dir:?}/${names[$i]}"
		start_instance "$i" "$conf"
	done
}

# fo_repl MODE: one repl_ext run, MODE manual or auto; prints the ms
fo_repl() {
	local mode=$1 conf= pid p t0 ms rows other onode wname
	[ "$mode" = auto ] && conf=$FO_AUTO_CONF
	fo_fresh "$conf" 0 1 6
	q $LEADER "$sw_table_sql"
	q $LEADER "SELECT repl.init_leader('n0', '$(conn $LEADER)')" >/dev/null
	q $LEADER "SELECT repl.add_table('bench_sw')" >/dev/null
	q $LEADER "SELECT repl.add_follower('n1', '$(conn $FOLLOWER)', synchronous => true)" >/dev/null
	q $LEADER "SELECT repl.add_follower('n2', '$(conn $THIRD)')" >/dev/null
	[ "$(q $LEADER "SELECT repl.wait_for_catchup(NULL, '$WAIT s')")" = t ] || die "n1 and n2 did not catch up"
	sync_poll $LEADER "SELECT count(*) = 2 AND bool_and(state = 'streaming')
		AND bool_and(sync_state = CASE node_name WHEN 'n1' THEN 'sync' ELSE 'async' END) FROM repl.status" \
		"n1 streams as the synchronous follower, n2 as an asynchronous one"
	for p in $FOLLOWER $THIRD; do
		sync_poll $p "SELECT string_agg(node_name, ',' ORDER BY node_name) = 'n0,n1,n2' FROM repl.nodes" \
			"the follower on port $p knows the three nodes"
	done
	q $LEADER "CHECKPOINT"
	sw_writer $LEADER "$dir/fo1" 120
	pid=$sw_pid
	sleep 2
	t0=$(now)
	"$BIN/pg_ctl" -D "$dir/${names[0]}" -m immediate -t 60 stop >/dev/null
	if [ "$mode" = manual ]; then
		q $FOLLOWER "SELECT repl.promote()" >/dev/null
		fo_first_write $FOLLOWER
	else
		fo_first_write $FOLLOWER $THIRD
	fi
	ms=$(awk -v a="$t0" -v b="$fo_t" 'BEGIN {printf "%.1f", (b - a) * 1000}')
	wait "$pid" || true
	rows=$(fo_check "$fo_port")
	if [ "$fo_port" = $FOLLOWER ]; then wname=n1 other=$THIRD onode=n2; else wname=n2 other=$FOLLOWER onode=n1; fi
	sync_poll $other "SELECT role = 'follower' AND leader_name = '$wname' FROM repl.node_info()" \
		"$onode follows the new leader $wname"
	[ "$(q "$fo_port" "SELECT repl.wait_for_catchup('$onode', '$WAIT s')")" = t ] ||
		die "$onode did not catch up with the new leader $wname"
	fo_compare "$fo_port" "$other" "repl_ext $mode failover, $onode after following $wname"
	echo "   repl_ext $mode: $wname leads after $ms ms; ${rows% *} rows acknowledged before the stop, ${rows#* } on $wname; $onode identical" >&2
	stop_instance 6
	stop_instance 1
	echo "$ms"
}

# fo_compare SOURCE REPLICA WHAT: bench_sw identical on both
fo_compare() {
	local sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(id::text || payload, ',' ORDER BY id)), '-') FROM bench_sw" a b
	a=$(q "$1" "$sql")
	b=$(q "$2" "$sql")
	[ "$a" = "$b" ] || die "$3: port $2 has '$b', port $1 '$a'"
}

# fo_phys_run: one physical run; prints the ms
fo_phys_run() {
	local pid t0 ms rows
	sync_fresh 4
	q $PRIMARY "$sw_table_sql"
	sync_standby
	q $PRIMARY "ALTER SYSTEM SET synchronous_standby_names = '*'"
	q $PRIMARY "ALTER SYSTEM SET synchronous_commit = 'remote_apply'"
	q $PRIMARY "SELECT pg_reload_conf()" >/dev/null
	sync_poll $PRIMARY "SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'" \
		"the standby is synchronous"
	q $PRIMARY "CHECKPOINT"
	sw_writer $PRIMARY "$dir/fo1" 120
	pid=$sw_pid
	sleep 2
	t0=$(now)
	"$BIN/pg_ctl" -D "$dir/${names[4]}" -m immediate -t 60 stop >/dev/null
	"$BIN/pg_ctl" -D "$dir/standby" -t 60 -w promote >/dev/null
	fo_first_write $STANDBY
	ms=$(awk -v a="$t0" -v b="$fo_t" 'BEGIN {printf "%.1f", (b - a) * 1000}')
	wait "$pid" || true
	rows=$(fo_check $STANDBY)
	echo "   physical: the standby leads after $ms ms; ${rows% *} rows acknowledged before the stop, ${rows#* } on it" >&2
	stop_instance 5
	echo "$ms"
}

failover_scenario() {
	local run i ms
	for i in "${!names[@]}"; do
		stop_instance "$i"
	done
	for run in $(seq 1 "$runs"); do
		echo "== failover run $run: repl_ext manual (repl.promote), nodes $LEADER, $FOLLOWER (synchronous), $THIRD"
		ms=$(fo_repl manual)
		fo_manual+=("$ms")
		echo "== failover run $run: repl_ext automatic (auto_failover, leader_timeout 2s), the same nodes"
		ms=$(fo_repl auto)
		fo_auto+=("$ms")
		echo "== failover run $run: physical, primary $PRIMARY, synchronous standby $STANDBY"
		ms=$(fo_phys_run)
		fo_phys+=("$ms")
	done
}

failover_report() {
	local m a p
	m=$(median "${fo_manual[@]}" | awk '{printf "%.1f", $1}')
	a=$(median "${fo_auto[@]}" | awk '{printf "%.1f", $1}')
	p=$(median "${fo_phys[@]}" | awk '{printf "%.1f", $1}')
	echo
	echo "== failover (M6): leader killed (pg_ctl stop -m immediate) under a single-client INSERT load with a synchronous follower; time from the stop to the first write on the new leader (median of $runs; every acknowledged row checked on the new leader)"
	echo
	echo "| system | how | ms until the first write | ratio vs physical |"
	echo "|---|---|---|---|"
	printf '| repl_ext | manual: repl.promote() on the synchronous follower | %s | %s |\n' "$m" "$(ratio "$m" "$p")"
	printf '| repl_ext | automatic: election, repl_ext.leader_timeout = 2s | %s | %s |\n' "$a" "$(ratio "$a" "$p")"
	printf '| physical streaming | pg_ctl promote -w on the synchronous standby | %s | 1.00 |\n' "$p"
	echo "| built-in logical | (no failover in PostgreSQL 15) | n/a | n/a |"
}
