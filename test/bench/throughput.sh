# Scenarios "capture" (M1), "apply" (M2) and "sustain" (M5) of the repl_ext
# benchmarks: throughput with an asynchronous follower.  Not a script of its
# own: run.sh (sudo BENCH_SCENARIOS=capture,apply,sustain bash
# test/bench/run.sh) sources it as the postgres user, after defining what it
# uses (dir, BIN, names, ports, scale, capture_seconds, apply_rows,
# sustain_tx, WAIT, SETTLE, q, die, conn, now, elapsed, ratio,
# start_instance, stop_instance, the cleanup trap) and sourcing sync.sh
# (sync_fresh, sync_poll, sync_standby, sync_catchup_repl,
# sync_catchup_phys, PRIMARY, STANDBY, PGBENCH_GRACE), and calls
# NAME_scenario, then NAME_report.
#
# Systems, each on instances initialized for it and alone (the instances of
# the previous system are stopped first):
#   none      no replication: primary 55435 alone (wal_level replica)
#   repl_ext  leader repl_leader 55431, one asynchronous follower
#             repl_follower 55432: repl.add_table on every table, then
#             repl.add_follower('f1', ...), which creates the tables on the
#             follower and copies them
#   logical   publisher pub 55433 (wal_level logical), subscriber sub 55434:
#             the tables created on the subscriber first (pgbench -i -I dtp,
#             same key), CREATE PUBLICATION ... FOR TABLE <the tables>,
#             CREATE SUBSCRIPTION ... WITH (copy_data = true), its
#             synchronous_commit left at off, the default: the subscriber
#             does not flush each applied transaction (it reports a position
#             as flushed only once its WAL writer has flushed it, so a crash
#             loses nothing), where repl_ext's follower flushes once per
#             batch of many transactions; with "on" (as sync.sh sets it for
#             synchronous replication) the subscriber's fsync per
#             transaction would compete with the publisher's on the same disk
#   physical  primary 55435, asynchronous standby 55436 (pg_basebackup -R);
#             apply and sustain only
# After every measurement the replica catches up (repl_ext:
# repl.wait_for_catchup('f1', '600 s'); logical: the subscription's
# replay_lsn in the publisher's pg_stat_replication reaches the publisher's
# pg_current_wal_lsn(); physical: the standby's pg_last_wal_replay_lsn()
# reaches it) and every table is compared between source and replica (row
# count and an md5 over the rows in key order, 100,000 keys per md5 so that
# no string grows past a few MB); any difference fails the script.
#
# pgbench tables.  pgbench_history has no key, and repl_ext refuses a table
# without a primary key or replica identity.  Every system, the baseline
# without replication included, gets the same table: right after pgbench -i
#   ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY
# (pgbench names the columns it inserts, so the key fills itself; every
# system pays the same extra index entry).  REPLICA IDENTITY FULL would
# have served too (the table only gets INSERTs); a key is what a real
# schema would have, and it orders the rows for the comparison.  pgbench
# runs with -n (no
# vacuum or truncation of its own); the tables are vacuumed and analyzed
# after pgbench -i.  4 clients, 2 threads (-c 4 -j 2), the built-in
# tpcb-like script.
#
# capture (M1): BENCH_SECONDS (default 30) of pgbench on the source, for
#   none, repl_ext and logical, all three set up side by side and taking
#   turns in BENCH_ROUNDS (default 5) runs of pgbench -T BENCH_SECONDS/rounds
#   (rounded up), each round starting one system further, so that the
#   machine's drift (its flush time changes by tens of percent within
#   minutes on a VM) hits all three alike.  Before each run both instances
#   checkpoint; after it the replica catches up.  tps = all transactions /
#   the time pgbench counted for them (without connection time), and the
#   ratio to no replication; the longest catch-up after a run is shown too;
#   at the end every replica is compared with its source.
# apply (M2): a table bench_apply (id bigint primary key, grp int, amount
#   numeric, label text, at timestamptz), empty and replicated.  With the
#   replica stopped, one DO block on the source writes the backlog:
#   BENCH_APPLY_ROWS (default 200,000) single-row INSERTs, then half as many
#   single-row UPDATEs (amount and label), then a quarter as many single-row
#   DELETEs (of rows not updated), a COMMIT every 2,000 rows.  Then the
#   replica is let go and the time until it has applied everything is
#   measured; changes/s = rows changed / that time.
#     repl_ext  repl.pause_follower('f1') (state 'paused'), backlog,
#               repl.resume_follower('f1'), repl.wait_for_catchup('f1')
#     logical   ALTER SUBSCRIPTION ... DISABLE (its worker and walsender
#               gone), backlog, ENABLE, until the subscription's
#               replay_lsn reaches the publisher's pg_current_wal_lsn() taken
#               after the backlog
#     physical  SELECT pg_wal_replay_pause() on the standby (state
#               'paused'), backlog, until the standby has received the WAL
#               up to the primary's pg_current_wal_lsn() (a paused standby
#               still receives: only replay is measured), then
#               pg_wal_replay_resume(), until pg_last_wal_replay_lsn()
#               reaches that LSN
#   The clock starts right before the resume; repl_ext and logical then
#   also transfer the backlog, physical only replays it.  At least SETTLE
#   (6) s pass between pause and resume, so that neither repl_ext's nor
#   the launcher's 5 s restart throttle is measured.
# sustain (M5, the pglogical paper's sustainable throughput): pgbench -t
#   BENCH_SUSTAIN_TX per client (default 20,000: about 30 s without
#   replication on a 2-core VM) on the source; sustainable tps = all
#   transactions / wall-clock time from pgbench's start until the replica
#   has caught up; for none, repl_ext, logical and physical (none: until
#   pgbench ends).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "throughput.sh is part of run.sh: sudo BENCH_SCENARIOS=capture,apply,sustain bash test/bench/run.sh" >&2
	exit 2
