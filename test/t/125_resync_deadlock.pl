# Found by the chaos test (seed 777, and the "silent" supervisor exit of
# seed 7): repl.resync_follower locks its row of repl.followers (FOR UPDATE),
# calls the follower, then UPDATEs the row (RowExclusiveLock on the table);
# the supervisor moving the synchronous role takes LOCK TABLE repl.followers
# IN SHARE ROW EXCLUSIVE MODE, then UPDATEs the same row.  They deadlock;
# the supervisor is the victim, exits with code 1, and comes back 5 s later
# with a second set of senders (dup_senders.pl).  Here: the synchronous
# follower hangs (its proxy stalls) while resync_follower waits for it; a
# commit waits, the supervisor moves the role and blocks on the row lock;
# the proxy resumes.  Regression test: resync_follower takes the table lock
# first, as the supervisor does.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/125_resync_deadlock.pl
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../chaos";
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;
use ReplExtProxy;

my %conf = ('listen_addresses' => '127.0.0.1', 'repl_ext.network_timeout' => '3s');
my $leader = new_node('leader', %conf, 'repl_ext.synchronous_failover_timeout' => '1s');
my $f1 = new_node('f1', %conf);
my $f2 = new_node('f2', %conf);
my $proxy = ReplExtProxy->start(name => 'f1', target_port => $f1->port);
$leader->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('f1', 'host=127.0.0.1 port=" . $proxy->port
	  . " dbname=postgres', synchronous => true)");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
wait_catchup($leader);
$leader->poll_query_until('postgres',
	"SELECT sync_state FROM repl.status WHERE node_name = 'f1'", 'sync')
  or die 'f1 never became synchronous';
my $sup = $leader->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'repl_ext supervisor'");

$proxy->stall;
my ($o1, $e1, $o2, $e2) = ('', '', '', '');
my $resync = IPC::Run::start(
	[ 'psql', '-X', '-d', $leader->connstr('postgres'), '-c', "SELECT repl.resync_follower('f1')" ],
	'>', \$o1, '2>', \$e1);
$leader->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE 'SELECT repl.resync_follower%' AND wait_event_type = 'Extension'})
  or die 'resync_follower does not wait for f1';
my $commit = IPC::Run::start(
	[ 'psql', '-X', '-d', $leader->connstr('postgres'), '-c', 'INSERT INTO t VALUES (1)' ],
	'>', \$o2, '2>', \$e2);
$leader->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'repl_ext supervisor' AND wait_event_type = 'Lock'})
  or die 'the supervisor does not wait for the row lock';
pass('the supervisor moving the role waits for the row resync_follower locked');
$proxy->pass;
$resync->finish;
$commit->finish;
is($leader->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'repl_ext supervisor'"),
	$sup, 'the supervisor was not ended by a deadlock');
ok(!$leader->log_contains(qr/ERROR:  deadlock detected/), 'no deadlock in the leader log');
$proxy->stop;
done_testing();
