# Bug found by the chaos test: a follower that accepts the TCP connection but
# never answers (a hung postmaster, a stalled path; here a proxy that
# stalls) is waited for forever, whatever repl_ext.network_timeout says:
# libpqsrv_connect_params (PG 15) waits with no timeout, so connect_timeout
# is not applied, and an established connection has no timeout either.
# repl.resync_follower hangs (with its row of repl.followers locked), and the
# sender sits in "connecting" or "streaming" without an error.  Fails until
# fixed.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/chaos/repro/hung_follower.pl
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;
use ReplExtProxy;

my %conf = ('listen_addresses' => '127.0.0.1', 'repl_ext.network_timeout' => '3s');
my $leader = new_node('leader', %conf);
my $f = new_node('f', %conf);
my $proxy = ReplExtProxy->start(name => 'f', target_port => $f->port);
$leader->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres', "SELECT repl.add_table('t')");
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('f', 'host=127.0.0.1 port=" . $proxy->port . " dbname=postgres')");
wait_catchup($leader);

# an established connection that stops answering
$proxy->stall;
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
{
	local $PostgreSQL::Test::Utils::timeout_default = 30;
	ok($leader->poll_query_until('postgres',
			"SELECT state <> 'streaming' OR last_error IS NOT NULL FROM repl.status"),
		'a sender whose follower stopped answering notices it within 30 s');
}

# a new connection that is never answered
my ($timed_out, $out, $err) = (0, '', '');
$leader->psql('postgres', "SELECT repl.resync_follower('f')",
	stdout => \$out, stderr => \$err, timeout => 30, timed_out => \$timed_out);
ok(!$timed_out, 'resync_follower gives up on a follower that never answers')
  or diag('still waiting after 30 s (repl_ext.network_timeout = 3s)');
$proxy->pass;
$proxy->stop;
done_testing();
