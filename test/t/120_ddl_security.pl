# Schema changes travel with the data (repl.execute_ddl), a follower whose
# apply fails stops at that batch and resumes once fixed, a follower reached
# through a least-privilege role works, apply cannot be hijacked through the
# table's schema, and replicated sequences survive a failover.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');
my $f2 = new_node('f2', 'search_path' => '"App; Schema", public');

my $schema = q{
CREATE SCHEMA "App; Schema";
CREATE TABLE "App; Schema"."Items ""X""" (id bigint PRIMARY KEY, "Na me" text, qty int);
CREATE TABLE "App; Schema".full_ident (a int, b text);
ALTER TABLE "App; Schema".full_ident REPLICA IDENTITY FULL;
CREATE SEQUENCE "App; Schema"."Order No";
CREATE TABLE "App; Schema".orders (no bigint PRIMARY KEY, what text);
};
$_->safe_psql('postgres', $schema) for ($leader, $f1, $f2);

# f2: the leader connects as repl_link, which is no superuser and owns
# nothing; the tables belong to app_owner.
$f2->safe_psql('postgres', q{
CREATE ROLE app_owner NOLOGIN;
ALTER SCHEMA "App; Schema" OWNER TO app_owner;
ALTER TABLE "App; Schema"."Items ""X""" OWNER TO app_owner;
ALTER TABLE "App; Schema".full_ident OWNER TO app_owner;
ALTER TABLE "App; Schema".orders OWNER TO app_owner;
ALTER SEQUENCE "App; Schema"."Order No" OWNER TO app_owner;
CREATE ROLE repl_link LOGIN IN ROLE repl_admin;
GRANT USAGE ON SCHEMA "App; Schema" TO repl_link;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER
   ON ALL TABLES IN SCHEMA "App; Schema" TO repl_link;
GRANT SELECT, UPDATE ON SEQUENCE "App; Schema"."Order No" TO repl_link;
ALTER ROLE repl_link SET search_path = "App; Schema", public;
});

# A trap in the table's schema: an "=" for bigint and text that fails, found
# first through the search_path of the follower's sessions.  Apply must use
# the index's and the type's own operators.
$f2->safe_psql('postgres', q{
CREATE FUNCTION "App; Schema".trap(bigint, bigint) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE OPERATOR "App; Schema".= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = "App; Schema".trap);
CREATE FUNCTION "App; Schema".trap_t(text, text) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE OPERATOR "App; Schema".= (LEFTARG = text, RIGHTARG = text, FUNCTION = "App; Schema".trap_t);
ALTER FUNCTION "App; Schema".trap(bigint, bigint) OWNER TO app_owner;
});

$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', q{
SELECT repl.add_table('"App; Schema"."Items ""X"""');
SELECT repl.add_table('"App; Schema".full_ident');
SELECT repl.add_table('"App; Schema".orders');
SELECT repl.add_sequence('"App; Schema"."Order No"');
});
$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('f2', '" . connstr($f2) . " user=repl_link')");
$f2->poll_query_until('postgres', q{SELECT role = 'follower' FROM repl.node_info()})
  or die 'f2 did not attach';
is($f2->safe_psql('postgres', 'SELECT role, leader_name FROM repl.node_info()'),
	'follower|leader', 'f2 attached through the least-privilege role');

# 1. rows reach f2 through a role that may only read and write the tables
$leader->safe_psql('postgres', q{
INSERT INTO "App; Schema"."Items ""X""" SELECT g, 'item ' || g, g FROM generate_series(1, 100) g;
INSERT INTO "App; Schema".full_ident VALUES (1, 'a'), (1, 'a'), (2, NULL);
UPDATE "App; Schema".full_ident SET b = 'b' WHERE a = 2;
DELETE FROM "App; Schema".full_ident WHERE ctid = (SELECT min(ctid) FROM "App; Schema".full_ident WHERE a = 1);
});
wait_catchup($leader);
for my $f ($f1, $f2)
{
	compare_nodes($leader, $f, '"App; Schema"."Items ""X"""', 'id');
	compare_nodes($leader, $f, '"App; Schema".full_ident', 'a, b');
}

