#!/usr/bin/env bash
# Fuzz the follower's batch decoder and apply entry point with libFuzzer.
# On demand only, never in CI.
#
#   sudo bash test/fuzz/run.sh [decode_seconds] [apply_seconds]
#
# Defaults: 60 and 60.  The report of issue 8 comes from
#   sudo bash test/fuzz/run.sh 600 1800
#
# 1. Builds two harnesses with clang (-fsanitize=fuzzer, AddressSanitizer,
#    UndefinedBehaviorSanitizer):
#      fuzz_decode  src/protocol.c with pg_stubs.c, in process: every input
#                   is read as a batch the way apply reads it (header,
#                   relation table, changes, row images, tick, DDL, sequence
#                   and table records); an error must be a clean ereport.
#      fuzz_apply   sends every input to a running follower as
#                   repl.apply_batch() inside BEGIN ... ROLLBACK, with the
#                   follower's position set to what the input's header says
#                   (so mutated batches reach the row decoding and the
#                   executor); a crash, a hang (statement_timeout 10 s) or an
#                   internal error (SQLSTATE XX000-XX002) is a finding.
# 2. Starts a throwaway leader (127.0.0.1:55461) and follower (55462) as the
#    postgres user, replicates tables of many types, DDL through
#    repl.execute_ddl, a replicated sequence, TRUNCATE, REPLICA IDENTITY FULL;
#    the follower keeps each applied tick (repl.retained): those batches are
#    the seed corpus of both harnesses.
# 3. Runs fuzz_decode, then fuzz_apply against the follower (paused on the
#    leader), connected as a role with the least privileges a follower
#    connection needs (not a superuser: a mutated DDL record runs with those).
# 4. Checks that the follower's tables hold exactly what they held before
#    (md5 of an ordered dump), that its position is unchanged, and that its
#    server log has no PANIC and no crashed backend.  Prints executions.
# Findings (crash inputs) are kept in the directory printed at the end.
set -euo pipefail

decode_s=${1:-60}
apply_s=${2:-60}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" = 0 ]; then
	missing=()
	for p in clang libclang-rt-14-dev libpq-dev postgresql-15 postgresql-server-dev-15; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	dir=$(mktemp -d /tmp/repl_ext_fuzz.XXXXXX)
	flags="-g -O1 -Wno-ignored-attributes -fsanitize=fuzzer,address,undefined"
	clang $flags -I/usr/include/postgresql/15/server -I"$src/src" -I"$src/test/fuzz" \
		"$src/src/protocol.c" "$src/test/fuzz/pg_stubs.c" "$src/test/fuzz/fuzz_decode.c" \
		-o "$dir/fuzz_decode"
	clang -g -O1 -fsanitize=fuzzer,address -I/usr/include/postgresql \
		"$src/test/fuzz/fuzz_apply.c" -lpq -o "$dir/fuzz_apply"
	cp "${BASH_SOURCE[0]}" "$dir/run.sh"
	chown -R postgres "$dir"
	exec runuser -u postgres -- bash "$dir/run.sh" --as-postgres "$dir" "$decode_s" "$apply_s"
fi
[ "${1:-}" = "--as-postgres" ] || { echo "run as root: sudo bash test/fuzz/run.sh" >&2; exit 1; }
dir=$2 decode_s=$3 apply_s=$4
cd "$dir"
LEADER=55461 FOLLOWER=55462

cleanup() {
	local rc=$? n
	for n in leader follower; do
		[ -f "$dir/$n/postmaster.pid" ] && "$BIN/pg_ctl" -D "$dir/$n" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$dir/leader" "$dir/follower"
	echo "== work directory (corpus, findings, logs): $dir"
	exit $rc
}
trap cleanup EXIT

q() { "$BIN/psql" -X -q -A -t -h "$dir" -p "$1" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }
for n in leader follower; do
	port=$LEADER; [ $n = follower ] && port=$FOLLOWER
	"$BIN/initdb" -D "$dir/$n" -A trust -U postgres --encoding=UTF8 --locale=C.utf8 >/dev/null
	cat >> "$dir/$n/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'repl_ext'
repl_ext.database = 'postgres'
repl_ext.batch_interval = '5ms'
max_worker_processes = 16
log_min_messages = warning
log_min_error_statement = panic
CONF
	"$BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w start >/dev/null
	q $port "CREATE EXTENSION repl_ext"
done

schema="
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE t1 (id bigint PRIMARY KEY, s text, n numeric, f float8, b bytea, ts timestamptz,
                 j jsonb, a int[], m mood, r int4range, big text);
CREATE TABLE t2 (a int, b text, p point, js json);
ALTER TABLE t2 REPLICA IDENTITY FULL;
CREATE TABLE \"Odd \"\"T\"\"\" (k text PRIMARY KEY, v int GENERATED ALWAYS AS (length(k)) STORED, w int);
CREATE SEQUENCE s1;"
q $LEADER "$schema"
q $FOLLOWER "$schema"
q $FOLLOWER "CREATE ROLE fuzz_link LOGIN IN ROLE repl_admin;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON ALL TABLES IN SCHEMA public TO fuzz_link;
GRANT SELECT, UPDATE ON SEQUENCE s1 TO fuzz_link;"
q $LEADER "SELECT repl.init_leader('fz_leader', 'host=$dir port=$LEADER dbname=postgres')" >/dev/null
q $LEADER "SELECT repl.add_table(t) FROM unnest(ARRAY['t1', 't2', '\"Odd \"\"T\"\"\"']) t" >/dev/null
q $LEADER "SELECT repl.add_sequence('s1')" >/dev/null
q $LEADER "SELECT repl.add_follower('fz_follower', 'host=$dir port=$FOLLOWER dbname=postgres')" >/dev/null
[ "$(q $LEADER "SELECT repl.wait_for_catchup('fz_follower', '120 s')")" = t ] || { echo "follower did not catch up" >&2; exit 1; }

