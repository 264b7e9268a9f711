#!/usr/bin/env bash
# Live demo of repl_ext: a leader and two followers on localhost.
#
#   sudo bash test/demo.sh
#
# Installs what is missing (Debian packages), builds and installs repl_ext,
# then, as the postgres user, starts three throwaway instances in a temporary
# directory (ports 54321-54323, unix sockets there and 127.0.0.1 only),
# replicates a table, shows the rows on each follower and repl.status, and
# stops and removes everything at the end.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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
	demo=$(mktemp -d /tmp/repl_ext_demo.XXXXXX)
	cp "${BASH_SOURCE[0]}" "$demo/demo.sh"
	chown -R postgres "$demo"
	exec runuser -u postgres -- bash "$demo/demo.sh" --as-postgres "$demo"
fi

if [ "${1:-}" != "--as-postgres" ]; then
	echo "run as root: sudo bash test/demo.sh" >&2
	exit 1
fi
dir=$2
nodes=(leader f1 f2)
ports=(54321 54322 54323)

cleanup() {
	for n in "${nodes[@]}"; do
		[ -f "$dir/$n/postmaster.pid" ] && "$BIN/pg_ctl" -D "$dir/$n" -m fast stop >/dev/null 2>&1 || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

psql_on() { "$BIN/psql" -X -q -h "$dir" -p "$1" -d postgres -v ON_ERROR_STOP=1 "${@:2}"; }

echo "== starting three instances in $dir"
for i in 0 1 2; do
	n=${nodes[$i]}
	"$BIN/initdb" -D "$dir/$n" -A trust -U postgres >/dev/null
	cat >> "$dir/$n/postgresql.conf" <<CONF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'repl_ext'
repl_ext.database = 'postgres'
max_worker_processes = 16
CONF
	"$BIN/pg_ctl" -D "$dir/$n" -l "$dir/$n.log" -w start >/dev/null
	psql_on "${ports[$i]}" -c "CREATE EXTENSION repl_ext"
done

conn() { echo "host=$dir port=$1 dbname=postgres"; }

echo "== leader: a table with 50000 rows; the followers have no tables at all"
psql_on 54321 <<SQL
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2));
INSERT INTO accounts SELECT g, 'user ' || g, g FROM generate_series(10, 50009) g;
SQL

echo "== leader: init, replicate table accounts, add followers f1 (synchronous) and f2 (created and copied)"
psql_on 54321 <<SQL
SELECT repl.init_leader('leader', '$(conn 54321)');
SELECT repl.add_table('accounts');
SELECT repl.add_follower('f1', '$(conn 54322)', synchronous => true);
SELECT repl.add_follower('f2', '$(conn 54323)');
SELECT repl.wait_for_catchup();
SQL

echo "== leader: writes (each commit returns once f1 has applied it)"
psql_on 54321 -e <<'SQL'
INSERT INTO accounts VALUES (1, 'alice', 100.00), (2, 'bob', 50.00), (3, 'carol', 75.50);
BEGIN;
UPDATE accounts SET balance = balance - 25 WHERE id = 1;
UPDATE accounts SET balance = balance + 25 WHERE id = 2;
COMMIT;
DELETE FROM accounts WHERE id = 3;
UPDATE accounts SET balance = balance * 2 WHERE id BETWEEN 10 AND 1009;
SELECT repl.wait_for_catchup();
SQL

for i in 1 2; do
	echo "== follower ${nodes[$i]} (port ${ports[$i]})"
	psql_on "${ports[$i]}" -c "SELECT * FROM accounts WHERE id < 10 ORDER BY id" \
		-c "SELECT count(*) AS rows, sum(balance) AS total FROM accounts" \
		-c "SELECT * FROM repl.node_info()"
done

echo "== leader: the same totals"
psql_on 54321 -c "SELECT count(*) AS rows, sum(balance) AS total FROM accounts"

echo "== a follower refuses local writes"
psql_on 54322 -c "INSERT INTO accounts VALUES (99, 'mallory', 1)" 2>&1 || true

echo "== leader log: how the followers were created, copied and caught up"
grep -E 'repl_ext: follower "f[12]"' "$dir/leader.log" | sed 's/.*LOG: *//'

echo "== leader: repl.status"
psql_on 54321 -c "SELECT node_name, state, sync_state, sent_position, applied_position, lag_changes, lag_seconds, last_error FROM repl.status"

echo "== stopping everything"
