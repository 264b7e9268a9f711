# A synchronous commit cuts its own tick: at PRE_COMMIT, while no other
# commit waits, the transaction inserts a tick whose snapshot sees it, so
# one commit record holds both and the senders ship it at once, with no
# tick from the supervisor in between (changelog.c, repl_cut_own_tick).
#
#  1. A lone synchronous commit's tick is its own (the tick row's xmin is
#     the transaction's id), sees it, and the row is on f1 when COMMIT
#     returns.  SET LOCAL synchronous_commit = off commits also cut one.
#  2. No own tick with repl_ext.synchronous_flush_overlap = off (the commit
#     flushes, which must not happen under the tick lock), for SERIALIZABLE
#     transactions, with repl_ext.synchronous_commit = off (no wait), or
#     while another commit waits (the supervisor's tick serves both).
#  3. Transaction ids in flight between the snapshot's xmax and our own:
#     an open writer X got its id before T, and T commits.  T's tick must
#     see T and not X, though X's id lies below T's (the snapshot's xmax
#     moves past T, X goes into xip).  X commits later and reaches the
#     followers exactly once.  Retried until the snapshot's xmax was at or
#     below X (other commits in between can move it past X).  Every tick
#     kept meanwhile counts exactly the changes repl.batch_changes gives.
#  4. NOTIFY: four clients commit synchronous writes with NOTIFY for a
#     bounded time.  A commit cutting its own tick may wait for the NOTIFY
#     lock while it holds the tick lock; a waiting commit therefore gives
#     up that lock once committed (syncwait.c, release_notify_lock), or a
#     waiter that needs the supervisor's tick would hold it while the
#     supervisor waits for the tick lock.  All complete, a listener gets
#     every notification, and both followers match the leader.
#
#  5. Log truncation beside tick cutters.  A log table is locked: a commit
#     does not wait for it holding the tick lock, it leaves its tick to the
#     supervisor.  A session holds a lock the cleanup after a truncation
#     needs: the supervisor still truncates a drained log table, and the
#     session can then read that table (the truncation commits before the
#     supervisor waits; it used to keep the table locked while waiting,
#     which deadlocked with a commit cutting its own tick).
#  6. The tick lock is an object lock, not a lock on repl.tick: deleting
#     old ticks or VACUUM's lock on the table keeps no tick from being cut.
#  7. A follower's supervisor forgets the ticks every follower has, and
#     keeps those another follower lacks; the leader's forgets its ticks.
#  8. On a leader alone, repl.tick refilled with tick 1 (as a promotion
#     refills it): the next tick is 2 (the newest tick published in shared
#     memory is only where the lookup starts).
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/072_own_tick.pl
use strict;
use warnings;
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

# no role move while section 2 holds f1's apply
my $leader = new_node('leader', 'repl_ext.synchronous_failover_timeout' => '10min');
my $f1 = new_node('f1');
my $f2 = new_node('f2');

$leader->safe_psql('postgres', q{
CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE n (id bigserial PRIMARY KEY, client int NOT NULL);
});
init_sync_cluster($leader, $f1, $f2, 't', 'n');
wait_sync_states($leader, 'f1=sync f2=async')
  or die 'f1 never became synchronous';

# Commit one row in a transaction of its own after @pre; returns the
# transaction's id.
sub commit_row
{
	my ($id, @pre) = @_;
	my $sql = join('', map { "$_;\n" } 'BEGIN', @pre)
	  . "INSERT INTO t VALUES ($id, 'r$id');\n"
	  . "SELECT pg_current_xact_id();\nCOMMIT;\n";
	return $leader->safe_psql('postgres', $sql);
}

# The tick whose row the transaction xid wrote: "id|sees xid" or ''.
sub own_tick_of
{
	my ($xid) = @_;
	return $leader->safe_psql('postgres', qq{
SELECT tick_id || '|' || pg_catalog.pg_visible_in_snapshot('$xid'::xid8, snap)::int
  FROM repl.tick WHERE xmin OPERATOR(pg_catalog.=) '$xid'::xid8::xid});
}