# a workload with every kind of change, in many small transactions
for i in $(seq 1 40); do
	q $LEADER "
INSERT INTO t1 SELECT g, 'ü' || g, g / 7.0, g * 0.1, '\\x00ff', now(), '{\"k\": [1, null]}', '{1,NULL}',
       'ok', int4range(g, g + 5), CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 300) END
  FROM generate_series($i * 10, $i * 10 + 9) g;
UPDATE t1 SET s = s || 'x', n = -n WHERE id % 3 = $i % 3;
UPDATE t1 SET id = id + 100000 WHERE id = $i * 10 + 1;
DELETE FROM t1 WHERE id = $i * 10 + 2;
INSERT INTO t2 VALUES ($i, NULL, point($i, -0.0), '{\"a\":1,  \"a\":2}'), ($i, 'dup', NULL, NULL);
UPDATE t2 SET b = 'upd' WHERE a = $i AND b IS NULL;
INSERT INTO \"Odd \"\"T\"\"\" (k, w) VALUES ('k$i', nextval('s1'));
" >/dev/null
	if [ $((i % 10)) = 0 ]; then
		q $LEADER "DELETE FROM t2 WHERE a < $i - 5" >/dev/null
		q $LEADER "SELECT repl.execute_ddl('ALTER TABLE t1 ADD COLUMN c$i int DEFAULT $i')" >/dev/null
	fi
	[ $i = 25 ] && q $LEADER "TRUNCATE t2" >/dev/null
done
[ "$(q $LEADER "SELECT repl.wait_for_catchup('fz_follower', '120 s')")" = t ] || { echo "follower did not catch up" >&2; exit 1; }
q $LEADER "SELECT repl.pause_follower('fz_follower')" >/dev/null

mkdir -p corpus_decode corpus_apply findings
n=0
while read -r tick hex; do
	printf '%s' "$hex" | perl -ne 'print pack("H*", $_)' > "corpus_decode/tick_$tick"
	cp "corpus_decode/tick_$tick" "corpus_apply/tick_$tick"
	n=$((n + 1))
done < <(q $FOLLOWER "SELECT tick_id || ' ' || encode(batch, 'hex') FROM repl.retained ORDER BY tick_id")
echo "== seed corpus: $n batches the follower applied"

dump="SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM (
  SELECT t1::text AS x FROM t1 UNION ALL SELECT t2::text FROM t2
  UNION ALL SELECT o::text FROM \"Odd \"\"T\"\"\" o
  UNION ALL SELECT applied_tick::text || '/' || epoch FROM repl.local_node) d"
before=$(q $FOLLOWER "$dump")

echo "== fuzz_decode for $decode_s s"
./fuzz_decode -max_total_time="$decode_s" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=findings/decode_ corpus_decode > fuzz_decode.log 2>&1 || {
	echo "fuzz_decode found something:" >&2; tail -40 fuzz_decode.log >&2; exit 1; }
decode_runs=$(grep -o 'Done [0-9]* runs' fuzz_decode.log | awk '{print $2}')

echo "== fuzz_apply for $apply_s s"
FUZZ_CONNINFO="host=127.0.0.1 port=$FOLLOWER dbname=postgres user=fuzz_link" \
	./fuzz_apply -max_total_time="$apply_s" -max_len=65536 -timeout=30 -rss_limit_mb=2048 \
	-artifact_prefix=findings/apply_ corpus_apply > fuzz_apply.log 2>&1 || {
	echo "fuzz_apply found something:" >&2; tail -40 fuzz_apply.log >&2; exit 1; }
apply_runs=$(grep -o 'Done [0-9]* runs' fuzz_apply.log | awk '{print $2}')

after=$(q $FOLLOWER "$dump")
[ "$before" = "$after" ] || { echo "the follower's tables or position changed: $before -> $after" >&2; exit 1; }
if grep -E "PANIC|was terminated by signal|server process .* exited with exit code [^0]" "$dir/follower.log"; then
	echo "the follower's log shows a crash" >&2
	exit 1
fi
q $LEADER "SELECT repl.resume_follower('fz_follower')" >/dev/null
[ "$(q $LEADER "SELECT repl.wait_for_catchup('fz_follower', '120 s')")" = t ] || { echo "follower did not resume" >&2; exit 1; }
echo
echo "| harness | seconds | executions | findings |"
echo "|---|---|---|---|"
echo "| fuzz_decode (in process) | $decode_s | $decode_runs | 0 |"
echo "| fuzz_apply (follower, BEGIN/ROLLBACK) | $apply_s | $apply_runs | 0 |"
echo "follower unchanged by the fuzzing (md5 $after), resumed streaming afterwards"
