# Faithful data: every kind of value reaches the followers exactly as the
# leader stores it, through the initial copy and through the change stream,
# whatever the session settings of the writer and of the followers.
#
# Built-in types at their edges (integer limits, numeric scale, NaN and
# infinities, float -0 and denormals, BC dates, microseconds, unnormalised
# intervals, non-ASCII text in UTF8 databases, bytea with zero bytes,
# geometric and network types), arrays (NULLs, several dimensions, lower
# bounds), ranges and multiranges, enums, domains, composites (nested, in
# arrays), contrib types with text I/O (hstore, citext, ltree, cube);
# multi-megabyte TOASTed values (compressed, external, incompressible) that
# an UPDATE of another column does not log again; generated columns computed
# by the follower; identity columns; key changes (swaps, rotations, changes
# of representation only); REPLICA IDENTITY FULL and USING INDEX; partitions
# and rows moving between them; names that need quoting.  The last part sets
# follower settings that change how text is parsed (array_nulls, xmloption),
# changes REPLICA IDENTITY FULL rows that are equal without being identical
# or whose types have no equality operator, and writes OID alias types
# (regtype, regclass) naming user objects.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplExtTest;

my @utf8 = (initdb_extra => [ '--encoding=UTF8', '--locale=C.utf8' ]);
# log_statement = all would log every multi-megabyte batch in full, each retry
my @quiet = ('log_parameter_max_length' => '100', 'log_parameter_max_length_on_error' => '100');

# Three different sets of settings: the leader's server, the leader's writing
# session ($lset) and each follower.
my $leader = new_node('leader', @utf8, @quiet,
	'TimeZone' => 'America/St_Johns', 'DateStyle' => 'SQL, MDY',
	'IntervalStyle' => 'postgres_verbose', 'extra_float_digits' => '0',
	'bytea_output' => 'escape', 'lc_monetary' => 'C');
my $f1 = new_node('f1', @utf8, @quiet,
	'TimeZone' => 'Asia/Kolkata', 'DateStyle' => 'SQL, DMY',
	'IntervalStyle' => 'sql_standard', 'extra_float_digits' => '-3',
	'bytea_output' => 'escape', 'lc_monetary' => 'C.utf8');
