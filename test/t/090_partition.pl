# Split-brain: the leader is cut off from the other nodes while it still
# runs (simulated partition: it stops contacting its followers, and nothing
# can log in to it), a follower is promoted; the old leader, isolated longer
# than repl_ext.fence_timeout, acknowledges no commit even in degrade mode;
# once the partition heals it is fenced at its first contact, the commit it
# held is released with a WARNING, and no follower ever applied anything
# from it after the new epoch began.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $p = new_node('p',
	'repl_ext.synchronous_mode' => 'degrade',
	'repl_ext.synchronous_timeout' => '1s',
	'repl_ext.synchronous_failover_timeout' => '1s',
	'repl_ext.fence_timeout' => '2s',
	'log_min_messages' => 'log');
my $q = new_node('q', 'log_min_messages' => 'log');
my $r = new_node('r', 'log_min_messages' => 'log');

# every node reaches p as role to_p: forbidding it cuts p off from the others
$p->safe_psql('postgres', q{
CREATE ROLE to_p LOGIN SUPERUSER;
CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
});
$p->safe_psql('postgres',
	"SELECT repl.init_leader('p', '" . connstr($p) . " user=to_p')");
$p->safe_psql('postgres', "SELECT repl.add_table('t')");
$p->safe_psql('postgres',
	"SELECT repl.add_follower('q', '" . connstr($q) . "', synchronous => true)");
$p->safe_psql('postgres', "SELECT repl.add_follower('r', '" . connstr($r) . "')");
$p->safe_psql('postgres', "INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g");
wait_catchup($p);
$r->poll_query_until('postgres',
	"SELECT string_agg(node_name, ',' ORDER BY node_name) FROM repl.nodes", 'p,q,r')
  or die 'r never learned the node list';

# the partition
$p->safe_psql('postgres', q{
SELECT repl.pause_follower('q'), repl.pause_follower('r');
ALTER ROLE to_p NOLOGIN;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'to_p';
});

# the majority side: q is promoted, r follows it
my $cand = $q->safe_psql('postgres',
	"SELECT string_agg(node_name || ':' || reachable, ' ' ORDER BY node_name) FROM repl.failover_candidates()");
is($cand, 'p:false q:true r:true', 'the old leader is unreachable from q');
is($q->safe_psql('postgres', 'SELECT repl.promote()'), '2', 'q promoted while p still runs');
$q->safe_psql('postgres', "INSERT INTO t SELECT g, 'epoch 2' FROM generate_series(101, 150) g");
$q->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'r'", 'streaming')
  or die 'r never streamed from q';
wait_catchup($q, 'r');

# the minority side: p still takes a write, but never acknowledges it
$p->poll_query_until('postgres',
	"SELECT bool_and(last_error IS NOT NULL OR state = 'paused') FROM repl.status")
  or die 'p status';
my $sess = $p->background_psql('postgres', on_error_stop => 0);
$sess->query_until(qr/started/, q{
\echo started
INSERT INTO t VALUES (9999, 'written on the cut-off leader');
\echo done
});
# well past synchronous_timeout (degrade) and fence_timeout
$p->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE 'INSERT INTO t VALUES (9999%' AND wait_event_type = 'Extension'
   AND now() - query_start > interval '4 s'})
  or die 'the commit on the cut-off leader did not keep waiting';
pass('an isolated leader does not acknowledge a commit, even in degrade mode');
is($r->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 9999'), '0',
	'the cut-off leader\'s commit is on no follower');

# the partition heals: p contacts its followers and learns of epoch 2
$p->safe_psql('postgres', q{
ALTER ROLE to_p LOGIN;
SELECT repl.resume_follower('q'), repl.resume_follower('r');
});
$p->poll_query_until('postgres', 'SELECT role FROM repl.node_info()', 'fenced')
  or die 'p was never fenced';
pass('the old leader is fenced once it reaches a node of the new epoch');
$sess->query_until(qr/done/, '');
like($sess->{stderr}, qr/this node was fenced by a leader of epoch 2/,
	'the waiting commit is released with a WARNING that it was not replicated');
$sess->quit;
my ($rc, $o, $err) = $p->psql('postgres', "INSERT INTO t VALUES (10000, 'no')");
like($err, qr/fenced former leader/, 'the old leader refuses writes');

# no follower applied anything of the old leader after the new epoch
$q->safe_psql('postgres', "INSERT INTO t VALUES (151, 'after the heal')");
wait_catchup($q, 'r');
compare_nodes($q, $r, 't', 'id');
is($q->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 9999'), '0',
	'the cut-off leader\'s commit never reached the new leader');

# rejoin reports it, and p ends identical
my $rejoin = $p->safe_psql('postgres',
	"SELECT mode || ' ' || lost_changes FROM repl.rejoin('" . connstr($q) . "')");
is($rejoin, 'resync 1', 'rejoin reports the one change only the old leader had');
$q->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'p'", 'streaming')
  or die 'p never streamed from q';
wait_catchup($q);
compare_nodes($q, $p, 't', 'id');

done_testing();