fi

TP_TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
TP_SUB=bench_tp_sub	# the subscription's name, and its application_name

# results by scenario and system
declare -A tp_tps=() tp_lag=() tp_n=() tp_secs=()
declare -A ap_backlog=() ap_catchup=()
declare -A su_run=() su_total=()

# tp_key TABLE: its key column
tp_key() {
	case $1 in
		pgbench_accounts) echo aid ;;
		pgbench_branches) echo bid ;;
		pgbench_tellers) echo tid ;;
		pgbench_history) echo hid ;;
		*) echo id ;;
	esac
}

# tp_compare SOURCE REPLICA WHAT TABLE...: each table has the same rows on
# both (count, md5 over the rows in key order, one md5 per 100,000 keys)
tp_compare() {
	local source=$1 replica=$2 what=$3 t k sql a b total=0
	shift 3
	for t in "$@"; do
		k=$(tp_key "$t")
		sql="SELECT coalesce(sum(n), 0) || ' ' || coalesce(md5(string_agg(g || ':' || h, ',' ORDER BY g)), '-')
			FROM (SELECT $k / 100000 AS g, count(*) AS n, md5(string_agg(r::text, ',' ORDER BY $k)) AS h
				FROM $t r GROUP BY 1) s"
		a=$(q "$source" "$sql")
		b=$(q "$replica" "$sql")
		[ "$a" = "$b" ] || die "$what: table $t differs: the replica (port $replica) has '$b', the source (port $source) '$a'"
		total=$((total + ${a%% *}))
	done
	echo "   $what: replica identical to the source ($total rows in $# table(s), count and md5)"
}

# tp_init PORT [STEPS]: pgbench -i at BENCH_SCALE with the given
# initialization steps (default all, dtgvp), then pgbench_history's key
tp_init() {
	local port=$1 steps=${2:-dtgvp}
	"$BIN/pgbench" -i -q -s "$scale" -I "$steps" -h "$dir" -p "$port" -U postgres postgres \
		>>"$dir/pgbench_init.log" 2>&1 || { tail -n 20 "$dir/pgbench_init.log" >&2; die "pgbench -i on port $port failed"; }
	q "$port" "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY"
	if [[ $steps == *g* ]]; then
		q "$port" "VACUUM ANALYZE ${TP_TABLES// /, }"
	fi
}

# tp_repl_setup TABLE...: leader and follower f1 (asynchronous) replicating
# the tables, which exist on the leader only; returns once f1 has copied them
tp_repl_setup() {
	local t
	q $LEADER "SELECT repl.init_leader('leader', '$(conn $LEADER)')" >/dev/null
	for t in "$@"; do
		q $LEADER "SELECT repl.add_table('$t')" >/dev/null
	done
	q $LEADER "SELECT repl.add_follower('f1', '$(conn $FOLLOWER)')" >/dev/null
	sync_catchup_repl
	sync_poll $LEADER "SELECT state = 'streaming' FROM repl.status WHERE node_name = 'f1'" "f1 streams"
}

