# Chaos: a leader and two followers under a randomized concurrent workload
# while faults are injected at random, from a seed printed at the start.
#
# The leader reaches each follower through its own TCP proxy
# (test/chaos/ReplExtProxy.pm), so the network can stall, delay, reset,
# blackhole or refuse.  Other faults: kill -9 / SIGTERM of a sender on the
# leader (kill -9 means a crash restart of the whole leader), SIGTERM of the
# supervisor (restarted by the postmaster 5 s later), kill -9 / SIGTERM of
# the apply backend on a follower, preferably while it applies (kill -9:
# crash restart of the follower), immediate stop and later start of a
# follower, immediate restart of the leader; and, in between, an operation
# that must survive all that: repl.resync_follower (a copy from scratch).
# Every kind happens at least once per run.
#
# Ledger semantics.  f1 is added synchronous; repl_ext.synchronous_mode is
# strict (a commit returns only once the synchronous follower applied it;
# with none confirming it waits), synchronous_failover_timeout 1 s (the role
# moves to the other follower).  Each client (test/chaos/chaos_client.pl)
# writes one line per transaction: acknowledged (COMMIT returned success),
# rolled back (an ERROR before COMMIT), or unknown (connection lost).  Every
# transaction inserts its id into the replicated table "ledger" (primary key)
# and adds 1 to its client's row of "counter"; transfers keep sum(acct.bal)
# constant.  Checked:
#  - during the run, on each follower at any moment: sum(bal) is the
#    constant and sum(counter.n) = count(ledger) (whole transactions only);
#    on the leader, never two senders for one follower;
#  - right after an acknowledged commit that waited (the transaction saw a
#    synchronous follower in repl.status before it wrote, and did not set
#    repl_ext.synchronous_commit = off; commits right after a leader start
#    do not wait, as the README says): its id is on a follower already;
#  - after healing and catch-up: every table identical on all nodes, every
#    acknowledged commit on every node, no rolled-back one anywhere, nothing
#    that no client ran; no batch applied twice (the ledger's key would stop
#    apply; the counter would not match); the leader's log shrinks back
#    (log_rotate_interval 2 s); no ERROR in any log except expected ones,
#    no process killed by a signal we did not send.
#
#   CHAOS_SECONDS (75), CHAOS_SEED (20261123; CHAOS_RANDOM_SEED=1: a new
#   one each run), CHAOS_CLIENTS (4), CHAOS_RESYNC (1; 0: no resync faults),
#   CHAOS_LEADER_RESTART (1: include leader restarts; 0: not),
#   CHAOS_KINDS (e.g. "net_stall=2,resync=1": only these faults, weighted)
# test/chaos/run.sh runs this file alone, e.g. for 30 minutes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../chaos";
use IPC::Run ();
use List::Util qw(min sum0);
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;
use ReplExtProxy;

my $seconds = $ENV{CHAOS_SECONDS} || 75;
# CI runs one fixed schedule; test/chaos/run.sh draws a new seed each run
my $seed = $ENV{CHAOS_SEED} // ($ENV{CHAOS_RANDOM_SEED}
	? (int(Time::HiRes::time() * 1000) ^ $$) % 2_000_000_000 : 20261123);
my $nclients = $ENV{CHAOS_CLIENTS} || 4;
my $leader_restarts = $ENV{CHAOS_LEADER_RESTART} // 1;
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
srand($seed);

# a `make install` during the run rewrites the library under the running
# servers (install truncates it in place): say so at the end
my $libfile = `pg_config --pkglibdir`;
chomp $libfile;
$libfile .= '/repl_ext.so';
my $lib_mtime = (stat $libfile)[9] // 0;
diag("chaos seed $seed: $seconds s, $nclients clients, leader restarts "
	  . ($leader_restarts ? 'on' : 'off')
	  . " (replay: CHAOS_SEED=$seed CHAOS_SECONDS=$seconds)");

############################################################################
# cluster: leader -> proxy -> f1 (synchronous), leader -> proxy -> f2
############################################################################

