#!/usr/bin/perl
# One workload client of the chaos test (test/t/130_chaos.pl): runs
# randomized multi-statement transactions on the leader, one psql per
# transaction (--leader lists every node with
# target_session_attrs=read-write, so a new leader is found after a
# failover), and appends one line per transaction to its ledger file:
#
#   <txn_id> <outcome> <sync> <sync_commit> <check> <ms> <start> <end> <node>@<epoch> [# error]
#
# (start and end: epoch seconds, before psql started and after it exited)
# outcome  A  COMMIT returned success, no WARNING (acknowledged)
#          W  COMMIT returned success with a WARNING (acknowledged, the sync
#             wait ended early: cancel, degrade, fence)
#          R  an ERROR before COMMIT: rolled back, must not exist anywhere
#          U  unknown (connection lost, server restarting): may or may not
#             have committed
#          T  like U, but psql hung past the timeout and was killed
# sync     the followers repl.status called 'sync' inside the transaction,
#          before it wrote ('-' for none): a commit waits only if one is
# sync_commit  on | off (SET LOCAL repl_ext.synchronous_commit = off)
# check    for A with sync_commit on and a synchronous follower: right after
#          COMMIT returned, the txn_id was looked up on the other nodes
#          directly (not through the proxies): ok:<node> (found there),
#          MISSING (all answered, none has it: an acknowledged commit that
#          no follower had applied), unknown (a node did not answer), or
#          '-' (not checked)
# node@epoch  the node the transaction ran on and its epoch then (repl.local_node,
#          read before the transaction wrote; '?' if it did not get that far)
#
# Every transaction increments its client's row of "counter" and inserts
# its txn_id into "ledger" (primary key), so on any node at any time
# sum(counter.n) = count(ledger) (transactions are applied whole) and a
# transaction applied twice would hit the ledger's key.  Transfers between
# rows of "acct" keep sum(bal) constant.
#
# Stops when the stop file exists, after --max-seconds, or when its parent
# is gone.  Random choices come from --seed (the workload is replayable up
# to timing).
use strict;
use warnings;

use Getopt::Long;
use IPC::Run ();
use Time::HiRes ();

my %o = (timeout => 180, 'check-prob' => 1.0, 'max-seconds' => 600);
GetOptions(\%o, 'id=i', 'seed=i', 'leader=s', 'node=s@', 'ledger=s',
	'stop=s', 'max-seconds=i', 'timeout=i', 'check-prob=f')
  or die "usage";
