# Chaos: three nodes under a randomized concurrent workload while faults are
# injected at random, from a seed printed at the start.
#
# n1 leads first; n2 is its synchronous follower, n3 an asynchronous one.
# Every node reaches every other through a TCP proxy of its own for that
# pair (test/chaos/ReplExtProxy.pm): the conninfos are "service=n2" and
# each server gets its own PGSERVICEFILE, so n1 reaches n2 through proxy
# n1>n2 and n3 reaches n2 through n3>n2.  The network between two nodes
# can stall, delay, reset, blackhole or refuse, and one node can be cut
# off from all others.  Faults: kill -9 / SIGTERM of a sender on the leader
# (kill -9 means a crash restart of the whole leader), SIGTERM of the
# supervisor (restarted by the postmaster 5 s later), kill -9 / SIGTERM of
# the apply backend on a follower, preferably while it applies (kill -9:
# crash restart of the follower), immediate stop and later start of a
# follower, immediate restart of the leader, a promote while the old leader
# is partitioned (below); and, in between, an operation that must survive
# all that: repl.resync_follower (a copy from scratch).  Every kind happens
# at least once per run.
#
# Promote while the old leader is partitioned: every proxy to and from the
# leader turns blackhole (the clients still reach it directly); a follower
# is promoted with repl.promote() (by turns the asynchronous one, which
# must first take what it lacks from the synchronous one, and the
# synchronous one); the partition holds a little longer while the
# clients, which list all three nodes with
# target_session_attrs=read-write (repl_ext.follower_read_only = on), find
# the new leader; then it heals, the old leader is fenced at its first
# contact and repl.rejoin() makes it a follower of the new one.  Commits
# the old leader took during the partition wait (strict) and are released
# with a WARNING when it is fenced.
#
# Ledger semantics.  repl_ext.synchronous_mode is strict on every node (a
# commit returns only once the synchronous follower applied it; with none
# confirming it waits), synchronous_failover_timeout 1 s (the role moves to
# the other follower).  Each client (test/chaos/chaos_client.pl) writes one
# line per transaction: acknowledged (COMMIT returned success), with a
# WARNING, rolled back (an ERROR before COMMIT), or unknown (connection
# lost), and the node and epoch it ran on.  Every transaction inserts its id
# into the replicated table "ledger" (primary key) and adds 1 to its
# client's row of "counter"; transfers keep sum(acct.bal) constant.
# Checked:
#  - during the run, on each node at any moment: sum(bal) is the constant
#    and sum(counter.n) = count(ledger) (whole transactions only); on the
#    leader, never two senders for one follower;
#  - right after an acknowledged commit that waited (the transaction saw a
#    synchronous follower in repl.status before it wrote, and did not set
#    repl_ext.synchronous_commit = off; commits right after a leader start
#    do not wait, as the README says): its id is on another node already;
#  - after healing and catch-up: every table identical on all nodes, which
#    all follow the leader of the last epoch; every acknowledged commit on
#    every node, except those an old epoch's leader acknowledged without
#    waiting (synchronous_commit off, no synchronous follower) or with a
#    WARNING, which a failover may lose as the README says; no rolled-back
#    one anywhere, nothing that no client ran; no batch applied twice (the
#    ledger's key would stop apply; the counter would not match); the
#    leader's log shrinks back (log_rotate_interval 2 s); no ERROR in any
#    log except expected ones, no process killed by a signal we did not
#    send.
#
#   CHAOS_SECONDS (75), CHAOS_SEED (20261123; CHAOS_RANDOM_SEED=1: a new
#   one each run), CHAOS_CLIENTS (4), CHAOS_RESYNC (1; 0: no resync faults),
#   CHAOS_LEADER_RESTART (1: include leader restarts; 0: not),
#   CHAOS_PROMOTE (1: include promotes; 0: not),
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
my $promotes = $ENV{CHAOS_PROMOTE} // 1;
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
srand($seed);

# a `make install` during the run rewrites the library under the running
# servers (install truncates it in place): say so at the end
my $libfile = `pg_config --pkglibdir`;
chomp $libfile;
$libfile .= '/repl_ext.so';
my $lib_mtime = (stat $libfile)[9] // 0;
diag("chaos seed $seed: $seconds s, $nclients clients, leader restarts "
	  . ($leader_restarts ? 'on' : 'off') . ', promotes ' . ($promotes ? 'on' : 'off')
	  . " (replay: CHAOS_SEED=$seed CHAOS_SECONDS=$seconds)");

