# The synchronous role while the synchronous follower is copied again, and
# while the DBA turns the role off.  Found by the chaos test (seeds 7, 4242,
# 777): in strict mode, repl.resync_follower on the synchronous follower made
# it "pending", and a commit already waiting for it returned success without
# a WARNING, though no follower had applied it.
#
# Now: the follower keeps the role while it is copied again; the role moves
# at once to a streaming follower if there is one, and the waiting commit
# returns when that follower has applied it; with none streaming, commits
# keep waiting (strict).  A commit released because the DBA turned the role
# off gets a WARNING.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/075_sync_resync.pl
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
init_sync_cluster($leader, $f1, $f2, 't');

wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 never became synchronous';

# a commit in the background, and whether it waits for a follower
sub start_commit
{
	my ($sql) = @_;
	my $c = { out => '', err => '' };
	$c->{h} = IPC::Run::start(
		[ 'psql', '-X', '-d', $leader->connstr('postgres') . ' application_name=waiter',
		  '-c', $sql ],
		'>', \$c->{out}, '2>', \$c->{err});
	$leader->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE application_name = 'waiter' AND wait_event_type = 'Extension'})
	  or die "the commit does not wait: $c->{err}";
	return $c;
}

sub still_waiting
{
	return $leader->safe_psql('postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE application_name = 'waiter' AND wait_event_type = 'Extension'});
}

############################################################################
# 1. resync of the synchronous follower, no other follower streaming
############################################################################
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f2'), repl.pause_follower('f1')");
my $c = start_commit('INSERT INTO t VALUES (1)');
$leader->safe_psql('postgres', "SELECT repl.resync_follower('f1')");

# f1 is copied again (resync resumes it); the copy holds row 1, so the
# commit returns once f1 has caught up, without a WARNING
$c->{h}->finish;
is($f1->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 1'), '1',
	'strict, nobody else streaming: the waiting commit returned only once the resynced follower had it');
unlike($c->{err}, qr/WARNING/, 'and without a WARNING');
is($f2->safe_psql('postgres', 'SELECT count(*) FROM t'), '0', '(f2 was paused all along)');
wait_sync_states($leader, 'f1=sync f2=async')
  or diag('states: ' . sync_states($leader));
is(sync_states($leader), 'f1=sync f2=async', 'f1 kept the synchronous role through its copy');

############################################################################
# 2. the same, but f1's copy cannot finish (a session on f1 holds a lock
#    on t): the commit keeps waiting in strict mode until f2 streams, which
#    takes the role at once
############################################################################
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
$leader->poll_query_until('postgres',
	"SELECT state FROM repl.status WHERE node_name = 'f1'", 'paused')
  or die 'f1 is not paused';
$c = start_commit('INSERT INTO t VALUES (2)');
# (the copy's transaction on f1 detaches it first, and waits for the lock)
my $locker = $f1->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
$leader->safe_psql('postgres', "SELECT repl.resync_follower('f1')");
$f1->poll_query_until('postgres', 'SELECT count(*) > 0 FROM pg_locks WHERE NOT granted')
  or die 'the copy to f1 does not wait for the lock: '
  . $leader->safe_psql('postgres', 'SELECT * FROM repl.status');
# longer than the failover timeout, and than several supervisor passes
$leader->safe_psql('postgres', 'SELECT pg_sleep(2)');
is(still_waiting(), '1', 'strict: the commit still waits while the synchronous follower cannot be copied');
is($f2->safe_psql('postgres', 'SELECT count(*) FROM t'), '0', '(and no follower has it)');

$leader->safe_psql('postgres', "SELECT repl.resume_follower('f2')");
$c->{h}->finish;
is($f2->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 2'), '1',
	'once f2 streams, the waiting commit returns, and f2 has it');
unlike($c->{err}, qr/WARNING/, 'without a WARNING');
like(sync_states($leader), qr/^f1=async f2=sync$/, 'the role moved to f2; f1 is asynchronous');
my $log = slurp_file($leader->logfile);
like($log, qr/synchronous follower "f1" failed; follower "f2" is now synchronous\n.*DETAIL:  "f1" is being copied again/,
	'the move is logged with the reason');
$locker->query_safe('COMMIT');
$locker->quit;

############################################################################
# 3. resync of the synchronous follower while another one streams: the
#    role moves at once
############################################################################
wait_catchup($leader);
is($leader->safe_psql('postgres', "SELECT repl.set_synchronous('f1')"), 't', 'role back to f1');
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 never took the role back: ' . sync_states($leader);
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
$c = start_commit('INSERT INTO t VALUES (3)');
$leader->safe_psql('postgres', "SELECT repl.resync_follower('f1')");
$c->{h}->finish;
my $on = $f1->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 3')
  + $f2->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 3');
ok($on >= 1, 'the waiting commit returned once a follower had it');
unlike($c->{err}, qr/WARNING/, 'without a WARNING');
wait_sync_states($leader, 'f1=async f2=sync')
  or diag('states: ' . sync_states($leader));
is(sync_states($leader), 'f1=async f2=sync', 'the role moved to the streaming follower');

############################################################################
# 4. the DBA turns synchronous replication off while a commit waits
############################################################################
wait_catchup($leader);
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1'), repl.pause_follower('f2')");
$c = start_commit('INSERT INTO t VALUES (4)');
$leader->safe_psql('postgres', "SELECT repl.set_synchronous('f2', false)");
$c->{h}->finish;
like($c->{err}, qr/WARNING:  not waiting for synchronous follower "f2" any more: no follower is synchronous now/,
	'a commit released because the role was turned off gets a WARNING');
like($c->{err}, qr/DETAIL:  The transaction has already committed locally/, 'with the usual DETAIL');
is($leader->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 4'), '1', 'and is committed locally');

$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1'), repl.resume_follower('f2')");
wait_catchup($leader);
compare_nodes($leader, $f1, 't', 'id');
compare_nodes($leader, $f2, 't', 'id');

############################################################################
# 5. a follower waiting for its new copy keeps refusing writes: it used to
#    be detached by resync_follower at once, took writes, and the copy then
#    wiped them out without a word
############################################################################
# the copy cannot start while the leader cannot cut its tick
my $ticklock = $leader->background_psql('postgres');
$ticklock->query_safe('BEGIN; LOCK TABLE repl.tick IN SHARE MODE');
$leader->safe_psql('postgres', "SELECT repl.resync_follower('f2')");
$leader->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'tick' AND NOT l.granted")
  or die 'the copy to f2 does not wait for the tick';
is($f2->safe_psql('postgres', 'SELECT role, leader_name FROM repl.node_info()'), 'follower|leader',
	'resync_follower leaves the follower its role until the copy');
my ($rc, $out, $err) = $f2->psql('postgres', 'INSERT INTO t VALUES (5000)');
like($err, qr/cannot modify replicated table "t" on a follower/, 'a write on it is refused meanwhile');
$ticklock->query_safe('COMMIT');
$ticklock->quit;
$leader->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'f2'", 'streaming')
  or die 'f2 was never copied again';
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (5)');
wait_catchup($leader);
compare_nodes($leader, $f2, 't', 'id');
like(slurp_file($f2->logfile), qr/node no longer follows leader "leader"(?s:.*)node "f2" now follows leader "leader"/,
	'the copy detached and attached it again');
done_testing();