# 2. apply fails on f2: repl_link may not alter app_owner's table.  f2
# stops at that batch, shows why, retries, and resumes when allowed.
$leader->safe_psql('postgres', q{
BEGIN;
INSERT INTO "App; Schema"."Items ""X""" VALUES (200, 'before first ddl', 0);
SELECT repl.execute_ddl('ALTER TABLE "App; Schema"."Items ""X""" ADD COLUMN extra int');
INSERT INTO "App; Schema"."Items ""X""" VALUES (201, 'after first ddl', 0, 42);
COMMIT;
});
$leader->poll_query_until('postgres',
	q{SELECT last_error LIKE '%must be owner of table%' FROM repl.status WHERE node_name = 'f2'})
  or die 'f2 did not report the failed DDL';
like(status_of($leader, 'f2', 'last_error'), qr/replaying DDL command/,
	'status names the DDL that failed');
my $pos = $f2->safe_psql('postgres', 'SELECT applied_position FROM repl.node_info()');
is($f2->safe_psql('postgres', q{SELECT count(*) FROM "App; Schema"."Items ""X""" WHERE id IN (200, 201)}),
	'0', 'nothing of the failed batch applied');
my $err_time = status_of($leader, 'f2', 'last_error_time');
$leader->poll_query_until('postgres',
	"SELECT last_error_time > '$err_time' FROM repl.status WHERE node_name = 'f2'")
  or die 'f2 was not retried';
is($f2->safe_psql('postgres', 'SELECT applied_position FROM repl.node_info()'), $pos,
	'retried, still at the failed batch');
$f2->safe_psql('postgres', 'GRANT app_owner TO repl_link');
wait_catchup($leader, 'f2');
compare_nodes($leader, $f2, '"App; Schema"."Items ""X"""', 'id');
is($f2->safe_psql('postgres', q{SELECT extra FROM "App; Schema"."Items ""X""" WHERE id = 201}),
	'42', 'resumed once allowed, nothing skipped');
is(status_of($leader, 'f2', 'state'), 'streaming', 'f2 streams again');

# 3. a column missing on f1 (removed behind repl_ext's back): stops, resumes
# once the column is back
$f1->safe_psql('postgres', q{
SET session_replication_role = replica;
ALTER TABLE "App; Schema"."Items ""X""" DROP COLUMN extra;
});
$leader->safe_psql('postgres', q{UPDATE "App; Schema"."Items ""X""" SET extra = 7 WHERE id = 200});
$leader->poll_query_until('postgres',
	q{SELECT last_error LIKE '%column "extra" of replicated table%does not exist%' FROM repl.status WHERE node_name = 'f1'})
  or die 'f1 did not report the missing column';
$f1->safe_psql('postgres', q{
SET session_replication_role = replica;
ALTER TABLE "App; Schema"."Items ""X""" ADD COLUMN extra int;
UPDATE "App; Schema"."Items ""X""" SET extra = 42 WHERE id = 201;
});
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, '"App; Schema"."Items ""X"""', 'id');
is(status_of($leader, 'f1', 'state'), 'streaming', 'f1 streams again');

# 4. rows, then DDL, then rows using the new column, in one transaction and
# in the next ones; and a writer holding the table while the DDL starts
my $bg = $leader->background_psql('postgres', on_error_stop => 0);
$bg->query_safe(q{BEGIN; UPDATE "App; Schema"."Items ""X""" SET qty = qty + 1000 WHERE id <= 10});
my $ddl = $leader->background_psql('postgres');
# blocks on the open transaction's lock, then runs
$ddl->query_until(qr/start/, q{
\echo start
BEGIN;
INSERT INTO "App; Schema"."Items ""X""" VALUES (101, 'before ddl', 1);
SET search_path = "App; Schema";
SELECT repl.execute_ddl('ALTER TABLE "Items ""X""" ADD COLUMN "Col; New" text DEFAULT ''dflt''; CREATE INDEX items_name ON "Items ""X""" ("Na me")');
RESET search_path;
INSERT INTO "App; Schema"."Items ""X""" VALUES (102, 'after ddl', 2, NULL, 'set');
UPDATE "App; Schema"."Items ""X""" SET "Col; New" = 'updated' WHERE id = 5;
COMMIT;
});
$leader->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'})
  or die 'execute_ddl did not wait for the writer';
