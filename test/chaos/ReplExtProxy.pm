# A controllable TCP proxy for repl_ext's fault-injection tests.
#
#   my $p = ReplExtProxy->start(name => 'f1', target_port => $node->port);
#   ... connect to 127.0.0.1:$p->{port} instead of the node ...
#   $p->stall;  $p->pass;  $p->delay(200);  $p->reset;  $p->blackhole;
#   $p->refuse; my $stats = $p->stats;  $p->stop;
#
# It listens on 127.0.0.1:<port> and forwards every connection to
# 127.0.0.1:<target_port>, in a child process (fork) with one select() loop,
# core Perl modules only.  Modes:
#
#   pass       forward at once
#   delay MS   hold every chunk read for MS milliseconds before forwarding it
#              (in both directions, order kept)
#   stall      forward nothing and read nothing, but keep every connection:
#              a peer that hangs (the kernel still acknowledges, so keepalives
#              and tcp_user_timeout see a live peer).  New connections are
#              accepted and connected to the target, and stall as well.  Back
#              to pass (or delay), everything resumes intact.
#   blackhole  a partition that outlives the connections: existing ones
#              freeze, new ones are accepted and never answered (what they
#              send is read and dropped; nothing reaches the target).  When
#              the mode ends, every connection that saw it is reset.
#   refuse     reset every connection now; new ones are accepted and reset
#              at once (the client sees ECONNRESET, as from a closed port)
#
# and one action: reset closes every current connection with a TCP RST
# (SO_LINGER 0), leaving the mode as it is.
#
# Control: commands go down a pipe, one line each, and the child answers each
# with one line ("ok mode=... conns=... accepted=..."), so a command has taken
# effect when the method returns.  The child looks at the pipe at least every
# 50 ms and exits by itself when the pipe closes, when its parent is gone,
# or after max_lifetime seconds (default 900).  Bounded: at most max_conns
# connections (default 64; more are reset), at most 1 MB queued per
# direction (reading stops until it drains).  Loopback only.
package ReplExtProxy;

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY);
use Time::HiRes ();

use constant MAX_QUEUE => 1024 * 1024;
use constant CHUNK     => 65536;
use constant TICK      => 0.05;

# Start a proxy.  Options: target_port (required), port (default: a free
# one, from PostgreSQL::Test::Cluster::get_free_port when that is loaded),
# name, max_lifetime (s), max_conns, log (a file name for the child's
# one-line-per-event log; none by default).
sub start
{
	my ($class, %opt) = @_;
	die "ReplExtProxy: target_port is required" unless $opt{target_port};
	my $port = $opt{port}
	  // (defined &PostgreSQL::Test::Cluster::get_free_port
		? PostgreSQL::Test::Cluster::get_free_port()
		: 0);
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto     => 'tcp',
		Listen    => 64,
		ReuseAddr => 1) or die "ReplExtProxy: cannot listen on 127.0.0.1:$port: $!";
	$port = $listener->sockport;

	pipe(my $cmd_r, my $cmd_w) or die "pipe: $!";
	pipe(my $ack_r, my $ack_w) or die "pipe: $!";
	my $parent = $$;
	my $self = {
		name         => $opt{name} // "proxy$port",
		port         => $port,
		target_port  => $opt{target_port},
		max_lifetime => $opt{max_lifetime} // 900,
		max_conns    => $opt{max_conns} // 64,
		log          => $opt{log},
		owner        => $parent,
	};

	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# the child: never return into the caller (no END blocks, no
		# destructors of the test's objects)
		close $cmd_w;
		close $ack_r;
		my $rc = 0;
		eval { _serve($self, $listener, $cmd_r, $ack_w, $parent); 1 }
		  or do { _log($self, "died: $@"); $rc = 1; };
		POSIX::_exit($rc);
	}
	close $cmd_r;
	close $ack_w;
	close $listener;
	$cmd_w->autoflush(1);
	$self->{pid}   = $pid;
	$self->{cmd_w} = $cmd_w;
	$self->{ack_r} = $ack_r;
	$self->{mode}  = 'pass';
	return bless $self, $class;
}

sub port { return $_[0]->{port} }
sub pid  { return $_[0]->{pid} }
sub mode { return $_[0]->{mode} }

# Send one command and wait (10 s at most) for the child's answer.
sub command
{
	my ($self, $cmd) = @_;
	die "ReplExtProxy $self->{name}: stopped" unless $self->{pid};
	local $SIG{PIPE} = 'IGNORE';
	print { $self->{cmd_w} } "$cmd\n"
	  or die "ReplExtProxy $self->{name}: cannot send '$cmd': $!";
	my $sel  = IO::Select->new($self->{ack_r});
	my $line = '';
	my $end  = Time::HiRes::time() + 10;
	while ($line !~ /\n/)
	{
		my $left = $end - Time::HiRes::time();
		die "ReplExtProxy $self->{name}: no answer to '$cmd'" if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($self->{ack_r}, my $buf, 4096);
		die "ReplExtProxy $self->{name}: child gone during '$cmd'"
		  unless $n;
		$line .= $buf;
	}
	chomp $line;
	die "ReplExtProxy $self->{name}: '$cmd' failed: $line" unless $line =~ /^ok/;
	($self->{mode}) = $line =~ /mode=(\S+)/;
	return $line;
}

