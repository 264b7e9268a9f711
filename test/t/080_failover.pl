# Failover and switchover, three nodes: the leader dies under load and the
# synchronous follower is promoted (nothing acknowledged is lost, the third
# node follows it); the old leader comes back fenced, reports what it lost
# and rejoins with identical data; switchover back and forth under load
# loses nothing; a switchover blocked by an open transaction refuses writes
# meanwhile and then gives up, leaving the leader as it was; promoting a
# follower that is behind is refused, and when forced the one ahead is
# marked diverged and copied again.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my %nodes;
for my $name (qw(a b c))
{
	$nodes{$name} = new_node($name, 'log_min_messages' => 'log',
		'repl_ext.follower_read_only' => 'on');
}
my ($a, $b, $c) = @nodes{qw(a b c)};

$a->safe_psql('postgres', q{
CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE load (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO load SELECT g FROM generate_series(1, 100) g;
});
$a->safe_psql('postgres', "SELECT repl.init_leader('a', '" . connstr($a) . "')");
$a->safe_psql('postgres', "SELECT repl.add_table('t'), repl.add_table('load')");
$a->safe_psql('postgres',
	"SELECT repl.add_follower('b', '" . connstr($b) . "', synchronous => true)");
$a->safe_psql('postgres', "SELECT repl.add_follower('c', '" . connstr($c) . "')");
wait_catchup($a);
$a->poll_query_until('postgres',
	"SELECT string_agg(node_name || '=' || sync_state, ' ' ORDER BY node_name) FROM repl.status",
	'b=sync c=async')
  or die 'b never became synchronous';

# every follower knows the cluster (sent by the leader)
$c->poll_query_until('postgres',
	"SELECT string_agg(node_name, ',' ORDER BY node_name) FROM repl.nodes", 'a,b,c')
  or die 'c never learned the node list';
pass('followers know every node of the cluster');
is($c->safe_psql('postgres', 'SELECT node_name FROM repl.current_leader()'),
	'a', 'a follower names the leader');

my $script = $a->basedir . '/load.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 100)
UPDATE load SET n = n + 1 WHERE id = :id;
});