############################################################################
# cluster: n1 (leader), n2 (synchronous), n3; a proxy for every pair
############################################################################

my @names = qw(n1 n2 n3);
my $work = $PostgreSQL::Test::Utils::tmp_check . '/chaos';
mkdir $work;
# how each server reaches the others: its own service file (libpq reads it
# at every connection, so it may be written after the server started)
my %svc = map { $_ => "$work/pg_service.$_.conf" } @names;
my %node;
for my $n (@names)
{
	local $ENV{PGSERVICEFILE} = $svc{$n};
	# any node may lead: all have the leader's settings
	$node{$n} = new_node($n,
		'restart_after_crash' => 'on',
		'listen_addresses' => '127.0.0.1',
		'log_statement' => 'none',
		'repl_ext.network_timeout' => '3s',
		'repl_ext.retry_interval' => '500ms',
		'repl_ext.follower_read_only' => 'on',
		'repl_ext.synchronous_mode' => 'strict',
		'repl_ext.synchronous_failover_timeout' => '1s',
		'repl_ext.log_rotate_interval' => '2s');
}
my %proxy;
for my $s (@names)
{
	my $conf = '';
	for my $d (@names)
	{
		my $port = $node{$d}->port;
		if ($s ne $d)
		{
			$proxy{"$s>$d"} = ReplExtProxy->start(
				name => "$s>$d",
				target_port => $node{$d}->port,
				log => "$work/proxy.log",
				max_lifetime => $seconds + 4 * $timeout + 600);
			$port = $proxy{"$s>$d"}->port;
		}
		$conf .= "[$d]\nhost=127.0.0.1\nport=$port\ndbname=postgres\n\n";
	}
	PostgreSQL::Test::Utils::append_to_file($svc{$s}, $conf);
}

# a node (re)started: with its service file
sub start_node
{
	my ($n) = @_;
	local $ENV{PGSERVICEFILE} = $svc{$n};
	$node{$n}->start;
	return;
}

# who leads now, and the epochs so far
my $lname = 'n1';
my @epochs = ([ 1, 'n1' ]);
sub leader { return $node{$lname} }
sub followers { return grep { $_ ne $lname } @names }

my $leader = leader();
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
$leader->safe_psql('postgres', "SELECT repl.init_leader('n1', 'service=n1')");
$leader->safe_psql('postgres',
	join('; ', map { "SELECT repl.add_table('$_')" } sort keys %tables));
$leader->safe_psql('postgres',
	"SELECT repl.add_follower('n2', 'service=n2', synchronous => true)");
$leader->safe_psql('postgres', "SELECT repl.add_follower('n3', 'service=n3')");
wait_catchup($leader);
$leader->poll_query_until('postgres',
	"SELECT string_agg(node_name || '=' || sync_state, ' ' ORDER BY node_name) FROM repl.status",
	'n2=sync n3=async')
  or die 'n2 never became synchronous';
compare_nodes($leader, $node{$_}, 'item', 'id') for followers();
my $acct_total = 200 * 1000;

############################################################################
# helpers
############################################################################

# A query on a node that may be down or restarting: its output, or undef.
sub try_query
{
	my ($node, $sql, $secs) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	# psql reads the query from stdin: when the node is restarting after a
	# crash (apply_kill9), psql may exit before IPC::Run has written it, and
	# IPC::Run dies with "ack Broken pipe"; that is "no answer" here
	my $rc = eval {
		$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
			timeout => $secs // 15, timed_out => \$timed_out);
	};
	return undef if !defined $rc || $rc != 0 || $timed_out;
	return $out;
}

sub now { return Time::HiRes::time() }

