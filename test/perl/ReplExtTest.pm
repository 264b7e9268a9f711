# Shared helpers for repl_ext's TAP tests.
package ReplExtTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(new_node connstr wait_catchup table_dump compare_nodes
  status_of catchup_or_error sync_states wait_sync_states init_sync_cluster);

# A started node with repl_ext preloaded and created in database postgres.
# %conf: extra postgresql.conf settings; the key initdb_extra (not a setting)
# takes an array of extra initdb arguments, e.g. ['--encoding=UTF8'].
sub new_node
{
	my ($name, %conf) = @_;
	my $initdb_extra = delete $conf{initdb_extra};
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init($initdb_extra ? (extra => $initdb_extra) : ());
	my $extra = join('', map { "$_ = '$conf{$_}'\n" } sort keys %conf);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'repl_ext'
repl_ext.database = 'postgres'
repl_ext.batch_interval = '10ms'
repl_ext.retry_interval = '200ms'
repl_ext.network_timeout = '10s'
max_worker_processes = 16
log_min_messages = warning
$extra});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION repl_ext');
	return $node;
}

# How other nodes reach $node, safe to put inside a SQL string literal.
sub connstr
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}

# Wait until the follower (or all followers) applied everything committed so
# far on the leader; fails the test otherwise.
sub wait_catchup
{
	my ($leader, $name) = @_;
	my $arg = defined $name ? "'$name'" : 'NULL';
	my $res = $leader->safe_psql('postgres',
		"SELECT repl.wait_for_catchup($arg, '$PostgreSQL::Test::Utils::timeout_default s')");
	is($res, 't', 'caught up: ' . ($name // 'all followers'));
	return $res eq 't';
}

# Make $leader the leader "leader" replicating @tables, with $f1 as the
# synchronous follower "f1" and $f2 as the asynchronous "f2"; waits until
# both have caught up (one test).
sub init_sync_cluster
{
	my ($leader, $f1, $f2, @tables) = @_;
	$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");
	$leader->safe_psql('postgres',
		'SELECT ' . join(', ', map { "repl.add_table('$_')" } @tables));
	$leader->safe_psql('postgres',
		"SELECT repl.add_follower('f1', '" . connstr($f1) . "', synchronous => true)");
	$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
	return wait_catchup($leader);
}

# The whole table in key order, one line per row: md5 of the row's full text
# and its first 100 characters.  Rendered under fixed settings, because the
# nodes deliberately run with different DateStyle, TimeZone, etc.
sub table_dump
{
	my ($node, $table, $order) = @_;
	return $node->safe_psql('postgres', qq{
SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 3; SET bytea_output = 'hex';
SELECT coalesce(string_agg(md5(x::text) || ' ' || left(x::text, 100), E'\\n' ORDER BY $order), '<empty>')
  FROM $table x});
}

# Leader and follower hold the same rows (full text dump, not counts).
sub compare_nodes
{
	my ($leader, $follower, $table, $order) = @_;
	my $l = table_dump($leader, $table, $order);
	my $f = table_dump($follower, $table, $order);
	is($f, $l, "$table identical on " . $follower->name);
	return $f eq $l;
}

# A column of repl.status for one follower.
sub status_of
{
	my ($leader, $name, $column) = @_;
	return $leader->safe_psql('postgres',
		"SELECT $column FROM repl.status WHERE node_name = '$name'");
}

# Every follower's sync_state, as "f1=sync f2=async".
my $sync_states_sql =
  "SELECT string_agg(node_name || '=' || sync_state, ' ' ORDER BY node_name) FROM repl.status";

sub sync_states
{
	my ($leader) = @_;
	return $leader->safe_psql('postgres', $sync_states_sql);
}

# Wait until sync_states is $expected; returns whether it got there.
sub wait_sync_states
{
	my ($leader, $expected) = @_;
	return $leader->poll_query_until('postgres', $sync_states_sql, $expected);
}

# Wait until follower $name has applied everything committed on the leader
# so far, or its sender reported an error at or after $since (seconds since
# the epoch, from the leader's clock).  Returns that error, or '' once caught
# up: for changes that may stop a follower, without waiting for the timeout.
sub catchup_or_error
{
	my ($leader, $name, $since) = @_;
	my $erred = qq{EXISTS (SELECT 1 FROM repl.status WHERE node_name = '$name'
	   AND last_error_time >= to_timestamp($since))};
	$leader->poll_query_until('postgres',
		"SELECT repl.wait_for_catchup('$name', '1 s') OR $erred")
	  or die "follower $name neither caught up nor failed";
	return $leader->safe_psql('postgres', qq{
SELECT CASE WHEN $erred THEN coalesce(last_error, 'unknown error') ELSE '' END
  FROM repl.status WHERE node_name = '$name'});
}

1;
