# A follower that keeps the TCP connection but never answers (a hung server,
# a stalled middlebox; here a proxy that stalls).  Found by the chaos test:
# it was waited for forever, whatever repl_ext.network_timeout said (PG 15's
# libpqsrv_connect_params applies no timeout, and an established connection
# had none either): resync_follower hung holding its row of repl.followers,
# the sender sat in "streaming" without an error.
#
# Now connecting is bounded by network_timeout, and after network_timeout
# without traffic a second connection checks the session; a follower that
# is merely busy (here: its apply waits for a lock for 3 x network_timeout)
# is not declared dead.
#
#   make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/127_hung_follower.pl
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../chaos";
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;
use ReplExtProxy;

my $timeout_ms = 2000;
my %conf = ('listen_addresses' => '127.0.0.1',
	'repl_ext.network_timeout' => "${timeout_ms}ms");
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

############################################################################
# a busy follower is not a dead one: its apply waits for a lock for three
# times network_timeout, and the sender waits with it
############################################################################
my $locker = $f->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
my $t0 = Time::HiRes::time();
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
$f->poll_query_until('postgres', 'SELECT count(*) > 0 FROM pg_locks WHERE NOT granted')
  or die 'the apply does not wait for the lock';
while (Time::HiRes::time() - $t0 < 3 * $timeout_ms / 1000)
{
	$leader->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
}
is($leader->safe_psql('postgres', "SELECT coalesce(last_error, '') FROM repl.status"), '',
	'a follower whose apply waits 3 x network_timeout for a lock is not declared dead');
$locker->query_safe('COMMIT');
$locker->quit;
wait_catchup($leader);
is($f->safe_psql('postgres', 'SELECT count(*) FROM t'), '1', 'and the batch is applied after the wait');
like(slurp_file($f->logfile), qr/repl_ext:f:check LOG:  execute <unnamed>: SELECT COALESCE\(state/,
	'(the sender checked the busy session over a second connection)');

############################################################################
# an established connection that stops answering
############################################################################
$proxy->stall;
my $since = $leader->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
$leader->safe_psql('postgres', 'INSERT INTO t VALUES (2)');
$t0 = Time::HiRes::time();
{
	local $PostgreSQL::Test::Utils::timeout_default = 30;
	ok($leader->poll_query_until('postgres',
			"SELECT last_error_time >= to_timestamp($since) FROM repl.status"),
		'a sender whose follower stopped answering notices it');
}
my $err = $leader->safe_psql('postgres', 'SELECT last_error FROM repl.status');
like($err, qr/no reply for $timeout_ms ms \(repl_ext.network_timeout\) and a new connection failed/,
	'the error says why');
note(sprintf('noticed after %.1f s (network_timeout %.1f s)', Time::HiRes::time() - $t0,
	$timeout_ms / 1000));

############################################################################
# a new connection that is never answered
############################################################################
my ($timed_out, $out, $stderr) = (0, '', '');
$t0 = Time::HiRes::time();
$leader->psql('postgres', "SELECT repl.resync_follower('f')",
	stdout => \$out, stderr => \$stderr, timeout => 30, timed_out => \$timed_out);
ok(!$timed_out, 'resync_follower gives up on a follower that never answers');
like($stderr, qr/ERROR:  could not connect to follower "f"\nDETAIL:  no answer within $timeout_ms ms \(repl_ext.network_timeout\)/,
	'with a clear error');
note(sprintf('resync_follower failed after %.1f s', Time::HiRes::time() - $t0));
is($leader->safe_psql('postgres', "SELECT phase FROM repl.followers WHERE node_name = 'f'"),
	'streaming', 'and changed nothing');

# once the network is back, the follower catches up
$proxy->pass;
wait_catchup($leader);
compare_nodes($leader, $f, 't', 'id');
$proxy->stop;
done_testing();
