# Bug found by the chaos test (seeds 7, 4242, 777: acknowledged commits on
# no follower right after COMMIT returned): in strict mode,
# repl.resync_follower on the synchronous follower makes it "pending", and a
# commit already waiting for it returns success, without a WARNING, though
# no follower has applied it (the README: "no commit is acknowledged to a
# client unless the synchronous follower has applied it").  Here both
# followers are paused so that the commit waits.  Fails until fixed.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/chaos/repro/resync_sync_follower.pl
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader', 'repl_ext.synchronous_mode' => 'strict',
	'repl_ext.synchronous_failover_timeout' => '1s');
my $f1 = new_node('f1');
my $f2 = new_node('f2');
$leader->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('f1', '" . connstr($f1) . "', synchronous => true)");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
wait_catchup($leader);
$leader->poll_query_until('postgres',
	"SELECT sync_state FROM repl.status WHERE node_name = 'f1'", 'sync')
  or die 'f1 never became synchronous';

$leader->safe_psql('postgres', "SELECT repl.pause_follower('f2'), repl.pause_follower('f1')");
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $leader->connstr('postgres') . ' application_name=waiter',
	  '-c', 'INSERT INTO t VALUES (1)' ],
	'>', \$out, '2>', \$err);
$leader->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE application_name = 'waiter' AND wait_event_type = 'Extension'})
  or die 'the commit does not wait';
$leader->safe_psql('postgres', "SELECT repl.resync_follower('f1')");
$h->finish;
my $on_followers = $f1->safe_psql('postgres', 'SELECT count(*) FROM t')
  + $f2->safe_psql('postgres', 'SELECT count(*) FROM t');
ok($on_followers > 0 || $err =~ /WARNING/,
	'a commit that returns was applied by a follower, or the client is warned')
  or diag("client got '$out', stderr '$err'; rows on the followers: $on_followers");
done_testing();