# Who holds the tick lock in pg_locks: an object lock named after repl.tick.
my $tick_lock = q{l.locktype = 'object' AND l.classid = 'pg_class'::regclass
   AND l.objid = 'repl.tick'::regclass AND l.mode = 'ExclusiveLock' AND l.granted};

# 1. own ticks
my $id = 0;
my ($ok_own, $ok_on_f1) = (0, 0);
for my $i (1 .. 20)
{
	$id++;
	my $xid = commit_row($id);
	my $on_f1 = $f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id");
	$ok_on_f1++ if $on_f1 eq '1';
	$ok_own++ if own_tick_of($xid) =~ /^\d+\|1$/;
}
is($ok_on_f1, 20, 'every commit is on f1 when COMMIT returns');
# an own tick needs the tick lock free; the supervisor may hold it now and then
cmp_ok($ok_own, '>=', 15, "a lone synchronous commit cuts its own tick, which sees it ($ok_own of 20)");

$id++;
my $xid = commit_row($id, 'SET LOCAL synchronous_commit = off');
like(own_tick_of($xid), qr/^\d+\|1$/,
	'a commit with synchronous_commit = off that waits cuts its own tick too');

# 2. no own tick
$id++;
$xid = commit_row($id, 'SET LOCAL repl_ext.synchronous_flush_overlap = off');
is(own_tick_of($xid), '', 'no own tick with repl_ext.synchronous_flush_overlap = off');
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1',
	'... and the commit still waited for f1');

$id++;
$xid = commit_row($id, 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
is(own_tick_of($xid), '', 'no own tick for a SERIALIZABLE transaction');
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1',
	'... and the commit still waited for f1');

$id++;
$xid = commit_row($id, 'SET LOCAL repl_ext.synchronous_commit = off');
is(own_tick_of($xid), '', 'no own tick for a commit that does not wait');

# Another commit waits: f1's apply is held by a lock there, a first commit
# waits (own tick), the second sees it waiting and leaves its tick to the
# supervisor.
my $f1_lock = $f1->background_psql('postgres', on_error_stop => 1);
$f1_lock->query_safe('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
my $waiter = $leader->background_psql('postgres', on_error_stop => 0);
$id++;
my $first = $id;
$waiter->query_until(qr/started/, "\\echo started\nINSERT INTO t VALUES ($first, 'w');\n");
ok($leader->poll_query_until('postgres',
	"SELECT waiting_commits = 1 FROM repl.status WHERE node_name = 'f1'"),
	'a commit waits for f1');
$id++;
my ($second_out, $second_err) = ('', '');
my $second_h = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-q', '-d', $leader->connstr('postgres'), '-c',
	  "BEGIN; INSERT INTO t VALUES ($id, 'w'); SELECT pg_current_xact_id(); COMMIT;" ],
	'>', \$second_out, '2>', \$second_err);
ok($leader->poll_query_until('postgres',
	"SELECT waiting_commits = 2 FROM repl.status WHERE node_name = 'f1'"),
	'a second commit waits');
$f1_lock->query_safe('COMMIT');
$f1_lock->quit;
$second_h->finish;
$waiter->quit;
chomp $second_out;
like($second_out, qr/^\d+$/, 'the second commit returned');
is(own_tick_of($second_out), '', 'no own tick for a commit made while another waits');
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id IN ($first, $id)"), '2',
	'both waiting commits are on f1');

