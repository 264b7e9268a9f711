# Synchronous followers: a commit returns only once the synchronous follower
# has applied it; when that follower fails another one takes the role and
# waiting commits resume; the failed one comes back as asynchronous; strict
# mode blocks with no follower, degrade mode returns with a WARNING; a
# cancelled or terminated wait warns and the data stays committed locally;
# SET LOCAL repl_ext.synchronous_commit = off never waits.
use strict;
use warnings;
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $failover_ms = 2000;
# wal_writer_delay at its maximum: no background flush hides a commit
# that nobody flushed (section 1's crash check).  WAL senders allowed:
# section 3b uses PostgreSQL's own synchronous replication.
my $leader = new_node('leader',
	'repl_ext.synchronous_failover_timeout' => "${failover_ms}ms",
	'wal_writer_delay' => '10s',
	'wal_level' => 'replica',
	'max_wal_senders' => '2',
	'log_min_messages' => 'log');
my $f1 = new_node('f1');
my $f2 = new_node('f2');

$leader->safe_psql('postgres', q{
CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE load (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO load SELECT g FROM generate_series(1, 1000) g;
});
init_sync_cluster($leader, $f1, $f2, 't', 'load');


# the role is taken once the follower streams
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 never became synchronous';
pass('f1 holds the synchronous role once copied');

# A background writer: pgbench on table load, every commit synchronous.
sub start_pgbench
{
	my ($seconds) = @_;
	my $script = $leader->basedir . '/load.sql';
	unlink $script;
	PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 1000)
UPDATE load SET n = n + 1 WHERE id = :id;
});
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-h', $leader->host, '-p', $leader->port, '-c', '2',
		  '-T', $seconds, '-f', $script, 'postgres' ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub finish_pgbench
{
	my ($pb) = @_;
	$pb->{h}->finish;
	my ($tx) = ${ $pb->{out} } =~ /number of transactions actually processed: (\d+)/;
	return $tx // 0;
}

############################################################################
# 1. every commit that returned is already on the synchronous follower
############################################################################

# Odd ids commit with repl_ext.synchronous_flush_overlap = off (flush, then
# ship), even ids with the default (the flush overlaps the shipping).
my $pb = start_pgbench(8);
my $lsess = $leader->background_psql('postgres', on_error_stop => 1);
my $fsess = $f1->background_psql('postgres', on_error_stop => 1);
my $missing = 0;
my $n = 300;
for my $i (1 .. $n)
{
	$lsess->query_safe($i % 2
		? "BEGIN; SET LOCAL repl_ext.synchronous_flush_overlap = off; INSERT INTO t VALUES ($i, 'sync $i'); COMMIT;"
		: "INSERT INTO t VALUES ($i, 'sync $i')");
	my $c = $fsess->query_safe("SELECT count(*) FROM t WHERE id = $i");
	$missing++ if $c ne '1';
}
is($missing, 0, "all $n commits were on f1 when they returned");
my $tx = finish_pgbench($pb);
ok($tx > 0, "concurrent pgbench committed $tx transactions meanwhile");
# a sync commit also sees the concurrent load's rows on f1
is($fsess->query_safe("SELECT sum(n) FROM load"),
	$lsess->query_safe("SELECT sum(n) FROM load"),
	'pgbench updates on f1 match the leader');

# The leader crashes right after a commit returned: it is durable there
# too, although its commit skipped the flush (the wait took it).
$lsess->query_safe("INSERT INTO t VALUES (301, 'before the crash')");
$lsess->quit;
$leader->stop('immediate');
$leader->start;
is($leader->safe_psql('postgres', "SELECT count(*) FROM t WHERE id BETWEEN 1 AND 301"),
	'301', 'every acknowledged commit survived the leader crash');
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 did not take the role again after the restart';
$lsess = $leader->background_psql('postgres', on_error_stop => 1);

############################################################################
# 2. the synchronous follower dies under load: f2 takes over
############################################################################

$pb = start_pgbench(15);
my @acked;
my $max_stall = 0;
my $id = 1000;
my $took_over;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (time < $deadline)
{
	$id++;
	my $t0 = [Time::HiRes::gettimeofday];
	$lsess->query_safe("INSERT INTO t VALUES ($id, 'failover')");
	my $stall = Time::HiRes::tv_interval($t0);
	$max_stall = $stall if $stall > $max_stall;
	push @acked, $id;
	$f1->stop('immediate') if @acked == 50;
	if (@acked > 50 && !defined $took_over)
	{
		$took_over = $id
		  if $lsess->query_safe("SELECT sync_state FROM repl.status WHERE node_name = 'f2'") eq 'sync';
	}
	last if defined $took_over && $id >= $took_over + 50;
}
ok(defined $took_over, 'f2 became synchronous after f1 stopped');
diag(sprintf('longest commit stall with f1 gone: %.3f s (failover timeout %.1f s)',
	$max_stall, $failover_ms / 1000));
