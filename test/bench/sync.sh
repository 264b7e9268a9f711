# Scenario "sync" (M3) of the repl_ext benchmarks: single-client commit
# latency with a synchronous and an asynchronous replica.  Not a script of its
# own: run.sh (sudo BENCH_SCENARIOS=sync bash test/bench/run.sh) sources it as
# the postgres user, after defining what it uses (dir, BIN, names, ports,
# seconds, WAIT, q, die, conn, start_instance, stop_instance, the cleanup
# trap), and calls sync_scenario, then sync_report.
#
# One client, pgbench -n -c 1, BENCH_SECONDS (default 20) per configuration
# in BENCH_ROUNDS (default 5) runs of pgbench -T BENCH_SECONDS/rounds
# (rounded up), each transaction one single-row INSERT into
#   bench_sync (id bigserial primary key, payload text not null,
#               at timestamptz not null default now()),
# measured in six configurations (tps and average latency over the rounds,
# each round's pgbench average weighted by its transactions):
#   1 repl_ext synchronous    leader repl_leader 55431, follower
#                             repl_follower 55432 added with
#                             repl.add_follower('f1', ..., synchronous => true)
#                             (it creates the table there): the commit waits
#                             until the follower has applied it
#   2 repl_ext asynchronous   the same, the client with PGOPTIONS
#                             '-c repl_ext.synchronous_commit=off'
#   3 physical synchronous    primary 55435, standby 55436 (pg_basebackup -R),
#                             synchronous_standby_names = '*' on the primary,
#                             client with '-c synchronous_commit=remote_apply'
#   4 physical asynchronous   the same, '-c synchronous_commit=local'
#   5 logical synchronous     publisher pub 55433 (wal_level logical),
#                             subscriber sub 55434 with subscription
#                             bench_sync_sub (the table created there first),
#                             synchronous_standby_names = 'bench_sync_sub' on
#                             the publisher, client with
#                             '-c synchronous_commit=remote_apply'
#   6 logical asynchronous    the same, '-c synchronous_commit=local'
# The subscription is created WITH (synchronous_commit = on): its default,
# off, makes the subscriber report an apply only once the WAL writer has
# flushed it, and the PostgreSQL documentation (CREATE SUBSCRIPTION) advises
# local or higher for synchronous logical replication; repl_ext's follower
# commits its batches with synchronous_commit on too.
#
# Each system runs on instances initialized for it (run.sh's start_instance:
# instances an earlier scenario left are stopped and made again).  All three
# pairs run side by side (idle while another is measured) and the six
# configurations take turns, round after round, each round starting one
# configuration further: the machine's WAL flush time, which every figure
# here depends on, drifts by tens of percent within minutes on a VM, and
# taking turns spreads the drift over all systems alike instead of over
# whichever ran last.  Before each run the
# table is truncated on the source (RESTART IDENTITY; every system
# replicates TRUNCATE), the replica catches up and is checked empty, and both
# instances checkpoint.  Right after a synchronous configuration, before any
# catch-up, the replica must already hold every row pgbench committed (its
# commits returned only once applied there), or the configuration measured
# was not synchronous and the script fails.  After every configuration the
# replica catches up (repl_ext: repl.wait_for_catchup('f1', '600 s');
# physical: the standby's pg_last_wal_replay_lsn() reaches the primary's
# pg_current_wal_lsn(); logical: the subscription's replay_lsn in the
# publisher's pg_stat_replication reaches it), and the source must hold
# exactly as many rows as pgbench committed transactions and the replica the
# same rows (count and an md5 over id and payload); any difference fails the
# script.
# Every wait is bounded by WAIT (600 s); pgbench by its -T + 120 s.
# No result is judged: the report states the targets next to the ratios.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "sync.sh is part of run.sh: sudo BENCH_SCENARIOS=sync bash test/bench/run.sh" >&2
	exit 2
fi

PRIMARY=55435 STANDBY=55436
PGBENCH_GRACE=120	# seconds beyond BENCH_SECONDS before pgbench counts as hung