my %faults;       # kind => count injected
my %skipped;      # kind => count skipped (no target at that moment)
my @violations;   # consistency probe failures during the run
my %down;         # node => when to start it again
my %net;          # proxy "a>b" => when to put it back to pass
my @background;   # repl.resync_follower and repl.rejoin calls still running
my @resync_secs;  # how long each resync took
my $resyncs = 0;
my %rejoin;       # former leader => { leader, next, tries } until it rejoined
my @promotes;     # [ seconds, text ] of each promote
my @promote_failures;
my @promote_refusals;   # asynchronous follower refused, synchronous promoted
my $promote_wanted = 0;
my @events;       # [ time, text ] of everything injected
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
SET default_transaction_read_only = off;
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
	my ($pair, $mode, $arg) = @_;
	if ($mode eq 'delay')
	{
		$proxy{$pair}->delay($arg);
	}
	else
	{
		$proxy{$pair}->command($mode);
	}
	return;
}

# An administrative call on node $n, in the background.
sub run_background
{
	my ($kind, $target, $n, $sql) = @_;
	my $i = ++$resyncs;
	my $b = { kind => $kind, what => "$kind of $target", target => $target, start => now(),
		out => "$work/$kind.$target.$i.out", err => "$work/$kind.$target.$i.err",
		timer => IPC::Run::timeout(3 * $timeout) };
	$b->{h} = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node{$n}->connstr('postgres') . ' application_name=chaos_admin',
		  '-c', $sql ],
		'>', $b->{out}, '2>', $b->{err}, $b->{timer});
	push @background, $b;
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
		$ok &&= $b->{h}->result == 0;
		my $secs = now() - $b->{start};
		my $err = -e $b->{err} ? PostgreSQL::Test::Utils::slurp_file($b->{err}) : '';
		my $out = -e $b->{out} ? PostgreSQL::Test::Utils::slurp_file($b->{out}) : '';
		$err =~ s/\s+/ /g;
		$out =~ s/\s+/ /g;
		push @resync_secs, $secs if $b->{kind} eq 'resync';
		if ($b->{kind} eq 'rejoin')
		{
			if ($ok)
			{
				delete $rejoin{ $b->{target} };
			}
			else
			{
				$rejoin{ $b->{target} }{next} = now() + 1;
			}
		}
		note_event(sprintf('%s: %s after %.1f s%s%s', $b->{what},
			$ok ? 'done' : 'failed', $secs, $ok && $out =~ /\S/ ? " ($out)" : '',
			$err =~ /ERROR|error|WARNING/ ? ": $err" : ''));
		$b->{done} = 1;
	}
	@background = grep { !$_->{done} } @background;
	return;
}

# End the faults whose time is up; call repl.rejoin on former leaders.
sub heal_due
{
	my ($all) = @_;
	reap_background();
	for my $pair (sort keys %net)
	{
		next unless $all || $net{$pair} <= now();
		set_net($pair, 'pass');
		delete $net{$pair};
		note_event("proxy $pair: pass");
	}
	for my $n (sort keys %down)
	{
		next unless $all || $down{$n} <= now();
		start_node($n);
		delete $down{$n};
		note_event("$n started");
	}
	for my $o (sort keys %rejoin)
	{
		my $r = $rejoin{$o};
		next if $down{$o} || $r->{next} > now() || grep { $_->{target} eq $o } @background;
		$r->{tries}++;
		run_background('rejoin', $o, $o,
			"SELECT mode || ' ' || coalesce(lost_changes::text, '?') FROM repl.rejoin('service=$r->{leader}')");
		note_event("rejoin of $o: called (follow $r->{leader}, try $r->{tries})");
	}
	return;
}

# Consistency of each node as it is right now (one snapshot each).
sub probe
{
	for my $n (@names)
	{
		next if $down{$n};
		my $out = try_query($node{$n},
			'SELECT (SELECT sum(bal) FROM acct), (SELECT coalesce(sum(n), 0) FROM counter),'
			  . ' (SELECT count(*) FROM ledger)', 5);
		next unless defined $out;
		$probes++;
		my ($bal, $cnt, $led) = split /\|/, $out;
		if ($bal != $acct_total || $cnt != $led)
		{
			push @violations, sprintf('%.1f s: %s has sum(bal) %s (expected %s), sum(counter) %s, count(ledger) %s',
				now() - $t0, $n, $bal, $acct_total, $cnt, $led);
			note_event("VIOLATION: $violations[-1]");
		}
	}
	# one sender per follower, ever
	my $dup = try_query(leader(), q{
SELECT string_agg(application_name || ': pids ' || pids, '; ')
  FROM (SELECT application_name, string_agg(pid::text, ',' ORDER BY pid) AS pids
          FROM pg_stat_activity
         WHERE backend_type = 'repl_ext sender' AND application_name LIKE 'repl_ext sender for %'
         GROUP BY 1 HAVING count(*) > 1) d}, 5);
	if (defined $dup && $dup ne '')
	{
		push @violations, sprintf('%.1f s: two senders for one follower on %s: %s', now() - $t0, $lname, $dup);
		note_event("VIOLATION: $violations[-1]");
	}
	my $log = try_query(leader(), 'SELECT count(*) FROM repl.log', 5);
	$max_log = $log if defined $log && $log =~ /^\d+$/ && $log > $max_log;
	return;
}