my $id = $o{id};
srand($o{seed});
my $parent = getppid();
my $end = Time::HiRes::time() + $o{'max-seconds'};
my %nodes = map { split /=/, $_, 2 } @{ $o{node} // [] };

open my $ledger, '>>', $o{ledger} or die "cannot open $o{ledger}: $!";
$ledger->autoflush(1);

my $seq = 0;    # ids unique to this client

sub new_id { return $id * 1_000_000_000 + ++$seq }

# Run a psql script; returns (exit code, stdout, stderr): -1 if it was
# killed after $timeout seconds, -2 if it could not be run to the end
# otherwise (e.g. psql left before reading its script: EPIPE).
sub run_psql
{
	my ($conn, $script, $timeout) = @_;
	my ($out, $err) = ('', '');
	my $t = IPC::Run::timeout($timeout);
	my $ok = eval {
		IPC::Run::run(
			[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $conn, '-f', '-' ],
			'<', \$script, '>', \$out, '2>', \$err, $t);
		1;
	};
	if (!$ok)
	{
		my $why = $@;
		return (-1, $out, $err) if $t->is_expired;
		$why =~ s/\s+/ /g;
		return (-2, $out, $err . "\npsql: not run to the end: $why");
	}
	return ($? >> 8, $out, $err);
}

# The statements of one transaction (no BEGIN/COMMIT), and whether it opts
# out of the synchronous wait.
sub make_txn
{
	my ($txn) = @_;
	my @sql;
	my $r = rand();
	my $sync_off = rand() < 0.05;
	push @sql, 'SET LOCAL repl_ext.synchronous_commit = off' if $sync_off;

	if ($r < 0.02)
	{
		# the small table is emptied and refilled
		push @sql, 'TRUNCATE small';
		my $n = 5 + int(rand(30));
		push @sql, "INSERT INTO small SELECT g, g * $id, $txn FROM generate_series(1, $n) g";
	}
	elsif ($r < 0.03)
	{
		# a big transaction: one batch of its own
		my $n = 500 + int(rand(2500));
		my $first = $seq + 1;
		$seq += $n;
		my $base = $id * 1_000_000_000;
		push @sql, "INSERT INTO item SELECT $base + g, $id, g % 20, repeat(md5(g::text), 1 + g % 3), $txn"
		  . " FROM generate_series($first, $seq) g";
		push @sql, "DELETE FROM item WHERE owner = $id AND id < $base + $first AND random() < 0.3";
	}
	else
	{
		my $nops = 1 + int(rand(6));
		for (1 .. $nops)
		{
			my $op = rand();
			if ($op < 0.20)
			{
				my ($a, $b) = (1 + int(rand(200)), 1 + int(rand(200)));
				next if $a == $b;
				my $amt = 1 + int(rand(50));
				($a, $b, $amt) = ($b, $a, -$amt) if $a > $b;
				push @sql, "UPDATE acct SET bal = bal - $amt, txn = $txn WHERE id = $a",
				  "UPDATE acct SET bal = bal + $amt, txn = $txn WHERE id = $b";
			}
			elsif ($op < 0.40)
			{
				my $n = 1 + int(rand(5));
				push @sql, 'INSERT INTO item VALUES '
				  . join(', ', map { '(' . new_id() . ", $id, " . int(rand(20)) . ", 'p" . int(rand(1e6)) . "', $txn)" } 1 .. $n);
			}
			elsif ($op < 0.50)
			{
				push @sql, "UPDATE item SET payload = payload || 'u', grp = (grp + 1) % 20, txn = $txn"
				  . " WHERE id = (SELECT id FROM item WHERE owner = $id ORDER BY random() LIMIT 1)";
			}
			elsif ($op < 0.58)
			{
				# primary key change
				push @sql, 'UPDATE item SET id = ' . new_id() . ", txn = $txn"
				  . " WHERE id = (SELECT id FROM item WHERE owner = $id ORDER BY random() LIMIT 1)";
			}
			elsif ($op < 0.62)
			{
				# two rows swap keys through a third: order matters on apply
				my $tmp = new_id();
				push @sql, "SELECT coalesce(min(id), 0) AS swa, coalesce(max(id), 0) AS swb"
				  . " FROM (SELECT id FROM item WHERE owner = $id ORDER BY random() LIMIT 2) s \\gset",
				  "UPDATE item SET id = $tmp, txn = $txn WHERE id = :swa AND :swa < :swb",
				  "UPDATE item SET id = :swa, txn = $txn WHERE id = :swb AND :swa < :swb",
				  "UPDATE item SET id = :swb WHERE id = $tmp";
			}
			elsif ($op < 0.72)
			{
				push @sql, "DELETE FROM item WHERE id IN (SELECT id FROM item WHERE owner = $id ORDER BY random() LIMIT "
				  . (1 + int(rand(4))) . ')';
			}
			elsif ($op < 0.78)
			{
				# rows of every client: row locks between clients order the log
				my $g = int(rand(20));
				push @sql, "UPDATE item SET payload = left(md5(payload), 8), txn = $txn WHERE grp = $g AND id % 5 = "
				  . int(rand(5));
			}
			elsif ($op < 0.88)
			{
				my $k = 'k' . int(rand(300));
				push @sql, rand() < 0.8
				  ? "INSERT INTO kv VALUES ('$k', 'v$txn', $txn) ON CONFLICT (k) DO UPDATE SET v = kv.v || '+', txn = $txn"
				  : "DELETE FROM kv WHERE k = '$k'";
			}
			elsif ($op < 0.94)
			{
				my $k = 1 + int(rand(50));
				push @sql, "INSERT INTO small VALUES ($k, 1, $txn) ON CONFLICT (id) DO UPDATE SET v = small.v + 1, txn = $txn";
			}
			else
			{
				# REPLICA IDENTITY FULL
				my $slot = int(rand(8));
				push @sql, rand() < 0.5
				  ? "UPDATE full_t SET v = v || '.', n = n + 1 WHERE owner = $id AND slot = $slot"
				  : "DELETE FROM full_t WHERE owner = $id AND slot = $slot",
				  "INSERT INTO full_t SELECT $id, $slot, 'r$txn', 0 WHERE NOT EXISTS (SELECT 1 FROM full_t WHERE owner = $id AND slot = $slot)";
			}
		}
	}
	push @sql, "UPDATE counter SET n = n + 1 WHERE client = $id";
	return (\@sql, $sync_off);
}

# Is the transaction on that node?  '1', '0' or undef (no answer).
sub on_node
{
	my ($name, $txn) = @_;
	my ($rc, $out) = run_psql($nodes{$name},
		"SELECT count(*) FROM ledger WHERE txn_id = $txn;\n", 10);
	return undef if $rc != 0;
	chomp $out;
	return $out;
}

while (1)
{
	last if -e $o{stop} || Time::HiRes::time() > $end || getppid() != $parent;
	my $txn = new_id();
	my ($stmts, $sync_off) = make_txn($txn);
	my $nops = @$stmts;
	my $script = "BEGIN;\n"
	  . "SELECT 'SYNC:' || coalesce(string_agg(node_name, ',' ORDER BY node_name), '-')"
	  . " FROM repl.status WHERE sync_state = 'sync';\n"
	  . "SELECT 'NODE:' || node_name || '\@' || epoch FROM repl.local_node;\n"
	  . join('', map { /\\gset$/ ? "$_\n" : "$_;\n" } @$stmts)
	  . "INSERT INTO ledger VALUES ($txn, $id, $nops);\n"
	  . "COMMIT;\n\\echo COMMITTED\n";
	my $t0 = Time::HiRes::time();
	my ($rc, $out, $err) = run_psql($o{leader}, $script, $o{timeout});
	my $t1 = Time::HiRes::time();
	my $ms = int(($t1 - $t0) * 1000);
	my ($sync) = $out =~ /^SYNC:(\S+)$/m;
	$sync //= '?';
	my ($where) = $out =~ /^NODE:(\S+)$/m;
	$where //= '?';
	my ($on) = $where =~ /^(.*)\@/;
	$on //= '';
	my $outcome;
	if ($out =~ /^COMMITTED$/m)
	{
		# a crash or immediate stop right after COMMIT returned: the backend
		# was idle when it sent this WARNING and left; anything else is W
		(my $rest = $err) =~ s/^.*WARNING:  terminating connection (?:because of crash of another server process|due to immediate shutdown command)\n(?:DETAIL:.*\n)?(?:HINT:.*\n)?//mg;
		$outcome = $rest =~ /WARNING:/ ? 'W' : 'A';
	}
	elsif ($rc == -1)
	{
		$outcome = 'T';
	}
	elsif ($rc == 3 && $err =~ /ERROR:/)
	{
		$outcome = 'R';
	}
	else
	{
		$outcome = 'U';
	}

	my $check = '-';
	if ($outcome eq 'A' && !$sync_off && $sync ne '-' && $sync ne '?'
		&& %nodes && rand() < $o{'check-prob'})
	{
		# the follower that held the role first; the role may have moved
		my @order = ($sync, grep { $_ ne $sync && $_ ne $on } sort keys %nodes);
		my $unknown = 0;
		$check = 'MISSING';
		for my $f (@order)
		{
			next unless exists $nodes{$f};
			my $r = on_node($f, $txn);
			if (!defined $r)
			{
				$unknown = 1;
				next;
			}
			if ($r eq '1')
			{
				$check = "ok:$f";
				last;
			}
		}
		$check = 'unknown' if $check eq 'MISSING' && $unknown;
	}
	my $errline = '';
	if ($outcome ne 'A')
	{
		($errline) = $err =~ /((?:ERROR|FATAL|WARNING|psql):[^\n]*)/;
		$errline = defined $errline ? " # $errline" : '';
	}
	printf $ledger "%s %s %s %s %s %d %.3f %.3f %s%s\n", $txn, $outcome, $sync,
	  ($sync_off ? 'off' : 'on'), $check, $ms, $t0, $t1, $where, $errline;

	# a failed connection: the leader is restarting; do not spin
	Time::HiRes::sleep(0.2) if $outcome eq 'U';
	Time::HiRes::sleep(rand(0.02));
}
close $ledger;
exit 0;