sync_table_sql="CREATE TABLE bench_sync (id bigserial PRIMARY KEY, payload text NOT NULL,
	at timestamptz NOT NULL DEFAULT now())"
sync_check_sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(id::text || payload, ',' ORDER BY id)), '-')
	FROM bench_sync"

# results by configuration (repl_sync, repl_async, phys_sync, phys_async,
# logical_sync, logical_async), summed over the rounds: transactions, and
# transactions times pgbench's average latency (ms)
declare -A sync_n=() sync_ms=() sync_tps=() sync_lat=()
sync_rounds=$rounds
sync_round_seconds=$(((seconds + sync_rounds - 1) / sync_rounds))

# sync_poll PORT SQL WHAT: run the boolean query SQL on PORT, each time on a
# new connection (so that a reloaded setting is seen), every 50 ms until it
# returns t; fail after WAIT s
sync_poll() {
	local end=$((SECONDS + WAIT)) r
	while :; do
		r=$(q "$1" "$2")
		if [ "$r" = t ]; then
			return 0
		fi
		[ $SECONDS -lt $end ] || die "$3: not after $WAIT s"
		sleep 0.05
	done
}

# sync_standby: a fresh physical standby of the primary (pg_basebackup -R),
# started and streaming
sync_standby() {
	rm -rf "${dir:?}/standby"
	"$BIN/pg_basebackup" -D "$dir/standby" -h "$dir" -p $PRIMARY -U postgres -R -X stream -c fast \
		>>"$dir/standby.log" 2>&1
	echo "port = $STANDBY" >> "$dir/standby/postgresql.conf"
	"$BIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -t 120 -w start >/dev/null
	sync_poll $PRIMARY "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'" \
		"the standby streams"
}

# sync_fresh I...: (re)initialize and start instances names[I]
sync_fresh() {
	local i
	for i in "$@"; do
		stop_instance "$i"
		rm -rf "${dir:?}/${names[$i]}"
		start_instance "$i"
	done
}

# catch-up functions: return once the replica has applied everything the
# source committed before the call
sync_catchup_repl() {
	local ok
	ok=$(q $LEADER "SELECT repl.wait_for_catchup('f1', '$WAIT s')")
	if [ "$ok" != t ]; then
		q $LEADER "SELECT * FROM repl.status" >&2 || true
		die "the repl_ext follower did not catch up within $WAIT s"
	fi
}
sync_catchup_phys() {
	local lsn
	lsn=$(q $PRIMARY "SELECT pg_current_wal_lsn()")
	sync_poll $STANDBY "SELECT pg_last_wal_replay_lsn() >= '$lsn'" "the standby replayed up to $lsn"
}
sync_catchup_logical() {
	local lsn
	lsn=$(q $PUB "SELECT pg_current_wal_lsn()")
	sync_poll $PUB "SELECT coalesce(bool_and(replay_lsn >= '$lsn'), false) FROM pg_stat_replication
		WHERE application_name = 'bench_sync_sub'" "the subscription applied up to $lsn"
}

# sync_compare SOURCE REPLICA WHAT: the replica holds the source's rows
sync_compare() {
	local a b
	a=$(q "$1" "$sync_check_sql")
	b=$(q "$2" "$sync_check_sql")
	[ "$a" = "$b" ] || die "$3: the replica (port $2) has '$b', the source (port $1) '$a'"
}

