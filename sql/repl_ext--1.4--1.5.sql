/* repl_ext--1.4--1.5.sql: promote claims its epoch on every reachable node */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.5'" to load this file. \quit

CREATE FUNCTION repl.claim_epoch(candidate text, epoch bigint,
	OUT granted boolean, OUT reason text, OUT seen_epoch bigint)
AS 'MODULE_PATHNAME', 'repl_claim_epoch' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.claim_epoch(text, bigint) IS
'Promote: give epoch to candidate unless this node leads, is in or voted in that epoch or a newer one, or is itself being promoted right now (called by repl.promote on the other nodes)';
REVOKE ALL ON FUNCTION repl.claim_epoch(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION repl.claim_epoch(text, bigint) TO repl_admin;
