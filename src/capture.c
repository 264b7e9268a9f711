/*-------------------------------------------------------------------------
 *
 * capture.c
 *		The capture trigger, and repl.add_table / repl.remove_table.
 *
 * One C function serves as the AFTER ROW trigger for INSERT, UPDATE and
 * DELETE and as the AFTER TRUNCATE statement trigger of every replicated
 * table.  On the leader it writes a row image into the replication log:
 *	INSERT	every column (new values)
 *	DELETE	the replica identity (old values)
 *	UPDATE	the replica identity (old values) plus the columns whose stored
 *			bytes changed (new values); no change at all logs nothing
 * On a follower it refuses the write: the only way in is apply, which runs
 * with session_replication_role = replica so that the trigger does not fire.
 * Followers also get it as a BEFORE ROW trigger (repl_ext_protect), so a
 * write is refused before any constraint check can report something else.
 *
 * "Changed" compares the stored datums byte for byte (datumIsEqual), so
 * numeric 1.0 -> 1.00 and float 0 -> -0 are changes, and an unchanged TOAST
 * pointer compares equal without being fetched.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "capture.h"
#include "changelog.h"
#include "follower.h"
#include "protocol.h"
#include "relcache.h"
#include "repl_ext.h"
#include "shmem.h"
#include "syncwait.h"

PG_FUNCTION_INFO_V1(repl_capture_trigger);
PG_FUNCTION_INFO_V1(repl_add_table);
PG_FUNCTION_INFO_V1(repl_remove_table);

#define CAPTURE_TRIGGER_NAME	"repl_ext_capture"
#define TRUNCATE_TRIGGER_NAME	"repl_ext_truncate"
#define PROTECT_TRIGGER_NAME	"repl_ext_protect"

/*
 * Append the value of column attidx of tuple to buf.
 */
static void
put_value(StringInfo buf, ReplRelInfo *ri, int attidx, Datum value,
		  bool isnull)
{
	ReplRelColumn *col = &ri->cols[attidx];

	if (isnull)
	{
		repl_proto_put_column(buf, NameStr(col->name), REPL_VALUE_NULL,
							  NULL, 0);
		return;
	}
	repl_relinfo_prepare_output(ri, attidx);
	if (col->binary)
	{
		bytea	   *b = SendFunctionCall(&col->outfn, value);

		repl_proto_put_column(buf, NameStr(col->name), REPL_VALUE_BINARY,
							  VARDATA(b), VARSIZE(b) - VARHDRSZ);
		pfree(b);
	}
	else
	{
		char	   *s = OutputFunctionCall(&col->outfn, value);

		repl_proto_put_column(buf, NameStr(col->name), REPL_VALUE_TEXT,
							  s, strlen(s));
		pfree(s);
	}
}

/* Append the replica identity of tuple, with its count. */
static void
put_key(StringInfo buf, ReplRelInfo *ri, HeapTuple tuple, TupleDesc desc)
{
	int			i;

	pq_sendint16(buf, ri->nkeys);
	for (i = 0; i < ri->nkeys; i++)
	{
		AttrNumber	attnum = ri->keyatts[i];
		bool		isnull;
		Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

		put_value(buf, ri, attnum - 1, value, isnull);
	}
}

/*
 * Build the row image of one row change into buf.  Returns false for an
 * UPDATE that changed nothing.
 */
static bool
build_row_image(StringInfo buf, ReplRelInfo *ri, TriggerData *td, char op)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			ncols = 0;
	int			count_offset;
	int			i;

	switch (op)
	{
		case REPL_OP_INSERT:
			pq_sendint16(buf, 0);
			count_offset = repl_proto_reserve_count(buf);
			for (i = 0; i < ri->natts; i++)
			{
				bool		isnull;
				Datum		value;

				if (ri->cols[i].skip)
					continue;
				value = heap_getattr(td->tg_trigtuple, i + 1, desc, &isnull);
				put_value(buf, ri, i, value, isnull);
				ncols++;
			}
			repl_proto_set_count(buf, count_offset, ncols);
			return true;

		case REPL_OP_DELETE:
			put_key(buf, ri, td->tg_trigtuple, desc);
			pq_sendint16(buf, 0);
			return true;

		case REPL_OP_UPDATE:
			put_key(buf, ri, td->tg_trigtuple, desc);
			count_offset = repl_proto_reserve_count(buf);
			for (i = 0; i < ri->natts; i++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, i);
				bool		oldnull;
				bool		newnull;
				Datum		oldval;
				Datum		newval;

				if (ri->cols[i].skip)
					continue;
				oldval = heap_getattr(td->tg_trigtuple, i + 1, desc, &oldnull);
				newval = heap_getattr(td->tg_newtuple, i + 1, desc, &newnull);
				if (oldnull && newnull)
					continue;
				if (!oldnull && !newnull &&
					datumIsEqual(oldval, newval, att->attbyval, att->attlen))
					continue;
				put_value(buf, ri, i, newval, newnull);
				ncols++;
			}
			repl_proto_set_count(buf, count_offset, ncols);
			return ncols > 0;
	}
	elog(ERROR, "unexpected change kind %c", op);
	return false;				/* keep compiler quiet */
}