# sync_measure KEY LABEL SOURCE REPLICA CATCHUP PGOPTIONS: one configuration;
# a KEY ending in _sync is a synchronous one
sync_measure() {
	local key=$1 label=$2 source=$3 replica=$4 catchup=$5 opts=$6
	local out="$dir/pgbench.$key.out" rc=0 tps lat n count

	q "$source" "TRUNCATE bench_sync RESTART IDENTITY"
	$catchup
	sync_compare "$source" "$replica" "$label, after TRUNCATE"
	[ "$(q "$replica" "SELECT count(*) FROM bench_sync")" = 0 ] || die "$label: the replica is not empty"
	q "$source" "CHECKPOINT"
	q "$replica" "CHECKPOINT"

	PGOPTIONS=$opts timeout -k 10 $((sync_round_seconds + PGBENCH_GRACE)) \
		"$BIN/pgbench" -n -c 1 -T "$sync_round_seconds" -f "$dir/bench_sync.pgbench" \
		-h "$dir" -p "$source" -U postgres postgres >"$out" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		cat "$out" >&2
		die "$label: pgbench (PGOPTIONS '$opts') failed with exit status $rc"
	fi
	tps=$(awk '/^tps = .* \(without initial connection time\)$/ {print $3}' "$out")
	lat=$(awk '/^latency average = .* ms$/ {print $4}' "$out")
	n=$(awk -F': ' '/^number of transactions actually processed: / {print $2}' "$out")
	if [ -z "$tps" ] || [ -z "$lat" ] || ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
		cat "$out" >&2
		die "$label: cannot read tps, average latency and transactions from pgbench's output"
	fi

	# A synchronous commit returns once the replica has applied it: the
	# replica must hold every committed row before any catch-up.
	if [[ $key == *_sync ]]; then
		count=$(q "$replica" "SELECT count(*) FROM bench_sync")
		[ "$count" = "$n" ] ||
			die "$label: right after pgbench the replica has $count of the $n committed rows, so commits did not wait for it"
	fi
	$catchup
	count=$(q "$source" "SELECT count(*) FROM bench_sync")
	[ "$count" = "$n" ] || die "$label: pgbench committed $n transactions, the source has $count rows"
	sync_compare "$source" "$replica" "$label"
	sync_n[$key]=$((${sync_n[$key]:-0} + n))
	sync_ms[$key]=$(awk -v a="${sync_ms[$key]:-0}" -v n="$n" -v l="$lat" 'BEGIN {printf "%.3f", a + n * l}')
	printf '   %-45s %10.1f tps %9.3f ms  (%s rows, replica checked)\n' "$label" "$tps" "$lat" "$n"
}

