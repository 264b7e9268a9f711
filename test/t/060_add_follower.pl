# Adding followers to a live leader: schema creation, snapshot copy under
# concurrent writes (with transactions in flight across the snapshot),
# writers never blocked, a follower killed mid-copy, a schema mismatch
# refused with nothing changed, and add_table with followers present.
use strict;
use warnings;
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');
my $f2 = new_node('f2');
my $f3 = new_node('f3');

# Tables exist on the leader only: add_follower creates them.  A serial key
# (sequence), a default, a CHECK, a unique constraint, a secondary index, a
# generated column, an array, a quoted schema and table name, a foreign key,
# and a table without a key (REPLICA IDENTITY FULL).
$leader->safe_psql('postgres', q{
CREATE TABLE acc (id int PRIMARY KEY, bal bigint NOT NULL DEFAULT 0 CHECK (bal > -1000000),
	owner text NOT NULL, code int UNIQUE, doubled bigint GENERATED ALWAYS AS (bal * 2) STORED);
CREATE INDEX acc_owner ON acc (owner);
CREATE TABLE hist (id bigserial PRIMARY KEY, acc_id int NOT NULL REFERENCES acc,
	delta int NOT NULL, tags text[], at timestamptz NOT NULL DEFAULT now());
CREATE SCHEMA "Other Schema";
CREATE TABLE "Other Schema"."Mixed Case" ("Key" text PRIMARY KEY, n numeric(10,2));
CREATE TABLE nokey (a int, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
INSERT INTO acc (id, bal, owner, code)
	SELECT g, g % 1000, 'owner ' || (g % 97), g FROM generate_series(1, 300000) g;
INSERT INTO hist (acc_id, delta, tags)
	SELECT g, g % 7, ARRAY['t' || g, NULL] FROM generate_series(1, 50000) g;
INSERT INTO "Other Schema"."Mixed Case" SELECT 'k' || g, g / 3.0 FROM generate_series(1, 1000) g;
INSERT INTO nokey SELECT g % 10, 'b' || g FROM generate_series(1, 100) g;
});
$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table(t) FROM unnest(ARRAY['acc', 'hist', '\"Other Schema\".\"Mixed Case\"', 'nokey']::regclass[]) t");

my @tables = (['acc', 'id'], ['hist', 'id'], ['"Other Schema"."Mixed Case"', '"Key"'], ['nokey', 'a, b']);

sub compare_all
{
	my ($f) = @_;
	compare_nodes($leader, $f, $_->[0], $_->[1]) for @tables;
}

############################################################################
# 1. add f1 while pgbench writes, with transactions in flight at the snapshot
############################################################################

my $script = $leader->basedir . '/writes.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 150000)
\set d random(-5, 5)
BEGIN;
UPDATE acc SET bal = bal + :d WHERE id = :id;
INSERT INTO hist (acc_id, delta, tags) VALUES (:id, :d, ARRAY['pgbench']);
UPDATE acc SET bal = bal - :d, owner = 'moved' WHERE id = 300001 - :id;
DELETE FROM hist WHERE id = (SELECT min(id) FROM hist);
INSERT INTO nokey VALUES (:d, 'pgbench');
END;
});
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-h', $leader->host, '-p', $leader->port, '-c', '3',
	  '-T', '12', '-f', $script, 'postgres' ],
	'>', \$out, '2>', \$err);

# in flight across the snapshot: written before add_follower, committed after
# the copy's snapshot was taken; another one committed during the copy
my $inflight = $leader->background_psql('postgres', on_error_stop => 1);
$inflight->query_safe(q{BEGIN;
INSERT INTO acc (id, owner, code) VALUES (400001, 'in flight', 400001);
UPDATE acc SET bal = bal + 100000 WHERE id = 7;
INSERT INTO hist (acc_id, delta) VALUES (400001, 42);});
my $inflight2 = $leader->background_psql('postgres', on_error_stop => 1);
$inflight2->query_safe(q{BEGIN; UPDATE acc SET owner = 'second in flight' WHERE id BETWEEN 10 AND 20;});

# writer that must never be blocked: a lock wait longer than 2 s fails it
my $writer = $leader->background_psql('postgres', on_error_stop => 1);
$writer->query_safe("SET lock_timeout = '2s'");
my $watch = $leader->background_psql('postgres', on_error_stop => 1);

