# The same administrative function called twice at the same time, from two
# sessions: add_follower for one name, remove_follower, promote on one node,
# promote on two followers.  Each pair ends with a clear outcome
# (one call does the work, the other skips it or fails with a clear error)
# and a consistent cluster: one follower row, one leader per epoch.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/045_admin_concurrent.pl
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');
my $f2 = new_node('f2');
$leader->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;
});
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");

# run sql twice on node, from two sessions released at the same moment (both
# wait on an advisory lock first); returns [ exit code, stdout, stderr ] x 2
sub twice
{
	my ($node, $sql) = @_;
	my (@h, @out, @err);
	my $gate = $node->background_psql('postgres');
	$gate->query_safe('SELECT pg_advisory_lock(4242)');
	for my $i (0, 1)
	{
		($out[$i], $err[$i]) = ('', '');
		$h[$i] = IPC::Run::start(
			[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			  '-c', 'SELECT pg_advisory_lock_shared(4242)', '-c', $sql ],
			'>', \$out[$i], '2>', \$err[$i]);
	}
	$node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	  or die 'the two sessions do not wait at the gate';
	$gate->query_safe('SELECT pg_advisory_unlock(4242)');
	$gate->quit;
	my @r;
	for my $i (0, 1)
	{
		$h[$i]->finish;
		push @r, [ $h[$i]->result(0), $out[$i], $err[$i] ];
	}
	return @r;
}

############################################################################
# add_follower twice for one name
############################################################################
my $add = "SELECT repl.add_follower('f1', '" . connstr($f1) . "')";
my @r = twice($leader, $add);
my @ok = grep { $_->[0] == 0 } @r;
ok(@ok >= 1, 'add_follower twice at once: at least one call succeeds');
for my $x (grep { $_->[0] != 0 } @r)
{
	like($x->[2], qr/ERROR:  (?:node "f1" is already a follower|follower "f1" already exists)/,
		'the other fails with a clear error') or diag($x->[2]);
}
for my $x (@ok)
{
	unlike($x->[2], qr/ERROR/, 'no error from a call that succeeded');
}
is($leader->safe_psql('postgres', "SELECT count(*) FROM repl.followers WHERE node_name = 'f1'"),
	'1', 'one follower row');
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
wait_catchup($leader);
compare_nodes($leader, $f1, 't', 'id');

############################################################################
# remove_follower twice
############################################################################
my $rm = "SELECT repl.remove_follower('f2')";
@r = twice($leader, $rm);
@ok = grep { $_->[0] == 0 } @r;
ok(@ok >= 1, 'remove_follower twice at once: at least one call succeeds');
for my $x (grep { $_->[0] != 0 } @r)
{
	like($x->[2], qr/ERROR:  follower "f2" does not exist/, 'the other fails with a clear error')
	  or diag($x->[2]);
}
is($leader->safe_psql('postgres', "SELECT count(*) FROM repl.followers WHERE node_name = 'f2'"),
	'0', 'the follower is gone');
is($f2->safe_psql('postgres', 'SELECT count(*) FROM repl.local_node'), '0',
	'and no longer follows (its writes are allowed again)');
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "', truncate_existing => true)");
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (1001, \'x\')');
wait_catchup($leader);
compare_nodes($leader, $f2, 't', 'id');
# one more batch after f2's copy, so both followers stand at the same tick:
# a follower whose position is its copy's tick cannot hand the ticks before
# it to the other (a limitation noted in the issue)
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (1003, \'z\')');
wait_catchup($leader);

############################################################################
# promote twice on one follower
############################################################################
$leader->stop('immediate');
# the most up-to-date follower (promote refuses the other)
my $best = $f1->safe_psql('postgres', q{
SELECT node_name FROM repl.failover_candidates() WHERE reachable AND role = 'follower'
 ORDER BY applied_epoch DESC, applied_position DESC, node_name LIMIT 1});
my ($p, $o) = $best eq 'f1' ? ($f1, $f2) : ($f2, $f1);
@r = twice($p, 'SELECT repl.promote()');
@ok = grep { $_->[0] == 0 } @r;
is(scalar(@ok), 1, 'promote twice on one node at once: one call promotes');
for my $x (grep { $_->[0] != 0 } @r)
{
	like($x->[2], qr/ERROR:  repl.promote must be called on a follower\nDETAIL:  This node has the role "leader"/,
		'the other waits, then fails with a clear error') or diag($x->[2]);
}
is($p->safe_psql('postgres', 'SELECT role || \' \' || epoch FROM repl.node_info()'), 'leader 2',
	$p->name . ' leads epoch 2');
