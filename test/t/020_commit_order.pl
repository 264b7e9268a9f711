# Batches follow commit order, not write order; transactions arrive whole,
# never while still in flight, and rolled-back work never arrives.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');

my $schema = 'CREATE TABLE t (k int PRIMARY KEY, v text, writer text);';
$_->safe_psql('postgres', $schema) for ($leader, $f1);
$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");

# On the follower, record which local transaction applied each row version.
$f1->safe_psql('postgres', q{
CREATE TABLE apply_audit (n serial PRIMARY KEY, xid xid8, k int, v text);
-- apply runs with an empty search_path, so qualify everything
CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.apply_audit (xid, k, v)
	VALUES (pg_catalog.pg_current_xact_id(), NEW.k, NEW.v);
	RETURN NULL;
END $$;
CREATE TRIGGER audit_trg AFTER INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION public.audit();
ALTER TABLE t ENABLE ALWAYS TRIGGER audit_trg;
});

my $s1 = $leader->background_psql('postgres', on_error_stop => 1);
my $s2 = $leader->background_psql('postgres', on_error_stop => 1);

# 1. s1 writes first but stays open; s2 writes later and commits.
$s1->query_safe("BEGIN; INSERT INTO t VALUES (1, 's1 first write', 's1')");
$s2->query_safe("BEGIN; INSERT INTO t VALUES (2, 's2', 's2'); COMMIT");
wait_catchup($leader, 'f1');
is($f1->safe_psql('postgres', 'SELECT string_agg(k::text, \',\' ORDER BY k) FROM t'),
	'2', 'committed transaction arrives while an older one is still open');

# 2. s1 goes on writing, several statements, then commits: all of it at once.
$s1->query_safe("INSERT INTO t SELECT g, 's1 bulk', 's1' FROM generate_series(10, 19) g");
$s1->query_safe("UPDATE t SET v = 's1 changed 2' WHERE k = 2");
$s1->query_safe('COMMIT');
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, 't', 'k');
is($f1->safe_psql('postgres', q{
	SELECT count(DISTINCT xid) FROM apply_audit WHERE k = 1 OR k BETWEEN 10 AND 19
	   OR v = 's1 changed 2'}), '1',
	'a multi-statement transaction is applied in one follower transaction');

# 3. Conflicting writers: s1 updates k=1 and holds it; s2's update of the
#    same row waits until s1 commits.  Write order = s1, s2; applying s1
#    last would leave 's1' behind.  Both commit before the next batch is cut
#    when batch_interval is long, so they land in the same batch and the
#    order inside the batch matters too.
$leader->append_conf('postgresql.conf', "repl_ext.batch_interval = '2s'");
$leader->reload;
$s1->query_safe("BEGIN; UPDATE t SET v = 'by s1', writer = 's1' WHERE k = 1");
$s2->query_until(qr/started/, "\\echo started\nBEGIN; UPDATE t SET v = 'by s2', writer = 's2' WHERE k = 1;\n");
$leader->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'})
  or die 's2 never waited';
$s1->query_safe('COMMIT');
$s2->query_safe('COMMIT');
$leader->append_conf('postgresql.conf', "repl_ext.batch_interval = '10ms'");
$leader->reload;
wait_catchup($leader, 'f1');
is($f1->safe_psql('postgres', 'SELECT v, writer FROM t WHERE k = 1'), 'by s2|s2',
	'conflicting updates applied in commit order');

# 4. Delete and re-insert of the same key by two transactions.
$s1->query_safe("BEGIN; DELETE FROM t WHERE k = 2");
$s2->query_until(qr/started/, "\\echo started\nBEGIN; INSERT INTO t VALUES (2, 'reborn', 's2');\n");
$leader->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'})
  or die 's2 never waited';
$s1->query_safe('COMMIT');
$s2->query_safe('COMMIT');
wait_catchup($leader, 'f1');
is($f1->safe_psql('postgres', 'SELECT v FROM t WHERE k = 2'), 'reborn',
	'delete then insert of one key in commit order');

# 5. Rolled back work never arrives, nor does a rolled-back savepoint.
$s1->query_safe("BEGIN; INSERT INTO t VALUES (100, 'rolled back', 's1'); ROLLBACK");
$s1->query_safe(q{BEGIN; INSERT INTO t VALUES (101, 'kept', 's1');
	SAVEPOINT sp; INSERT INTO t VALUES (102, 'savepoint rolled back', 's1');
	ROLLBACK TO sp; UPDATE t SET v = 'kept and updated' WHERE k = 101; COMMIT});
wait_catchup($leader, 'f1');
is($f1->safe_psql('postgres', 'SELECT string_agg(k::text || \'=\' || v, \',\' ORDER BY k) FROM t WHERE k >= 100'),
	'101=kept and updated', 'rollbacks never reach the follower');

# 6. Many interleaved transactions from two sessions, each a counter bump
#    plus an insert: the follower's final state matches the leader's.
$leader->safe_psql('postgres', "INSERT INTO t VALUES (0, '0', 'counter')");
for my $i (1 .. 50)
{
	my $s = $i % 2 ? $s1 : $s2;
	$s->query_safe("BEGIN; UPDATE t SET v = (v::int + 1)::text WHERE k = 0;"
		  . " INSERT INTO t VALUES (1000 + $i, 'n$i', 'loop'); COMMIT");
}
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, 't', 'k');
is($f1->safe_psql('postgres', 'SELECT v FROM t WHERE k = 0'), '50', 'counter bumped 50 times');
# Every follower transaction that applied a counter bump applied whole leader
# transactions: each counter value appears once, with its insert.
is($f1->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT a.xid FROM apply_audit a WHERE a.k = 0 AND a.v <> '0'
	  EXCEPT
	  SELECT b.xid FROM apply_audit b WHERE b.k > 1000) x}), '0',
	'counter bumps and their inserts applied together');

# 7. Every tick's change count (counted in C from the log's indexes when
#    the tick is cut) is what repl.batch_changes returns for it; a count too
#    low would let the sender skip a tick that has changes.  f1 is paused so
#    that the ticks are kept; s1's transaction is in flight across ticks.
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
$s1->query_safe("BEGIN; INSERT INTO t VALUES (2001, 'in flight', 's1')");
for my $i (1 .. 10)
{
	$s2->query_safe("INSERT INTO t VALUES (" . (2100 + $i) . ", 'between', 's2')");
	$leader->safe_psql('postgres', 'SELECT pg_sleep(0.05)');
	$s1->query_safe("INSERT INTO t VALUES (" . (2010 + $i) . ", 'in flight', 's1')")
	  if $i < 10;
}
my $before = $leader->safe_psql('postgres', 'SELECT clock_timestamp()');
$s1->query_safe('COMMIT');
# the tick with s1's 10 rows
$leader->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM repl.tick WHERE tick_time > '$before' AND n_changes >= 10")
  or die 'no tick after the long transaction';
my $ticks = $leader->safe_psql('postgres', q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE t.n_changes > 0) || ' '
       || count(*) FILTER (WHERE t.n_changes <> (SELECT count(*) FROM repl.batch_changes(p.snap, t.snap)))
  FROM repl.tick t JOIN repl.tick p ON p.tick_id = t.tick_id - 1});
my ($nticks, $nonempty, $wrong) = split ' ', $ticks;
ok($nticks >= 10 && $nonempty >= 10, "$nticks ticks kept, $nonempty with changes");
is($wrong, '0', 'every tick counts exactly the changes of its batch');
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1')");
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, 't', 'k');

$s1->quit;
$s2->quit;
$_->stop for ($leader, $f1);
done_testing();