# 3. ids in flight below our own (f2 paused: the ticks are kept for the
#    count check below)
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f2')");
my $first_kept = $leader->safe_psql('postgres', 'SELECT max(tick_id) FROM repl.tick');
my $since = $leader->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
my $gap_seen = 0;
for my $try (1 .. 30)
{
	my $x = $leader->background_psql('postgres', on_error_stop => 1);
	$id++;
	my $xid_x = $x->query_safe("BEGIN; INSERT INTO t VALUES ($id, 'x'); SELECT pg_current_xact_id();");
	chomp $xid_x;
	$id++;
	my $xid_t = commit_row($id);
	my $r = $leader->safe_psql('postgres', qq{
SELECT pg_catalog.pg_visible_in_snapshot('$xid_t'::xid8, snap)::int
       || '|' || pg_catalog.pg_visible_in_snapshot('$xid_x'::xid8, snap)::int
       || '|' || (pg_catalog.pg_snapshot_xmax(snap)::text::bigint OPERATOR(pg_catalog.=) $xid_t + 1)::int
       || '|' || ('$xid_x'::xid8 OPERATOR(pg_catalog.=) ANY (SELECT pg_catalog.pg_snapshot_xip(snap)))::int
  FROM repl.tick WHERE xmin OPERATOR(pg_catalog.=) '$xid_t'::xid8::xid});
	$x->query_safe('COMMIT');
	$x->quit;
	next if $r eq '';		# the tick lock was busy: no own tick this time
	my ($sees_t, $sees_x, $xmax_moved, $x_in_xip) = split /\|/, $r;
	is("$sees_t|$sees_x", '1|0', "try $try: T's own tick sees T, not the open X below it");
	if ($xmax_moved eq '1')
	{
		is($x_in_xip, '1', "try $try: the snapshot's xmax moved past T and X went into xip");
		$gap_seen = 1;
		last;
	}
}
ok($gap_seen, 'an own tick had to move xmax past ids still in flight');
# a count too low would let the sender skip a tick that has changes
my $counts = $leader->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE t.xmin IN (SELECT xmin FROM repl.log)) || ' '
       || count(*) FILTER (WHERE t.n_changes <> (SELECT count(*) FROM repl.batch_changes(p.snap, t.snap)))
  FROM repl.tick t JOIN repl.tick p ON p.tick_id = t.tick_id - 1
 WHERE t.tick_id > $first_kept});
my ($nown, $wrong) = split ' ', $counts;
cmp_ok($nown, '>=', 2, "own ticks kept while f2 is paused: $nown");
is($wrong, '0', "every kept tick counts exactly the changes of its batch");
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f2')");
is(catchup_or_error($leader, 'f1', $since) . catchup_or_error($leader, 'f2', $since), '',
	'both followers catch up (no change applied twice)');
compare_nodes($leader, $f1, 't', 'id');
compare_nodes($leader, $f2, 't', 'id');

# 4. NOTIFY from synchronous commits, four clients at once
$since = $leader->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
my $listener = $leader->background_psql('postgres', on_error_stop => 1);
$listener->query_safe('LISTEN repl_ext_test');
my $script = $leader->basedir . '/notify.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
BEGIN;
INSERT INTO n (client) VALUES (:client_id);
NOTIFY repl_ext_test;
COMMIT;
});
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-h', $leader->host, '-p', $leader->port, '-c', '4',
	  '-t', '300', '-f', $script, 'postgres' ],
	'>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
my $finished = eval { $pgbench->finish; 1 };
if (!$finished)
{
	$pgbench->kill_kill;
	diag($leader->safe_psql('postgres',
		"SELECT pid, wait_event_type, wait_event, state, left(query, 60) FROM pg_stat_activity WHERE datname = 'postgres'"));
}
ok($finished && $pgbench->result == 0, '1,200 synchronous commits with NOTIFY from four clients all complete')
  or diag("pgbench: $out $err");
is($leader->safe_psql('postgres', 'SELECT count(*) FROM n'), '1200', 'all 1,200 rows committed');
is($f1->safe_psql('postgres', 'SELECT count(*) FROM n'), '1200', 'all 1,200 rows on the synchronous f1');
# psql prints the notifications it received after its next command
my $heard = $listener->query_safe('SELECT 1');
my $notified = () = $heard =~ /Asynchronous notification "repl_ext_test"/g;
$listener->quit;
is($notified, 1200, 'the listener got every notification');
is(catchup_or_error($leader, 'f2', $since), '', 'f2 catches up');
compare_nodes($leader, $f1, 'n', 'id');
compare_nodes($leader, $f2, 'n', 'id');

