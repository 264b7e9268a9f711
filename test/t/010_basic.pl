# Leader and two followers: every kind of change reaches both, contents are
# compared in full, and bad calls are refused without side effects.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1', 'TimeZone' => 'Asia/Tokyo', 'DateStyle' => 'SQL, DMY',
	'extra_float_digits' => '-5', 'bytea_output' => 'escape');
my $f2 = new_node('f2');

my $schema = q{
CREATE TABLE data (
	id int PRIMARY KEY,
	t text, n numeric, f float8, b bytea, ts timestamptz, j jsonb,
	arr int[], big text
);
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd Table" ("Key" text PRIMARY KEY, "Val ue" int);
CREATE TABLE nokey_full (a int, b text);
ALTER TABLE nokey_full REPLICA IDENTITY FULL;
CREATE TABLE no_key (a int);
CREATE TABLE later (id int PRIMARY KEY, v text);
};
$_->safe_psql('postgres', $schema) for ($leader, $f1, $f2);

$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', q{
SELECT repl.add_table('data');
SELECT repl.add_table('"My Schema"."Odd Table"');
SELECT repl.add_table('nokey_full');
});

# a table without key is refused with a hint
my ($rc, $out, $err) = $leader->psql('postgres', "SELECT repl.add_table('no_key')");
isnt($rc, 0, 'table without key refused');
like($err, qr/no primary key or replica identity.*HINT:.*REPLICA IDENTITY/s, 'refusal has a hint');

# bad add_follower calls change nothing
($rc, $out, $err) = $leader->psql('postgres', "SELECT repl.add_follower('x', 'nonsense')");
like($err, qr/invalid connection string/, 'syntactically bad conninfo refused');
($rc, $out, $err) = $leader->psql('postgres',
	"SELECT repl.add_follower('x', 'host=127.0.0.1 port=1 dbname=postgres connect_timeout=2')");
like($err, qr/could not connect to follower "x"/, 'unreachable follower refused');
$f2->safe_psql('postgres', 'ALTER TABLE data ALTER COLUMN n TYPE float8');
($rc, $out, $err) = $leader->psql('postgres',
	"SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
like($err, qr/replicated tables differ.*column n is numeric on the leader but double precision on the follower/s,
	'schema difference listed');
$f2->safe_psql('postgres', 'ALTER TABLE data ALTER COLUMN n TYPE numeric');
$f2->safe_psql('postgres', q{INSERT INTO "My Schema"."Odd Table" VALUES ('stray', 1)});
($rc, $out, $err) = $leader->psql('postgres',
	"SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
like($err, qr/are not empty/, 'non-empty follower table refused');
$f2->safe_psql('postgres', q{DELETE FROM "My Schema"."Odd Table"});
is($leader->safe_psql('postgres', 'SELECT count(*) FROM repl.status'), '0',
	'failed add_follower calls left no follower behind');
is($f2->safe_psql('postgres', 'SELECT role FROM repl.node_info()'), 'none',
	'and left the follower untouched');

$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
# twice is harmless
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
is($leader->safe_psql('postgres', 'SELECT count(*) FROM repl.status'), '2', 'two followers');

# every kind of change, with awkward values, under odd leader settings
$leader->safe_psql('postgres', q{
SET TimeZone = 'America/New_York';
SET DateStyle = 'Postgres, MDY';
INSERT INTO data VALUES
 (1, 'it''s "quoted" ünïcode \ back', 1.0, 0.1, '\x00ff10', '2024-02-29 23:59:59.999999+00',
  '{"k": [1, null, "x"]}', '{1,NULL,3}', NULL),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '', 'NaN', '-Infinity', '', '-infinity', '{}', '{}', NULL),
 (4, 'big', 12345678901234567890.123456789, 1e-300, NULL, now(), 'null', '{-1}',
  (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 50000) g));
UPDATE data SET n = 1.00, f = '-0' WHERE id = 1;
UPDATE data SET t = 'toast untouched' WHERE id = 4;
UPDATE data SET id = 40 WHERE id = 4;
UPDATE data SET arr = NULL, j = NULL WHERE id = 1;
DELETE FROM data WHERE id = 2;
INSERT INTO "My Schema"."Odd Table" VALUES ('a', 1), ('b b', 2), ('"c"', 3);
UPDATE "My Schema"."Odd Table" SET "Val ue" = 20 WHERE "Key" = 'b b';
DELETE FROM "My Schema"."Odd Table" WHERE "Key" = 'a';
INSERT INTO nokey_full VALUES (1, 'one'), (1, 'one'), (2, NULL);
UPDATE nokey_full SET b = 'two' WHERE a = 2;
DELETE FROM nokey_full WHERE ctid = (SELECT min(ctid) FROM nokey_full WHERE a = 1);
});
wait_catchup($leader);
for my $f ($f1, $f2)
{
	compare_nodes($leader, $f, 'data', 'id');
	compare_nodes($leader, $f, '"My Schema"."Odd Table"', '"Key"');
	compare_nodes($leader, $f, 'nokey_full', 'a, b');
}
# values compared in the leader's own text form too (the follower runs other settings)
my $fixed = q{SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3;};
is($f1->safe_psql('postgres', "$fixed SELECT ts, f, n FROM data WHERE id = 1"),
   '2024-02-29 23:59:59.999999+00|-0|1.00', 'timestamptz, -0 and 1.00 exact on the follower');