my %common = (
	'restart_after_crash' => 'on',
	'listen_addresses' => '127.0.0.1',
	'log_statement' => 'none',
	'repl_ext.network_timeout' => '3s',
	'repl_ext.retry_interval' => '500ms');
my $leader = new_node('leader', %common,
	'repl_ext.synchronous_mode' => 'strict',
	'repl_ext.synchronous_failover_timeout' => '1s',
	'repl_ext.log_rotate_interval' => '2s');
my %fol = map { $_ => new_node($_, %common) } qw(f1 f2);
my @fnames = sort keys %fol;

my $work = $PostgreSQL::Test::Utils::tmp_check . '/chaos';
mkdir $work;
my %proxy = map {
	$_ => ReplExtProxy->start(
		name => $_,
		target_port => $fol{$_}->port,
		log => "$work/proxy.log",
		max_lifetime => $seconds + 4 * $timeout + 600)
} @fnames;

$leader->safe_psql('postgres', qq{
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, txn bigint);
INSERT INTO acct SELECT g, 1000, 0 FROM generate_series(1, 200) g;
CREATE TABLE item (id bigint PRIMARY KEY, owner int NOT NULL, grp int NOT NULL, payload text, txn bigint);
CREATE INDEX item_owner ON item (owner);
CREATE INDEX item_grp ON item (grp);
INSERT INTO item SELECT g, 0, g % 20, 'initial ' || g, 0 FROM generate_series(1, 500) g;
CREATE TABLE kv (k text PRIMARY KEY, v text, txn bigint);
CREATE TABLE small (id int PRIMARY KEY, v int, txn bigint);
INSERT INTO small SELECT g, 0, 0 FROM generate_series(1, 20) g;
CREATE TABLE full_t (owner int NOT NULL, slot int NOT NULL, v text, n int);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE TABLE counter (client int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO counter SELECT g, 0 FROM generate_series(1, $nclients) g;
CREATE TABLE ledger (txn_id bigint PRIMARY KEY, client int NOT NULL, ops int NOT NULL);
});
my %tables = (
	acct => 'id', item => 'id', kv => 'k', small => 'id',
	full_t => 'owner, slot, v, n', counter => 'client', ledger => 'txn_id');
