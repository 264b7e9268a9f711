# Pause, resume and remove followers; an apply error stops a follower at
# that batch until it is fixed; the log is emptied once applied; a follower
# gone too long is marked for re-synchronisation.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader', 'repl_ext.log_rotate_interval' => '1s');
my $f1 = new_node('f1');
my $f2 = new_node('f2');
my $f3 = new_node('f3');

my $schema = 'CREATE TABLE t (id int PRIMARY KEY, v text);';
$_->safe_psql('postgres', $schema) for ($leader, $f1, $f2, $f3);
$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
for my $f ($f1, $f2, $f3)
{
	$leader->safe_psql('postgres',
		"SELECT repl.add_follower('" . $f->name . "', '" . connstr($f) . "')");
}

# pause: changes wait on the leader, wait_for_catchup times out
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
$leader->safe_psql('postgres', "INSERT INTO t SELECT g, 'paused ' || g FROM generate_series(1, 1000) g");
wait_catchup($leader, 'f2');
is($leader->safe_psql('postgres', "SELECT repl.wait_for_catchup('f1', '1 s')"), 'f',
	'wait_for_catchup gives up on a paused follower');
is(status_of($leader, 'f1', 'state'), 'paused', 'status shows paused');
is($f1->safe_psql('postgres', 'SELECT count(*) FROM t'), '0', 'paused follower got nothing');
ok(status_of($leader, 'f1', 'lag_changes') >= 1000, 'lag counts the waiting changes');
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1')");
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, 't', 'id');

# an apply error stops the follower at that batch; fixed, it resumes
$f2->safe_psql('postgres',
	"SET session_replication_role = replica; INSERT INTO t VALUES (5000, 'in the way')");
$leader->safe_psql('postgres', q{
INSERT INTO t VALUES (4999, 'before'), (5000, 'conflicts on f2'), (5001, 'after');
});
$leader->poll_query_until('postgres',
	q{SELECT last_error LIKE '%duplicate key%' FROM repl.status WHERE node_name = 'f2'})
  or die 'apply error not reported';
pass('apply error shown in repl.status');
is($f2->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id IN (4999, 5001)'), '0',
	'nothing of the failed batch was applied');
$f2->safe_psql('postgres', "SET session_replication_role = replica; DELETE FROM t WHERE id = 5000");
wait_catchup($leader, 'f2');
compare_nodes($leader, $f2, 't', 'id');

# remove_follower: gone from status, writable again, gets nothing more
$leader->safe_psql('postgres', "SELECT repl.remove_follower('f3')");
is($leader->safe_psql('postgres', q{SELECT count(*) FROM repl.status WHERE node_name = 'f3'}), '0',
	'removed follower gone from status');
is($f3->safe_psql('postgres', 'SELECT role FROM repl.node_info()'), 'none',
	'removed follower no longer a follower');
$leader->safe_psql('postgres', "INSERT INTO t VALUES (6000, 'after removal')");
wait_catchup($leader);
is($f3->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 6000'), '0',
	'removed follower gets no more changes');
$f3->safe_psql('postgres', "INSERT INTO t VALUES (-1, 'local write')");
pass('removed follower accepts writes');

# the log empties once every follower has applied it
$leader->safe_psql('postgres', "INSERT INTO t SELECT g, 'bulk' FROM generate_series(10000, 30000) g");
wait_catchup($leader);
$leader->poll_query_until('postgres', 'SELECT count(*) = 0 FROM repl.log')
  or die 'log never emptied';
pass('replication log truncated after every follower applied it');
compare_nodes($leader, $_, 't', 'id') for ($f1, $f2);

# retention: a follower away for longer than max_retention is given up
$leader->append_conf('postgresql.conf', "repl_ext.max_retention = '3s'");
$leader->reload;
$f2->stop('fast');
$leader->safe_psql('postgres', "INSERT INTO t VALUES (7000, 'while f2 is away')");
$leader->poll_query_until('postgres',
	q{SELECT state = 'needs_resync' FROM repl.status WHERE node_name = 'f2'})
  or die 'f2 never marked';
pass('follower behind longer than max_retention needs re-synchronisation');
$leader->safe_psql('postgres', "INSERT INTO t VALUES (7001, 'more')");
wait_catchup($leader, 'f1');
is(status_of($leader, 'f1', 'state'), 'streaming', 'the other follower is unaffected');
$leader->poll_query_until('postgres', 'SELECT count(*) = 0 FROM repl.log')
  or die 'log kept for a given-up follower';
pass('log no longer kept for the given-up follower');

$f2->start;
$_->stop for ($leader, $f1, $f2, $f3);
done_testing();