# 5. log truncation beside tick cutters, which hold the tick lock while
#    they count the log tables (a commit's own tick, the copy's tick)
$since = $leader->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
my $log_start = -s $leader->logfile;
my $cur = $leader->safe_psql('postgres', "SELECT log_no FROM repl.log_state WHERE state = 'current'");
my $other = ($cur + 1) % 3;

# a. A log table locked (as the supervisor's truncation does): a commit
#    leaves its tick to the supervisor rather than wait for that lock while
#    it holds the tick lock.
# (a session's first write loads the log catalog, which waits for that
# lock, before any tick lock is held: this one has written already)
my $c = $leader->background_psql('postgres', on_error_stop => 1);
$id++;
$c->query_safe("INSERT INTO t VALUES ($id, 'warm')");
my $z = $leader->background_psql('postgres', on_error_stop => 1);
$z->query_safe("BEGIN; LOCK TABLE repl.log_$other IN ACCESS EXCLUSIVE MODE");
$id++;
$c->query_until(qr/started/, "\\echo started\nINSERT INTO t VALUES ($id, 'l');\n");
ok($leader->poll_query_until('postgres',
	"SELECT waiting_commits = 1 FROM repl.status WHERE node_name = 'f1'"),
	'the commit goes through and waits for f1');
ok($leader->poll_query_until('postgres', qq{
SELECT count(*) = 1
  FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE $tick_lock
   AND a.backend_type = 'repl_ext supervisor'
   AND a.pid IN (SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'repl.log_$other'::regclass)}),
	'the supervisor cuts its tick, waiting for the locked log table');
is($leader->safe_psql('postgres', qq{
SELECT count(*)
  FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE $tick_lock
   AND a.backend_type = 'client backend'}),
	'0', 'no client holds the tick lock');
$z->query_safe('COMMIT');
$z->quit;
$c->query_safe('SELECT 1');
$c->quit;
is(own_tick_of($leader->safe_psql('postgres', "SELECT xmin FROM t WHERE id = $id")), '',
	'the commit returned once the log table was free, without a tick of its own');
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1', '... and is on f1');

# b. The supervisor waits for no lock while it holds a log table it
#    truncated: X blocks the cleanup that follows the truncation (a SHARE
#    lock on repl.retained; the commit holding the tick lock in the
#    deadlock this replays), then reads the truncated table.  A reader Y
#    keeps the table from being truncated until X is in place (truncation
#    never waits for a reader).
$leader->safe_psql('postgres', 'ALTER SYSTEM SET repl_ext.log_rotate_interval = 1');
$leader->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $y = $leader->background_psql('postgres', on_error_stop => 1);
$y->query_safe("BEGIN; SELECT count(*) FROM repl.log_$cur");
my $state = '';
for (1 .. 100)
{
	$id++;
	commit_row($id);
	$state = $leader->safe_psql('postgres', "SELECT state FROM repl.log_state WHERE log_no = $cur");
	last if $state eq 'draining';
	Time::HiRes::sleep(0.2);
}
is($state, 'draining', "repl.log_$cur rotated out");
# what truncate_drained asks: every follower is past the table
my $drained = 0;
for (1 .. 150)
{
	$id++;
	commit_row($id);
	last if $drained = $leader->safe_psql('postgres', qq{
SELECT m.xmin >= s.switch_xmax
  FROM repl.log_state s,
       (SELECT pg_snapshot_xmin(t.snap) AS xmin FROM repl.tick t
         WHERE t.tick_id = (SELECT min(applied_tick) FROM repl.followers)) m
 WHERE s.log_no = $cur AND s.switch_xmax IS NOT NULL}) eq 't';
	Time::HiRes::sleep(0.2);
}
ok($drained, 'every follower is past the drained table');
# two maintenance rounds (one a second)
sleep 2;
is($leader->safe_psql('postgres', "SELECT state FROM repl.log_state WHERE log_no = $cur"),
	'draining', '... which is kept while a reader has it open');