sync_scenario() {
	local r i k
	local order=(phys_sync logical_sync repl_sync phys_async logical_async repl_async)

	echo "INSERT INTO bench_sync (payload) VALUES (md5(random()::text));" > "$dir/bench_sync.pgbench"

	echo "== sync commit latency: physical streaming, primary $PRIMARY, standby $STANDBY"
	sync_fresh 4
	q $PRIMARY "$sync_table_sql"
	sync_standby
	q $PRIMARY "ALTER SYSTEM SET synchronous_standby_names = '*'"
	q $PRIMARY "SELECT pg_reload_conf()" >/dev/null
	sync_poll $PRIMARY "SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'" \
		"the standby is synchronous"

	echo "== sync commit latency: built-in logical, publisher $PUB, subscriber $SUB"
	sync_fresh 2 3
	q $PUB "$sync_table_sql"
	q $SUB "$sync_table_sql"
	q $PUB "CREATE PUBLICATION bench_sync_pub FOR TABLE bench_sync"
	q $SUB "CREATE SUBSCRIPTION bench_sync_sub CONNECTION '$(conn $PUB)' PUBLICATION bench_sync_pub
		WITH (synchronous_commit = on)"
	sync_poll $SUB "SELECT count(*) > 0 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel" \
		"the subscription's table is ready"
	sync_poll $PUB "SELECT count(*) = 1 FROM pg_stat_replication
		WHERE application_name = 'bench_sync_sub' AND state = 'streaming'" "the subscription streams"
	q $PUB "ALTER SYSTEM SET synchronous_standby_names = 'bench_sync_sub'"
	q $PUB "SELECT pg_reload_conf()" >/dev/null
	sync_poll $PUB "SELECT count(*) = 1 FROM pg_stat_replication
		WHERE application_name = 'bench_sync_sub' AND sync_state = 'sync'" "the subscription is synchronous"

	echo "== sync commit latency: repl_ext, leader $LEADER, follower $FOLLOWER"
	sync_fresh 0 1
	q $LEADER "$sync_table_sql"
	q $LEADER "SELECT repl.init_leader('leader', '$(conn $LEADER)')" >/dev/null
	q $LEADER "SELECT repl.add_table('bench_sync')" >/dev/null
	q $LEADER "SELECT repl.add_follower('f1', '$(conn $FOLLOWER)', synchronous => true)" >/dev/null
	sync_catchup_repl
	[ "$(q $LEADER "SELECT synchronous FROM repl.status WHERE node_name = 'f1'")" = t ] ||
		die "repl.status does not show f1 as synchronous"

	echo "== sync commit latency: $sync_rounds rounds of pgbench -T $sync_round_seconds per configuration, taking turns"
	for ((r = 0; r < sync_rounds; r++)); do
		for ((i = 0; i < ${#order[@]}; i++)); do
			k=${order[$(((i + r) % ${#order[@]}))]}
			case $k in
				phys_sync) sync_measure $k "physical synchronous (remote_apply)" $PRIMARY $STANDBY \
					sync_catchup_phys '-c synchronous_commit=remote_apply' ;;
				phys_async) sync_measure $k "physical asynchronous (local)" $PRIMARY $STANDBY \
					sync_catchup_phys '-c synchronous_commit=local' ;;
				logical_sync) sync_measure $k "built-in logical synchronous (remote_apply)" $PUB $SUB \
					sync_catchup_logical '-c synchronous_commit=remote_apply' ;;
				logical_async) sync_measure $k "built-in logical asynchronous (local)" $PUB $SUB \
					sync_catchup_logical '-c synchronous_commit=local' ;;
				repl_sync) sync_measure $k "repl_ext synchronous" $LEADER $FOLLOWER sync_catchup_repl '' ;;
				repl_async) sync_measure $k "repl_ext asynchronous (synchronous_commit=off)" $LEADER $FOLLOWER \
					sync_catchup_repl '-c repl_ext.synchronous_commit=off' ;;
			esac
		done
	done
	for i in 0 1 2 3 5 4; do
		stop_instance $i
	done
}

sync_report() {
	local k base
	for k in "${!sync_n[@]}"; do
		sync_lat[$k]=$(awk -v m="${sync_ms[$k]}" -v n="${sync_n[$k]}" 'BEGIN {printf "%.3f", m / n}')
		sync_tps[$k]=$(awk -v n="${sync_n[$k]}" -v s="$((sync_rounds * sync_round_seconds))" \
			'BEGIN {printf "%.1f", n / s}')
	done
	base=${sync_lat[phys_sync]}
	echo
	echo "== sync commit latency: 1 client, 1 single-row INSERT per transaction, $sync_rounds rounds of pgbench -T $sync_round_seconds per configuration, taking turns"
	echo
	echo "| system | mode | tps | avg latency ms | latency ratio vs physical remote_apply |"
	echo "|---|---|---|---|---|"
	for k in repl_sync repl_async phys_sync phys_async logical_sync logical_async; do
		case $k in
			repl_sync) printf '| repl_ext | synchronous follower |' ;;
			repl_async) printf '| repl_ext | repl_ext.synchronous_commit=off |' ;;
			phys_sync) printf '| physical streaming | synchronous_commit=remote_apply |' ;;
			phys_async) printf '| physical streaming | synchronous_commit=local |' ;;
			logical_sync) printf '| built-in logical | synchronous_commit=remote_apply |' ;;
			logical_async) printf '| built-in logical | synchronous_commit=local |' ;;
		esac
		awk -v t="${sync_tps[$k]}" -v l="${sync_lat[$k]}" -v b="$base" \
			'BEGIN {printf " %.1f | %.3f | %.2f |\n", t, l, l / b}'
	done
	echo
	awk -v r="${sync_lat[repl_sync]}" -v p="$base" -v l="${sync_lat[logical_sync]}" 'BEGIN {
		printf "targets: repl_ext synchronous latency <= 1.5 x physical remote_apply (measured: %.2f x), ", r / p
		printf "and <= built-in logical synchronous (measured: %.2f x)\n", r / l
		printf "repl_ext sync / logical sync latency ratio: %.2f\n", r / l
	}'
}