$leader->safe_psql('postgres',
	"SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
$leader->safe_psql('postgres',
	join('; ', map { "SELECT repl.add_table('$_')" } sort keys %tables));
for my $f (@fnames)
{
	my $sync = $f eq 'f1' ? ', synchronous => true' : '';
	$leader->safe_psql('postgres',
		"SELECT repl.add_follower('$f', 'host=127.0.0.1 port="
		  . $proxy{$f}->port . " dbname=postgres'$sync)");
}
wait_catchup($leader);
$leader->poll_query_until('postgres',
	"SELECT string_agg(node_name || '=' || sync_state, ' ' ORDER BY node_name) FROM repl.status",
	'f1=sync f2=async')
  or die 'f1 never became synchronous';
compare_nodes($leader, $fol{$_}, 'item', 'id') for @fnames;
my $acct_total = 200 * 1000;

############################################################################
# helpers
############################################################################

# A query on a node that may be down or restarting: its output, or undef.
sub try_query
{
	my ($node, $sql, $secs) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $rc = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		timeout => $secs // 15, timed_out => \$timed_out);
	return undef if $rc != 0 || $timed_out;
	return $out;
}

sub now { return Time::HiRes::time() }

my %faults;      # kind => count injected
my %skipped;     # kind => count skipped (no target at that moment)
my @violations;  # consistency probe failures during the run
my %down;        # follower => when to start it again
my %net;         # follower => when to put its proxy back to pass
my @background;  # repl.resync_follower calls still running
my @resync_secs; # how long each took
my $resyncs = 0;
my @events;      # [ time, text ] of everything injected
my $max_log = 0;
my $probes = 0;
my $t0;

sub note_event
{
	my ($msg) = @_;
	push @events, [ now(), $msg ];
	my $line = sprintf('%7.2f %s', now() - $t0, $msg);
	note($line);
	PostgreSQL::Test::Utils::append_to_file("$work/events.log", "$line\n");
	return;
}

# The pid of a backend on $node matching $where, waiting up to ~1 s for one
# that is active (mid-apply) first; undef if there is none.
sub backend_pid
{
	my ($node, $where) = @_;
	my $out = try_query($node, qq{
CREATE FUNCTION pg_temp.find_pid() RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE p int;
BEGIN
  FOR i IN 1 .. 200 LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT pid INTO p FROM pg_stat_activity WHERE $where AND state = 'active' LIMIT 1;
    IF p IS NOT NULL THEN RETURN p; END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
  PERFORM pg_stat_clear_snapshot();
  SELECT pid INTO p FROM pg_stat_activity WHERE $where LIMIT 1;
  RETURN p;
END
\$\$;
SELECT coalesce(pg_temp.find_pid(), 0);}, 10);
	return undef unless defined $out && $out =~ /^(\d+)$/m && $1 > 0;
	return $1;
}

sub set_net
{
	my ($f, $mode, $arg) = @_;
	if ($mode eq 'delay')
	{
		$proxy{$f}->delay($arg);
	}
	else
	{
		$proxy{$f}->command($mode);
	}
	return;
}

# Collect the background calls that are done (all of them, waiting, with
# $all).
sub reap_background
{
	my ($all) = @_;
	for my $b (@background)
	{
		next unless $all || !$b->{h}->pumpable;
		$b->{timer}->start($timeout) if $all;
		my $ok = eval { $b->{h}->finish; 1 };
		my $secs = now() - $b->{start};
		push @resync_secs, $secs;
		my $err = -e $b->{err} ? PostgreSQL::Test::Utils::slurp_file($b->{err}) : '';
		$err =~ s/\s+/ /g;
		note_event(sprintf('%s: %s after %.1f s%s', $b->{what},
			$ok && $b->{h}->result == 0 ? 'done' : 'failed', $secs,
			$err =~ /ERROR|error/ ? ": $err" : ''));
		$b->{done} = 1;
	}
	@background = grep { !$_->{done} } @background;
	return;
}

# End the faults whose time is up.
sub heal_due
{
	my ($all) = @_;
	reap_background();
	for my $f (sort keys %net)
	{
		next unless $all || $net{$f} <= now();
		set_net($f, 'pass');
		delete $net{$f};
		note_event("proxy $f: pass");
	}
	for my $f (sort keys %down)
	{
		next unless $all || $down{$f} <= now();
		$fol{$f}->start;
		delete $down{$f};
		note_event("$f started");
	}
	return;
}

# Consistency of each follower as it is right now (one snapshot each).
sub probe
{
	for my $f (@fnames)
	{
		next if $down{$f};
		my $out = try_query($fol{$f},
			'SELECT (SELECT sum(bal) FROM acct), (SELECT coalesce(sum(n), 0) FROM counter),'
			  . ' (SELECT count(*) FROM ledger)', 5);
		next unless defined $out;
		$probes++;
		my ($bal, $cnt, $led) = split /\|/, $out;
		if ($bal != $acct_total || $cnt != $led)
		{
			push @violations, sprintf('%.1f s: %s has sum(bal) %s (expected %s), sum(counter) %s, count(ledger) %s',
				now() - $t0, $f, $bal, $acct_total, $cnt, $led);
			note_event("VIOLATION: $violations[-1]");
		}
	}
	# one sender per follower, ever
	my $dup = try_query($leader, q{
SELECT string_agg(application_name || ': pids ' || pids, '; ')
  FROM (SELECT application_name, string_agg(pid::text, ',' ORDER BY pid) AS pids
          FROM pg_stat_activity
         WHERE backend_type = 'repl_ext sender' AND application_name LIKE 'repl_ext sender for %'
         GROUP BY 1 HAVING count(*) > 1) d}, 5);
	if (defined $dup && $dup ne '')
	{
		push @violations, sprintf('%.1f s: two senders for one follower: %s', now() - $t0, $dup);
		note_event("VIOLATION: $violations[-1]");
	}
	my $log = try_query($leader, 'SELECT count(*) FROM repl.log', 5);
	$max_log = $log if defined $log && $log =~ /^\d+$/ && $log > $max_log;
	return;
}

# One fault.
sub inject
{
	my ($ev) = @_;
	my ($kind, $f, $dur) = @$ev{qw(kind target dur)};
	my $node = $fol{$f};
	if ($kind =~ /^sender_(kill9|term)$/)
	{
		my $pid = backend_pid($leader,
			"backend_type = 'repl_ext sender' AND application_name = 'repl_ext sender for $f'");
		return $skipped{$kind}++ unless $pid;
		kill($1 eq 'kill9' ? 'KILL' : 'TERM', $pid);
		note_event("$kind: sender for $f (pid $pid) on the leader");
	}
	elsif ($kind eq 'supervisor_term')
	{
		# exits with code 1; the postmaster starts it again after 5 s
		my $pid = backend_pid($leader, "backend_type = 'repl_ext supervisor'");
		return $skipped{$kind}++ unless $pid;
		kill('TERM', $pid);
		note_event("supervisor_term: supervisor (pid $pid) on the leader");
	}
	elsif ($kind =~ /^apply_(kill9|term)$/)
	{
		return $skipped{$kind}++ if $down{$f};
		my $pid = backend_pid($node, "application_name = 'repl_ext:$f'");
		return $skipped{$kind}++ unless $pid;
		kill($1 eq 'kill9' ? 'KILL' : 'TERM', $pid);
		note_event("$kind: apply backend on $f (pid $pid)");
	}
	elsif ($kind eq 'follower_restart')
	{
		return $skipped{$kind}++ if $down{$f};
		$node->stop('immediate');
		$down{$f} = now() + $dur;
		note_event(sprintf('%s stopped (immediate) for %.1f s', $f, $dur));
	}
	elsif ($kind eq 'resync')
	{
		# not a fault: an operation that must survive the others (a copy
		# from scratch while the workload runs and the network misbehaves).
		# In the background: it may wait for a fault to end.
		return $skipped{$kind}++ if grep { $_->{target} eq $f } @background;
		my $n = ++$resyncs;
		my $b = { what => "resync of $f", target => $f, start => now(),
			out => "$work/resync.$f.$n.out", err => "$work/resync.$f.$n.err",
			timer => IPC::Run::timeout(3 * $timeout) };
		$b->{h} = IPC::Run::start(
			[ 'psql', '-X', '-At', '-d', $leader->connstr('postgres') . ' application_name=chaos_resync',
			  '-c', "SELECT repl.resync_follower('$f')" ],
			'>', $b->{out}, '2>', $b->{err}, $b->{timer});
		push @background, $b;
		note_event("resync of $f: called");
	}
	elsif ($kind eq 'leader_restart')
	{
		$leader->stop('immediate');
		$leader->start;
		note_event('leader restarted (immediate stop)');
	}
	elsif ($kind eq 'net_reset')
	{
		$proxy{$f}->reset;
		note_event("proxy $f: reset all connections");
	}
	elsif ($kind =~ /^net_(stall|delay|blackhole|refuse)$/)
	{
		set_net($f, $1, $ev->{ms});
		$net{$f} = now() + $dur;
		note_event(sprintf('proxy %s: %s%s for %.1f s', $f, $1,
			$1 eq 'delay' ? " $ev->{ms} ms" : '', $dur));
	}
	elsif ($kind eq 'net_stall_both')
	{
		for my $g (@fnames)
		{
			set_net($g, 'stall');
			$net{$g} = now() + $dur;
		}
		note_event(sprintf('proxies f1 and f2: stall for %.1f s', $dur));
	}
	$faults{$kind}++;
	return;
}

############################################################################
# the schedule: every fault decided by the seed, before anything runs
############################################################################

my @kinds = (
	[ sender_kill9 => 1 ], [ sender_term => 2 ], [ supervisor_term => 0.7 ],
	[ apply_kill9 => 1.5 ], [ apply_term => 1.5 ],
	[ follower_restart => 1.5 ],
	[ net_stall => 2 ], [ net_reset => 2 ], [ net_delay => 1.5 ],
	[ net_blackhole => 1.5 ], [ net_refuse => 1 ],
	[ net_stall_both => 0.5 ],
	(($ENV{CHAOS_RESYNC} // 1) ? ([ resync => 0.4 ]) : ()),
	($leader_restarts ? ([ leader_restart => 0.5 ]) : ()));
# CHAOS_KINDS="net_stall=1,resync=2": only these kinds, with these weights
if ($ENV{CHAOS_KINDS})
{
	my %known = map { $_->[0] => 1 } @kinds, [ 'leader_restart' ], [ 'resync' ];
	@kinds = map { [ split /=/ ] } split /,/, $ENV{CHAOS_KINDS};
	$known{ $_->[0] } && ($_->[1] //= 1) or die "CHAOS_KINDS: unrecognized kind \"$_->[0]\""
	  for @kinds;
}
my $wsum = sum0(map { $_->[1] } @kinds);
my @schedule;
for (my $at = 2 + rand(2); $at < $seconds; $at += 0.3 + rand(2.2))
{
	my $x = rand($wsum);
	my $kind;
	for my $k (@kinds)
	{
		$kind = $k->[0];
		last if ($x -= $k->[1]) < 0;
	}
	push @schedule, {
		at => $at,
		kind => $kind,
		target => $fnames[ int(rand(@fnames)) ],
		dur => 0.3 + rand(4.7),
		ms => 10 + int(rand(390)) };
}
# every kind at least once (in place of kinds drawn more than once)
my %drawn;
$drawn{ $_->{kind} }++ for @schedule;
for my $k (map { $_->[0] } @kinds)
{
	next if $drawn{$k};
	my @spare = grep { $drawn{ $schedule[$_]{kind} } > 1 } 0 .. $#schedule;
	last unless @spare;
	my $i = $spare[ int(rand(@spare)) ];
	$drawn{ $schedule[$i]{kind} }--;
	$schedule[$i]{kind} = $k;
	$drawn{$k}++;
}
PostgreSQL::Test::Utils::append_to_file("$work/schedule.txt",
	join('', map { sprintf("%7.2f %-17s %s %.2f %d\n", @$_{qw(at kind target dur ms)}) } @schedule));
note(scalar(@schedule) . " faults scheduled, see $work/schedule.txt");

############################################################################
# the workload
############################################################################

my $stopfile = "$work/stop";
my @clients;
for my $id (1 .. $nclients)
{
	my $t = IPC::Run::timeout($seconds + 4 * $timeout);
	my $h = IPC::Run::start(
		[ 'perl', "$FindBin::RealBin/../chaos/chaos_client.pl",
		  '--id', $id, '--seed', $seed + $id,
		  '--leader', $leader->connstr('postgres') . " application_name=chaos_client_$id",
		  (map { ('--follower', "$_=" . $fol{$_}->connstr('postgres')) } @fnames),
		  '--ledger', "$work/ledger.$id", '--stop', $stopfile,
		  '--max-seconds', $seconds + 3 * $timeout, '--timeout', $timeout ],
		'>', "$work/client.$id.out", '2>', "$work/client.$id.err", $t);
	push @clients, [ $h, $t ];
}

############################################################################
# chaos
############################################################################

$t0 = now();
my $next_probe = 0;
for my $ev (@schedule, { at => $seconds, kind => 'end' })
{
	while ((my $left = $t0 + $ev->{at} - now()) > 0)
	{
		heal_due();
		if (now() >= $next_probe)
		{
			probe();
			$next_probe = now() + 1;
		}
		Time::HiRes::sleep(min(0.1, $left)) if $t0 + $ev->{at} > now();
	}
	last if $ev->{kind} eq 'end';
	heal_due();
	inject($ev);
}

############################################################################
# heal, stop the clients, catch up
############################################################################

heal_due(1);
note_event('healed');
reap_background(1);
for my $n ($leader, map { $fol{$_} } @fnames)
{
	$n->poll_query_until('postgres', 'SELECT 1', '1')
	  or die $n->name . ' does not accept connections';
}
probe();
PostgreSQL::Test::Utils::append_to_file($stopfile, "stop\n");
for my $c (@clients)
{
	my ($h, $t) = @$c;
	$t->start($timeout);
	eval { $h->finish; 1 } or diag("a client did not stop: $@");
}
note_event('clients stopped');
wait_catchup($leader)
  or diag("repl.status:\n" . $leader->safe_psql('postgres',
	'SELECT node_name, state, sync_state, applied_position, lag_changes, last_error FROM repl.status'));

############################################################################
# checks
############################################################################

# every table identical on every node
for my $f (@fnames)
{
	compare_nodes($leader, $fol{$f}, $_, $tables{$_}) for sort keys %tables;
}

# the clients' ledgers against the nodes' ledger tables
my %entry;
my %outcomes;
my %check;
my @lines;
for my $id (1 .. $nclients)
{
	open my $fh, '<', "$work/ledger.$id" or die "ledger.$id: $!";
	while (<$fh>)
	{
		my ($txn, $outcome, $sync, $sc, $chk) = split ' ';
		$entry{$txn} = $outcome;
		$outcomes{$outcome}++;
		$check{ $chk =~ /^ok:/ ? 'ok' : $chk }++;
		push @lines, $_ if $chk eq 'MISSING';
	}
	close $fh;
}
my @acked = grep { $entry{$_} =~ /^[AW]$/ } keys %entry;
diag(sprintf('transactions: %d acknowledged, %d with a WARNING, %d rolled back, %d unknown, %d hung',
	map { $outcomes{$_} // 0 } qw(A W R U T)));
diag(sprintf('sync check right after COMMIT: %d on a follower, %d missing, %d unknown, %d not checked',
	map { $check{$_} // 0 } ('ok', 'MISSING', 'unknown', '-')));
ok(@acked > 100, scalar(@acked) . ' transactions were acknowledged');

for my $n ($leader, map { $fol{$_} } @fnames)
{
	my %have = map { $_ => 1 } split /\n/,
	  $n->safe_psql('postgres', 'SELECT txn_id FROM ledger ORDER BY txn_id');
	my @lost = sort grep { !$have{$_} } @acked;
	is(scalar(@lost), 0, 'every acknowledged commit is on ' . $n->name)
	  or diag('lost: ' . join(' ', @lost[ 0 .. min(19, $#lost) ]));
	my @ghost = sort grep { $entry{$_} eq 'R' } keys %have;
	is(scalar(@ghost), 0, 'no rolled-back transaction is on ' . $n->name)
	  or diag('present: ' . join(' ', @ghost[ 0 .. min(19, $#ghost) ]));
	my @unknown = sort grep { !exists $entry{$_} } keys %have;
	is(scalar(@unknown), 0, 'every transaction on ' . $n->name . ' was run by a client')
	  or diag('unexpected: ' . join(' ', @unknown[ 0 .. min(19, $#unknown) ]));
	is($n->safe_psql('postgres',
			"SELECT (SELECT sum(n) FROM counter) = (SELECT count(*) FROM ledger) AND (SELECT sum(bal) FROM acct) = $acct_total"),
		't', 'counters match the ledger and the balance is kept on ' . $n->name);
}
is($check{MISSING} // 0, 0,
	'every acknowledged synchronous commit was on a follower when COMMIT returned')
  or diag(join('', map {
		my ($t_start, $t_end) = (split ' ')[6, 7];
		"missing right after COMMIT: $_" . join('', map { sprintf("    %+.2f s: %s\n", $_->[0] - $t_end, $_->[1]) }
			grep { $_->[0] >= $t_start - 5 && $_->[0] <= $t_end + 2 && $_->[1] !~ /^VIOLATION/ } @events)
	} @lines[ 0 .. min(19, $#lines) ]));
is($outcomes{T} // 0, 0, 'no commit hung (strict mode, every fault heals)');
is(scalar(@violations), 0, "$probes consistency probes of the followers during the run")
  or diag(join("\n", @violations[ 0 .. min(19, $#violations) ]));

# the log is cut back once the followers have it
$leader->poll_query_until('postgres', 'SELECT count(*) < 100 FROM repl.log')
  or diag('repl.log still holds ' . $leader->safe_psql('postgres', 'SELECT count(*) FROM repl.log') . ' rows');
is($leader->safe_psql('postgres', 'SELECT count(*) < 100 FROM repl.log'), 't',
	"the leader's log is truncated after catch-up (at most $max_log rows during the run)");

# the servers' logs: no ERROR but the expected ones, no unexpected signal
# (deadlocks between the clients' transactions are theirs; one that involves
# the supervisor is a bug)
my %expected_error = (
	leader => qr/ chaos_client_\d+ ERROR:  deadlock detected$/,
	f1 => qr/^$/,
	f2 => qr/^$/);
for my $n ($leader, map { $fol{$_} } @fnames)
{
	my @bad;
	open my $fh, '<', $n->logfile or die $n->logfile . ": $!";
	while (my $line = <$fh>)
	{
		if ($line =~ /\b(ERROR|PANIC):\s+(.*)/)
		{
			next if $1 eq 'ERROR' && $line =~ $expected_error{ $n->name };
			# repl.resync_follower meeting a network fault
			next if $1 eq 'ERROR' && $line =~ / chaos_resync ERROR:  could not (?:connect to|detach) follower/;
			# the follower detached by resync_follower before the leader
			# commits the copy: the sender's batch or copy meets it
			next if $1 eq 'ERROR' && $resyncs
			  && $2 =~ /^(?:batch from "leader" rejected: this node is not a follower|node "\(none\)" is not a follower of "leader"|deadlock detected)/;
			push @bad, $line;
		}
		elsif ($line =~ /terminated by signal (\d+)/ && $1 != 9)
		{
			push @bad, $line;
		}
		elsif ($line =~ /repl_ext: follower "[^"]+": apply failed: (.*)/
			&& $1 !~ /server closed the connection|could not (?:send|receive)|connection|terminating|EOF|SSL|shutting down|recovery mode|starting up|no reply for \d+ ms|no answer within/i)
		{
			push @bad, $line
			  unless $resyncs && $1 =~ /^(?:batch from "leader" rejected: this node is not a follower|deadlock detected)/;
		}
	}
	close $fh;
	is(scalar(@bad), 0, 'no unexpected error in the log of ' . $n->name)
	  or diag(join('', @bad[ 0 .. min(29, $#bad) ]));
}

my $moves = () = PostgreSQL::Test::Utils::slurp_file($leader->logfile)
  =~ /is now synchronous/g;
diag('faults: ' . join(', ', map { "$_ $faults{$_}" } sort keys %faults)
	  . '; skipped: ' . (join(', ', map { "$_ $skipped{$_}" } sort keys %skipped) || 'none'));
diag("synchronous role moved $moves times; repl.log peaked at $max_log rows; seed $seed");
diag(sprintf('repl.resync_follower: %d calls, longest %.1f s', scalar(@resync_secs),
	List::Util::max(0, @resync_secs))) if @resync_secs;

diag("WARNING: $libfile changed during the run (make install?): the servers may have run a mix of builds")
  if ((stat $libfile)[9] // 0) != $lib_mtime;

$_->stop for values %proxy;
done_testing();
