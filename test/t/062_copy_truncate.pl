# The copy for a new follower against TRUNCATE of a replicated table.
# TRUNCATE is not MVCC-safe: a copy that took its snapshot S before a
# TRUNCATE committed, but read the table after, saw it empty, while the
# batches after S held only what changed after S (an UPDATE of a row the
# copy never saw: "row to update ... does not exist on this follower";
# found by the chaos test, seed 1491380044).  The copy now locks every
# replicated table before S is taken, so the TRUNCATE either precedes S
# or waits for the copy.
#
# Here a session holds the first table in ACCESS EXCLUSIVE mode while the
# copy starts, so it waits; meanwhile a row of the second table is updated,
# then the table is truncated and refilled; then the first is released.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/062_copy_truncate.pl
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');

$leader->safe_psql('postgres', q{
CREATE TABLE a_first (id int PRIMARY KEY);
CREATE TABLE z_small (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO a_first SELECT generate_series(1, 10);
INSERT INTO z_small VALUES (1, 1), (2, 1);
});
$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('a_first'), repl.add_table('z_small')");

$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
wait_catchup($leader, 'f1');

# Copy f1 again, with the copy started while a_first is held: paused, the
# resync only marks it; resumed, its sender starts the copy.
sub copy_against_truncate
{
	my ($round, @sql) = @_;
	$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
	my $holder = $leader->background_psql('postgres', on_error_stop => 1);
	$holder->query_safe('BEGIN');
	$holder->query_safe('LOCK TABLE a_first IN ACCESS EXCLUSIVE MODE');
	$leader->safe_psql('postgres', "SELECT repl.resync_follower('f1')");
	my $since = $leader->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
	$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1')");
	ok($leader->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE NOT l.granted AND l.relation = 'a_first'::regclass
   AND a.application_name <> '062_copy_truncate.pl'}),
		"$round: the copy waits for the table held in ACCESS EXCLUSIVE mode");
	# meanwhile: a row changed, then the table rewritten and changed again
	$leader->safe_psql('postgres', $_) for @sql;
	$holder->query_safe('COMMIT');
	$holder->quit;
	is(catchup_or_error($leader, 'f1', $since), '',
		"$round: the follower catches up without an apply error");
	compare_nodes($leader, $f1, 'a_first', 'id');
	compare_nodes($leader, $f1, 'z_small', 'id');
}

copy_against_truncate('TRUNCATE',
	'UPDATE z_small SET v = 2 WHERE id = 1',
	'BEGIN; TRUNCATE z_small; INSERT INTO z_small VALUES (1, 3), (3, 3); COMMIT;',
	'UPDATE z_small SET v = 4 WHERE id = 3');
is($f1->safe_psql('postgres', q{SELECT string_agg(id || ':' || v, ' ' ORDER BY id) FROM z_small}),
	'1:3 3:4', 'the follower has the rows written after the TRUNCATE');

done_testing();
