# Scenario "switchover" of the repl_ext benchmarks: how long writes stop
# during a planned change of leader.  Not a script of its own: run.sh
# (sudo BENCH_SCENARIOS=switchover bash test/bench/run.sh) sources it as the
# postgres user after defining what it uses (dir, BIN, ports, WAIT, q, die,
# conn, now, start_instance, stop_instance, sync_fresh, sync_poll,
# sync_standby, the
# cleanup trap), and calls switchover_scenario, then switchover_report.
#
# A writer, pgbench -n -c 1 -T 120 -l (one single-row INSERT per
# transaction, every transaction's completion time logged), runs against the
# leader.  After 2 s the leadership moves; pgbench's client stops at its
# first refused write (pgbench ends a client on an error); a second pgbench
# (-T 2 -l) is started at once against the new leader.  The unavailability
# is the time from the last commit of the first writer to the first commit
# of the second: it includes the writer noticing the error and connecting
# again, the same for both systems.  Measured BENCH_RUNS times, back and
# forth, median reported.
#   repl_ext: leader 55431, follower 55432 (asynchronous), leadership moved
#             with SELECT repl.switchover(...) on the leader.
#   physical: primary 55435, standby 55436 (pg_basebackup -R), moved the
#             way PostgreSQL documents a planned switchover: pg_ctl stop -m
#             fast on the primary (which waits for the standby to receive
#             everything), pg_ctl promote -w on the standby.  The old primary
#             is not made a standby again; each run starts from a fresh pair.
# Built-in logical replication has no switchover: not measured.
# After each move the rows are counted: the new leader must hold every row
# either writer committed (the first writer's count is in its log), or the
# script fails.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "switchover.sh is part of run.sh: sudo BENCH_SCENARIOS=switchover bash test/bench/run.sh" >&2
	exit 2
fi

# the key does not come from a sequence: sequences are not replicated
sw_table_sql="CREATE TABLE bench_sw (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), payload text NOT NULL)"
declare -a sw_repl=() sw_phys=()

# sw_writer PORT PREFIX SECONDS: pgbench in the background, logging each
# transaction to PREFIX.*; its pid in sw_pid
sw_writer() {
	rm -f "$2".[0-9]*
	echo "INSERT INTO bench_sw (payload) VALUES ('$(basename "$2")');" > "$2.pgbench"
	"$BIN/pgbench" -n -c 1 -T "$3" -l --log-prefix="$2" -f "$2.pgbench" \
		-h "$dir" -p "$1" -U postgres postgres >"$2.out" 2>&1 &
	sw_pid=$!
}

# sw_times PREFIX: "first last count" of the logged commit times, in seconds
sw_times() {
	cat "$1".[0-9]* 2>/dev/null | awk '{t = $5 + $6 / 1e6; if (n == 0 || t < f) f = t; if (t > l) l = t; n++}
		END {printf "%.6f %.6f %d\n", f, l, n}'
}

# sw_move FROM TO MOVE: run a writer on FROM, call MOVE, a writer on TO;
# prints the gap in ms
sw_move() {
	local from=$1 to=$2 move=$3 pid1 pid2 a b gap n1 n2 rows
	sw_writer "$from" "$dir/sw1" 120
	pid1=$sw_pid
	sleep 2
	$move
	wait "$pid1" || true
	sw_writer "$to" "$dir/sw2" 2
	pid2=$sw_pid
	wait "$pid2" || die "the writer on the new leader (port $to) failed: $(cat "$dir/sw2.out")"
	read -r _ a n1 <<< "$(sw_times "$dir/sw1")"
	read -r b _ n2 <<< "$(sw_times "$dir/sw2")"
	[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || die "a writer logged no commit"
	rows=$(q "$to" "SELECT count(*) FILTER (WHERE payload = 'sw1') || ' ' || count(*) FILTER (WHERE payload = 'sw2') FROM bench_sw")
	[ "$rows" = "$n1 $n2" ] ||
		die "after the move the new leader has $rows rows of the first and second writer, they committed $n1 and $n2 (old leader: $(q "$from" "SELECT count(*) FILTER (WHERE payload = 'sw1') FROM bench_sw"))"
	q "$to" "DELETE FROM bench_sw" >/dev/null
	awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f", (b - a) * 1000}'
}

sw_repl_move() {
	local node=$1
	q "$sw_from" "SELECT repl.switchover('$node', '60 s')" >/dev/null
}

switchover_scenario() {
	local run gap p
	echo "INSERT INTO bench_sw (payload) VALUES (md5(random()::text));" > "$dir/bench_sw.pgbench"

	echo "== switchover: repl_ext, nodes $LEADER and $FOLLOWER"
	sync_fresh 0 1
	q $LEADER "$sw_table_sql"
	q $LEADER "SELECT repl.init_leader('n0', '$(conn $LEADER)')" >/dev/null
	q $LEADER "SELECT repl.add_table('bench_sw')" >/dev/null
	q $LEADER "SELECT repl.add_follower('n1', '$(conn $FOLLOWER)')" >/dev/null
	[ "$(q $LEADER "SELECT repl.wait_for_catchup('n1', '$WAIT s')")" = t ] || die "n1 did not catch up"
	sw_from=$LEADER
	for run in $(seq 1 "$runs"); do
		if [ "$sw_from" = "$LEADER" ]; then p=$FOLLOWER; sw_target=n1; else p=$LEADER; sw_target=n0; fi
		sync_poll "$sw_from" "SELECT state = 'streaming' FROM repl.status WHERE node_name = '$sw_target'" \
			"$sw_target streams"
		gap=$(sw_move "$sw_from" "$p" "sw_repl_move $sw_target")
		printf '   repl_ext run %d: %s ms without writes\n' "$run" "$gap"
		sw_repl+=("$gap")
		sw_from=$p
	done
	stop_instance 1
	stop_instance 0

	for run in $(seq 1 "$runs"); do
		echo "== switchover: physical, primary $PRIMARY, standby $STANDBY (run $run)"
		sync_fresh 4
		q $PRIMARY "$sw_table_sql"
		sync_standby
		gap=$(sw_move $PRIMARY $STANDBY sw_phys_move)
		printf '   physical run %d: %s ms without writes\n' "$run" "$gap"
		sw_phys+=("$gap")
		"$BIN/pg_ctl" -D "$dir/standby" -m fast -t 60 stop >/dev/null
	done
}

sw_phys_move() {
	"$BIN/pg_ctl" -D "$dir/${names[4]}" -m fast -t 60 stop >/dev/null
	"$BIN/pg_ctl" -D "$dir/standby" -t 60 -w promote >/dev/null
}

switchover_report() {
	local r p
	# whole milliseconds: the median of integers prints as e.g. 126.000
	r=$(median "${sw_repl[@]}" | awk '{if ($1 ~ /^[0-9.]+$/) printf "%.0f", $1; else printf "%s", $1}')
	p=$(median "${sw_phys[@]}" | awk '{if ($1 ~ /^[0-9.]+$/) printf "%.0f", $1; else printf "%s", $1}')
	echo
	echo "== planned switchover under a single-client INSERT load: time without a successful write (median of $runs)"
	echo
	echo "| system | how | ms without writes | ratio vs physical |"
	echo "|---|---|---|---|"
	printf '| repl_ext | repl.switchover() | %s | %s |\n' "$r" "$(ratio "$r" "$p")"
	printf '| physical streaming | pg_ctl stop -m fast + pg_ctl promote | %s | 1.00 |\n' "$p"
	echo "| built-in logical | (no switchover) | n/a | n/a |"
}