cmp_ok($max_stall, '<', $failover_ms / 1000 + 20,
	'commits resumed after the detection time, not at some later timeout');
# right away, without waiting for catch-up: every acknowledged commit is on f2
my $f2sess = $f2->background_psql('postgres', on_error_stop => 1);
my $list = join(',', @acked);
is($f2sess->query_safe("SELECT count(*) FROM t WHERE id IN ($list)"),
	scalar(@acked), scalar(@acked) . ' acknowledged commits are all on the new synchronous follower');
finish_pgbench($pb);
is($leader->safe_psql('postgres',
		"SELECT string_agg(node_name || ':' || synchronous, ' ' ORDER BY node_name) FROM repl.followers"),
	'f1:false f2:true', 'the move is recorded in repl.followers');
ok($leader->log_contains(qr/synchronous follower "f1" failed; follower "f2" is now synchronous/),
	'the move is logged');

############################################################################
# 3. f1 comes back as asynchronous; the DBA moves the role back
############################################################################

$f1->start;
wait_catchup($leader, 'f1');
$leader->poll_query_until('postgres',
	"SELECT state = 'streaming' FROM repl.status WHERE node_name = 'f1'")
  or die 'f1 does not stream again';
is(sync_states($leader), 'f1=async f2=sync', 'f1 rejoined as asynchronous');
compare_nodes($leader, $f1, 't', 'id');
is($leader->safe_psql('postgres', "SELECT repl.set_synchronous('f1')"), 't',
	'set_synchronous moves the role back');
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'the role did not move back to f1';
$lsess->query_safe("INSERT INTO t VALUES (5001, 'back on f1')");
$fsess->quit;
$fsess = $f1->background_psql('postgres', on_error_stop => 1);
is($fsess->query_safe("SELECT v FROM t WHERE id = 5001"), 'back on f1',
	'a commit is on f1 when it returns');

############################################################################
# 3b. PostgreSQL's own synchronous replication still waits
############################################################################

# With synchronous_standby_names set, a commit keeps its flush (and so its
# wait in SyncRepWaitForLSN) instead of overlapping it with the shipping.
# No standby of that name exists: the commit waits there until cancelled,
# then waits for f1 as usual.
$leader->safe_psql('postgres', "ALTER SYSTEM SET synchronous_standby_names = 'no_such_standby'");
$leader->reload;
$leader->poll_query_until('postgres',
	"SELECT current_setting('synchronous_standby_names') = 'no_such_standby'")
  or die 'reload not seen';
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d',
		  $leader->connstr('postgres') . ' application_name=syncrep', '-c',
		  "INSERT INTO t VALUES (5002, 'built-in wait')" ],
		'>', \$out, '2>', \$err);
	ok($leader->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'syncrep' AND wait_event = 'SyncRep'"),
		'a commit waits for the built-in synchronous standby as well');
	$leader->safe_psql('postgres',
		"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'syncrep'");
	$h->finish;
	like($err, qr/canceling wait for synchronous replication due to user request/,
		'cancelled with the built-in WARNING');
	like($out, qr/INSERT 0 1/, 'then it returned');
	is($fsess->query_safe("SELECT v FROM t WHERE id = 5002"), 'built-in wait',
		'and it was on f1 when it returned');
}
$leader->safe_psql('postgres', 'ALTER SYSTEM RESET synchronous_standby_names');
$leader->reload;
$leader->poll_query_until('postgres',
	"SELECT current_setting('synchronous_standby_names') = ''")
  or die 'reload not seen';

############################################################################
# 4. strict mode with every follower down
############################################################################

# A psql that commits in the background; its output is collected at the end.
sub start_commit
{
	my ($appname, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d',
		  $leader->connstr('postgres') . " application_name=$appname", '-c', $sql ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err, name => $appname };
}

sub waiting_pid
{
	my ($appname) = @_;
	$leader->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$appname'"
		  . " AND wait_event_type = 'Extension'")
	  or die "$appname never waited";
	return $leader->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$appname'");
}

$f1->stop('immediate');
$f2->stop('immediate');
my $log_offset = -s $leader->logfile;
my $blocked = start_commit('blocked', "INSERT INTO t VALUES (6001, 'blocked')");
waiting_pid('blocked');

# does not wait: SET LOCAL repl_ext.synchronous_commit = off
my $timed_out = 0;
my ($ret, $stdout, $stderr) = $leader->psql('postgres',
	"BEGIN; SET LOCAL repl_ext.synchronous_commit = off; INSERT INTO t VALUES (6002, 'no wait'); COMMIT;",
	timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0, 'a commit with SET LOCAL repl_ext.synchronous_commit = off does not wait');