# tp_logical_setup TABLE...: publication on pub, subscription TP_SUB on sub
# (the tables exist on both); returns once the copy is done and it streams
tp_logical_setup() {
	local list
	list=$(printf '%s, ' "$@")
	q $PUB "CREATE PUBLICATION bench_tp_pub FOR TABLE ${list%, }"
	q $SUB "CREATE SUBSCRIPTION $TP_SUB CONNECTION '$(conn $PUB)' PUBLICATION bench_tp_pub
		WITH (copy_data = true)"
	sync_poll $SUB "SELECT count(*) = $# AND bool_and(srsubstate = 'r') FROM pg_subscription_rel" \
		"the subscription's tables are ready"
	sync_poll $PUB "SELECT count(*) = 1 FROM pg_stat_replication
		WHERE application_name = '$TP_SUB' AND state = 'streaming'" "the subscription streams"
}

# tp_catchup_logical: return once the subscription has applied everything
# the publisher wrote before the call
tp_catchup_logical() {
	local lsn
	lsn=$(q $PUB "SELECT pg_current_wal_lsn()")
	sync_poll $PUB "SELECT coalesce(bool_and(replay_lsn >= '$lsn'), false) FROM pg_stat_replication
		WHERE application_name = '$TP_SUB'" "the subscription applied up to $lsn"
}

# tp_pgbench KEY PORT PGBENCH-ARGS...: pgbench tpcb-like, 4 clients, on
# PORT; sets tp_out_tps and tp_out_n (transactions processed)
tp_pgbench() {
	local key=$1 port=$2 out="$dir/pgbench.$1.out" rc=0 limit
	shift 2
	if [ "$1" = -T ]; then limit=$(($2 + PGBENCH_GRACE)); else limit=$((3 * WAIT)); fi
	timeout -k 10 "$limit" "$BIN/pgbench" -n -c 4 -j 2 "$@" -h "$dir" -p "$port" -U postgres postgres \
		>"$out" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		cat "$out" >&2
		die "$key: pgbench $* on port $port failed with exit status $rc"
	fi
	tp_out_tps=$(awk '/^tps = .* \(without initial connection time\)$/ {print $3}' "$out")
	# "N" after -T, "N/M" after -t
	tp_out_n=$(awk -F': ' '/^number of transactions actually processed: / {sub(/\/.*/, "", $2); print $2}' "$out")
	if [ -z "$tp_out_tps" ] || ! [[ $tp_out_n =~ ^[1-9][0-9]*$ ]]; then
		cat "$out" >&2
		die "$key: cannot read tps and transactions from pgbench's output"
	fi
	if grep -q '^number of failed transactions: [1-9]' "$out"; then
		cat "$out" >&2
		die "$key: pgbench reports failed transactions"
	fi
}

# tp_system SYSTEM: stop everything, then initialize the instances of
# SYSTEM (none, repl_ext, logical, physical) with the pgbench tables
# replicated and the replica caught up; sets tp_src and tp_rep (empty for
# none) and tp_catchup (the catch-up function)
tp_system() {
	tp_stop
	tp_setup "$1"
}

# tp_setup SYSTEM: tp_system without stopping the other instances
tp_setup() {
	case $1 in
		none)
			sync_fresh 4
			tp_init $PRIMARY
			tp_src=$PRIMARY tp_rep= tp_catchup=:
			;;
		repl_ext)
			sync_fresh 0 1
			tp_init $LEADER
			tp_repl_setup $TP_TABLES
			tp_src=$LEADER tp_rep=$FOLLOWER tp_catchup=sync_catchup_repl
			;;
		logical)
			sync_fresh 2 3
			tp_init $PUB
			tp_init $SUB dtp
			tp_logical_setup $TP_TABLES
			tp_src=$PUB tp_rep=$SUB tp_catchup=tp_catchup_logical
			;;
		physical)
			sync_fresh 4
			tp_init $PRIMARY
			sync_standby
			tp_src=$PRIMARY tp_rep=$STANDBY tp_catchup=sync_catchup_phys
			;;
	esac
	if [ -n "$tp_rep" ]; then
		tp_compare "$tp_src" "$tp_rep" "$1, before the run" $TP_TABLES >/dev/null
		q "$tp_rep" "CHECKPOINT"
	fi
	q "$tp_src" "CHECKPOINT"
}

# tp_stop: stop every instance, replicas before their sources (names are
# in source, replica order)
tp_stop() {
	local i
	for ((i = ${#names[@]} - 1; i >= 0; i--)); do
		stop_instance "$i"
	done
}

tp_label() {
	case $1 in
		none) echo "no replication" ;;
		repl_ext) echo "repl_ext" ;;
		logical) echo "built-in logical" ;;
		physical) echo "physical streaming" ;;
	esac
}