my $x = $leader->background_psql('postgres', on_error_stop => 0);
$x->query_safe('BEGIN; LOCK TABLE repl.retained IN SHARE MODE');
$y->query_safe('COMMIT');
$y->quit;
my $emptied = 0;
for (1 .. 150)
{
	last if $emptied = $leader->safe_psql('postgres',
		"SELECT state = 'empty' FROM repl.log_state WHERE log_no = $cur") eq 't';
	Time::HiRes::sleep(0.2);
}
ok($emptied, 'the drained table is truncated while the cleanup after it waits');
ok($leader->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE NOT l.granted AND l.relation = 'repl.retained'::regclass
   AND a.backend_type = 'repl_ext supervisor'}),
	'... (the supervisor waits for X)');
is($x->query("SELECT count(*) FROM repl.log_$cur"), '0',
	'X then reads the truncated table without waiting (no deadlock)');
$x->query_safe('COMMIT');
$x->quit;
$leader->safe_psql('postgres', 'ALTER SYSTEM RESET repl_ext.log_rotate_interval');
$leader->safe_psql('postgres', 'SELECT pg_reload_conf()');
$id++;
commit_row($id);
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1',
	'a commit afterwards is on f1');
is(catchup_or_error($leader, 'f2', $since), '', 'f2 catches up');
compare_nodes($leader, $f1, 't', 'id');
compare_nodes($leader, $f2, 't', 'id');
my $log = PostgreSQL::Test::Utils::slurp_file($leader->logfile, $log_start);
unlike($log, qr/deadlock detected/, 'no deadlock in the leader log');

# 6. The tick lock is not a lock on repl.tick.  While a session deletes old
#    ticks (as the supervisor's cleanup does), or holds the table in SHARE
#    UPDATE EXCLUSIVE mode (as VACUUM and ANALYZE do), a synchronous commit
#    still cuts its own tick, and the supervisor still cuts ticks for
#    commits that do not wait.  Both used to find the lock taken: the
#    commits waited for the supervisor's tick, and the supervisor waited.
#    A few tries each: the supervisor may hold the tick lock now and then.
#    (A commit that waited for the supervisor used to wait as long as the
#    session: bounded here, it fails the test instead.)
sub some_own_tick
{
	for (1 .. 5)
	{
		$id++;
		my ($xid, $timed_out) = ('', 0);
		$leader->psql('postgres',
			"BEGIN;\nINSERT INTO t VALUES ($id, 'r$id');\nSELECT pg_current_xact_id();\nCOMMIT;\n",
			stdout => \$xid, timeout => 30, timed_out => \$timed_out);
		return 0 if $timed_out;
		return 1 if own_tick_of($xid) =~ /^\d+\|1$/;
	}
	return 0;
}
my $d = $leader->background_psql('postgres', on_error_stop => 1);
$d->query_safe('BEGIN; DELETE FROM repl.tick WHERE tick_id = (SELECT min(tick_id) FROM repl.tick)');
ok(some_own_tick(), 'a commit cuts its own tick while another session deletes old ticks');
$d->query_safe('ROLLBACK');
$d->query_safe('BEGIN; LOCK TABLE repl.tick IN SHARE UPDATE EXCLUSIVE MODE');
ok(some_own_tick(), '... and while repl.tick is held as VACUUM holds it');
$id++;
commit_row($id, 'SET LOCAL repl_ext.synchronous_commit = off');
my $arrived = 0;
for (1 .. 100)
{
	last if $arrived = $f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id") eq '1';
	Time::HiRes::sleep(0.1);
}
ok($arrived, '... where the supervisor still cuts ticks for a commit that does not wait');
$d->query_safe('COMMIT');
$d->quit;

# 7. A follower forgets the ticks it keeps once every follower has them:
#    the leader passes the position on (repl.forget_retained), and the
#    follower's supervisor deletes them, at most 200 per transaction.  With
#    f2 paused, f1 keeps every tick f2 lacks; once f2 resumes and catches
#    up, f1 drops them.
$leader->safe_psql('postgres', "SELECT repl.pause_follower('f2')");
my $f2_at = $leader->safe_psql('postgres',
	"SELECT applied_tick FROM repl.followers WHERE node_name = 'f2'");