# nor do commits that touch no replicated table
($ret, $stdout, $stderr) = $leader->psql('postgres',
	"CREATE TABLE IF NOT EXISTS local_only (x int); INSERT INTO local_only VALUES (1);",
	timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0, 'a commit that touches no replicated table does not wait');

# cancel: WARNING, committed locally
my $cancelled = start_commit('cancelled', "INSERT INTO t VALUES (6003, 'cancelled')");
my $pid = waiting_pid('cancelled');
$leader->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$cancelled->{h}->finish;
like(${ $cancelled->{err} },
	qr/WARNING:  canceling wait for synchronous follower "f1" due to user request\nDETAIL:  The transaction has already committed locally, but might not have been replicated to the synchronous follower\./,
	'a cancelled wait ends with the WARNING');
like(${ $cancelled->{out} }, qr/INSERT 0 1/, 'the cancelled commit reports success');

# terminate: WARNING, the client gets no confirmation, committed locally
my $terminated = start_commit('terminated', "INSERT INTO t VALUES (6004, 'terminated')");
$pid = waiting_pid('terminated');
$leader->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$terminated->{h}->finish;
like(${ $terminated->{err} },
	qr/WARNING:  canceling the wait for synchronous follower "f1" and terminating connection due to administrator command/,
	'a terminated wait ends with the WARNING');
unlike(${ $terminated->{out} }, qr/INSERT 0 1/, 'the terminated session does not confirm the commit');
is($leader->safe_psql('postgres', "SELECT string_agg(id::text, ',' ORDER BY id) FROM t WHERE id BETWEEN 6001 AND 6004"),
	'6001,6002,6003,6004', 'every one of these transactions is committed on the leader');

# past the detection time with no follower to take over: still blocked
$leader->wait_for_log(qr/synchronous follower "f1" does not confirm commits and no other follower is streaming/,
	$log_offset);
is($leader->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'blocked' AND wait_event_type = 'Extension'"),
	'1', 'strict mode: the commit still waits after the detection time');
is($leader->safe_psql('postgres', "SELECT waiting_commits FROM repl.status WHERE node_name = 'f1'"),
	'1', 'repl.status counts the waiting commit');
ok($leader->safe_psql('postgres', "SELECT longest_wait_seconds > 0 FROM repl.status WHERE node_name = 'f1'") eq 't',
	'repl.status shows how long it waits');

# a follower returns: it takes the role and the commit completes
$f2->start;
$blocked->{h}->finish;
like(${ $blocked->{out} }, qr/INSERT 0 1/, 'the blocked commit completed once f2 returned');
is(${ $blocked->{err} }, '', 'without a warning');
$f2sess->quit;
$f2sess = $f2->background_psql('postgres', on_error_stop => 1);
is($f2sess->query_safe("SELECT v FROM t WHERE id = 6001"), 'blocked',
	'the blocked commit is on f2, now synchronous');
is(sync_states($leader), 'f1=async f2=sync', 'f2 holds the role');

############################################################################
# 5. degrade mode: commits stop waiting after the timeout, with a WARNING
############################################################################

$leader->append_conf('postgresql.conf',
	"repl_ext.synchronous_mode = 'degrade'\nrepl_ext.synchronous_timeout = '1s'\n");
$leader->reload;
$leader->poll_query_until('postgres', "SELECT current_setting('repl_ext.synchronous_mode') = 'degrade'")
  or die 'reload not seen';
$f2->stop('immediate');
($ret, $stdout, $stderr) = $leader->psql('postgres', "INSERT INTO t VALUES (7001, 'degraded')",
	timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0, 'degrade mode: the commit returned');
like($stderr,
	qr/WARNING:  synchronous follower "f2" did not confirm the commit within repl_ext.synchronous_timeout \(1000 ms\)/,
	'with the WARNING');
is(sync_states($leader), 'f1=async f2=degraded', 'repl.status shows the degraded state');
($ret, $stdout, $stderr) = $leader->psql('postgres', "INSERT INTO t VALUES (7002, 'degraded, no wait')",
	timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $ret == 0 && $stderr eq '', 'later commits do not wait while degraded');

# f1 returns first: streaming, it takes the role; commits wait again
$f1->start;
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 did not take the role back';
$lsess->query_safe("INSERT INTO t VALUES (7003, 'sync again')");
$fsess->quit;
$fsess = $f1->background_psql('postgres', on_error_stop => 1);
is($fsess->query_safe("SELECT string_agg(id::text, ',' ORDER BY id) FROM t WHERE id > 7000"),
	'7001,7002,7003', 'after degradation f1 has every commit, the last one when it returned');

$f2->start;
wait_catchup($leader);
compare_nodes($leader, $_, 't', 'id') for ($f1, $f2);
compare_nodes($leader, $_, 'load', 'id') for ($f1, $f2);

$lsess->quit;
$fsess->quit;
$f2sess->quit;
done_testing();
