# Automatic failover (repl_ext.auto_failover): load alone never triggers an
# election; when the leader stops, exactly one follower becomes leader by a
# majority of votes and the other follows it; the same again with the old
# leader rejoined and the two followers racing; a node left alone (a
# minority) never elects itself.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my %conf = (
	'repl_ext.auto_failover' => 'on',
	'repl_ext.leader_timeout' => '2s',
	'log_min_messages' => 'log');
my %node = map { $_ => new_node($_, %conf) } qw(a b c);

$node{a}->safe_psql('postgres', q{
CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE load (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
INSERT INTO load SELECT g FROM generate_series(1, 100) g;
});
$node{a}->safe_psql('postgres', "SELECT repl.init_leader('a', '" . connstr($node{a}) . "')");
$node{a}->safe_psql('postgres', "SELECT repl.add_table('t'), repl.add_table('load')");
for my $f (qw(b c))
{
	$node{a}->safe_psql('postgres',
		"SELECT repl.add_follower('$f', '" . connstr($node{$f}) . "')");
}
wait_catchup($node{a});
for my $f (qw(b c))
{
	$node{$f}->poll_query_until('postgres',
		"SELECT string_agg(node_name, ',' ORDER BY node_name) FROM repl.nodes", 'a,b,c')
	  or die "$f never learned the node list";
}

sub role_of
{
	my ($n) = @_;
	return $node{$n}->safe_psql('postgres',
		"SELECT role || ' ' || coalesce(leader_name, '-') || ' ' || epoch FROM repl.node_info()");
}

# 1. heavy load for longer than leader_timeout: heartbeats come from the
#    senders, not from user transactions, so nobody stands for election
my $script = $node{a}->basedir . '/load.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set id random(1, 100)
UPDATE load SET n = n + 1 WHERE id = :id;
});
my ($out, $err) = ('', '');
IPC::Run::run([ 'pgbench', '-n', '-h', $node{a}->host, '-p', $node{a}->port,
		'-c', '4', '-T', '6', '-f', $script, 'postgres' ], '>', \$out, '2>', \$err);
like($out, qr/number of transactions actually processed: [1-9]/, 'pgbench ran for 6 s');
is(role_of('b') . ', ' . role_of('c'), 'follower a 1, follower a 1',
	'no election under load');

# Stop the leader; returns the name of the one elected, checking that
# exactly one of the survivors leads and the other follows it.
sub elect_after_stopping
{
	my ($dead, @alive) = @_;
	$node{$dead}->stop('immediate');
	my $query = q{SELECT role FROM repl.node_info()};
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my @leaders;
	while (time < $deadline)
	{
		@leaders = grep { $node{$_}->safe_psql('postgres', $query) eq 'leader' } @alive;
		last if @leaders;
		select(undef, undef, undef, 0.1);
	}
	is(scalar(@leaders), 1, "exactly one of @alive was elected after $dead stopped");
	my $winner = $leaders[0] // die 'nobody was elected';
	my ($other) = grep { $_ ne $winner } @alive;
	my $epoch = $node{$winner}->safe_psql('postgres', 'SELECT epoch FROM repl.node_info()');
	$node{$other}->poll_query_until('postgres',
		"SELECT role || ' ' || leader_name || ' ' || epoch FROM repl.node_info()",
		"follower $winner $epoch")
	  or die "$other never followed $winner";
	pass("$other follows $winner in epoch $epoch");
	is(role_of($other), "follower $winner $epoch", "$other is still a follower");
	$node{$winner}->safe_psql('postgres',
		"INSERT INTO t SELECT g, 'epoch $epoch' FROM generate_series($epoch * 1000, $epoch * 1000 + 99) g");
	wait_catchup($node{$winner}, $other);
	compare_nodes($node{$winner}, $node{$other}, 't', 'id');
	compare_nodes($node{$winner}, $node{$other}, 'load', 'id');
	return ($winner, $other);
}

# 2. the leader stops: one of b and c is elected
my ($w1, $o1) = elect_after_stopping('a', 'b', 'c');

# 3. the old leader comes back (fenced), rejoins; then the new leader
#    stops and the two followers race
$node{a}->start;
$node{a}->poll_query_until('postgres', 'SELECT role FROM repl.node_info()', 'fenced')
  or die 'a was never fenced';
$node{a}->safe_psql('postgres', "SELECT mode FROM repl.rejoin('" . connstr($node{$w1}) . "')");
$node{$w1}->poll_query_until('postgres', "SELECT state FROM repl.status WHERE node_name = 'a'",
	'streaming')
  or die 'a never streamed';
wait_catchup($node{$w1});
$node{a}->poll_query_until('postgres',
	"SELECT count(*) FROM repl.nodes", '3')
  or die 'a never learned the node list';
my ($w2, $o2) = elect_after_stopping($w1, 'a', $o1);

# 4. the winner stops too: the last node alone is a minority
$node{$w2}->stop('immediate');
my $log = $node{$o2}->logfile;
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
my $lost = 0;
while (time < $deadline)
{
	my $text = slurp_file($log);
	$lost = () = $text =~ /node "$o2" lost the election in epoch \d+: 1 of 3 votes/g;
	last if $lost >= 2;
	select(undef, undef, undef, 0.2);
}
ok($lost >= 2, "$o2 alone stood for election $lost times and lost each time");
like(role_of($o2), qr/^follower /, "$o2, a minority, never became leader");

done_testing();
