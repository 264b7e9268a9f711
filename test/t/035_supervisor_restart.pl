# Found by the chaos test (seed 4242): after the supervisor exits without a crash
# (SIGTERM, or an ERROR) the
# postmaster starts it again 5 s later, and it starts a second sender for
# every follower while the old ones still run.  Two senders then copy and
# stream to one follower at once (a copy at an older
# snapshot replaced rows another sender had already streamed past; the
# follower diverged and stopped for good with "row to update ... does not
# exist").  Regression test: the supervisor leaves a running sender alone.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/035_supervisor_restart.pl
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $leader = new_node('leader');
my %fol = map { $_ => new_node($_) } qw(f1 f2);
$leader->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v int)');
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('$_', '" . connstr($fol{$_}) . "')") for sort keys %fol;
wait_catchup($leader);

my $senders = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'repl_ext sender'};
is($leader->safe_psql('postgres', $senders), '2', 'one sender per follower');
my $sup = $leader->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'repl_ext supervisor'");
$leader->safe_psql('postgres', "SELECT pg_terminate_backend($sup)");
$leader->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'repl_ext supervisor' AND pid <> $sup")
  or die 'the supervisor did not come back';
# let it start whatever it starts
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (1, 1)');
wait_catchup($leader);
is($leader->safe_psql('postgres', $senders), '2',
	'still one sender per follower after the supervisor restarted');
done_testing();
