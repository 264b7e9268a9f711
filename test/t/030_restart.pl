# Crashes and restarts: a follower killed mid-stream, a follower down while
# the leader writes, and a leader restart all end with identical data.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my $f1 = new_node('f1');
my $f2 = new_node('f2');

my $schema = q{
CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL, note text);
CREATE TABLE hist (id bigserial PRIMARY KEY, acct int, delta int, at timestamptz DEFAULT clock_timestamp());
};
$_->safe_psql('postgres', $schema) for ($leader, $f1, $f2);
$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('acct'); SELECT repl.add_table('hist')");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
$leader->safe_psql('postgres',
	"INSERT INTO acct SELECT g, 1000, 'start' FROM generate_series(1, 100) g");

# A bounded write load: transfers between accounts, each a transaction of
# three statements (two updates and an insert whose key comes from a
# sequence on the leader).
my $script = "$PostgreSQL::Test::Utils::tmp_check/transfer.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set a random(1, 100)
\set b random(1, 100)
\set d random(1, 50)
BEGIN;
UPDATE acct SET balance = balance - :d WHERE id = :a;
UPDATE acct SET balance = balance + :d, note = 'from ' || :a WHERE id = :b;
INSERT INTO hist (acct, delta) VALUES (:a, :d);
COMMIT;
});
my @pgbench = ('pgbench', '-n', '-c', '2', '-t', '1500', '-f', $script,
	'-h', $leader->host, '-p', $leader->port, 'postgres');
my ($stdout, $stderr) = ('', '');
my $load = IPC::Run::start(\@pgbench, '>', \$stdout, '2>', \$stderr);

# kill f1 while it is applying, restart it; stop f2 cleanly for a while
$leader->poll_query_until('postgres', 'SELECT count(*) > 300 FROM hist')
  or die 'load did not start';
$f1->stop('immediate');
$leader->poll_query_until('postgres',
	q{SELECT state <> 'streaming' AND last_error IS NOT NULL FROM repl.status WHERE node_name = 'f1'})
  or die 'f1 failure not reported';
pass('repl.status reports the lost follower with its error');
$f1->start;
$f2->stop('fast');
$leader->poll_query_until('postgres', 'SELECT count(*) > 1500 FROM hist')
  or die 'load stalled';
$f2->start;
$load->finish;
is($?, 0, 'write load finished') or diag $stderr;

wait_catchup($leader);
for my $f ($f1, $f2)
{
	compare_nodes($leader, $f, 'acct', 'id');
	compare_nodes($leader, $f, 'hist', 'id');
}
is($leader->safe_psql('postgres', 'SELECT count(*), sum(balance) FROM acct'), '100|100000',
	'transfers kept the total');

# leader restart: streaming resumes where it was
$leader->restart;
$leader->safe_psql('postgres', q{
UPDATE acct SET note = 'after leader restart' WHERE id % 10 = 0;
INSERT INTO hist (acct, delta) SELECT g, 0 FROM generate_series(1, 1000) g;
});
wait_catchup($leader);
compare_nodes($leader, $_, 'acct', 'id') for ($f1, $f2);
compare_nodes($leader, $_, 'hist', 'id') for ($f1, $f2);

# a follower crash right after the leader crashed too (immediate stops)
$leader->safe_psql('postgres', "INSERT INTO hist (acct, delta) SELECT g, 1 FROM generate_series(1, 2000) g");
$leader->stop('immediate');
$f2->stop('immediate');
$leader->start;
$f2->start;
$leader->safe_psql('postgres', "DELETE FROM hist WHERE delta = 1 AND id % 2 = 0");
wait_catchup($leader);
compare_nodes($leader, $_, 'hist', 'id') for ($f1, $f2);

# no batch was applied twice: the applied position equals the leader's
is($f1->safe_psql('postgres', 'SELECT applied_position FROM repl.node_info()'),
   $leader->safe_psql('postgres', q{SELECT applied_position FROM repl.status WHERE node_name = 'f1'}),
   'follower position matches what the leader saw acknowledged');

$_->stop for ($leader, $f1, $f2);
done_testing();