my $log_offset = -s $leader->logfile;
$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
is($f1->safe_psql('postgres', "SELECT role FROM repl.node_info()"), 'none',
	'add_follower itself changes nothing on the follower');

$leader->wait_for_log(qr/follower "f1": copy of 4 tables started at position/, $log_offset);
$inflight->query_safe('COMMIT');

# while f1 copies: writes keep completing; the copy holds only ACCESS SHARE
my ($during_copy, $states, $progress_seen, $strong_locks, $copy_locks) = (0, '', 0, 0, 0);
my $slowest = 0;
for my $i (1 .. 100000)
{
	my $t0 = Time::HiRes::time();
	$writer->query_safe("UPDATE acc SET bal = bal + 1 WHERE id = " . (1000 + $i % 1000));
	my $took = Time::HiRes::time() - $t0;
	my $row = $watch->query_safe(q{
SELECT s.state, coalesce(s.copy_rows, 0) > 0 AND s.copy_tables_total = 4
		AND s.copy_rows_estimate > 0 AND s.copy_bytes > 0,
	(SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	  WHERE a.application_name = 'repl_ext:f1' AND l.relation = 'acc'::regclass
		AND l.mode <> 'AccessShareLock'),
	(SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	  WHERE a.application_name = 'repl_ext:f1' AND l.relation = 'acc'::regclass)
  FROM repl.status s WHERE s.node_name = 'f1'});
	my ($state, $prog, $strong, $held) = split /\|/, $row;
	$states .= " $state" unless $states =~ / \Q$state\E$/;
	if ($state eq 'copying')
	{
		$during_copy++;
		$slowest = $took if $took > $slowest;
		$progress_seen++ if $prog eq 't';
	}
	$strong_locks += $strong;
	$copy_locks += $held;
	$inflight2->query_safe('COMMIT') if $i == 5;
	last if $state eq 'catching_up' || $state eq 'streaming';
	last if $state eq 'copy_failed';
}
$inflight2->query_safe('COMMIT') if $during_copy < 5;
diag(sprintf("f1 states seen:%s; writer statements completed during the copy: %d, slowest %.1f ms",
	$states, $during_copy, $slowest * 1000));
like($states, qr/copying/, 'repl.status showed the copying phase');
ok($during_copy > 0, 'writer statements completed while the copy ran');
ok($progress_seen > 0, 'repl.status showed rows, bytes, tables and estimates during the copy');
ok($copy_locks > 0, 'the copy session was seen holding locks on the leader');
is($strong_locks, 0, 'the copy never held more than ACCESS SHARE on a replicated table');

ok($pgbench->finish, 'pgbench ran without errors during the copy') or diag($err);
like($out, qr/number of transactions actually processed: [1-9]/, 'pgbench committed transactions');
$_->quit for ($inflight, $inflight2, $writer, $watch);

wait_catchup($leader, 'f1');
$leader->poll_query_until('postgres',
	"SELECT state = 'streaming' FROM repl.status WHERE node_name = 'f1'")
  or die 'f1 not streaming';
compare_all($f1);
is($f1->safe_psql('postgres', "SELECT owner || bal FROM acc WHERE id = 400001"), 'in flight0',
	'transaction in flight at the snapshot was applied');
is($f1->safe_psql('postgres', "SELECT bal >= 100000 FROM acc WHERE id = 7"), 't',
	'its update was applied exactly once');
is($f1->safe_psql('postgres', "SELECT count(*) FROM hist WHERE acc_id = 400001"), '1',
	'its insert is there once');
is($f1->safe_psql('postgres', "SELECT count(*) FROM acc WHERE owner = 'second in flight'"), '11',
	'transaction committed during the copy was applied');
is($f1->safe_psql('postgres', "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'acc'"),
	$leader->safe_psql('postgres', "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'acc'"),
	'indexes, key and unique constraints created on the follower');
is($f1->safe_psql('postgres', "SELECT string_agg(pg_get_constraintdef(oid), '; ' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'acc'::regclass"),
	$leader->safe_psql('postgres', "SELECT string_agg(pg_get_constraintdef(oid), '; ' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'acc'::regclass"),
	'constraints created on the follower');