static void
refuse_follower_write(Relation rel, const ReplLocalNode *node)
{
	if (node->role == REPL_ROLE_FENCED)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot modify replicated table \"%s\" on a fenced former leader",
						RelationGetRelationName(rel)),
				 errdetail("Node \"%s\" leads epoch " INT64_FORMAT " now; write to it instead.",
						   node->leader_name, node->epoch),
				 errhint("Call repl.rejoin() on this node to make it a follower.")));
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot modify replicated table \"%s\" on a follower",
					RelationGetRelationName(rel)),
			 errdetail("This node \"%s\" follows leader \"%s\"; write to the leader instead.",
					   node->node_name, node->leader_name)));
}

/*
 * repl_check_leader_writable
 *		A leader refuses writes while a switchover hands its role over, and
 *		from the moment it learns of a newer epoch (failover.c), before its
 *		catalog says so.  what names the object written, for the message:
 *		"replicated table \"t\"".
 */
void
repl_check_leader_writable(const ReplLocalNode *node, const char *what)
{
	int64		fenced_epoch = (int64) pg_atomic_read_u64(&repl_shared->fenced_epoch);
	char		target[NAMEDATALEN];

	if (fenced_epoch > node->epoch)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot modify %s on a fenced former leader", what),
				 errdetail("Another node leads epoch " INT64_FORMAT " now.", fenced_epoch),
				 errhint("Call repl.rejoin() on this node to make it a follower.")));
	if (pg_atomic_read_u32(&repl_shared->handover_active) == 0)
		return;
	LWLockAcquire(repl_shared->lock, LW_SHARED);
	strlcpy(target, repl_shared->handover_to, NAMEDATALEN);
	LWLockRelease(repl_shared->lock);
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot modify %s during a switchover", what),
			 errdetail("Leadership is moving from \"%s\" to \"%s\"; write to \"%s\" once it is done.",
					   node->node_name, target, target)));
}

/*
 * repl_capture_trigger
 *		Trigger function of every replicated table (see file header).
 */
Datum
repl_capture_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const ReplLocalNode *node;
	Relation	rel;
	char		op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("repl.capture_trigger() was not called by the trigger manager")));
	rel = td->tg_relation;
	repl_check_preloaded();
	node = repl_local_node();

	/*
	 * BEFORE ROW: the protection trigger of followers, so that a refused
	 * write is refused before any constraint is checked.
	 */
	if (TRIGGER_FIRED_BEFORE(td->tg_event) && TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		if (node->role == REPL_ROLE_FOLLOWER || node->role == REPL_ROLE_FENCED)
			refuse_follower_write(rel, node);
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
							   td->tg_newtuple : td->tg_trigtuple);
	}
	if (!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("repl.capture_trigger() must be fired AFTER the change")));

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		op = REPL_OP_TRUNCATE;
	else if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("repl.capture_trigger() must be fired FOR EACH ROW for INSERT, UPDATE and DELETE")));
	else if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = REPL_OP_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = REPL_OP_UPDATE;
	else
		op = REPL_OP_DELETE;

	if (node->role == REPL_ROLE_FOLLOWER || node->role == REPL_ROLE_FENCED)
		refuse_follower_write(rel, node);
	if (node->role != REPL_ROLE_LEADER)
		return PointerGetDatum(NULL);
	/* the message is built only when needed: this is the hot path */
	if ((int64) pg_atomic_read_u64(&repl_shared->fenced_epoch) > node->epoch ||
		pg_atomic_read_u32(&repl_shared->handover_active) != 0)
		repl_check_leader_writable(node,
								   psprintf("replicated table \"%s\"",
											RelationGetRelationName(rel)));
	repl_write_epoch = node->epoch;

	if (op == REPL_OP_TRUNCATE)
		repl_log_write(RelationGetRelid(rel), op, NULL, 0);
	else
	{
		ReplRelInfo *ri = repl_relinfo_get(rel);
		StringInfoData buf;
		int			nestlevel = -1;

		initStringInfo(&buf);
		if (ri->fixed_settings)
			nestlevel = repl_fixed_settings_begin();
		if (build_row_image(&buf, ri, td, op))
			repl_log_write(RelationGetRelid(rel), op, buf.data, buf.len);
		if (nestlevel >= 0)
			repl_fixed_settings_end(nestlevel);
		pfree(buf.data);
	}
	return PointerGetDatum(NULL);
}