$leader->safe_psql('postgres', join('', map { "INSERT INTO t VALUES (" . ($id + $_) . ", 'k');\n" } 1 .. 500));
$id += 500;
my $newest_tick = $leader->safe_psql('postgres', 'SELECT max(tick_id) FROM repl.tick');
cmp_ok($newest_tick - $f2_at, '>', 400, 'f2 paused: the leader cut more than two chunks of ticks since f2');
# once f1 has the newest tick, two node-list updates (one a second) later
$f1->poll_query_until('postgres',
	"SELECT applied_position >= $newest_tick FROM repl.node_info()")
  or die 'f1 did not apply the newest tick';
sleep 3;
my $lacked = $leader->safe_psql('postgres',
	"SELECT string_agg(tick_id::text, ',') FROM repl.tick"
	. " WHERE tick_id > $f2_at AND tick_id <= $newest_tick AND n_changes > 0");
my $nlacked = scalar(split /,/, $lacked);
cmp_ok($nlacked, '>', 400, "f2 lacks $nlacked ticks with changes");
is($f1->safe_psql('postgres', "SELECT count(*) FROM repl.retained WHERE tick_id = ANY ('{$lacked}')"),
	$nlacked, 'f1 keeps every one of them');
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f2')");
$leader->poll_query_until('postgres',
	"SELECT applied_tick >= $newest_tick FROM repl.followers WHERE node_name = 'f2'")
  or die 'f2 did not catch up';
ok($f1->poll_query_until('postgres',
	"SELECT count(*) < 50 FROM repl.retained WHERE tick_id <= $newest_tick"),
	'once f2 has them, f1 forgets them');
ok($leader->poll_query_until('postgres',
	"SELECT count(*) < 50 FROM repl.tick WHERE tick_id <= $newest_tick"),
	'and the leader its ticks (more than two chunks of them)');
$id++;
commit_row($id);
is($f1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1',
	'and f1 goes on applying');

$_->stop for ($leader, $f1, $f2);

# 8. The next tick's id.  A tick cutter looks for the last tick forward from
# the newest tick published in shared memory, a hint only: when repl.tick is
# refilled with an older tick (as a promotion does), the ticks go on from
# that one, without a duplicate key.
my $solo = new_node('solo');
$solo->safe_psql('postgres', q{
CREATE TABLE s (id bigint PRIMARY KEY);
SELECT repl.init_leader('solo', 'dbname=postgres');
SELECT repl.add_table('s');
});
for my $i (1 .. 5)
{
	$solo->safe_psql('postgres', "INSERT INTO s VALUES ($i)");
	$solo->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM repl.tick WHERE pg_visible_in_snapshot("
		. "(SELECT xmin::text::xid8 FROM s WHERE id = $i), snap)")
	  or die "no tick for row $i";
}
my $newest = $solo->safe_psql('postgres', 'SELECT max(tick_id) FROM repl.tick');
cmp_ok($newest, '>=', 5, "ticks up to $newest cut");
my $solo_log = -s $solo->logfile;
$solo->safe_psql('postgres', q{
BEGIN;
DELETE FROM repl.tick;
INSERT INTO repl.tick (tick_id, snap, tick_time, n_changes)
VALUES (1, pg_current_snapshot(), now(), 0);
COMMIT;
INSERT INTO s VALUES (6);
});
ok($solo->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM repl.tick
 WHERE tick_id = 2 AND n_changes = 1
   AND pg_visible_in_snapshot((SELECT xmin::text::xid8 FROM s WHERE id = 6), snap)}),
	"the tick after a refill with tick 1 is tick 2 (the hint, $newest, is past it)");
unlike(PostgreSQL::Test::Utils::slurp_file($solo->logfile, $solo_log),
	qr/duplicate key/, 'no duplicate tick id');
$solo->stop;
done_testing();
