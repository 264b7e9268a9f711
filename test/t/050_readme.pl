# Every function and view of schema repl and every repl_ext.* setting is
# documented in README.md.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my $readme = slurp_file("$ENV{TESTDIR}/README.md");
my $node = new_node('docs');

my @objects = split /\n/, $node->safe_psql('postgres', q{
SELECT 'repl.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'repl'
UNION
SELECT 'repl.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'repl' AND c.relkind IN ('r', 'v') AND c.relname NOT LIKE 'log\_%'
UNION
SELECT name FROM pg_settings WHERE name LIKE 'repl\_ext.%'
ORDER BY 1});
ok(@objects > 25, 'found the objects to check (' . scalar(@objects) . ')');
for my $o (@objects)
{
	like($readme, qr/`\Q$o\E[`( ]/, "README documents $o");
}
$node->stop;
done_testing();