is($f1->safe_psql('postgres', 'SELECT md5(big) FROM data WHERE id = 40'),
   $leader->safe_psql('postgres', 'SELECT md5(big) FROM data WHERE id = 40'),
   'TOASTed value kept through updates of other columns and of the key');

# TRUNCATE, then more rows
$leader->safe_psql('postgres', q{
TRUNCATE data;
INSERT INTO data (id, t) SELECT g, 'after truncate ' || g FROM generate_series(1, 500) g;
});
wait_catchup($leader);
compare_nodes($leader, $_, 'data', 'id') for ($f1, $f2);

# status and node info
$leader->poll_query_until('postgres',
	q{SELECT bool_and(state = 'streaming' AND applied_position = sent_position
	   AND lag_changes = 0) FROM repl.status})
  or die 'followers not streaming';
is($leader->safe_psql('postgres', 'SELECT node_name FROM repl.status ORDER BY 1'),
	"f1\nf2", 'status lists both followers');
is($f1->safe_psql('postgres', 'SELECT node_name, role, leader_name, epoch FROM repl.node_info()'),
	'f1|follower|leader|1', 'node_info on a follower');
is($leader->safe_psql('postgres', 'SELECT node_name, role, leader_name FROM repl.node_info()'),
	'leader|leader|leader', 'node_info on the leader');

# followers refuse local writes, reads work
for my $sql ('INSERT INTO data (id) VALUES (-1)', 'UPDATE data SET t = NULL',
	'DELETE FROM data', 'TRUNCATE data')
{
	($rc, $out, $err) = $f1->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/25006: cannot modify replicated table "data" on a follower/,
		"follower refuses: $sql");
}
is($f1->safe_psql('postgres', 'SELECT count(*) FROM data'), '500', 'reads work on a follower');

# the per-relation cache follows ALTER TABLE: a session that already wrote
# to the table sees the new column after another session adds it
my $bg = $leader->background_psql('postgres', on_error_stop => 1);
$bg->query_safe("INSERT INTO data (id, t) VALUES (900, 'before alter')");
$leader->safe_psql('postgres',
	q{SELECT repl.execute_ddl($$ALTER TABLE data ADD COLUMN extra text DEFAULT 'd'$$)});
$bg->query_safe("INSERT INTO data (id, t, extra) VALUES (901, 'after alter', 'new column')");
$bg->query_safe("UPDATE data SET extra = 'changed' WHERE id = 900");
$bg->quit;
wait_catchup($leader);
compare_nodes($leader, $_, 'data', 'id') for ($f1, $f2);
is($f2->safe_psql('postgres', 'SELECT extra FROM data WHERE id IN (900, 901) ORDER BY id'),
	"changed\nnew column", 'new column captured by a session that cached the table before');

# a table added later replicates from that point; remove_table stops it
$leader->safe_psql('postgres', q{
SELECT repl.add_table('later');
INSERT INTO later VALUES (1, 'one'), (2, 'two');
});
wait_catchup($leader);
compare_nodes($leader, $_, 'later', 'id') for ($f1, $f2);
$leader->safe_psql('postgres', q{
SELECT repl.remove_table('later');
INSERT INTO later VALUES (3, 'not replicated');
});
wait_catchup($leader);
is($f1->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM later'),
	'1,2', 'writes after remove_table stay on the leader');
$f1->safe_psql('postgres', q{INSERT INTO later VALUES (10, 'local')});
pass('follower can write a table that is no longer replicated');

$_->stop for ($leader, $f1, $f2);
done_testing();