sub pass      { return $_[0]->command('pass') }
sub stall     { return $_[0]->command('stall') }
sub blackhole { return $_[0]->command('blackhole') }
sub refuse    { return $_[0]->command('refuse') }
sub reset     { return $_[0]->command('reset') }
sub delay     { return $_[0]->command("delay $_[1]") }

# { mode, conns, accepted, resets, bytes } as the child counts them
sub stats
{
	my ($self) = @_;
	my $line = $self->command('stats');
	my %s = $line =~ /(\w+)=(\S+)/g;
	return \%s;
}

# Stop the child and wait for it (5 s, then SIGKILL).  Safe to call twice;
# does nothing in a forked copy of the owner.
sub stop
{
	my ($self) = @_;
	return unless $self->{pid} && $$ == $self->{owner};
	local $SIG{PIPE} = 'IGNORE';
	print { $self->{cmd_w} } "quit\n";
	close $self->{cmd_w};
	my $end = Time::HiRes::time() + 5;
	while (waitpid($self->{pid}, POSIX::WNOHANG()) == 0)
	{
		if (Time::HiRes::time() > $end)
		{
			kill 'KILL', $self->{pid};
			waitpid($self->{pid}, 0);
			last;
		}
		Time::HiRes::sleep(0.02);
	}
	close $self->{ack_r};
	$self->{pid} = undef;
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $!, $?);
	$self->stop if $self->{pid} && $$ == $self->{owner};
	return;
}

############################################################################
# The child
############################################################################

sub _log
{
	my ($self, $msg) = @_;
	return unless $self->{log};
	if (open my $fh, '>>', $self->{log})
	{
		my ($s, $us) = Time::HiRes::gettimeofday();
		print $fh POSIX::strftime('%H:%M:%S', localtime $s)
		  . sprintf('.%03d', $us / 1000) . " [$self->{name}] $msg\n";
		close $fh;
	}
	return;
}

# Close a socket with an RST instead of a FIN.
sub _rst
{
	my ($sock) = @_;
	return unless $sock;
	setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
	close $sock;
	return;
}