/* Run one utility statement through SPI, checking the result. */
static void
run_spi(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
}

static bool
is_replicated(Oid relid)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			argtype = OIDOID;
	int			rc;

	/*
	 * Not read-only: a fresh snapshot, taken after the caller's lock on the
	 * table, sees an add_table or remove_table that committed while this
	 * call waited for that lock.
	 */
	rc = SPI_execute_with_args("SELECT 1 FROM repl.replicated_tables WHERE relid OPERATOR(pg_catalog.=) $1",
							   1, &argtype, &arg, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed > 0;
}

/* Refuse relations that cannot be replicated. */
static void
check_replicable(Relation rel)
{
	const char *relname = RelationGetRelationName(rel);
	char		identity;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replicate partitioned table \"%s\"", relname),
				 errhint("Add its partitions with repl.add_table() instead.")));
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot replicate \"%s\"", relname),
				 errdetail("Only ordinary tables can be replicated.")));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot replicate temporary or unlogged table \"%s\"",
						relname)));
	if (RelationGetNamespace(rel) == get_namespace_oid(REPL_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot replicate table \"%s\" of repl_ext itself",
						relname)));
	if (!repl_relation_has_identity(rel, &identity))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key or replica identity",
						relname),
				 errdetail("Updates and deletes could not be matched to rows on the followers."),
				 errhint("Add a primary key, or set REPLICA IDENTITY USING INDEX or REPLICA IDENTITY FULL.")));
}

/*
 * repl_install_capture
 *		Create the capture triggers on rel and record it as replicated.
 *		Returns false if it already was.  Used on the leader by add_table and
 *		on followers when the leader's add_table arrives.  The caller is
 *		connected to SPI.
 */
bool
repl_install_capture(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *qualname;
	char	   *sql;
	Datum		args[3];
	Oid			argtypes[3] = {OIDOID, NAMEOID, NAMEOID};
	int			rc;

	check_replicable(rel);
	if (is_replicated(relid))
		return false;

	qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	sql = psprintf("CREATE TRIGGER " CAPTURE_TRIGGER_NAME
				   " AFTER INSERT OR UPDATE OR DELETE ON %s"
				   " FOR EACH ROW EXECUTE FUNCTION repl.capture_trigger()",
				   qualname);
	run_spi(sql, SPI_OK_UTILITY);
	sql = psprintf("CREATE TRIGGER " TRUNCATE_TRIGGER_NAME
				   " AFTER TRUNCATE ON %s"
				   " FOR EACH STATEMENT EXECUTE FUNCTION repl.capture_trigger()",
				   qualname);
	run_spi(sql, SPI_OK_UTILITY);
	if (repl_local_node()->role == REPL_ROLE_FOLLOWER)
		run_spi(psprintf("CREATE TRIGGER " PROTECT_TRIGGER_NAME
						 " BEFORE INSERT OR UPDATE OR DELETE ON %s"
						 " FOR EACH ROW EXECUTE FUNCTION repl.capture_trigger()",
						 qualname), SPI_OK_UTILITY);

	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetDatum(get_namespace_name(RelationGetNamespace(rel)));
	args[2] = CStringGetDatum(RelationGetRelationName(rel));
	rc = SPI_execute_with_args("INSERT INTO repl.replicated_tables (relid, schema_name, table_name) VALUES ($1, $2, $3)",
							   3, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(rc));
	return true;
}

/*
 * repl_uninstall_capture
 *		Drop the capture triggers of relid and forget it.  Returns false if
 *		it was not replicated.  The caller is connected to SPI.
 */
bool
repl_uninstall_capture(Oid relid)
{
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			argtype = OIDOID;
	char	   *qualname;
	int			rc;

	if (!is_replicated(relid))
		return false;
	rc = SPI_execute_with_args("DELETE FROM repl.replicated_tables WHERE relid OPERATOR(pg_catalog.=) $1",
							   1, &argtype, &arg, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(rc));
	if (get_rel_name(relid) == NULL)
		return true;			/* table already gone */
	qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										  get_rel_name(relid));
	run_spi(psprintf("DROP TRIGGER IF EXISTS " CAPTURE_TRIGGER_NAME " ON %s",
					 qualname), SPI_OK_UTILITY);
	run_spi(psprintf("DROP TRIGGER IF EXISTS " TRUNCATE_TRIGGER_NAME " ON %s",
					 qualname), SPI_OK_UTILITY);
	run_spi(psprintf("DROP TRIGGER IF EXISTS " PROTECT_TRIGGER_NAME " ON %s",
					 qualname), SPI_OK_UTILITY);
	return true;
}

