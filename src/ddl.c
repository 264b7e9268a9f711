/*-------------------------------------------------------------------------
 *
 * ddl.c
 *		Schema changes: repl.execute_ddl, and what the DDL guard asks.
 *
 * repl.execute_ddl(command) runs the command on the leader and, in the same
 * transaction, writes it into the replication log (op 'S') with the
 * caller's search_path.  Followers replay it when apply reaches that record
 * (apply.c), so the changes logged before it are applied with the old
 * definition and those after it with the new one.  The record is written
 * after the command ran: by then the command holds its locks, so every
 * writer of the tables it altered either committed before it (and logged
 * its changes earlier) or waits for it (and logs them later).
 *
 * What execute_ddl refuses, leaving nothing changed:
 *	- a command that changes rows of replicated tables: those rows are
 *	  logged and sent as rows, so replaying the command would change them a
 *	  second time on followers;
 *	- renaming a replicated table or moving it to another schema: batches
 *	  name tables by their current name (remove the table, rename it on
 *	  every node, add it again).
 *
 * Plain DDL on a replicated table outside execute_ddl is refused by the
 * event trigger repl.guard_ddl (repl_ext--1.3--1.4.sql), which asks
 * repl.in_execute_ddl() whether this backend is inside execute_ddl.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "capture.h"
#include "changelog.h"
#include "ddl.h"
#include "follower.h"
#include "protocol.h"
#include "repl_ext.h"
#include "shmem.h"
#include "syncwait.h"

PG_FUNCTION_INFO_V1(repl_execute_ddl);
PG_FUNCTION_INFO_V1(repl_in_execute_ddl);

/* execute_ddl calls in progress in this backend (nested calls count) */
static int	ddl_depth = 0;

/*
 * A replicated table whose name is no longer the one recorded by add_table,
 * or NULL.  Needs SPI.
 */
static char *
renamed_table(void)
{
	int			rc;

	rc = SPI_execute("SELECT pg_catalog.format('%I.%I', t.schema_name, t.table_name)"
					 "  FROM repl.replicated_tables t"
					 "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
					 "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
					 " WHERE c.relname OPERATOR(pg_catalog.<>) t.table_name"
					 "    OR n.nspname OPERATOR(pg_catalog.<>) t.schema_name"
					 " ORDER BY 1 LIMIT 1", false, 1);	/* see the command's effects */
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed for the rename check: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * repl_ddl_run
 *		Run a DDL command of execute_ddl through SPI (the caller is connected):
 *		on the leader, and again on each follower when apply replays it.
 *		What SPI refuses (transaction control) is a clean error.
 */
void
repl_ddl_run(const char *command)
{
	int			rc = SPI_execute(command, false, 0);

	if (rc < 0)
		ereport(ERROR,
				(errcode(rc == SPI_ERROR_TRANSACTION ?
						 ERRCODE_INVALID_TRANSACTION_TERMINATION :
						 ERRCODE_SYNTAX_ERROR),
				 errmsg("cannot run DDL command: %s", SPI_result_code_string(rc)),
				 rc == SPI_ERROR_TRANSACTION ?
				 errhint("Transaction control (BEGIN, COMMIT, ...) is not allowed in repl.execute_ddl.") : 0));
}

/*
 * repl.execute_ddl(command text) returns void
 *		Run command here and on every follower at the same point of the
 *		change stream (see file header).
 */
Datum
repl_execute_ddl(PG_FUNCTION_ARGS)
{
	char	   *command;
	const ReplLocalNode *node;
	uint64		rows_before;
	char	   *renamed;
	StringInfoData rec;

	repl_check_preloaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("command must not be null")));
	command = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (command[strspn(command, " \t\r\n;")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("command must not be empty")));
	repl_require_role(REPL_ROLE_LEADER, "repl.execute_ddl");
	node = repl_local_node();
	repl_check_leader_writable(node, "the replicated schema");

	rows_before = repl_log_rows_written();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ddl_depth++;
	PG_TRY();
	{
		repl_ddl_run(command);
	}
	PG_FINALLY();
	{
		ddl_depth--;
	}
	PG_END_TRY();

	if (repl_log_rows_written() != rows_before)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("repl.execute_ddl cannot run a command that changes rows of replicated tables"),
				 errdetail("The command changed " UINT64_FORMAT " rows of replicated tables, which are replicated as rows; replaying the command would change them again on the followers.",
						   repl_log_rows_written() - rows_before),
				 errhint("Run the data changes as ordinary statements, and only the schema changes through repl.execute_ddl().")));
	renamed = renamed_table();
	if (renamed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("repl.execute_ddl cannot rename replicated table %s or move it to another schema",
						renamed),
				 errhint("Remove the table with repl.remove_table(), rename it on every node, and add it again.")));
	SPI_finish();

	initStringInfo(&rec);
	repl_proto_put_ddl(&rec, namespace_search_path, command);
	repl_log_write(InvalidOid, REPL_OP_DDL, rec.data, rec.len);
	repl_write_epoch = node->epoch;
	pfree(rec.data);
	PG_RETURN_VOID();
}

/*
 * repl.in_execute_ddl() returns boolean
 *		Whether this backend is running a command of repl.execute_ddl: the
 *		DDL guard lets such commands through.
 */
Datum
repl_in_execute_ddl(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ddl_depth > 0);
}