sub _serve
{
	my ($self, $listener, $cmd_r, $ack_w, $parent) = @_;
	my $deadline = Time::HiRes::time() + $self->{max_lifetime};
	my $mode     = 'pass';
	my $delay    = 0;
	my @conns;
	my %count = (accepted => 0, resets => 0, bytes => 0);
	my $cmdbuf = '';
	my $next_id = 1;

	$ack_w->autoflush(1);
	$listener->blocking(0);
	$SIG{PIPE} = 'IGNORE';
	_log($self, "listening on 127.0.0.1:$self->{port} -> 127.0.0.1:$self->{target_port}");

	my $drop = sub {
		my ($c, $hard) = @_;
		if ($hard)
		{
			_rst($c->{c});
			_rst($c->{s});
			$count{resets}++;
		}
		else
		{
			close $c->{c} if $c->{c};
			close $c->{s} if $c->{s};
		}
		$c->{dead} = 1;
	};
	my $reset_all = sub {
		my ($why) = @_;
		my $n = 0;
		for my $c (@conns)
		{
			next if $c->{dead};
			$drop->($c, 1);
			$n++;
		}
		@conns = ();
		_log($self, "reset $n connections ($why)") if $n;
	};
	my $forwarding = sub { return $mode eq 'pass' || $mode eq 'delay' };

	for (;;)
	{
		my $now = Time::HiRes::time();
		if ($now > $deadline)
		{
			_log($self, 'max lifetime reached');
			last;
		}
		if (getppid() != $parent)
		{
			_log($self, 'parent gone');
			last;
		}
		@conns = grep { !$_->{dead} } @conns;

		my $rsel = IO::Select->new($cmd_r, $listener);
		my $wsel = IO::Select->new();
		my $timeout = TICK;
		for my $c (@conns)
		{
			if ($c->{swallowed})
			{
				$rsel->add($c->{c});
				next;
			}
			next unless $forwarding->();
			for my $dir (['c', 's', 'c2s'], ['s', 'c', 's2c'])
			{
				my ($from, $to, $q) = @$dir;
				$rsel->add($c->{$from})
				  if !$c->{"eof_$from"} && $c->{"${q}_bytes"} < MAX_QUEUE;
				my $head = $c->{$q}[0];
				next unless $head;
				if ($head->[0] <= $now)
				{
					$wsel->add($c->{$to});
				}
				else
				{
					my $wait = $head->[0] - $now;
					$timeout = $wait if $wait < $timeout;
				}
			}
		}

		my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);
		$now = Time::HiRes::time();

		for my $fh (@{ $r // [] })
		{
			if ($fh == $cmd_r)
			{
				my $n = sysread($cmd_r, my $buf, 4096);
				if (!$n)
				{
					next if !defined $n && ($! == EINTR || $! == EAGAIN);
					_log($self, 'control pipe closed');
					$reset_all->('exit');
					return;
				}
				$cmdbuf .= $buf;
				while ($cmdbuf =~ s/^([^\n]*)\n//)
				{
					my $cmd = $1;
					my $err;
					if ($cmd eq 'quit')
					{
						$reset_all->('quit');
						print $ack_w "ok mode=$mode conns=0\n";
						return;
					}
					elsif ($cmd =~ /^(pass|stall|blackhole|refuse)$/ || $cmd =~ /^delay (\d+)$/)
					{
						my $new = $cmd =~ /^delay (\d+)$/ ? 'delay' : $cmd;
						$delay = $1 if $new eq 'delay';
						if ($mode eq 'blackhole' && $new ne 'blackhole')
						{
							$reset_all->('end of blackhole');
						}
						if ($new eq 'refuse')
						{
							$reset_all->('refuse');
						}
						if ($mode eq 'delay' && $new ne 'delay')
						{
							# whatever was held goes out at once
							for my $c (@conns)
							{
								$_->[0] = 0 for @{ $c->{c2s} }, @{ $c->{s2c} };
							}
						}
						$mode = $new;
						_log($self, "mode $cmd");
					}
					elsif ($cmd eq 'reset')
					{
						$reset_all->('reset');
					}
					elsif ($cmd ne 'stats')
					{
						$err = "unrecognized command \"$cmd\"";
					}
					my $live = grep { !$_->{dead} } @conns;
					print $ack_w $err
					  ? "error $err\n"
					  : "ok mode=$mode delay=$delay conns=$live accepted=$count{accepted}"
					  . " resets=$count{resets} bytes=$count{bytes}\n";
				}
				next;
			}
			if ($fh == $listener)
			{
				my $client = $listener->accept or next;
				$count{accepted}++;
				my $live = grep { !$_->{dead} } @conns;
				if ($mode eq 'refuse' || $live >= $self->{max_conns})
				{
					_rst($client);
					$count{resets}++;
					next;
				}
				$client->blocking(0);
				setsockopt($client, IPPROTO_TCP, TCP_NODELAY, 1);
				my $c = {
					id       => $next_id++,
					c        => $client,
					c2s      => [],
					s2c      => [],
					c2s_bytes => 0,
					s2c_bytes => 0,
				};
				if ($mode eq 'blackhole')
				{
					$c->{swallowed} = 1;
					push @conns, $c;
					next;
				}
				my $server = IO::Socket::INET->new(
					PeerAddr => '127.0.0.1',
					PeerPort => $self->{target_port},
					Proto    => 'tcp',
					Timeout  => 2);
				if (!$server)
				{
					_rst($client);
					next;
				}
				$server->blocking(0);
				setsockopt($server, IPPROTO_TCP, TCP_NODELAY, 1);
				$c->{s} = $server;
				push @conns, $c;
				next;
			}
			# data from a connection
			my ($c) = grep { !$_->{dead} && (($_->{c} && $fh == $_->{c}) || ($_->{s} && $fh == $_->{s})) } @conns;
			next unless $c;
			my $n = sysread($fh, my $buf, CHUNK);
			if (!defined $n)
			{
				next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
				$drop->($c, 1);
				next;
			}
			if ($c->{swallowed})
			{
				$drop->($c, 0) if $n == 0;
				next;
			}
			my $from = $fh == $c->{c} ? 'c' : 's';
			my $q = $from eq 'c' ? 'c2s' : 's2c';
			if ($n == 0)
			{
				$c->{"eof_$from"} = 1;
				next;
			}
			$count{bytes} += $n;
			push @{ $c->{$q} }, [ $mode eq 'delay' ? $now + $delay / 1000 : 0, $buf ];
			$c->{"${q}_bytes"} += $n;
		}

		for my $fh (@{ $w // [] })
		{
			my ($c) = grep { !$_->{dead} && (($_->{c} && $fh == $_->{c}) || ($_->{s} && $fh == $_->{s})) } @conns;
			next unless $c;
			my $q = $fh == $c->{s} ? 'c2s' : 's2c';
			while (my $head = $c->{$q}[0])
			{
				last if $head->[0] > $now;
				my $n = syswrite($fh, $head->[1]);
				if (!defined $n)
				{
					last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
					$drop->($c, 1);
					last;
				}
				$c->{"${q}_bytes"} -= $n;
				if ($n < length $head->[1])
				{
					substr($head->[1], 0, $n) = '';
					last;
				}
				shift @{ $c->{$q} };
			}
		}

		# a side that closed: once what it sent is delivered, close both
		if ($forwarding->())
		{
			for my $c (@conns)
			{
				next if $c->{dead};
				if (($c->{eof_c} && !@{ $c->{c2s} }) || ($c->{eof_s} && !@{ $c->{s2c} }))
				{
					$drop->($c, 0);
				}
			}
		}
	}
	$reset_all->('exit');
	return;
}

1;