# Whether a promote may start now: every fault healed, no call running,
# every follower streaming and one synchronous.  (Promoting a follower
# while the one that has every acknowledged commit cannot be reached would
# lose them: the README says to promote the synchronous follower.)
sub promote_ready
{
	return 0 if %down || %net || @background || %rejoin;
	my $st = try_query(leader(),
		"SELECT count(*) FILTER (WHERE state = 'streaming') || ' ' || count(*) FILTER (WHERE sync_state = 'sync') FROM repl.status", 5);
	return defined $st && $st eq scalar(followers()) . ' 1';
}

# Sleep, probing the nodes now and then.
sub wait_probing
{
	my ($secs) = @_;
	my $until = now() + $secs;
	while (now() < $until)
	{
		probe();
		Time::HiRes::sleep(min(0.3, List::Util::max(0, $until - now())));
	}
	return;
}

# Cut the leader off, promote a follower, heal; the old leader rejoins
# later (heal_due).
sub promote_partitioned
{
	my $old = $lname;
	my @pairs = grep { (split />/)[0] eq $old || (split />/)[1] eq $old } sort keys %proxy;
	set_net($_, 'blackhole') for @pairs;
	note_event("partition: $old cut off from the other nodes (" . join(' ', @pairs) . ': blackhole)');
	# the synchronous follower as the old leader sees it, now that nothing
	# reaches it any more
	Time::HiRes::sleep(0.3);
	my $sync = try_query($node{$old},
		"SELECT coalesce(string_agg(node_name, ','), '') FROM repl.status WHERE sync_state = 'sync'", 5) // '';
	# by turns: the asynchronous follower (which must first take from the
	# synchronous one what it lacks), then the synchronous one
	my @f = followers();
	my ($other) = grep { $_ ne $sync } @f;
	my $target = @promotes % 2 == 0 && defined $other ? $other
	  : $sync =~ /^\w+$/ ? $sync : $f[ int(rand(@f)) ];
	my ($out, $err, $start, $ok, $secs);
	my $try = sub {
		($out, $err) = ('', '');
		$start = now();
		$ok = eval {
			IPC::Run::run(
				[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d',
				  $node{$target}->connstr('postgres') . ' application_name=chaos_admin',
				  '-c', 'SELECT repl.promote()' ],
				'>', \$out, '2>', \$err, IPC::Run::timeout(2 * $timeout));
			1;
		};
		$secs = now() - $start;
		$err =~ s/\s+/ /g;
	};
	$try->();
	# The asynchronous follower cannot take what it lacks from the
	# synchronous one when that one was copied (resync, rejoin) after the
	# position it lacks: promote refuses, as documented, naming the more
	# up-to-date follower; a DBA then promotes that one, and so does this.
	if (!($ok && $out =~ /^\d+$/m) && $sync =~ /^\w+$/ && $target ne $sync
		&& $err =~ /follower "\Q$sync\E" is more up to date than this node/)
	{
		push @promote_refusals, sprintf('%.1f s: %s: %s', now() - $t0, $target, $err);
		note_event("promote of $target refused as documented ($err); promoting $sync instead");
		$target = $sync;
		$try->();
	}
	if ($ok && $out =~ /^(\d+)$/m)
	{
		my $epoch = $1;
		push @epochs, [ $epoch, $target ];
		$lname = $target;
		push @promotes, [ $secs, "$target (synchronous: " . ($sync || 'none') . ") in epoch $epoch" ];
		note_event(sprintf('%s promoted in %.1f s: leader of epoch %d (the synchronous follower was %s)%s',
			$target, $secs, $epoch, $sync || 'none', $err =~ /\S/ ? ": $err" : ''));
		$rejoin{$old} = { leader => $target, next => 0, tries => 0 };
		# the clients find the new leader while the old one is cut off
		wait_probing(0.5 + rand(3.5));
	}
	else
	{
		push @promote_failures, sprintf('%.1f s: promote of %s failed after %.1f s: %s',
			now() - $t0, $target, $secs, $err || $@);
		note_event($promote_failures[-1]);
	}
	set_net($_, 'pass') for @pairs;
	note_event("partition of $old healed");
	$rejoin{$old}{next} = now() + rand(1.5) if $rejoin{$old};
	$faults{promote}++;
	return;
}