is($f1->safe_psql('postgres', "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'hist'::regclass AND adnum = 1"),
	"nextval('hist_id_seq'::regclass)", 'serial column created with its sequence');
is($f1->safe_psql('postgres', "SELECT relreplident FROM pg_class WHERE oid = 'nokey'::regclass"), 'f',
	'replica identity created');
is($f1->safe_psql('postgres', "SELECT count(*) FROM pg_constraint WHERE conrelid = 'hist'::regclass AND contype = 'f'"),
	'1', 'foreign key between replicated tables created');
my $log = slurp_file($leader->logfile, $log_offset);
like($log, qr/follower "f1": copied table public\.acc: \d+ rows, \d+ bytes \(binary\) in \d+ ms/,
	'leader log reports rows, bytes and time per table');
like($log, qr/follower "f1": copy finished at position \d+ in \d+ ms \(data \d+ ms\): tables: 4, rows: \d+/, 'leader log reports the end of the copy');
like($log, qr/follower "f1" caught up at position \d+ in \d+ ms/, 'leader log reports the end of the catch-up');
$f1->command_fails_like(
	[ 'psql', '-X', '-h', $f1->host, '-p', $f1->port, '-d', 'postgres', '-c', 'INSERT INTO acc (id, owner) VALUES (-1, \'x\')' ],
	qr/follower/, 'copied tables refuse local writes on the follower');

############################################################################
# 2. follower killed in the middle of the copy; the retry copies cleanly
############################################################################

$log_offset = -s $leader->logfile;
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
$leader->poll_query_until('postgres',
	"SELECT state = 'copying' AND copy_rows > 0 FROM repl.status WHERE node_name = 'f2'", 't')
  or die 'f2 never started copying';
$f2->stop('immediate');
$leader->poll_query_until('postgres',
	"SELECT state = 'copy_failed' AND last_error IS NOT NULL FROM repl.status WHERE node_name = 'f2'")
  or die 'copy_failed not shown';