$bg->query_safe('COMMIT');
$ddl->quit;
$bg->quit;
$leader->safe_psql('postgres', q{
UPDATE "App; Schema"."Items ""X""" SET "Col; New" = 'later', qty = -qty WHERE id % 10 = 0;
DELETE FROM "App; Schema"."Items ""X""" WHERE id = 7;
});
wait_catchup($leader);
for my $f ($f1, $f2)
{
	compare_nodes($leader, $f, '"App; Schema"."Items ""X"""', 'id');
	is($f->safe_psql('postgres', q{SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'}),
		'1', 'index created by execute_ddl on ' . $f->name);
}
is($f2->safe_psql('postgres', q{SELECT "Col; New" FROM "App; Schema"."Items ""X""" WHERE id IN (1, 5, 10, 101, 102) ORDER BY id}),
	"dflt\nupdated\nlater\ndflt\nset", 'new column: defaults, then replicated values');
is($f2->safe_psql('postgres', q{SELECT qty FROM "App; Schema"."Items ""X""" WHERE id = 3}),
	'1003', 'the concurrent writer committed before the DDL is applied');

# plain DDL is refused on the leader and on a follower
my ($rc, $out, $err) = $leader->psql('postgres',
	q{ALTER TABLE "App; Schema"."Items ""X""" ADD COLUMN nope int});
like($err, qr/cannot ALTER replicated table.*HINT:.*execute_ddl/s, 'plain ALTER TABLE refused on the leader');
($rc, $out, $err) = $f1->psql('postgres',
	q{ALTER TABLE "App; Schema"."Items ""X""" DROP COLUMN qty});
like($err, qr/cannot ALTER replicated table/, 'plain ALTER TABLE refused on a follower');

# 5. the trap was never sprung, on f2's key or full-identity lookups
$leader->safe_psql('postgres', q{
UPDATE "App; Schema".full_ident SET b = 'c' WHERE a = 2;
DELETE FROM "App; Schema"."Items ""X""" WHERE id BETWEEN 50 AND 60;
});
wait_catchup($leader, 'f2');
compare_nodes($leader, $f2, '"App; Schema".full_ident', 'a, b');
compare_nodes($leader, $f2, '"App; Schema"."Items ""X"""', 'id');

# 6. an application sequence, called directly, travels with the batches:
# after a failover the new leader's sequence is past every key it holds
$leader->safe_psql('postgres', q{
INSERT INTO "App; Schema".orders
SELECT nextval('"App; Schema"."Order No"'), 'order ' || g FROM generate_series(1, 300) g;
SELECT nextval('"App; Schema"."Order No"') FROM generate_series(1, 50);
});
wait_catchup($leader);
for my $f ($f1, $f2)
{
	is($f->safe_psql('postgres', q{SELECT s.last_value >= 300 AND s.last_value >= (SELECT max(no) FROM "App; Schema".orders) FROM "App; Schema"."Order No" s}), 't',
		'sequence past every key on ' . $f->name);
}
$leader->stop('immediate');
is($f1->safe_psql('postgres', 'SELECT repl.promote()'), '2', 'f1 promoted');
$f1->safe_psql('postgres', q{
INSERT INTO "App; Schema".orders SELECT nextval('"App; Schema"."Order No"'), 'new leader' FROM generate_series(1, 20)});
is($f1->safe_psql('postgres', q{SELECT count(*) FROM "App; Schema".orders WHERE what = 'new leader' AND no > 300}),
	'20', 'no key handed out twice after the failover');
wait_catchup($f1, 'f2');
compare_nodes($f1, $f2, '"App; Schema".orders', 'no');

done_testing();