is($p->safe_psql('postgres', 'SELECT count(*) FROM repl.epochs WHERE epoch = 2'), '1',
	'one epoch 2');
$p->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM repl.status WHERE node_name = '" . $o->name . "' AND state = 'streaming'")
  or diag($p->safe_psql('postgres', 'SELECT * FROM repl.status'));
$p->safe_psql('postgres', 'INSERT INTO t VALUES (1002, \'y\')');
wait_catchup($p, $o->name);
compare_nodes($p, $o, 't', 'id');

############################################################################
# promote on two followers at the same moment: never two leaders of one
# epoch.  Each promotion is held before it takes the leader role (a lock on
# repl.tick, which it writes then), so both run at once for sure.
############################################################################
my $l2 = new_node('l2');
my $g1 = new_node('g1');
my $g2 = new_node('g2');
$l2->safe_psql('postgres', 'CREATE TABLE t2 (id int PRIMARY KEY)');
$l2->safe_psql('postgres', "SELECT repl.init_leader('l2', '" . connstr($l2) . "')");
$l2->safe_psql('postgres', "SELECT repl.add_table('t2')");
$l2->safe_psql('postgres', "SELECT repl.add_follower('g1', '" . connstr($g1) . "')");
$l2->safe_psql('postgres', "SELECT repl.add_follower('g2', '" . connstr($g2) . "')");
$l2->safe_psql('postgres', 'INSERT INTO t2 VALUES (1)');
wait_catchup($l2);
$l2->stop('immediate');

my @lockers;
for my $g ($g1, $g2)
{
	my $b = $g->background_psql('postgres');
	$b->query_safe('BEGIN; LOCK TABLE repl.tick IN SHARE MODE');
	push @lockers, $b;
}
my (@ph, @pout, @perr);
for my $i (0, 1)
{
	($pout[$i], $perr[$i]) = ('', '');
	$ph[$i] = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', ($g1, $g2)[$i]->connstr('postgres'),
		  '-c', 'SELECT repl.promote()' ],
		'>', \$pout[$i], '2>', \$perr[$i]);
}
# until each promotion has failed or waits for the lock
for my $g ($g1, $g2)
{
	$g->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE query = 'SELECT repl.promote()' AND wait_event_type IS DISTINCT FROM 'Lock'})
	  or die 'a promotion neither fails nor waits';
}
$_->query_safe('COMMIT') for @lockers;
$_->quit for @lockers;
$_->finish for @ph;
my @leaders = grep { $_->safe_psql('postgres', 'SELECT role FROM repl.node_info()') eq 'leader' }
  ($g1, $g2);
ok(@leaders <= 1, 'promote on two followers at once: at most one becomes leader')
  or diag("g1: $pout[0] $perr[0]; g2: $pout[1] $perr[1]");
for my $i (0, 1)
{
	next unless $perr[$i] =~ /ERROR/;
	like($perr[$i], qr/ERROR:  (?:node "g\d" is being promoted itself, or is voting, right now|node "g\d" leads epoch \d+ now|node "g\d" refused epoch)/,
		'a promotion that lost says why') or diag($perr[$i]);
}
note("g1: $pout[0] $perr[0]; g2: $pout[1] $perr[1]");
# both may have lost: promote one now
$g1->safe_psql('postgres', 'SELECT repl.promote()') unless @leaders;
my $new = @leaders ? $leaders[0] : $g1;
my $other = $new == $g1 ? $g2 : $g1;
is($new->safe_psql('postgres', 'SELECT role FROM repl.node_info()'), 'leader', $new->name . ' leads');
is($other->safe_psql('postgres', 'SELECT role FROM repl.node_info()'), 'follower',
	$other->name . ' follows');
$new->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM repl.status WHERE node_name = '" . $other->name . "' AND state = 'streaming'")
  or diag($new->safe_psql('postgres', 'SELECT * FROM repl.status'));
$new->safe_psql('postgres', 'INSERT INTO t2 VALUES (2)');
wait_catchup($new, $other->name);
compare_nodes($new, $other, 't2', 'id');

done_testing();