pass('follower killed mid-copy shows copy_failed in repl.status');
$leader->safe_psql('postgres', "INSERT INTO acc (id, owner) VALUES (500001, 'during the outage')");
$f2->start;
my ($rc2, $out2, $err2) = $leader->psql('postgres',
	"SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
like($err2, qr/node "f2" is already a follower, skipping/, 'add_follower again is harmless (and retries at once)');
wait_catchup($leader, 'f2');
compare_all($f2);
is($f2->safe_psql('postgres', "SELECT count(*) - count(DISTINCT id) FROM hist"), '0', 'no duplicate rows after the retry');
like(slurp_file($leader->logfile, $log_offset), qr/follower "f2": copy failed/, 'the failure is in the leader log');

############################################################################
# 3. schema mismatch: refused, with the differences; nothing changes
############################################################################

$f3->safe_psql('postgres', q{
CREATE TABLE acc (id bigint PRIMARY KEY, bal bigint NOT NULL DEFAULT 0, owner text NOT NULL,
	code int UNIQUE, doubled bigint GENERATED ALWAYS AS (bal * 2) STORED);
CREATE TABLE hist (id bigserial, acc_id int NOT NULL, delta int NOT NULL, tags text[],
	at timestamptz NOT NULL DEFAULT now(), extra int, PRIMARY KEY (id, acc_id));
});
my $f3_before = $f3->safe_psql('postgres', "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace");
my ($rc, $stdout, $stderr) = $leader->psql('postgres',
	"SELECT repl.add_follower('f3', '" . connstr($f3) . "')");
isnt($rc, 0, 'add_follower refuses a follower with different tables');
like($stderr, qr/replicated tables differ between the leader and follower "f3"/, 'error names the follower');
like($stderr, qr/table public\.acc: column id is integer NOT NULL on the leader but bigint NOT NULL on the follower/,
	'detail lists the different type');
like($stderr, qr/table public\.hist: key is \(id\) on the leader but \(id, acc_id\) on the follower/,
	'detail lists the different key');
like($stderr, qr/table public\.hist: column extra exists only on the follower/, 'detail lists the extra column');
is($leader->safe_psql('postgres', "SELECT count(*) FROM repl.followers WHERE node_name = 'f3'"), '0',
	'leader unchanged');
is($f3->safe_psql('postgres', "SELECT role FROM repl.node_info()"), 'none', 'follower role unchanged');
is($f3->safe_psql('postgres', "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
	$f3_before, 'no table created or dropped on the follower');
is($f3->safe_psql('postgres', "SELECT to_regnamespace('\"Other Schema\"') IS NULL"), 't',
	'no schema created on the follower');

# fixed, with rows in the way: refused unless truncate_existing
$f3->safe_psql('postgres', q{DROP TABLE hist; DROP TABLE acc;
CREATE TABLE acc (id int PRIMARY KEY, bal bigint NOT NULL DEFAULT 0 CHECK (bal > -1000000),
	owner text NOT NULL, code int UNIQUE, doubled bigint GENERATED ALWAYS AS (bal * 2) STORED);
INSERT INTO acc (id, owner) VALUES (-5, 'stale');});
($rc, $stdout, $stderr) = $leader->psql('postgres',
	"SELECT repl.add_follower('f3', '" . connstr($f3) . "')");
like($stderr, qr/replicated tables on follower "f3" are not empty.*Tables with rows: public\.acc/s,
	'existing rows refused');
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('f3', '" . connstr($f3) . "', truncate_existing => true)");

# the connection is cut in the middle of the copy: the follower's copy
# transaction rolls back (its old row is still there), then the retry works
$leader->poll_query_until('postgres',
	"SELECT state = 'copying' AND copy_rows > 0 FROM repl.status WHERE node_name = 'f3'")
  or die 'f3 never started copying';
$f3->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'repl_ext:f3'");
$log_offset = -s $leader->logfile;
$leader->wait_for_log(qr/follower "f3": copy failed/, $log_offset);
pass('cut connection ends the copy with copy_failed');
wait_catchup($leader, 'f3');
compare_all($f3);
is($f3->safe_psql('postgres', "SELECT count(*) FROM acc WHERE id = -5"), '0',
	'truncate_existing replaced the rows that were in the way');

############################################################################
# 4. add_table with followers present: created and copied on every one
############################################################################

$leader->safe_psql('postgres', q{
CREATE TABLE late (id int PRIMARY KEY, v text DEFAULT 'late', n int);
INSERT INTO late SELECT g, 'before add_table ' || g, g FROM generate_series(1, 20000) g;});

# f1 is paused so that its copy of the new table starts only when resumed:
# a transaction is then surely in flight across that copy's snapshot
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
$log_offset = -s $leader->logfile;
# add_table and writes in one transaction: logged, and in every copy
$leader->safe_psql('postgres', q{BEGIN;
SELECT repl.add_table('late');
UPDATE late SET n = n + 1 WHERE id <= 100;
COMMIT;});
my $late_writer = $leader->background_psql('postgres', on_error_stop => 1);
$late_writer->query_safe(q{BEGIN;
INSERT INTO late VALUES (-1, 'in flight across the copy', 0);
UPDATE late SET n = -n WHERE id BETWEEN 101 AND 110;});
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1')");
$leader->wait_for_log(qr/follower "f1": copy of 1 table started/, $log_offset);
$late_writer->query_safe('COMMIT');
$leader->safe_psql('postgres', q{
DELETE FROM late WHERE id BETWEEN 200 AND 299;
INSERT INTO late SELECT g, 'after add_table', g FROM generate_series(30001, 30100) g;
UPDATE acc SET bal = bal + 1 WHERE id < 100;});
$late_writer->quit;
wait_catchup($leader);
for my $f ($f1, $f2, $f3)
{
	compare_nodes($leader, $f, 'late', 'id');
	compare_nodes($leader, $f, 'acc', 'id');
	is($f->safe_psql('postgres', "SELECT count(*) FROM repl.tables WHERE relid = 'late'::regclass"), '1',
		'new table is replicated on ' . $f->name);
}
is($f1->safe_psql('postgres', "SELECT v FROM late WHERE id = -1"), 'in flight across the copy',
	'transaction in flight across the table copy was applied');
like(slurp_file($leader->logfile, $log_offset), qr/follower "f2": copied table public\.late: 20000 rows/,
	'the new table was copied to the other followers too');

$_->stop for ($leader, $f1, $f2, $f3);
done_testing();