sub start_pgbench
{
	my ($node, $seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', '2',
		  '-T', $seconds, '-f', $script, 'postgres' ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# transactions pgbench saw commit (it stops a client at its first error)
sub finish_pgbench
{
	my ($pb) = @_;
	eval { $pb->{h}->finish; };
	my ($tx) = ${ $pb->{out} } =~ /number of transactions actually processed: (\d+)/;
	return $tx // 0;
}

sub role_of
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT role || ' ' || coalesce(leader_name, '-') || ' ' || epoch FROM repl.node_info()");
}

############################################################################
# 1. the leader dies under load; the synchronous follower is promoted
############################################################################

my $pb = start_pgbench($a, 60);
my $sess = $a->background_psql('postgres', on_error_stop => 1);
my @acked;
for my $i (1 .. 200)
{
	$sess->query_safe("INSERT INTO t VALUES ($i, 'acked $i')");
	push @acked, $i;
}
# a commit no follower will ever see: both paused, not waited for
$a->safe_psql('postgres',
	"SELECT repl.pause_follower('b'), repl.pause_follower('c')");
$a->safe_psql('postgres', q{
BEGIN;
SET LOCAL repl_ext.synchronous_commit = off;
INSERT INTO t VALUES (100000, 'lost with the old leader');
COMMIT;
});
$a->stop('immediate');
eval { $sess->quit; };
finish_pgbench($pb);

my $cand = $b->safe_psql('postgres',
	"SELECT string_agg(node_name || ':' || reachable || ':' || coalesce(role, '-'), ' ' ORDER BY node_name)"
	  . ' FROM repl.failover_candidates()');
is($cand, 'a:false:- b:true:follower c:true:follower',
	'failover_candidates: the old leader is unreachable, both followers answer');
is($b->safe_psql('postgres', 'SELECT repl.promote()'), '2', 'b promoted to epoch 2');
is(role_of($b), 'leader b 2', 'b is the leader');

my $list = join(',', @acked);
is($b->safe_psql('postgres', "SELECT count(*) FROM t WHERE id IN ($list)"),
	scalar(@acked), 'every acknowledged commit is on the new leader');

$c->poll_query_until('postgres', "SELECT role || ' ' || leader_name || ' ' || epoch FROM repl.node_info()",
	'follower b 2')
  or die 'c never followed b';
pass('c follows b in epoch 2');
$b->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'epoch 2' FROM generate_series(1001, 1100) g");
wait_catchup($b, 'c');
compare_nodes($b, $c, 't', 'id');
compare_nodes($b, $c, 'load', 'id');
is($c->safe_psql('postgres', 'SELECT node_name FROM repl.current_leader()'),
	'b', 'c names b as the leader');
my ($rc, $out, $err) = $c->psql('postgres', "INSERT INTO t VALUES (5000, 'no')");
like($err, qr/read-only transaction/, 'sessions on c are read-only (follower_read_only)');
($rc, $out, $err) = $c->psql('postgres',
	"SET default_transaction_read_only = off; INSERT INTO t VALUES (5000, 'no')");
like($err, qr/follows leader "b"/, 'a write on c is refused, naming b');

############################################################################
# 2. the old leader returns: fenced at its first contact; rejoin
############################################################################

$a->start;
$a->poll_query_until('postgres', 'SELECT role FROM repl.node_info()', 'fenced')
  or die 'a was never fenced';
pass('the restarted old leader fenced itself');
($rc, $out, $err) = $a->psql('postgres',
	"SET default_transaction_read_only = off; INSERT INTO t VALUES (5001, 'no')");
like($err, qr/fenced former leader.*\n.*Node "b" leads epoch 2/,
	'a write on the old leader is refused, naming the new leader');
is($a->safe_psql('postgres', 'SELECT node_name FROM repl.current_leader()'),
	'b', 'the fenced node names the new leader');

my $rejoin = $a->safe_psql('postgres',
	"SELECT mode || ' ' || (lost_changes > 0) || ' ' || ('public.t' = ANY (lost_tables))"
	  . " FROM repl.rejoin('" . connstr($b) . "')");
is($rejoin, 'resync true true',
	'rejoin reports the changes that never left the old leader and copies it again');
$b->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'a'",
	'streaming')
  or die 'a never streamed from b';
wait_catchup($b);
compare_nodes($b, $a, 't', 'id');
compare_nodes($b, $a, 'load', 'id');
is($a->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 100000'), '0',
	'the lost commit is gone from the old leader');
is(role_of($a), 'follower b 2', 'a follows b');

############################################################################
# 3. switchover back and forth, twice, under load
############################################################################

my $sum0 = $b->safe_psql('postgres', 'SELECT sum(n) FROM load');
my $committed = 0;
my $leader = $b;
my $epoch = 2;
for my $target ($c, $b, $c, $b)
{
	$leader->poll_query_until('postgres',
		"SELECT state FROM repl.status WHERE node_name = '" . $target->name . "'", 'streaming')
	  or die $target->name . ' never streamed from ' . $leader->name;
	my $pb = start_pgbench($leader, 3);
	sleep 1;
	my $new = $leader->safe_psql('postgres',
		"SELECT repl.switchover('" . $target->name . "', '30 s')");
	$epoch++;
	is($new, $epoch, 'switchover ' . $leader->name . ' -> ' . $target->name . " in epoch $epoch");
	$committed += finish_pgbench($pb);
	is(role_of($target), "leader " . $target->name . " $epoch", $target->name . ' leads');
	is(role_of($leader), "follower " . $target->name . " $epoch",
		$leader->name . ' follows it');
	$leader = $target;
}
$leader->safe_psql('postgres', "INSERT INTO t VALUES (7000, 'after switchovers')");
wait_catchup($leader);
for my $f ($a, $c)
{
	compare_nodes($leader, $f, 't', 'id');
	compare_nodes($leader, $f, 'load', 'id');
}
is($leader->safe_psql('postgres', 'SELECT sum(n) FROM load'), $sum0 + $committed,
	"all $committed transactions pgbench saw commit survived four switchovers");