my $lset = q{SET TimeZone = 'America/New_York'; SET DateStyle = 'Postgres, MDY';
SET IntervalStyle = 'iso_8601'; SET extra_float_digits = -15; SET bytea_output = 'escape';
SET lc_monetary = 'C';};
# how the checks read values: the form the expected strings below are in
my $fixed = q{SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C';};

my ($rc, $out, $err) = $leader->psql('postgres', q{SELECT '<a/>'::xml});
my $has_xml = $rc == 0;
note('server built without libxml: xml is not tested') unless $has_xml;

############################################################################
# Schema
############################################################################

# types and extensions: the copy does not create them, every node has them
my $types = <<'SQL';
CREATE EXTENSION hstore; CREATE EXTENSION citext; CREATE EXTENSION ltree;
CREATE EXTENSION cube; CREATE EXTENSION pgcrypto;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ünï ''q" ,{}');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN shorttext AS text CHECK (length(VALUE) < 100);
CREATE DOMAIN cash AS money;
CREATE TYPE inner_t AS (x float8, t text, ts timestamptz, b bytea, m money);
CREATE TYPE outer_t AS (i inner_t, arr inner_t[], e mood, iv interval, n numeric, d date);
CREATE TYPE floatrange AS RANGE (subtype = float8);
SQL

# tables that exist on the followers before they are added: partitions (the
# copy would not attach them), a generated column whose expression differs
# on purpose (proves the follower computes it), and y, which a table name
# below tries to drop
my $on_every_node = <<'SQL';
CREATE TABLE part (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE part_lo PARTITION OF part FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE part_hi PARTITION OF part FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE y (i int);
INSERT INTO y VALUES (42);
SQL
my $gen_diff = q{CREATE TABLE gen_diff (id int PRIMARY KEY, v text,
	g text GENERATED ALWAYS AS ('%s:' || v) STORED);};

$leader->safe_psql('postgres', $types . $on_every_node . sprintf($gen_diff, 'L'));
$f1->safe_psql('postgres', $types . $on_every_node . sprintf($gen_diff, 'F'));

# Edge values of every type, one row each (id 1..N).  The rows are copied to
# f1; the stream phase inserts them again as id 101..100+N, moves every value
# one row along with an UPDATE and deletes one.
my $edge_tables = <<'SQL';
CREATE TABLE t_num (id int PRIMARY KEY, i2 smallint, i4 int, i8 bigint, n numeric, n3 numeric(10,3),
	f4 real, f8 float8, m money, o oid, c "char", b bool);
INSERT INTO t_num VALUES
 (1, -32768, -2147483648, -9223372036854775808, '-123456789012345678901234567890.123456789012345678901234567890',
  '1.000', '-0', '-0', '-92233720368547758.08', 0, 'a', true),
 (2, 32767, 2147483647, 9223372036854775807, 'NaN', 99.5, 'NaN', 'NaN', '92233720368547758.07', 4294967295, E'\\001', false),
 (3, 0, 0, 0, 'Infinity', 0, 'Infinity', 'Infinity', 0, 1, ' ', NULL),
 (4, -1, -1, -1, '-Infinity', -0.0005, '-Infinity', '-Infinity', '-0.01', 2, 'ü', true),
 (5, 1, 1, 1, '0.1000', 1234567.891, '3.4028235e38', '0.1', '1234.56', 3, 'z', false),
 (6, 2, 2, 2, '1e-1000', 0.1, '1.4e-45', '1e-310', 0.001, 4, 'A', true),
 (7, 3, 3, 3, '1e100', '-9999999.999', '1.17549435e-38', '2.2250738585072014e-308', NULL, NULL, NULL, NULL),
 (8, 4, 4, 4, '-0.000', 0, '-3.4028235e38', '1.7976931348623157e308', NULL, NULL, NULL, NULL),
 (9, 5, 5, 5, 0.1 + 0.2, 0.1 + 0.2, 0.1::real + 0.2::real, 0.1::float8 + 0.2::float8, NULL, NULL, NULL, NULL),
 (10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE t_text (id int PRIMARY KEY, t text, vc varchar(10), ch char(5), nm name, ci citext, js json, jb jsonb,
	tsv tsvector, tsq tsquery, u uuid, e mood, ds shorttext);
INSERT INTO t_text VALUES
 (1, E'ünïcödé ✓ 日本語 😀 \\ back "dq" ''sq'' tab\t nl\n cr\r end', 'ab  ', 'ab', 'ünï name', 'MiXeD Ünï',
  '{"b":1,   "a" : [1,2 , 3],"a":"dup", "ü": "\u00e9\ud83d\ude00"  }', '{"b": 1, "a": {"n": 1.000, "s": "ü\u00e9"}, "e": []}',
  'a:1A fat:2B,4C cat:5D ''ü''s', 'fat & (rat | !cat) <-> mouse:*AB', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ünï ''q" ,{}', 'dom'),
 (2, '', '', '', '', '', '""', '""', '', 'x', '00000000-0000-0000-0000-000000000000', 'sad', ''),
 (3, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'null', 'null', 'null', 'null', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'happy', 'NULL'),
 (4, '   ', '          ', '     ', repeat('n', 63), '   ', ' [ 1.000e3 , -0 , 1E+2 ] ', '[1.000e3, -0, 1E+2, 0.10]', '', '!a', NULL, NULL, NULL),
 (5, repeat('ü', 3000), NULL, NULL, NULL, NULL, '{}', '{"a": {"b": {"c": [null, true, false, "x\\y\"z"]}}}', NULL, NULL, NULL, NULL, NULL),
 (6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE t_bin (id int PRIMARY KEY, b bytea, bits bit(8), vb varbit, vbl bit varying(1000));
INSERT INTO t_bin VALUES
 (1, '', B'00000000', B'', B''),
 (2, '\x00', B'10100101', B'1', repeat('10', 500)::varbit),
 (3, '\x00ff5c27225c2c7b7d0a0d', B'11111111', B'0000000001', B'1'),
 (4, (SELECT string_agg(set_byte('\x00'::bytea, 0, g), '' ORDER BY g) FROM generate_series(0, 255) g), NULL, NULL, NULL),
 (5, NULL, NULL, NULL, NULL);

CREATE TABLE t_time (id int PRIMARY KEY, d date, t time, tt timetz, ts timestamp, tstz timestamptz, iv interval,
	ts3 timestamp(3), t0 time(0));
INSERT INTO t_time VALUES
 (1, 'infinity', '00:00:00', '00:00:00+00', 'infinity', 'infinity', '0', '2001-01-01 00:00:00.123', '12:34:56'),
 (2, '-infinity', '24:00:00', '24:00:00-15:59', '-infinity', '-infinity', '-1 year +2 mons -3 days +04:05:06.789012', '-infinity', '00:00:00'),
 (3, '0044-03-15 BC', '23:59:59.999999', '23:59:59.999999+15:59', '0044-03-15 12:00:00.000001 BC',
  '0044-03-15 12:00:00.000001+00 BC', '1 mon 31 days 25:00:00', '2000-02-29 23:59:59.999', '23:59:59'),
 (4, '4714-11-24 BC', '12:00:00.000001', '12:00:00+05:30', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00+00 BC',
  '1 day -1 second', 'infinity', NULL),
 (5, '5874897-12-31', '00:00:00.5', '12:00:00.5-03:30', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00',
  '178000000 years', NULL, NULL),
 (6, '2000-02-29', '13:14:15.161718', '13:14:15.161718+01', '2000-02-29 12:34:56.789012', '2024-03-10 02:30:00.000001-05',
  '-178000000 years', NULL, NULL),
 (7, '1970-01-01', NULL, NULL, '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '-00:00:00.000001', NULL, NULL),
 (8, NULL, NULL, NULL, NULL, NULL, '-1 mons -2 days +03:00', NULL, NULL),
 (9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE t_misc (id int PRIMARY KEY, i inet, c cidr, m macaddr, m8 macaddr8, lsn pg_lsn, pt point, bx box,
	pg polygon, ci circle, ln line, ls lseg, pa path, tid tid, x8 xid8, snap pg_snapshot);
INSERT INTO t_misc VALUES
 (1, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '0/0', '(0.1,-0)', '(1,1),(0,0)',
  '((0,0),(1,1),(1,0))', '<(0,0),1.5>', '{1,-1,0}', '[(0,0),(1,1)]', '[(0,0),(1,1),(2,0)]', '(0,1)', '0', '10:20:10,14,15'),
 (2, '::ffff:1.2.3.4/128', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', 'FFFFFFFF/FFFFFFFF', '(1e-310,NaN)',
  '(1e308,-1e308),(-0,0.1)', '((0.1,0.2))', '<(1e-310,-0),0>', '{0.1,0,-1e-310}', '[(-0,0),(0.1,0.2)]',
  '((0,0),(1,1),(1e-310,0.1))', '(4294967295,65535)', '18446744073709551615', '1:1:'),
 (3, '2001:db8::1/64', '0.0.0.0/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', '1/FF', '(Infinity,-Infinity)', '(0,0),(0,0)',
  '((1,2),(3,4),(5,6),(7,8))', '<(1,2),0.1>', '{1,0,-0.1}', '[(1,2),(1,2)]', '((1,2))', '(7,7)', '42', '5:9:5,6,7'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE t_arr (id int PRIMARY KEY, ia int[], ta text[], na numeric[], fa float8[], ea mood[], ca inner_t[],
	da posint[], tsa timestamptz[], ja jsonb[], ba bytea[], ia3 int[]);
INSERT INTO t_arr VALUES
 (1, '{{1,2},{3,NULL}}', '{NULL,"NULL","",a b,"q\"u\\o,{}",ü}', '{1.0,NaN,Infinity,-0.00}', '{-0,NaN,1e-310,0.1}',
  '{sad,"ünï ''q\" ,{}"}', ARRAY[ROW('-0', 'ü"q,(x)', '2000-01-01 00:00:00.000001+00', '\x00', 1.5)::inner_t, NULL],
  '{1,2,NULL}', '{infinity,"2000-01-01 00:00:00.000001+00"}', ARRAY['{"a":1.0}'::jsonb, NULL], '{"\\x00",NULL,"\\x"}',
  '{{{1,2},{3,4}},{{5,6},{7,8}}}'),
 (2, '[2:3]={1,2}', '[0:1]={x,NULL}', '[-5:-5]={1.000}', '[3:3]={-0}', '[2:2]={happy}', '[7:7]={"(1,a,,,)"}', '[2:3]={1,2}',
  '[1:1]={-infinity}', '[0:0]={"[]"}', '[5:5]={"\\xff"}', '[-1:0][5:6]={{1,2},{3,4}}'),
 (3, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
 (4, '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{{NULL,NULL}}'),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SQL

my $xml_table = <<'SQL';
CREATE TABLE t_xml (id int PRIMARY KEY, doc xml);
INSERT INTO t_xml VALUES
 (1, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><a x="1">ü<b/>  </a>'),
 (2, '<!DOCTYPE a [<!ENTITY e "ent">]><a>&e;</a>'), (3, 'text <a>&amp;</a> tail'), (4, '  <a/>  '),
 (5, '<![CDATA[<x>]]><!-- c --><?pi x?>'), (6, ''), (7, NULL);
SQL

# added while f1 exists: t_comp also exists (empty) on f1, t_range does not
my $late_tables = <<'SQL';
CREATE TABLE t_range (id int PRIMARY KEY, r4 int4range, r8 int8range, nr numrange, dr daterange, tsr tsrange,
	tstzr tstzrange, mr int4multirange, nmr nummultirange, tstzmr tstzmultirange, fr floatrange, dmr datemultirange);
INSERT INTO t_range VALUES
 (1, 'empty', 'empty', 'empty', 'empty', 'empty', 'empty', '{}', '{}', '{}', 'empty', '{}'),
 (2, '(,)', '(,)', '(,)', '(,)', '(,)', '(,)', '{(,)}', '{(,)}', '{(,)}', '(,)', '{(,)}'),
 (3, '[1,2)', '[-9223372036854775808,9223372036854775807)', '[1.0,2.00]', '[2000-01-01,)',
  '[2000-01-01 00:00:00.000001,infinity]', '[-infinity,2000-01-01 00:00:00+05:30)', '{[1,3),[5,7)}',
  '{[1.0,2.00],(3,NaN)}', '{[2000-01-01 00:00:00+00,2000-01-02 00:00:00+00)}', '[-0,1e-310]',
  '{[0044-03-15 BC,2000-01-01)}'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '(0.1,Infinity]', NULL);
SQL
my $t_comp = <<'SQL';
CREATE TABLE t_comp (id int PRIMARY KEY, c inner_t, o outer_t, d posint, dt shorttext, h hstore, l ltree, cu cube,
	ci citext, dm cash);
SQL
my $t_comp_rows = <<'SQL';
INSERT INTO t_comp VALUES
 (1, ROW('-0', 'ü"q,(x)\', '2000-01-01 00:00:00.000001+00', '\x00', '-1234.56'),
  ROW(ROW('NaN', NULL, '-infinity', '', 0), ARRAY[ROW(1e-310, 'a', NULL, NULL, NULL)::inner_t, NULL], 'happy',
	  '-1 mons +1 days -00:00:01', 1.000, '0044-03-15 BC'),
  1, 'short', '"a b"=>"1", "ü"=>NULL, "q\"uote"=>"\\", ""=>""', 'Top.Science.Astronomy',
  '(1e-310, -0), (0.1, 3.4e38)', 'MiXeD Ünï', '1234.56'),
 (2, ROW(NULL, NULL, NULL, NULL, NULL), ROW(NULL, '{}', NULL, NULL, NULL, NULL), 2147483647, '', '', '', '(0)', '', '-0.01'),
 (3, ROW('Infinity', '', 'infinity', '\x', 0), ROW(ROW(0.1, 'x', NULL, NULL, NULL), NULL, 'ünï ''q" ,{}',
	  '1 mon 31 days 25:00:00', 'NaN', 'infinity'), NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SQL

my $odd = q{"Odd; Schema"."Tab ""x"" ; DROP TABLE y"};
my $other_tables = <<'SQL';
CREATE TABLE t_big (id int PRIMARY KEY, note text, ctext text, etext text, rb bytea);
ALTER TABLE t_big ALTER COLUMN etext SET STORAGE EXTERNAL;
INSERT INTO t_big SELECT 1, 'copied', repeat('compressible ü ', 400000),
	(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 160000) g),
	(SELECT string_agg(gen_random_bytes(1024), ''::bytea) FROM generate_series(1, 6000));

CREATE TABLE gen_same (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED,
	gt text GENERATED ALWAYS AS ('v=' || v) STORED);
INSERT INTO gen_same (id, v) VALUES (1, 1), (2, 2);
INSERT INTO gen_diff (id, v) VALUES (1, 'one'), (2, 'two');

CREATE TABLE ident (a int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	b bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000 INCREMENT BY 7), v text);
INSERT INTO ident (v) VALUES ('one'), ('two');

CREATE TABLE pk (id int PRIMARY KEY, v text);
INSERT INTO pk SELECT g, 'v' || g FROM generate_series(1, 5) g;
-- a deferrable key cannot be the replica identity: FULL, to swap keys in one statement
CREATE TABLE pk_def (id int PRIMARY KEY DEFERRABLE, v text);
ALTER TABLE pk_def REPLICA IDENTITY FULL;
INSERT INTO pk_def SELECT g, 'v' || g FROM generate_series(1, 5) g;
CREATE TABLE pk_num (k numeric PRIMARY KEY, v text);
INSERT INTO pk_num VALUES ('1.0', 'a'), ('2.50', 'b');
CREATE TABLE pk_flt (f float8 PRIMARY KEY, v text);
INSERT INTO pk_flt VALUES ('0', 'zero'), ('NaN', 'nan');
CREATE TABLE pk2 (a text, b date, v int, PRIMARY KEY (a, b));
INSERT INTO pk2 VALUES ('ü', '2000-01-01', 1), ('ü', '0044-03-15 BC', 2), ('Ü', 'infinity', 3);

CREATE TABLE ri_idx (id int, code text NOT NULL, sub int NOT NULL, v text);
CREATE UNIQUE INDEX ri_idx_key ON ri_idx (code, sub);
ALTER TABLE ri_idx REPLICA IDENTITY USING INDEX ri_idx_key;
INSERT INTO ri_idx VALUES (1, 'a', 1, 'x'), (1, 'a', 2, 'y'), (NULL, 'b', 1, NULL);

CREATE TABLE full_t (a int, b text, f float8, j jsonb, arr int[], ts timestamptz);
ALTER TABLE full_t REPLICA IDENTITY FULL;
INSERT INTO full_t VALUES
 (1, 'one', 0.5, '{"k": 1}', '{1,NULL}', '2000-01-01 00:00:00+00'),
 (1, 'one', 0.5, '{"k": 1}', '{1,NULL}', '2000-01-01 00:00:00+00'),
 (2, NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL, NULL);

-- equal by the types' equality operators, but not identical
CREATE TABLE full_eq (k int, f float8, n numeric, c citext, tag text);
ALTER TABLE full_eq REPLICA IDENTITY FULL;
INSERT INTO full_eq VALUES (1, '0', 1, 'x', NULL), (1, '-0', 1, 'x', NULL), (2, 0, 1.0, 'x', NULL),
 (2, 0, 1.00, 'x', NULL), (3, 0, 1, 'a', NULL), (3, 0, 1, 'A', NULL);
-- types without an equality operator
CREATE TABLE full_noeq (k int, j json, p point);
ALTER TABLE full_noeq REPLICA IDENTITY FULL;
INSERT INTO full_noeq VALUES (1, '{"a": 1}', '(1,2)'), (2, '[]', '(0,0)');

CREATE TABLE parse_t (id int PRIMARY KEY, ta text[], ia int[]);
-- OID alias types travel as names
CREATE TABLE t_reg (id int PRIMARY KEY, rt regtype, rc regclass, rn regnamespace);
INSERT INTO t_reg VALUES (1, 'integer', 'pg_class', 'pg_catalog'), (2, 'mood[]', 'y', 'public');

CREATE SCHEMA "Odd; Schema";
CREATE TABLE "Odd; Schema"."Tab ""x"" ; DROP TABLE y" ("Col Umn;" int PRIMARY KEY, "Ünï ""v""" text,
	"UPPER" text, "select" int, "a.b" int);
INSERT INTO "Odd; Schema"."Tab ""x"" ; DROP TABLE y" VALUES (1, 'one', 'ONE', 1, 1), (2, 'two', 'TWO', 2, 2);
INSERT INTO part VALUES (1, 10, 'a'), (2, 150, 'b');
SQL

$leader->safe_psql('postgres', $lset . $edge_tables . ($has_xml ? $xml_table : '') . $other_tables);

my @edge = qw(t_num t_text t_bin t_time t_misc t_arr);
push @edge, 't_xml' if $has_xml;
my @tables = ((map { [ $_, 'id' ] } @edge, 't_range', 't_comp'),
	[ 't_big', 'id' ], [ 'gen_same', 'id' ], [ 'ident', 'a' ], [ 'pk', 'id' ], [ 'pk_def', 'id' ],
	[ 'pk_num', 'k' ], [ 'pk_flt', 'f' ], [ 'pk2', 'a, b' ], [ 'ri_idx', 'code, sub' ],
	[ 'full_t', 'x::text' ], [ 'full_eq', 'x::text' ], [ 'full_noeq', 'x::text' ],
	[ 'parse_t', 'id' ], [ 't_reg', 'id' ], [ $odd, '"Col Umn;"' ],
	[ 'part_lo', 'id, k' ], [ 'part_hi', 'id, k' ], [ 'part', 'id, k' ]);

sub compare_all
{
	my ($f, @only) = @_;
	my %want = map { $_ => 1 } @only;
	for my $t (@tables)
	{
		next if @only && !$want{ $t->[0] };
		compare_nodes($leader, $f, @$t);
	}
}

$leader->safe_psql('postgres', "SELECT repl.init_leader('leader', '" . connstr($leader) . "')");

# a partitioned table is refused, with a hint; its partitions are accepted
($rc, $out, $err) = $leader->psql('postgres', "SELECT repl.add_table('part')");
isnt($rc, 0, 'partitioned table refused');
like($err, qr/cannot replicate partitioned table "part".*HINT:\s+Add its partitions with repl\.add_table\(\) instead\./s,
	'refusal of a partitioned table hints at its partitions');

my @first = (@edge, qw(t_big gen_same gen_diff ident pk pk_def pk_num pk_flt pk2 ri_idx full_t full_eq
	full_noeq parse_t t_reg part_lo part_hi), $odd);
$leader->safe_psql('postgres', join("\n", map { "SELECT repl.add_table('$_');" } @first));
is($leader->safe_psql('postgres', "SELECT count(*) FROM repl.tables"), scalar(@first),
	'every table and partition replicated');

# the big values are stored the way this test means them to be
is($leader->safe_psql('postgres', q{SELECT pg_column_compression(ctext) IS NOT NULL,
	pg_column_compression(etext) IS NULL, pg_column_compression(rb) IS NULL,
	octet_length(ctext) > 5000000, octet_length(etext) > 5000000, octet_length(rb) > 6000000
	FROM t_big WHERE id = 1}), 't|t|t|t|t|t',
	'big values: one compressed, one external uncompressed, one incompressible, each > 5 MB');

############################################################################
# 1. copy: f1 is added with every table holding its edge values
############################################################################

$leader->safe_psql('postgres', "SELECT repl.add_follower('f1', '" . connstr($f1) . "')");
wait_catchup($leader, 'f1');
compare_all($f1, map { $_->[0] } grep { $_->[0] !~ /^t_(range|comp)$/ } @tables);

# the late tables: t_comp exists (empty) on f1 too, t_range only on the leader
$f1->safe_psql('postgres', $t_comp);
$leader->safe_psql('postgres', $lset . $late_tables . $t_comp . $t_comp_rows . q{
SELECT repl.add_table('t_range');
SELECT repl.add_table('t_comp');});
wait_catchup($leader, 'f1');
compare_nodes($leader, $f1, 't_range', 'id');
compare_nodes($leader, $f1, 't_comp', 'id');

############################################################################
# 2. stream: the same values inserted, updated and deleted on the leader
############################################################################

my %nrows;
for my $t (@edge, 't_range', 't_comp')
{
	my $cols = $leader->safe_psql('postgres', qq{
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = '$t'::regclass AND attnum > 1 AND NOT attisdropped});
	my $scols = join(', ', map { "src_.$_" } split(/, /, $cols));
	$nrows{$t} = $leader->safe_psql('postgres', "SELECT count(*) FROM $t");
	# every value moves one row along: row 100 + k gets the values of row k + 1
	$leader->safe_psql('postgres', qq{$lset
INSERT INTO $t SELECT id + 100, $cols FROM $t;
UPDATE $t tgt_ SET ($cols) = (SELECT $scols FROM $t src_
	WHERE src_.id = CASE WHEN tgt_.id = 100 + $nrows{$t} THEN 101 ELSE tgt_.id + 1 END) WHERE tgt_.id > 100;
DELETE FROM $t WHERE id = 102;});
}

$leader->safe_psql('postgres', $lset . <<"SQL");
INSERT INTO t_big SELECT 2, 'streamed', repeat('other ✓ text ', 500000),
	(SELECT string_agg(md5((g + 7)::text), '') FROM generate_series(1, 160000) g),
	(SELECT string_agg(gen_random_bytes(1024), ''::bytea) FROM generate_series(1, 6000));
INSERT INTO gen_same (id, v) VALUES (4, 4);
INSERT INTO gen_diff (id, v) VALUES (4, 'four');

SELECT nextval(pg_get_serial_sequence('ident', 'a')) FROM generate_series(1, 5);
INSERT INTO ident (v) VALUES ('three');
INSERT INTO ident (a, v) OVERRIDING SYSTEM VALUE VALUES (-7, 'overriding');
INSERT INTO ident (b, v) VALUES (-1, 'explicit b');
UPDATE ident SET v = v || '!' WHERE a = 1;

BEGIN;
UPDATE pk SET id = -1 WHERE id = 1;
UPDATE pk SET id = 1 WHERE id = 2;
UPDATE pk SET id = 2 WHERE id = -1;
COMMIT;
BEGIN;
UPDATE pk SET id = id + 10 WHERE id IN (3, 4, 5);
UPDATE pk SET id = CASE id WHEN 13 THEN 4 WHEN 14 THEN 5 ELSE 3 END WHERE id IN (13, 14, 15);
UPDATE pk SET id = 100, v = v || ' moved' WHERE id = 1;
INSERT INTO pk VALUES (1, 'new one');
COMMIT;
UPDATE pk_def SET id = 3 - id WHERE id IN (1, 2);
UPDATE pk_def SET id = CASE id WHEN 3 THEN 4 WHEN 4 THEN 5 ELSE 3 END WHERE id IN (3, 4, 5);
BEGIN;
UPDATE pk_def SET id = 100, v = v || ' moved' WHERE id = 1;
INSERT INTO pk_def VALUES (1, 'new one');
COMMIT;
UPDATE pk_num SET k = 1.00 WHERE k = 1;
UPDATE pk_num SET k = 2.5 WHERE k = 2.5;
UPDATE pk_flt SET f = '-0' WHERE f = 0;
UPDATE pk2 SET b = b - 1 WHERE a = 'ü';
UPDATE pk2 SET a = 'Ü', b = '-infinity' WHERE v = 1;

UPDATE ri_idx SET v = 'changed' WHERE code = 'a' AND sub = 2;
UPDATE ri_idx SET sub = sub + 10 WHERE code = 'a';
UPDATE ri_idx SET code = 'ü' WHERE code = 'b';
DELETE FROM ri_idx WHERE code = 'a' AND sub = 11;
INSERT INTO ri_idx VALUES (2, 'a', 1, 'again');

UPDATE full_t SET b = 'uno' WHERE ctid = (SELECT min(ctid) FROM full_t WHERE a = 1);
DELETE FROM full_t WHERE ctid = (SELECT max(ctid) FROM full_t WHERE a IS NULL);
UPDATE full_t SET a = 3 WHERE a IS NULL;
UPDATE full_t SET b = 'two' WHERE a = 2;
INSERT INTO full_t VALUES (4, 'dup', 'NaN', 'null', '{}', 'infinity'), (4, 'dup', 'NaN', 'null', '{}', 'infinity');
DELETE FROM full_t WHERE ctid = (SELECT min(ctid) FROM full_t WHERE a = 4);

INSERT INTO part VALUES (3, 20, 'c'), (4, 200, 'd');
UPDATE part SET k = k + 100 WHERE id IN (1, 3);
UPDATE part SET k = k - 150 WHERE id = 4;
UPDATE part SET v = 'same partition' WHERE id = 2;
DELETE FROM part WHERE id = 3;

INSERT INTO $odd VALUES (3, 'three', 'THREE', 3, 3);
UPDATE $odd SET "Ünï ""v""" = 'changed', "select" = NULL WHERE "Col Umn;" = 2;
UPDATE $odd SET "Col Umn;" = 20 WHERE "Col Umn;" = 2;
DELETE FROM $odd WHERE "Col Umn;" = 1;
SQL
wait_catchup($leader, 'f1');
compare_all($f1);

# the same rows in the same partitions
my $where = q{SELECT string_agg(tableoid::regclass || ':' || id || ':' || k, ',' ORDER BY id) FROM part};
is($f1->safe_psql('postgres', $where), $leader->safe_psql('postgres', $where),
	'every row in the same partition as on the leader');
is($f1->safe_psql('postgres', $where), 'part_hi:1:110,part_hi:2:150,part_lo:4:50',
	'rows moved between partitions');
is($f1->safe_psql('postgres', q{SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM } . $_),
	'1=new one,2=v1,3=v5,4=v3,5=v4,100=v2 moved', "$_: key swap, rotation and reuse applied")
  for ('pk', 'pk_def');
is($f1->safe_psql('postgres', "$fixed SELECT string_agg(k || '=' || v, ',' ORDER BY v) FROM pk_num"),
	'1.00=a,2.5=b', 'key changed only in its representation (numeric scale)');
is($f1->safe_psql('postgres', "$fixed SELECT string_agg(f || '=' || v, ',' ORDER BY v) FROM pk_flt"),
	'NaN=nan,-0=zero', 'float key changed from 0 to -0');
is($f1->safe_psql('postgres', q{SELECT string_agg(a || '/' || b || '/' || v, ',' ORDER BY a) FROM ident}),
	'-7/1021/overriding,1/1000/one!,2/1007/two,8/1014/three,9/-1/explicit b',
	'identity columns keep the leader\'s values');
is($f1->safe_psql('postgres', 'SELECT count(*) FROM y'), '1', 'a table name with "; DROP TABLE y" dropped nothing');

############################################################################
# exact values, read on the followers under fixed settings
############################################################################

# [table, expression, original row, expected text]; each is checked in the
# copied row and in the streamed row that holds the same values
my @spots = (
	[ 't_num', 'f8', 1, '-0' ], [ 't_num', 'f4', 1, '-0' ], [ 't_num', 'n3', 1, '1.000' ],
	[ 't_num', 'i8', 1, '-9223372036854775808' ], [ 't_num', 'i2', 1, '-32768' ],
	[ 't_num', 'n', 1, '-123456789012345678901234567890.123456789012345678901234567890' ],
	[ 't_num', 'm', 1, '-$92,233,720,368,547,758.08' ],
	[ 't_num', 'n', 2, 'NaN' ], [ 't_num', 'f8', 2, 'NaN' ], [ 't_num', 'i8', 2, '9223372036854775807' ],
	[ 't_num', 'n3', 2, '99.500' ], [ 't_num', 'o', 2, '4294967295' ],
	[ 't_num', 'n', 3, 'Infinity' ], [ 't_num', 'n', 4, '-Infinity' ], [ 't_num', 'f4', 4, '-Infinity' ],
	[ 't_num', 'c', 4, '\303' ],
	[ 't_num', 'n', 5, '0.1000' ], [ 't_num', 'f4', 5, '3.4028235e+38' ], [ 't_num', 'f8', 5, '0.1' ],
	[ 't_num', 'f8', 6, '1e-310' ], [ 't_num', 'f4', 6, '1e-45' ],
	[ 't_num', 'f8', 7, '2.2250738585072014e-308' ], [ 't_num', 'f8', 8, '1.7976931348623157e+308' ],
	[ 't_num', 'f8', 9, '0.30000000000000004' ], [ 't_num', 'n', 9, '0.3' ],
	[ 't_text', 't', 1, "ünïcödé ✓ 日本語 😀 \\ back \"dq\" 'sq' tab\t nl\n cr\r end" ],
	[ 't_text', 'js', 1, '{"b":1,   "a" : [1,2 , 3],"a":"dup", "ü": "\u00e9\ud83d\ude00"  }' ],
	[ 't_text', 'jb', 1, '{"a": {"n": 1.000, "s": "üé"}, "b": 1, "e": []}' ],
	[ 't_text', 'vc', 1, 'ab  ' ], [ 't_text', q{concat(ch, '|')}, 1, 'ab   |' ], [ 't_text', 'ci', 1, 'MiXeD Ünï' ],
	[ 't_text', 'e', 1, q{ünï 'q" ,{}} ], [ 't_text', 'nm', 1, 'ünï name' ],
	[ 't_text', 'tsv', 1, q{'a':1A 'cat':5 'fat':2B,4C 's' 'ü'} ],
	[ 't_text', 'tsq', 1, q{'fat' & ( 'rat' | !'cat' ) <-> 'mouse':*AB} ],
	[ 't_text', 'js', 4, ' [ 1.000e3 , -0 , 1E+2 ] ' ], [ 't_text', 'jb', 4, '[1000, 0, 100, 0.10]' ],
	[ 't_text', 'nm', 4, 'n' x 63 ], [ 't_text', 'octet_length(t)', 5, '6000' ],
	[ 't_bin', 'b', 1, '\x' ], [ 't_bin', 'b', 2, '\x00' ], [ 't_bin', 'b', 3, '\x00ff5c27225c2c7b7d0a0d' ],
	[ 't_bin', q{b = (SELECT string_agg(set_byte('\x00'::bytea, 0, g), '' ORDER BY g) FROM generate_series(0, 255) g)}, 4, 'true' ],
	[ 't_bin', 'bits', 2, '10100101' ], [ 't_bin', 'vb', 1, '' ], [ 't_bin', 'length(vbl)', 2, '1000' ],
	[ 't_time', 'd', 1, 'infinity' ], [ 't_time', 'tstz', 2, '-infinity' ], [ 't_time', 'tt', 2, '24:00:00-15:59' ],
	[ 't_time', 'iv', 2, '-10 mons -3 days +04:05:06.789012' ],
	[ 't_time', 'tstz', 3, '0044-03-15 12:00:00.000001+00 BC' ], [ 't_time', 'iv', 3, '1 mon 31 days 25:00:00' ],
	[ 't_time', 'd', 4, '4714-11-24 BC' ], [ 't_time', 'iv', 4, '1 day -00:00:01' ],
	[ 't_time', 'd', 5, '5874897-12-31' ], [ 't_time', 'ts', 5, '294276-12-31 23:59:59.999999' ],
	[ 't_time', 'tt', 5, '12:00:00.5-03:30' ],
	[ 't_time', 'tstz', 6, '2024-03-10 07:30:00.000001+00' ], [ 't_time', 'ts', 6, '2000-02-29 12:34:56.789012' ],
	[ 't_time', 'iv', 7, '-00:00:00.000001' ], [ 't_time', 'ts3', 1, '2001-01-01 00:00:00.123' ],
	[ 't_misc', 'pt', 1, '(0.1,-0)' ], [ 't_misc', 'snap', 1, '10:20:10,14,15' ], [ 't_misc', 'pt', 2, '(1e-310,NaN)' ],
	[ 't_misc', 'ci', 2, '<(1e-310,-0),0>' ], [ 't_misc', 'lsn', 2, 'FFFFFFFF/FFFFFFFF' ],
	[ 't_misc', 'i', 2, '::ffff:1.2.3.4/128' ], [ 't_misc', 'x8', 2, '18446744073709551615' ],
	[ 't_misc', 'm8', 2, 'ff:ff:ff:ff:ff:ff:ff:ff' ], [ 't_misc', 'pa', 2, '((0,0),(1,1),(1e-310,0.1))' ],
	[ 't_arr', 'ia', 1, '{{1,2},{3,NULL}}' ], [ 't_arr', 'ta', 1, '{NULL,"NULL","","a b","q\"u\\\\o,{}",ü}' ],
	[ 't_arr', 'fa', 1, '{-0,NaN,1e-310,0.1}' ], [ 't_arr', 'ea', 1, q{{sad,"ünï 'q\" ,{}"}} ],
	[ 't_arr', 'ca', 1, '{"(-0,\"ü\"\"q,(x)\",\"2000-01-01 00:00:00.000001+00\",\"\\\\\\\\x00\",$1.50)",NULL}' ],
	[ 't_arr', 'ia', 2, '[2:3]={1,2}' ], [ 't_arr', 'ia3', 2, '[-1:0][5:6]={{1,2},{3,4}}' ],
	[ 't_arr', 'na', 2, '[-5:-5]={1.000}' ], [ 't_arr', 'ta', 2, '[0:1]={x,NULL}' ],
	[ 't_arr', 'ia3', 4, '{{NULL,NULL}}' ],
	[ 't_range', 'nr', 3, '[1.0,2.00]' ], [ 't_range', 'fr', 3, '[-0,1e-310]' ],
	[ 't_range', 'tstzr', 3, '[-infinity,"1999-12-31 18:30:00+00")' ], [ 't_range', 'mr', 3, '{[1,3),[5,7)}' ],
	[ 't_range', 'dmr', 3, '{["0044-03-15 BC",2000-01-01)}' ], [ 't_range', 'r4', 1, 'empty' ],
	[ 't_comp', 'c', 1, '(-0,"ü""q,(x)\\\\","2000-01-01 00:00:00.000001+00","\\\\x00","-$1,234.56")' ],
	[ 't_comp', 'o', 1, '("(NaN,,-infinity,""\\\\\\\\x"",$0.00)","{""(1e-310,a,,,)"",NULL}",happy,"-1 mons +1 day -00:00:01",1.000,"0044-03-15 BC")' ],
	[ 't_comp', 'h', 1, '""=>"", "ü"=>NULL, "a b"=>"1", "q\"uote"=>"\\\\"' ],
	[ 't_comp', 'cu', 1, '(1e-310, -0),(0.1, 3.4e+38)' ], [ 't_comp', 'l', 1, 'Top.Science.Astronomy' ],
	[ 't_comp', 'dm', 1, '$1,234.56' ], [ 't_comp', 'o', 3, '("(0.1,x,,,)",,"ünï \'q"" ,{}","1 mon 31 days 25:00:00",NaN,infinity)' ]);
push @spots, [ 't_xml', 'doc', 1, '<?xml version="1.0" standalone="yes"?><a x="1">ü<b/>  </a>' ],
  [ 't_xml', 'doc', 3, 'text <a>&amp;</a> tail' ], [ 't_xml', 'doc', 4, '  <a/>  ' ],
  [ 't_xml', 'doc', 2, '<!DOCTYPE a [<!ENTITY e "ent">]><a>&e;</a>' ]
  if $has_xml;

sub spot_checks
{
	my ($node) = @_;
	my (@sel, @names, @expected);
	for my $s (@spots)
	{
		my ($t, $expr, $k, $exp) = @$s;
		my @ids = ($k);
		# the streamed copy of row k (row 102, with the values of row 3, was deleted)
		push @ids, ($k == 1 ? 100 + $nrows{$t} : 100 + $k - 1) unless $k == 3;
		for my $id (@ids)
		{
			push @sel, "SELECT " . scalar(@sel) . ", coalesce((SELECT coalesce(($expr)::text, '<NULL>')"
			  . " FROM $t WHERE id = $id), '<no row>')";
			push @names, "$t.$expr of row $id";
			push @expected, $exp;
		}
	}
	my $res = $node->safe_psql('postgres', "$fixed SELECT string_agg(v, E'\\x1e' ORDER BY i) FROM ("
		  . join("\nUNION ALL ", @sel) . ') s(i, v)');
	my @got = split(/\x1e/, $res, -1);
	is($got[$_], $expected[$_], "$names[$_] on " . $node->name) for 0 .. $#expected;
}
spot_checks($f1);

############################################################################
# 3. an UPDATE of another column does not log a TOASTed value again, and
#    generated columns are computed by the follower, never sent
############################################################################

$leader->safe_psql('postgres', "SELECT repl.pause_follower('f1')");
my $mark = $leader->safe_psql('postgres', 'SELECT coalesce(max(seq), 0) FROM repl.log');
$leader->safe_psql('postgres', q{
UPDATE t_big SET note = 'note changed';
UPDATE t_big SET id = 3 WHERE id = 2;
UPDATE gen_same SET v = v + 10;
UPDATE gen_diff SET v = v || '+';
INSERT INTO gen_same (id, v) VALUES (5, 5);
INSERT INTO gen_diff (id, v) VALUES (5, 'five');});
is($leader->safe_psql('postgres', qq{SELECT count(*), max(octet_length(data)) < 200 FROM repl.log
	WHERE seq > $mark AND relid = 't_big'::regclass}), '3|t',
	'updates of other columns and of the key log no big value');
is($leader->safe_psql('postgres', qq{SELECT string_agg(op || ' ' || key::text || ' ' || data::text, '; ' ORDER BY seq)
	FROM repl.changes WHERE seq > $mark AND relation = 'public.t_big'}),
	'UPDATE {"id": "1"} {"note": "note changed"}; UPDATE {"id": "2"} {"note": "note changed"}; UPDATE {"id": "2"} {"id": "3"}',
	'the log holds the key and the changed column only');
is($leader->safe_psql('postgres', qq{SELECT count(*) > 0, count(*) FILTER (WHERE data ? 'g' OR data ? 'gt'
	OR coalesce(key ? 'g', false) OR coalesce(key ? 'gt', false))
	FROM repl.changes WHERE seq > $mark AND relation IN ('public.gen_same', 'public.gen_diff')}),
	't|0', 'generated columns are not in the log');
$leader->safe_psql('postgres', "SELECT repl.resume_follower('f1')");
wait_catchup($leader, 'f1');
my $big_sums = q{SELECT string_agg(id || ':' || note || ':' || md5(ctext) || ':' || md5(etext) || ':' || md5(rb)
	|| ':' || octet_length(ctext) || ':' || octet_length(etext) || ':' || octet_length(rb), ',' ORDER BY id) FROM t_big};
is($f1->safe_psql('postgres', $big_sums), $leader->safe_psql('postgres', $big_sums),
	'big values kept on the follower through updates of other columns and of the key');
compare_nodes($leader, $f1, 't_big', 'id');
compare_nodes($leader, $f1, 'gen_same', 'id');
is($f1->safe_psql('postgres', q{SELECT string_agg(id || '=' || g || '/' || gt, ',' ORDER BY id) FROM gen_same}),
	'1=22/v=11,2=24/v=12,4=28/v=14,5=10/v=5', 'generated columns recomputed by the follower after updates');
my $gen_v = q{SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM gen_diff};
is($f1->safe_psql('postgres', $gen_v), $leader->safe_psql('postgres', $gen_v), 'gen_diff: same base values');
is($f1->safe_psql('postgres', q{SELECT count(*), count(*) FILTER (WHERE g IS DISTINCT FROM 'F:' || v) FROM gen_diff}),
	'4|0', 'the follower computed the generated column with its own expression');

# the big values themselves change, then one goes
$leader->safe_psql('postgres', q{
UPDATE t_big SET ctext = ctext || 'tail', rb = rb || '\x00'::bytea WHERE id = 1;
UPDATE t_big SET etext = upper(etext) WHERE id = 3;});
wait_catchup($leader, 'f1');
is($f1->safe_psql('postgres', $big_sums), $leader->safe_psql('postgres', $big_sums),
	'changed big values replicated');
$leader->safe_psql('postgres', 'DELETE FROM t_big WHERE id = 3');

# TRUNCATE of a quoted table and of a partitioned table's partitions
$leader->safe_psql('postgres', qq{
TRUNCATE $odd;
INSERT INTO $odd VALUES (5, 'after truncate', NULL, 5, 5);
TRUNCATE part;
INSERT INTO part VALUES (5, 5, 'lo'), (6, 500, 'hi');
UPDATE part SET k = 105 WHERE id = 5;});
wait_catchup($leader, 'f1');
compare_all($f1, $odd, 'part_lo', 'part_hi', 'part', 't_big');
is($f1->safe_psql('postgres', $where), 'part_hi:5:105,part_hi:6:500', 'partitions after TRUNCATE');
is($f1->safe_psql('postgres', 'SELECT count(*) FROM y'), '1', 'y still there after TRUNCATE');

############################################################################
# 4. a follower added last copies all of it, under other settings again
############################################################################

my $f2 = new_node('f2', @utf8, @quiet,
	'TimeZone' => 'Pacific/Chatham', 'DateStyle' => 'German, DMY',
	'IntervalStyle' => 'iso_8601', 'extra_float_digits' => '1', 'lc_monetary' => 'C.utf8');
$f2->safe_psql('postgres', $types . $on_every_node . sprintf($gen_diff, 'F'));
$leader->safe_psql('postgres', "SELECT repl.add_follower('f2', '" . connstr($f2) . "')");
wait_catchup($leader, 'f2');
compare_all($f2);
spot_checks($f2);
is($f2->safe_psql('postgres', $where), $leader->safe_psql('postgres', $where), 'f2: rows in the same partitions');
is($f2->safe_psql('postgres', q{SELECT count(*), count(*) FILTER (WHERE g IS DISTINCT FROM 'F:' || v) FROM gen_diff}),
	'4|0', 'f2 computed the generated column itself');

############################################################################
# 5. follower settings that change how text is parsed, rows that are equal
#    without being identical, names that depend on search_path, and types
#    without equality.  A failure here may stop a follower for good, so each
#    check stops at most the follower it is the last one for: f1 (xml), then
#    f2 (OID alias types), then f3, added afterwards (json and point).
############################################################################

$f1->append_conf('postgresql.conf', "array_nulls = off\nxmloption = document\n");
$f1->restart;
wait_catchup($leader, 'f1');

# a text[] travels as text: NULL must stay NULL, not become the string "NULL"
$leader->safe_psql('postgres', q{INSERT INTO parse_t VALUES (1, '{NULL,"NULL",x}', '{NULL,1}')});
wait_catchup($leader);
is($f1->safe_psql('postgres', 'SELECT ta[1] IS NULL, ta[2] IS NULL, ia[1] IS NULL FROM parse_t WHERE id = 1'),
	't|f|t', 'array NULL stays NULL on a follower with array_nulls = off');
compare_nodes($leader, $_, 'parse_t', 'id') for ($f1, $f2);

# REPLICA IDENTITY FULL: the row changed must be the identical one, not one
# its type calls equal (0 and -0, 1.0 and 1.00, 'a' and 'A' in citext)
$leader->safe_psql('postgres', q{UPDATE full_eq SET tag = 'changed'
	WHERE (k = 1 AND f::text = '-0') OR (k = 2 AND n::text = '1.00') OR (k = 3 AND c::text = 'A')});
wait_catchup($leader);
my $tags = q{SELECT string_agg(k || ':' || f || ':' || n || ':' || c || ':' || coalesce(tag, '-'), ','
	ORDER BY k, tag NULLS FIRST) FROM full_eq};
is($leader->safe_psql('postgres', $tags),
	'1:0:1:x:-,1:-0:1:x:changed,2:0:1.0:x:-,2:0:1.00:x:changed,3:0:1:a:-,3:0:1:A:changed',
	'full_eq on the leader');
compare_nodes($leader, $_, 'full_eq', 'x::text') for ($f1, $f2);

sub epoch_now
{
	return $leader->safe_psql('postgres', 'SELECT extract(epoch FROM clock_timestamp())');
}

# money inside a composite or domain travels as text, which lc_monetary shapes
my $mon_locale;
for my $loc (qw(de_DE.utf8 fr_FR.utf8 nl_NL.utf8 ru_RU.utf8 en_IN.utf8))
{
	($rc) = $leader->psql('postgres', "SET lc_monetary = '$loc'");
	if ($rc == 0)
	{
		$mon_locale = $loc;
		last;
	}
}
SKIP:
{
	# only C and C.utf8 may be installed: their money formats are the same
	skip 'no installed locale formats money differently from C', 3 unless $mon_locale;
	my $since = epoch_now();
	$leader->safe_psql('postgres', "SET lc_monetary = '$mon_locale';
INSERT INTO t_comp (id, c, dm) VALUES (50, ROW(1, 'money', NULL, NULL, '-1234.56'), '1234567.89')");
	is(catchup_or_error($leader, $_, $since), '', "money written under lc_monetary $mon_locale applied on $_")
	  for ('f1', 'f2');
	compare_nodes($leader, $f1, 't_comp', 'id');
}

# xml travels as text: a content fragment must not be parsed as a document
SKIP:
{
	skip 'no libxml', 2 unless $has_xml;
	my $since = epoch_now();
	$leader->safe_psql('postgres', q{INSERT INTO t_xml VALUES (50, 'fragment <a/> tail')});
	is(catchup_or_error($leader, 'f1', $since), '', 'XML content applied on a follower with xmloption = document');
	compare_nodes($leader, $f1, 't_xml', 'id');
}

# OID alias types travel as names; the writer's search_path finds mood and
# y in public, the follower must find the same objects
my $since = epoch_now();
$leader->safe_psql('postgres', q{INSERT INTO t_reg VALUES (3, 'mood[]', 'y', 'public')});
is(catchup_or_error($leader, 'f2', $since), '', 'regtype, regclass and regnamespace of user objects applied');
compare_nodes($leader, $f2, 't_reg', 'id');

# REPLICA IDENTITY FULL with types that have no equality operator
my $f3 = new_node('f3', @utf8, @quiet, 'TimeZone' => 'Pacific/Kiritimati', 'DateStyle' => 'Postgres, YMD');
$f3->safe_psql('postgres', $types . $on_every_node . sprintf($gen_diff, 'F'));
$leader->safe_psql('postgres', "SELECT repl.add_follower('f3', '" . connstr($f3) . "')");
wait_catchup($leader, 'f3');
compare_all($f3);
$since = epoch_now();
$leader->safe_psql('postgres', q{UPDATE full_noeq SET k = k + 10 WHERE k = 1; DELETE FROM full_noeq WHERE k = 2;});
is(catchup_or_error($leader, 'f3', $since), '',
	'update and delete of a FULL identity row with json and point columns applied');
compare_nodes($leader, $f3, 'full_noeq', 'x::text');

$_->stop for ($leader, $f1, $f2, $f3);
done_testing();
