-- repl.add_table / repl.remove_table and their refusals.
SET client_min_messages = warning;

CREATE TABLE with_pk (id int PRIMARY KEY, v text);
CREATE TABLE no_key (a int, b text);
CREATE TABLE ident_full (a int, b text);
ALTER TABLE ident_full REPLICA IDENTITY FULL;
CREATE TABLE ident_index (a int NOT NULL, b text);
CREATE UNIQUE INDEX ident_index_a ON ident_index (a);
ALTER TABLE ident_index REPLICA IDENTITY USING INDEX ident_index_a;
CREATE TABLE ident_nothing (id int PRIMARY KEY);
ALTER TABLE ident_nothing REPLICA IDENTITY NOTHING;
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd ""Table""" ("Key" int PRIMARY KEY, "Val ue" text);
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY);
CREATE VIEW a_view AS SELECT 1 AS x;

SELECT repl.add_table('with_pk');
SELECT repl.add_table('with_pk');          -- already: false
SELECT repl.add_table('ident_full');
SELECT repl.add_table('ident_index');
SELECT repl.add_table('"My Schema"."Odd ""Table"""');

\set VERBOSITY default
SELECT repl.add_table('no_key');
SELECT repl.add_table('ident_nothing');
SELECT repl.add_table('parted');
SELECT repl.add_table('unlogged_t');
SELECT repl.add_table('a_view');
SELECT repl.add_table('repl.tick');
SELECT repl.add_table('no_such_table');
SELECT repl.add_table(NULL);

SELECT relid, schema_name, table_name, identity FROM repl.tables ORDER BY 2, 3;
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
 WHERE tgname LIKE 'repl_ext%' ORDER BY tgrelid::regclass::text, tgname;

-- a replicated table cannot be dropped
DROP TABLE ident_index;

SELECT repl.remove_table('ident_index');
SELECT repl.remove_table('ident_index');   -- not replicated: false
SELECT relid FROM repl.tables ORDER BY relid::text;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ident_index'::regclass;

-- the log records both events, with the table's name
SELECT relation, op, key, data FROM repl.changes ORDER BY seq;

DROP TABLE ident_index, no_key, ident_nothing, parted, unlogged_t;
DROP VIEW a_view;