# libpq finds the leader among all nodes: followers start sessions read-only
my $multi = 'host=' . join(',', map { $_->host } ($a, $c, $b))
  . ' port=' . join(',', map { $_->port } ($a, $c, $b))
  . ' dbname=postgres target_session_attrs=read-write';
my $found = `psql -XAtq -d "$multi" -c "SHOW port"`;
chomp $found;
is($found, $leader->port, 'target_session_attrs=read-write connects to the leader');
is($c->safe_psql('postgres', 'SHOW default_transaction_read_only'), 'on',
	'sessions on a follower start read-only');
is($c->safe_psql('postgres', 'SET default_transaction_read_only = off; CREATE TABLE local_only (x int); INSERT INTO local_only VALUES (1); SELECT count(*) FROM local_only'),
	'1', 'a follower session can still write tables that are not replicated');

############################################################################
# 4. a switchover blocked by an open transaction refuses writes, then gives
#    up and leaves everything as it was
############################################################################

my $open = $leader->background_psql('postgres', on_error_stop => 1);
$open->query_safe("BEGIN; INSERT INTO t VALUES (8000, 'open')");
my ($sw_out, $sw_err) = ('', '');
my $sw = IPC::Run::start(
	[ 'psql', '-X', '-h', $leader->host, '-p', $leader->port, '-d', 'postgres',
	  '-c', "SELECT repl.switchover('a', '4 s')" ],
	'>', \$sw_out, '2>', \$sw_err);
$leader->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT repl.switchover%' AND state = 'active'")
  or die 'switchover did not start';
my $refused = 0;
for (1 .. 50)
{
	($rc, $out, $err) = $leader->psql('postgres', "INSERT INTO t VALUES (8001, 'during')");
	if ($err =~ /during a switchover.*\n.*to "a"/)
	{
		$refused = 1;
		last;
	}
	last if $rc == 0;
}
ok($refused, 'writes are refused during a switchover, naming the target');
$sw->finish;
like($sw_err, qr/timed out waiting for 1 running transactions/,
	'the switchover gives up while a transaction stays open');
$open->query_safe('COMMIT');
$open->quit;
is(role_of($leader), 'leader ' . $leader->name . " $epoch", 'the leader kept its role');
$leader->safe_psql('postgres', "INSERT INTO t VALUES (8002, 'after the failed switchover')");
wait_catchup($leader);
compare_nodes($leader, $a, 't', 'id');

############################################################################
# 5. promoting a follower that is behind is refused; forced, the follower
#    ahead has diverged and is copied again
############################################################################

$leader->safe_psql('postgres', "SELECT repl.pause_follower('c')");
$leader->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'c misses this' FROM generate_series(9001, 9050) g");
wait_catchup($leader, 'a');
$leader->stop('immediate');
# a keeps the ticks c lacks (repl.retained), so c would first take them from
# a; without them, a is simply ahead
$a->safe_psql('postgres', 'SET default_transaction_read_only = off; DELETE FROM repl.retained');
($rc, $out, $err) = $c->psql('postgres', 'SELECT repl.promote()');
like($err, qr/follower "a" is more up to date than this node/,
	'promoting the follower that is behind is refused');
is($c->safe_psql('postgres', 'SELECT repl.promote(force => true)'), $epoch + 1,
	'forced promotion');
$c->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'a'",
	'diverged')
  or die 'a was never marked diverged';
pass('the follower that had more is marked diverged');
is($a->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id > 9000'), '50',
	'nothing was taken from the diverged follower by itself');
$c->safe_psql('postgres', "SELECT repl.resync_follower('a')");
$c->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'a'",
	'streaming')
  or die 'a was never copied again';
wait_catchup($c, 'a');
compare_nodes($c, $a, 't', 'id');
compare_nodes($c, $a, 'load', 'id');

done_testing();