# One fault.
sub inject
{
	my ($ev) = @_;
	my ($kind, $dur) = @$ev{qw(kind dur)};
	my @f = followers();
	my $f = $f[ int($ev->{pick} * @f) ];
	my $pair = "$lname>$f";
	if ($kind =~ /^sender_(kill9|term)$/)
	{
		my $pid = backend_pid(leader(),
			"backend_type = 'repl_ext sender' AND application_name = 'repl_ext sender for $f'");
		return $skipped{$kind}++ unless $pid;
		kill($1 eq 'kill9' ? 'KILL' : 'TERM', $pid);
		note_event("$kind: sender for $f (pid $pid) on the leader $lname");
	}
	elsif ($kind eq 'supervisor_term')
	{
		# exits with code 1; the postmaster starts it again after 5 s
		my $pid = backend_pid(leader(), "backend_type = 'repl_ext supervisor'");
		return $skipped{$kind}++ unless $pid;
		kill('TERM', $pid);
		note_event("supervisor_term: supervisor (pid $pid) on the leader $lname");
	}
	elsif ($kind =~ /^apply_(kill9|term)$/)
	{
		return $skipped{$kind}++ if $down{$f};
		my $pid = backend_pid($node{$f}, "application_name = 'repl_ext:$f'");
		return $skipped{$kind}++ unless $pid;
		kill($1 eq 'kill9' ? 'KILL' : 'TERM', $pid);
		note_event("$kind: apply backend on $f (pid $pid)");
	}
	elsif ($kind eq 'follower_restart')
	{
		return $skipped{$kind}++ if $down{$f};
		$node{$f}->stop('immediate');
		$down{$f} = now() + $dur;
		note_event(sprintf('%s stopped (immediate) for %.1f s', $f, $dur));
	}
	elsif ($kind eq 'resync')
	{
		# not a fault: an operation that must survive the others (a copy
		# from scratch while the workload runs and the network misbehaves).
		# In the background: it may wait for a fault to end.
		return $skipped{$kind}++ if $rejoin{$f} || grep { $_->{target} eq $f } @background;
		run_background('resync', $f, $lname, "SELECT repl.resync_follower('$f')");
		note_event("resync of $f: called on $lname");
	}
	elsif ($kind eq 'leader_restart')
	{
		leader()->stop('immediate');
		start_node($lname);
		note_event("leader $lname restarted (immediate stop)");
	}
	elsif ($kind eq 'net_reset')
	{
		$proxy{$pair}->reset;
		note_event("proxy $pair: reset all connections");
	}
	elsif ($kind =~ /^net_(stall|delay|blackhole|refuse)$/)
	{
		set_net($pair, $1, $ev->{ms});
		$net{$pair} = now() + $dur;
		note_event(sprintf('proxy %s: %s%s for %.1f s', $pair, $1,
			$1 eq 'delay' ? " $ev->{ms} ms" : '', $dur));
	}
	elsif ($kind eq 'net_stall_both')
	{
		for my $g (@f)
		{
			set_net("$lname>$g", 'stall');
			$net{"$lname>$g"} = now() + $dur;
		}
		note_event(sprintf('proxies %s: stall for %.1f s', join(' ', map { "$lname>$_" } @f), $dur));
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
	($leader_restarts ? ([ leader_restart => 0.5 ]) : ()),
	($promotes ? ([ promote => 0.3 ]) : ()));
# CHAOS_KINDS="net_stall=1,resync=2": only these kinds, with these weights
if ($ENV{CHAOS_KINDS})
{
	my %known = map { $_->[0] => 1 } @kinds, [ 'leader_restart' ], [ 'resync' ], [ 'promote' ];
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
		pick => rand(),
		dur => 0.3 + rand(4.7),
		ms => 10 + int(rand(390)) };
}
# every kind at least once (in place of kinds drawn more than once), and
# a promote in the first half, so that the new epoch sees faults too
my %drawn;
$drawn{ $_->{kind} }++ for @schedule;
$drawn{promote} = 0
  if $promotes && !grep { $_->{kind} eq 'promote' && $_->{at} < $seconds / 2 } @schedule;