/*
 * repl_protect_tables
 *		Give every replicated table the follower's write protection trigger,
 *		or take it away: when the node changes role (failover.c).  The
 *		caller is connected to SPI.
 */
void
repl_protect_tables(bool protect)
{
	List	   *relids = repl_replicated_relids(CurrentMemoryContext);
	ListCell   *lc;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *qualname;

		if (get_rel_name(relid) == NULL)
			continue;
		qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid));
		if (protect)
			run_spi(psprintf("CREATE OR REPLACE TRIGGER " PROTECT_TRIGGER_NAME
							 " BEFORE INSERT OR UPDATE OR DELETE ON %s"
							 " FOR EACH ROW EXECUTE FUNCTION repl.capture_trigger()",
							 qualname), SPI_OK_UTILITY);
		else
			run_spi(psprintf("DROP TRIGGER IF EXISTS " PROTECT_TRIGGER_NAME " ON %s",
							 qualname), SPI_OK_UTILITY);
	}
}

/*
 * repl_replicated_table_names
 *		Qualified, quoted names of every replicated table, ordered by name, as
 *		a list of char * allocated in cxt.  The caller is connected to SPI.
 */
List *
repl_replicated_table_names(MemoryContext cxt)
{
	List	   *result = NIL;
	MemoryContext oldcxt;
	int			rc;
	uint64		i;

	rc = SPI_execute("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)"
					 "  FROM repl.replicated_tables t"
					 "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
					 "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
					 " ORDER BY 1", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	oldcxt = MemoryContextSwitchTo(cxt);
	for (i = 0; i < SPI_processed; i++)
		result = lappend(result, SPI_getvalue(SPI_tuptable->vals[i],
											  SPI_tuptable->tupdesc, 1));
	MemoryContextSwitchTo(oldcxt);
	return result;
}

typedef struct RelidsScan
{
	AttrNumber	relid_att;
	MemoryContext cxt;
	List	   *result;
} RelidsScan;

static bool
collect_relid(HeapTuple tup, TupleDesc desc, void *arg)
{
	RelidsScan *rs = (RelidsScan *) arg;
	bool		isnull;
	Datum		d;
	MemoryContext oldcxt;

	if (rs->relid_att == InvalidAttrNumber)
		rs->relid_att = repl_catalog_attnum(desc, "relid");
	d = heap_getattr(tup, rs->relid_att, desc, &isnull);
	oldcxt = MemoryContextSwitchTo(rs->cxt);

	rs->result = lappend_oid(rs->result, DatumGetObjectId(d));
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/*
 * repl_replicated_relids
 *		OIDs of every replicated table, as an OID list allocated in cxt.  The
 *		caller has an active snapshot.
 */
List *
repl_replicated_relids(MemoryContext cxt)
{
	RelidsScan	rs;

	rs.relid_att = InvalidAttrNumber;
	rs.cxt = cxt;
	rs.result = NIL;
	repl_catalog_scan("replicated_tables", collect_relid, &rs);
	return rs.result;
}

/*
 * Log that rel starts or stops being replicated.  The record carries the
 * table's name, so that it can be sent even after the table is dropped.
 */
static void
log_table_event(Relation rel, char op)
{
	StringInfoData buf;

	initStringInfo(&buf);
	repl_proto_put_table_name(&buf,
							  get_namespace_name(RelationGetNamespace(rel)),
							  RelationGetRelationName(rel));
	repl_log_write(RelationGetRelid(rel), op, buf.data, buf.len);
	pfree(buf.data);
}

/*
 * Body of add_table (add) and remove_table (!add): leader only; the change
 * is logged, so followers start or stop at the same point of the stream.
 */
static bool
set_replicated(FunctionCallInfo fcinfo, bool add)
{
	const char *funcname = add ? "repl.add_table" : "repl.remove_table";
	Relation	rel;
	bool		changed;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, funcname);
	rel = table_open(PG_GETARG_OID(0), ShareRowExclusiveLock);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	changed = add ? repl_install_capture(rel) :
		repl_uninstall_capture(RelationGetRelid(rel));
	if (changed && !add)
	{
		/* followers keep their copy; adding it again copies it afresh */
		Datum		arg = ObjectIdGetDatum(RelationGetRelid(rel));
		Oid			argtype = OIDOID;

		if (SPI_execute_with_args("DELETE FROM repl.follower_tables WHERE relid OPERATOR(pg_catalog.=) $1",
								  1, &argtype, &arg, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not update repl.follower_tables");
	}
	SPI_finish();
	if (changed)
	{
		log_table_event(rel, add ? REPL_OP_ADD_TABLE : REPL_OP_REMOVE_TABLE);
		/* senders look for tables to copy when the generation moves */
		repl_wake_supervisor_at_commit();
	}
	table_close(rel, NoLock);
	return changed;
}

/*
 * repl.add_table(rel regclass) returns boolean
 *		Start replicating rel; false if it already was.
 */
Datum
repl_add_table(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(set_replicated(fcinfo, true));
}

/*
 * repl.remove_table(rel regclass) returns boolean
 *		Stop replicating rel; false if it was not.  Followers can then write
 *		to their copy.
 */
Datum
repl_remove_table(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(set_replicated(fcinfo, false));
}

/* Render one column of a row image as JSON text (NULL -> JSON null). */
static void
append_json_value(StringInfo out, Relation rel, ReplRelInfo *ri,
				  ReplColumnValue *val)
{
	int			attidx = rel ? repl_relinfo_find_column(ri, val->name, val->namelen) : -1;
	char	   *text;

	if (val->format == REPL_VALUE_NULL)
	{
		appendStringInfoString(out, "null");
		return;
	}
	if (val->format == REPL_VALUE_TEXT || attidx < 0)
		text = pnstrdup(val->data, val->len);
	else
	{
		ReplRelColumn *col = &ri->cols[attidx];
		StringInfoData buf;
		Datum		d;
		Oid			outfn;
		bool		isvarlena;

		repl_relinfo_prepare_input(ri, attidx, true);
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, val->data, val->len);
		d = ReceiveFunctionCall(&col->recvfn, &buf, col->ioparam, col->typmod);
		getTypeOutputInfo(col->typid, &outfn, &isvarlena);
		text = OidOutputFunctionCall(outfn, d);
	}
	escape_json(out, text);
}

static Datum
image_part_to_jsonb(StringInfo msg, Relation rel, ReplRelInfo *ri)
{
	int			n = repl_proto_get_count(msg);
	StringInfoData out;
	int			i;

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	for (i = 0; i < n; i++)
	{
		ReplColumnValue val;

		repl_proto_get_column(msg, &val);
		if (i > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, pnstrdup(val.name, val.namelen));
		appendStringInfoString(&out, ": ");
		append_json_value(&out, rel, ri, &val);
	}
	appendStringInfoChar(&out, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
}

PG_FUNCTION_INFO_V1(repl_decode_change);

/*
 * repl.decode_change(relid oid, op "char", data bytea) returns (key jsonb,
 *		data jsonb)
 *		Show a row image of the log as JSON: binary values are turned back
 *		into their text form (under this session's settings).
 */
Datum
repl_decode_change(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1) && !PG_ARGISNULL(2))
	{
		char		op = PG_GETARG_CHAR(1);
		bytea	   *raw = PG_GETARG_BYTEA_PP(2);
		StringInfoData msg;

		msg.data = VARDATA_ANY(raw);
		msg.len = VARSIZE_ANY_EXHDR(raw);
		msg.maxlen = msg.len;
		msg.cursor = 0;
		if (op == REPL_OP_INSERT || op == REPL_OP_UPDATE || op == REPL_OP_DELETE)
		{
			Relation	rel = try_relation_open(PG_GETARG_OID(0), AccessShareLock);
			ReplRelInfo *ri = rel ? repl_relinfo_get(rel) : NULL;

			values[0] = image_part_to_jsonb(&msg, rel, ri);
			values[1] = image_part_to_jsonb(&msg, rel, ri);
			nulls[0] = (op == REPL_OP_INSERT);
			nulls[1] = (op == REPL_OP_DELETE);
			if (rel)
				relation_close(rel, AccessShareLock);
		}
		else if (op == REPL_OP_DDL)
		{
			char	   *search_path;
			char	   *command;
			StringInfoData out;

			repl_proto_get_ddl(&msg, &search_path, &command);
			initStringInfo(&out);
			appendStringInfoString(&out, "{\"search_path\": ");
			escape_json(&out, search_path);
			appendStringInfoString(&out, ", \"command\": ");
			escape_json(&out, command);
			appendStringInfoChar(&out, '}');
			values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
			nulls[1] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