capture_scenario() {
	local s r i t0 t1 lag per_round=$(((capture_seconds + rounds - 1) / rounds))
	local order=(none repl_ext logical)
	declare -A src=() rep=() catchup=()

	tp_stop
	for s in "${order[@]}"; do
		echo "== capture overhead: $(tp_label $s), pgbench -i -s $scale"
		tp_setup $s
		src[$s]=$tp_src rep[$s]=$tp_rep catchup[$s]=$tp_catchup
		tp_n[$s]=0 tp_secs[$s]=0 tp_lag[$s]=0
	done
	echo "== capture overhead: $rounds rounds of pgbench -c 4 -T $per_round per system, taking turns"
	for ((r = 0; r < rounds; r++)); do
		for ((i = 0; i < ${#order[@]}; i++)); do
			s=${order[$(((i + r) % ${#order[@]}))]}
			[ -z "${rep[$s]}" ] || q "${rep[$s]}" "CHECKPOINT"
			q "${src[$s]}" "CHECKPOINT"
			tp_pgbench "capture_$s" "${src[$s]}" -T "$per_round"
			t0=$(now)
			${catchup[$s]}
			t1=$(now)
			lag=$(elapsed "$t0" "$t1")
			tp_n[$s]=$((${tp_n[$s]} + tp_out_n))
			# seconds without connection time, as pgbench's tps counts them
			tp_secs[$s]=$(awk -v a="${tp_secs[$s]}" -v n="$tp_out_n" -v t="$tp_out_tps" 'BEGIN {printf "%.6f", a + n / t}')
			tp_lag[$s]=$(awk -v a="${tp_lag[$s]}" -v b="$lag" 'BEGIN {printf "%.3f", (b > a ? b : a)}')
			printf '   %-20s %10.1f tps (%s transactions)' "$(tp_label $s)" "$tp_out_tps" "$tp_out_n"
			[ -z "${rep[$s]}" ] && echo || echo ", caught up $lag s after pgbench ended"
		done
	done
	for s in "${order[@]}"; do
		tp_tps[$s]=$(awk -v n="${tp_n[$s]}" -v t="${tp_secs[$s]}" 'BEGIN {printf "%.1f", n / t}')
		[ -z "${rep[$s]}" ] || tp_compare "${src[$s]}" "${rep[$s]}" "$(tp_label $s)" $TP_TABLES
	done
	tp_stop
}

capture_report() {
	local s base=${tp_tps[none]}
	echo
	echo "== capture overhead (M1): pgbench tpcb-like, scale $scale, 4 clients, $capture_seconds s per system in $rounds rounds taking turns, one asynchronous replica of the 4 tables"
	echo
	echo "| system | tps | ratio to no replication | longest catch-up after a run, s |"
	echo "|---|---|---|---|"
	for s in none repl_ext logical; do
		printf '| %s | %.1f | %s | %s |\n' "$(tp_label $s)" "${tp_tps[$s]}" "$(ratio "${tp_tps[$s]}" "$base")" \
			"$([ $s = none ] && echo - || echo "${tp_lag[$s]}")"
	done
	echo
	echo "repl_ext tps / built-in logical tps: $(ratio "${tp_tps[repl_ext]}" "${tp_tps[logical]}")"
}

# ap_backlog_sql: the backlog, one DO block, a COMMIT every 2,000 rows
ap_backlog_sql() {
	cat <<SQL
DO \$\$
DECLARE
	i bigint;
BEGIN
	FOR i IN 1 .. $apply_rows LOOP
		INSERT INTO bench_apply (id, grp, amount, label)
			VALUES (i, i % 1000, (i % 100000) / 100.0, repeat(md5(i::text), 2));
		IF i % 2000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	COMMIT;
	FOR i IN 1 .. $ap_updates LOOP
		UPDATE bench_apply SET amount = amount + 1, label = md5(label) WHERE id = i;
		IF i % 2000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	COMMIT;
	FOR i IN $((apply_rows - ap_deletes + 1)) .. $apply_rows LOOP
		DELETE FROM bench_apply WHERE id = i;
		IF i % 2000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END
\$\$
SQL
}

# ap_write SYSTEM PORT STOPPED REPLICA: write the backlog on PORT and check
# that the replica on port REPLICA has none of it; STOPPED is the time the
# replica was stopped, so that at least SETTLE s pass before it resumes
ap_write() {
	local t0 t1 rest count
	t0=$(now)
	q "$2" "$(ap_backlog_sql)"
	t1=$(now)
	ap_backlog[$1]=$(elapsed "$t0" "$t1")
	count=$(q "$2" "SELECT count(*) || ' ' || count(*) FILTER (WHERE label ~ '^[0-9a-f]{32}$') FROM bench_apply")
	[ "$count" = "$((apply_rows - ap_deletes)) $ap_updates" ] ||
		die "$1: after the backlog the source has '$count' rows (all, updated), not '$((apply_rows - ap_deletes)) $ap_updates'"
	echo "   backlog of $ap_changes changes written in ${ap_backlog[$1]} s"
	[ "$(q "$4" "SELECT count(*) FROM bench_apply")" = 0 ] || die "$1: the replica applied part of the backlog while stopped"
	rest=$(awk -v a="$3" -v b="$(now)" -v s="$SETTLE" 'BEGIN {r = s - (b - a); if (r > 0) printf "%.2f", r; else print 0}')
	sleep "$rest"
}

apply_scenario() {
	local s t0 t1 stopped lsn
	local table_sql="CREATE TABLE bench_apply (id bigint PRIMARY KEY, grp int NOT NULL, amount numeric(12,2) NOT NULL,
		label text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
	ap_updates=$((apply_rows / 2))
	ap_deletes=$((apply_rows / 4))
	ap_changes=$((apply_rows + ap_updates + ap_deletes))

	for s in repl_ext logical physical; do
		echo "== apply throughput: $(tp_label $s), backlog of $apply_rows INSERTs, $ap_updates UPDATEs, $ap_deletes DELETEs"
		tp_stop
		case $s in
			repl_ext)
				sync_fresh 0 1
				q $LEADER "$table_sql"
				tp_repl_setup bench_apply
				stopped=$(now)
				q $LEADER "SELECT repl.pause_follower('f1')" >/dev/null
				sync_poll $LEADER "SELECT state = 'paused' FROM repl.status WHERE node_name = 'f1'" "f1 is paused"
				ap_write $s $LEADER "$stopped" $FOLLOWER
				q $LEADER "CHECKPOINT"
				q $FOLLOWER "CHECKPOINT"
				t0=$(now)
				q $LEADER "SELECT repl.resume_follower('f1')" >/dev/null
				sync_catchup_repl
				t1=$(now)
				tp_src=$LEADER tp_rep=$FOLLOWER
				;;
			logical)
				sync_fresh 2 3
				q $PUB "$table_sql"
				q $SUB "$table_sql"
				tp_logical_setup bench_apply
				stopped=$(now)
				q $SUB "ALTER SUBSCRIPTION $TP_SUB DISABLE"
				sync_poll $SUB "SELECT count(*) = 0 FROM pg_stat_subscription WHERE subname = '$TP_SUB' AND pid IS NOT NULL" \
					"the subscription's worker exited"
				sync_poll $PUB "SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$TP_SUB'" \
					"the subscription's slot is inactive"
				ap_write $s $PUB "$stopped" $SUB
				lsn=$(q $PUB "SELECT pg_current_wal_lsn()")
				q $PUB "CHECKPOINT"
				q $SUB "CHECKPOINT"
				t0=$(now)
				q $SUB "ALTER SUBSCRIPTION $TP_SUB ENABLE"
				sync_poll $PUB "SELECT coalesce(bool_and(replay_lsn >= '$lsn'), false) FROM pg_stat_replication
					WHERE application_name = '$TP_SUB'" "the subscription applied up to $lsn"
				t1=$(now)
				tp_src=$PUB tp_rep=$SUB
				;;
			physical)
				sync_fresh 4
				q $PRIMARY "$table_sql"
				sync_standby
				stopped=$(now)
				q $STANDBY "SELECT pg_wal_replay_pause()" >/dev/null
				sync_poll $STANDBY "SELECT pg_get_wal_replay_pause_state() = 'paused'" "the standby's replay is paused"
				ap_write $s $PRIMARY "$stopped" $STANDBY
				lsn=$(q $PRIMARY "SELECT pg_current_wal_lsn()")
				sync_poll $STANDBY "SELECT pg_last_wal_receive_lsn() >= '$lsn'" "the standby received up to $lsn"
				q $PRIMARY "CHECKPOINT"
				t0=$(now)
				q $STANDBY "SELECT pg_wal_replay_resume()" >/dev/null
				sync_poll $STANDBY "SELECT pg_last_wal_replay_lsn() >= '$lsn'" "the standby replayed up to $lsn"
				t1=$(now)
				tp_src=$PRIMARY tp_rep=$STANDBY
				;;
		esac
		ap_catchup[$s]=$(elapsed "$t0" "$t1")
		printf '   %-20s applied in %s s: %s changes/s\n' "$(tp_label $s)" "${ap_catchup[$s]}" \
			"$(ap_rate "${ap_catchup[$s]}")"
		tp_compare "$tp_src" "$tp_rep" "$(tp_label $s)" bench_apply
		tp_stop
	done
}

ap_rate() { awk -v n="$ap_changes" -v t="$1" 'BEGIN {printf "%.0f", n / t}'; }

apply_report() {
	local s
	echo
	echo "== apply throughput (M2): backlog of $ap_changes single-row changes ($apply_rows INSERTs, $ap_updates UPDATEs, $ap_deletes DELETEs, 2,000 per transaction) written with the replica stopped, then applied"
	echo
	echo "| system | stopped with | backlog written, s | applied in, s | changes/s | ratio vs built-in logical | ratio vs physical |"
	echo "|---|---|---|---|---|---|---|"
	for s in repl_ext logical physical; do
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(tp_label $s)" \
			"$(case $s in repl_ext) echo 'repl.pause_follower / resume_follower' ;;
				logical) echo 'ALTER SUBSCRIPTION DISABLE / ENABLE' ;;
				physical) echo 'pg_wal_replay_pause / resume (replay only)' ;; esac)" \
			"${ap_backlog[$s]}" "${ap_catchup[$s]}" "$(ap_rate "${ap_catchup[$s]}")" \
			"$(ratio "${ap_catchup[logical]}" "${ap_catchup[$s]}")" "$(ratio "${ap_catchup[physical]}" "${ap_catchup[$s]}")"
	done
	echo
	echo "ratios are of changes/s (above 1: faster than the other system)"
}

sustain_scenario() {
	local s t0 t1 t2
	for s in none repl_ext logical physical; do
		echo "== sustainable throughput: $(tp_label $s), pgbench -i -s $scale, then -c 4 -t $sustain_tx"
		tp_system $s
		t0=$(now)
		tp_pgbench "sustain_$s" "$tp_src" -t "$sustain_tx"
		t1=$(now)
		$tp_catchup
		t2=$(now)
		[ "$tp_out_n" = $((4 * sustain_tx)) ] || die "$s: pgbench processed $tp_out_n transactions, not $((4 * sustain_tx))"
		su_run[$s]=$(elapsed "$t0" "$t1")
		su_total[$s]=$(elapsed "$t0" "$t2")
		printf '   %-20s pgbench %s s, caught up after %s s: %s tps sustained\n' "$(tp_label $s)" "${su_run[$s]}" \
			"${su_total[$s]}" "$(su_rate "${su_total[$s]}")"
		if [ -n "$tp_rep" ]; then
			tp_compare "$tp_src" "$tp_rep" "$(tp_label $s)" $TP_TABLES
		fi
		tp_stop
	done
}

su_rate() { awk -v n="$((4 * sustain_tx))" -v t="$1" 'BEGIN {printf "%.1f", n / t}'; }

sustain_report() {
	local s base
	base=$(su_rate "${su_total[none]}")
	echo
	echo "== sustainable throughput (M5): pgbench tpcb-like, scale $scale, 4 clients x $sustain_tx transactions, one asynchronous replica; tps = transactions / (pgbench start until the replica has caught up)"
	echo
	echo "| system | pgbench ran, s | replica caught up at, s | sustainable tps | ratio to no replication |"
	echo "|---|---|---|---|---|"
	for s in none repl_ext logical physical; do
		printf '| %s | %s | %s | %s | %s |\n' "$(tp_label $s)" "${su_run[$s]}" \
			"$([ $s = none ] && echo - || echo "${su_total[$s]}")" "$(su_rate "${su_total[$s]}")" \
			"$(ratio "$(su_rate "${su_total[$s]}")" "$base")"
	done
	echo
	echo "repl_ext / built-in logical: $(ratio "$(su_rate "${su_total[repl_ext]}")" "$(su_rate "${su_total[logical]}")"),"\
		"repl_ext / physical: $(ratio "$(su_rate "${su_total[repl_ext]}")" "$(su_rate "${su_total[physical]}")") (sustainable tps)"
}