for my $k (map { $_->[0] } @kinds)
{
	next if $drawn{$k};
	my @spare = grep { $drawn{ $schedule[$_]{kind} } > 1 && $schedule[$_]{kind} ne $k
		  && ($k ne 'promote' || $schedule[$_]{at} < $seconds / 2) } 0 .. $#schedule;
	next unless @spare;
	my $i = $spare[ int(rand(@spare)) ];
	$drawn{ $schedule[$i]{kind} }--;
	$schedule[$i]{kind} = $k;
	$drawn{$k}++;
}
PostgreSQL::Test::Utils::append_to_file("$work/schedule.txt",
	join('', map { sprintf("%7.2f %-17s %.2f %.2f %d\n", @$_{qw(at kind pick dur ms)}) } @schedule));
note(scalar(@schedule) . " faults scheduled, see $work/schedule.txt");

############################################################################
# the workload
############################################################################

my $stopfile = "$work/stop";
my @clients;
for my $id (1 .. $nclients)
{
	# every node, in an order of the client's own: libpq takes the first
	# that accepts writes
	my @order = map { $names[ ($id - 1 + $_) % @names ] } 0 .. $#names;
	my $conn = 'host=' . join(',', map { $node{$_}->host } @order)
	  . ' port=' . join(',', map { $node{$_}->port } @order)
	  . " dbname=postgres target_session_attrs=read-write connect_timeout=5 application_name=chaos_client_$id";
	my $t = IPC::Run::timeout($seconds + 4 * $timeout);
	my $h = IPC::Run::start(
		[ 'perl', "$FindBin::RealBin/../chaos/chaos_client.pl",
		  '--id', $id, '--seed', $seed + $id,
		  '--leader', $conn,
		  (map { ('--node', "$_=" . $node{$_}->connstr('postgres')) } @names),
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
		if ($promote_wanted && promote_ready())
		{
			promote_partitioned();
			$promote_wanted = 0;
			next;
		}
		if (now() >= $next_probe)
		{
			probe();
			$next_probe = now() + 1;
		}
		Time::HiRes::sleep(min(0.1, $left)) if $t0 + $ev->{at} > now();
	}
	last if $ev->{kind} eq 'end';
	heal_due();
	if ($ev->{kind} eq 'promote' && !$promote_wanted)
	{
		# once every fault has healed (nothing else starts meanwhile)
		$promote_wanted = 1;
		note_event('promote: waiting for every fault to heal');
		next;
	}
	if ($promote_wanted)
	{
		$skipped{ $ev->{kind} }++;
		next;
	}
	inject($ev);
}
$skipped{promote}++ if $promote_wanted;

############################################################################
# heal, rejoin, stop the clients, catch up
############################################################################

heal_due(1);
note_event('healed');
reap_background(1);
my $rejoin_deadline = now() + $timeout;
while (%rejoin && now() < $rejoin_deadline)
{
	heal_due();
	Time::HiRes::sleep(0.2);
}
reap_background(1);
is(join(' ', sort keys %rejoin), '', 'every former leader rejoined');
for my $n (@names)
{
	my $up = 0;
	for (1 .. 10 * $timeout)
	{
		last if $up = defined try_query($node{$n}, 'SELECT 1', 5);
		Time::HiRes::sleep(0.1);
	}
	$up or die "$n does not accept connections";
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
$leader = leader();
wait_catchup($leader)
  or diag("repl.status:\n" . $leader->safe_psql('postgres',
	'SELECT node_name, state, sync_state, applied_position, last_error FROM repl.status'));

############################################################################
# checks
############################################################################

# one leader, in the last epoch; every other node follows it
my $final_epoch = $epochs[-1][0];
is($leader->safe_psql('postgres', 'SELECT role, epoch FROM repl.local_node'),
	"leader|$final_epoch", "$lname leads the last epoch ($final_epoch)");
for my $f (followers())
{
	is($node{$f}->safe_psql('postgres', 'SELECT role, leader_name, epoch FROM repl.local_node'),
		"follower|$lname|$final_epoch", "$f follows $lname in epoch $final_epoch");
}

# every table identical on every node
for my $f (followers())
{
	compare_nodes($leader, $node{$f}, $_, $tables{$_}) for sort keys %tables;
}

# the clients' ledgers against the nodes' ledger tables
my %entry;
my %lossable;
my %outcomes;
my %check;
my %on_epoch;
my @lines;
for my $id (1 .. $nclients)
{
	open my $fh, '<', "$work/ledger.$id" or die "ledger.$id: $!";
	while (<$fh>)
	{
		my ($txn, $outcome, $sync, $sc, $chk, $ms, $start, $end, $where) = split ' ';
		$entry{$txn} = $outcome;
		$outcomes{$outcome}++;
		$check{ $chk =~ /^ok:/ ? 'ok' : $chk }++;
		push @lines, $_ if $chk eq 'MISSING';
		my ($epoch) = ($where // '') =~ /\@(\d+)$/;
		$on_epoch{ $epoch // '?' }++ if $outcome =~ /^[AW]$/;
		# what a leader of an older epoch acknowledged without waiting for
		# a synchronous follower, or with a WARNING (not replicated), may
		# be lost by a failover
		$lossable{$txn} = 1
		  if $outcome =~ /^[AW]$/ && defined $epoch && $epoch < $final_epoch
		  && ($outcome eq 'W' || $sc eq 'off' || $sync eq '-');
	}
	close $fh;
}
my @acked = grep { $entry{$_} =~ /^[AW]$/ } keys %entry;
diag(sprintf('transactions: %d acknowledged, %d with a WARNING, %d rolled back, %d unknown, %d hung',
	map { $outcomes{$_} // 0 } qw(A W R U T)));
diag('acknowledged per epoch: ' . join(', ', map { "$_: $on_epoch{$_}" } sort keys %on_epoch));
diag(sprintf('sync check right after COMMIT: %d on another node, %d missing, %d unknown, %d not checked',
	map { $check{$_} // 0 } ('ok', 'MISSING', 'unknown', '-')));
ok(@acked > 100, scalar(@acked) . ' transactions were acknowledged');

my %lost_ok;
for my $n (@names)
{
	my %have = map { $_ => 1 } split /\n/,
	  $node{$n}->safe_psql('postgres', 'SELECT txn_id FROM ledger ORDER BY txn_id');
	my @gone = grep { !$have{$_} } @acked;
	$lost_ok{$_} = 1 for grep { $lossable{$_} } @gone;
	my @lost = sort grep { !$lossable{$_} } @gone;
	is(scalar(@lost), 0, "every acknowledged commit is on $n")
	  or diag('lost: ' . join(' ', @lost[ 0 .. min(19, $#lost) ]));
	my @ghost = sort grep { $entry{$_} eq 'R' } keys %have;
	is(scalar(@ghost), 0, "no rolled-back transaction is on $n")
	  or diag('present: ' . join(' ', @ghost[ 0 .. min(19, $#ghost) ]));
	my @unknown = sort grep { !exists $entry{$_} } keys %have;
	is(scalar(@unknown), 0, "every transaction on $n was run by a client")
	  or diag('unexpected: ' . join(' ', @unknown[ 0 .. min(19, $#unknown) ]));
	is($node{$n}->safe_psql('postgres',
			"SELECT (SELECT sum(n) FROM counter) = (SELECT count(*) FROM ledger) AND (SELECT sum(bal) FROM acct) = $acct_total"),
		't', "counters match the ledger and the balance is kept on $n");
}
diag(scalar(keys %lost_ok) . ' transactions acknowledged by a former leader without waiting (or with a WARNING) were lost in a failover, as documented')
  if %lost_ok;
is($check{MISSING} // 0, 0,
	'every acknowledged synchronous commit was on another node when COMMIT returned')
  or diag(join('', map {
		my ($t_start, $t_end) = (split ' ')[6, 7];
		"missing right after COMMIT: $_" . join('', map { sprintf("    %+.2f s: %s\n", $_->[0] - $t_end, $_->[1]) }
			grep { $_->[0] >= $t_start - 5 && $_->[0] <= $t_end + 2 && $_->[1] !~ /^VIOLATION/ } @events)
	} @lines[ 0 .. min(19, $#lines) ]));
is($outcomes{T} // 0, 0, 'no commit hung (strict mode, every fault heals)');
is(scalar(@violations), 0, "$probes consistency probes of the nodes during the run")
  or diag(join("\n", @violations[ 0 .. min(19, $#violations) ]));
is(scalar(@promote_failures), 0, 'every promote succeeded (' . scalar(@promotes) . ')')
  or diag(join("\n", @promote_failures));
diag('promote of the asynchronous follower refused (the synchronous one promoted instead): '
	. join('; ', @promote_refusals)) if @promote_refusals;

# the log is cut back once the followers have it
$leader->poll_query_until('postgres', 'SELECT count(*) < 100 FROM repl.log')
  or diag('repl.log still holds ' . $leader->safe_psql('postgres', 'SELECT count(*) FROM repl.log') . ' rows');
is($leader->safe_psql('postgres', 'SELECT count(*) < 100 FROM repl.log'), 't',
	"the leader's log is truncated after catch-up (at most $max_log rows during the run)");

# the servers' logs: no ERROR but the expected ones, no unexpected signal
# (deadlocks between the clients' transactions are theirs; one that involves
# the supervisor is a bug)
my $client_error = qr/ chaos_client_\d+ ERROR:  (?:deadlock detected|cannot modify replicated table "\w+" on a (?:fenced former leader|follower)|cannot execute \w+ in a read-only transaction)$/;
for my $n (@names)
{
	my @bad;
	open my $fh, '<', $node{$n}->logfile or die $node{$n}->logfile . ": $!";
	while (my $line = <$fh>)
	{
		if ($line =~ /\b(ERROR|PANIC):\s+(.*)/)
		{
			next if $1 eq 'ERROR' && $line =~ $client_error;
			# repl.resync_follower or repl.rejoin meeting a network fault or
			# a crash of the other node (called again a second later)
			next if $1 eq 'ERROR' && $line =~ / chaos_admin ERROR:  (?:could not (?:connect to|read the role of) (?:follower|the leader)|lost the connection to node)/;
			# promote of the asynchronous follower refused (promote_partitioned)
			next if $1 eq 'ERROR' && @promote_refusals
			  && $line =~ / chaos_admin ERROR:  follower "\w+" is more up to date than this node/;
			push @bad, $line;
		}
		elsif ($line =~ /terminated by signal (\d+)/ && $1 != 9)
		{
			push @bad, $line;
		}
		elsif ($line =~ /repl_ext: follower "[^"]+": apply failed: (.*)/
			&& $1 !~ /server closed the connection|could not (?:send|receive)|connection|terminating|EOF|SSL|shutting down|recovery mode|starting up|no reply for \d+ ms|no answer within/i)
		{
			push @bad, $line;
		}
	}
	close $fh;
	is(scalar(@bad), 0, "no unexpected error in the log of $n")
	  or diag(join('', @bad[ 0 .. min(29, $#bad) ]));
}

my $moves = 0;
$moves += () = PostgreSQL::Test::Utils::slurp_file($node{$_}->logfile) =~ /is now synchronous/g
  for @names;
diag('faults: ' . join(', ', map { "$_ $faults{$_}" } sort keys %faults)
	  . '; skipped: ' . (join(', ', map { "$_ $skipped{$_}" } sort keys %skipped) || 'none'));
diag("synchronous role moved $moves times; repl.log peaked at $max_log rows; seed $seed");
diag(sprintf('repl.resync_follower: %d calls, longest %.1f s', scalar(@resync_secs),
	List::Util::max(0, @resync_secs))) if @resync_secs;
diag(sprintf('promote with the old leader partitioned: %s', join('; ',
	map { sprintf('%s, %.1f s', $_->[1], $_->[0]) } @promotes))) if @promotes;
diag('epochs: ' . join(' ', map { "$_->[0]:$_->[1]" } @epochs));

diag("WARNING: $libfile changed during the run (make install?): the servers may have run a mix of builds")
  if ((stat $libfile)[9] // 0) != $lib_mtime;

$_->stop for values %proxy;
done_testing();
