/*-------------------------------------------------------------------------
 *
 * apply.c
 *		Follower side: repl.apply_batch applies one batch in the calling
 *		transaction and stores the new position in the same transaction.
 *
 * Exactly once: the position is read under a row lock on repl.local_node;
 * a batch that ends at or before it was applied already and is skipped, a
 * batch that does not start at it is refused.  Data and position commit
 * together, so after a crash of either node the leader resends from the
 * position the follower reports, and nothing is lost or applied twice.
 *
 * Rows are applied with executor-level operations (ExecSimpleRelation*,
 * as logical replication's apply worker does): no SQL, no planning per row.
 * Updates and deletes find their row through the replica identity index, or
 * by comparing every column for REPLICA IDENTITY FULL.  A row that is not
 * found is an error, not a skip: the follower has diverged and must stop
 * rather than silently drift.  Apply runs with session_replication_role =
 * replica, so ordinary triggers (our write protection included) do not
 * fire; ENABLE REPLICA / ALWAYS triggers do.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/heapam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_sequence.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "capture.h"
#include "changelog.h"
#include "ddl.h"
#include "failover.h"
#include "follower.h"
#include "protocol.h"
#include "relcache.h"
#include "repl_ext.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(repl_apply_batch);
PG_FUNCTION_INFO_V1(repl_prepare_apply_session);

/* One relation of the batch being applied. */
typedef struct ApplyRel
{
	char	   *nspname;
	char	   *relname;
	char	   *qualname;		/* quoted, for messages */
	Oid			relid;
	Relation	rel;			/* NULL until first used, or after TRUNCATE */
	ResultRelInfo *rri;
	/* search, local and new row; in es_tupleTable, cleared after each change */
	TupleTableSlot *slots[3];
	bool		registered;		/* in repl.replicated_tables here */
} ApplyRel;

/*
 * This follower's own rows that a batch writes: its position in
 * repl.local_node (locked for the whole batch) and the ticks it keeps for a
 * future leader in repl.retained.  Written with executor-level operations
 * like the applied rows: three SQL statements per batch took two thirds of
 * the apply time of a one-row batch.
 */
typedef struct ApplyBook
{
	EState	   *estate;			/* range table: local_node, retained */
	Oid			retained_relid;
	ResultRelInfo *node_rri;
	TupleTableSlot *node_row;	/* the locked row, pinned */
	TupleTableSlot *node_new;
	ResultRelInfo *retained_rri;	/* NULL until a tick is kept */
	TupleTableSlot *retained_slots[3];	/* search, found, new */
} ApplyBook;

typedef struct ApplyState
{
	ReplBatchHeader hdr;
	ApplyBook	book;
	ApplyRel   *rels;
	EState	   *estate;
	List	   *registered;		/* OIDs of replicated tables here */
	MemoryContext rowcxt;		/* reset after every change */
	int			fixed_nestlevel;	/* -1 until text values need it */
	/* for the error context */
	int			change_no;
	const char *current_rel;
	const char *current_ddl;
} ApplyState;

static void
apply_error_callback(void *arg)
{
	ApplyState *st = (ApplyState *) arg;

	if (st->current_ddl)
		errcontext("replaying DDL command of batch " INT64_FORMAT "-" INT64_FORMAT " from leader \"%s\": %s",
				   st->hdr.from_tick, st->hdr.to_tick, st->hdr.leader_name,
				   st->current_ddl);
	else if (st->current_rel)
		errcontext("applying change %d of batch " INT64_FORMAT "-" INT64_FORMAT " from leader \"%s\" to table %s",
				   st->change_no, st->hdr.from_tick, st->hdr.to_tick,
				   st->hdr.leader_name, st->current_rel);
	else if (st->hdr.leader_name)
		errcontext("applying batch " INT64_FORMAT "-" INT64_FORMAT " from leader \"%s\"",
				   st->hdr.from_tick, st->hdr.to_tick, st->hdr.leader_name);
}

/*
 * Give the executor a range table with one entry per relation of the batch
 * (index i + 1 for relation i).  Names are resolved when first used, not
 * here: a DDL record earlier in the batch may create the table.
 */
static void
init_range_table(ApplyState *st)
{
	List	   *rtable = NIL;
	int			i;

	for (i = 0; i < st->hdr.nrels; i++)
	{
		ApplyRel   *ar = &st->rels[i];
		RangeTblEntry *rte;

		ar->qualname = quote_qualified_identifier(ar->nspname, ar->relname);
		rte = makeNode(RangeTblEntry);
		rte->rtekind = RTE_RELATION;
		rte->rellockmode = RowExclusiveLock;
		rtable = lappend(rtable, rte);
	}
	ExecInitRangeTable(st->estate, rtable);
}

/* Look up and lock relation idx of the batch by name, once. */
static ApplyRel *
resolve_rel(ApplyState *st, int idx)
{
	ApplyRel   *ar = &st->rels[idx];
	RangeTblEntry *rte;

	if (OidIsValid(ar->relid))
		return ar;
	ar->relid = RangeVarGetRelid(makeRangeVar(ar->nspname, ar->relname, -1),
								 RowExclusiveLock, true);
	if (!OidIsValid(ar->relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("replicated relation %s does not exist on this follower",
						ar->qualname),
				 errhint("Create it with the same definition as on the leader; replication resumes on the next retry.")));
	ar->registered = list_member_oid(st->registered, ar->relid);
	rte = exec_rt_fetch(idx + 1, st->estate);
	rte->relid = ar->relid;
	rte->relkind = get_rel_relkind(ar->relid);
	return ar;
}

/*
 * Open relation idx of the batch for writing, once.  Apply writes with the
 * privileges of the role the leader connects as: it must be allowed to
 * read and change the table (see README, "Security").
 */
static ApplyRel *
open_apply_rel(ApplyState *st, int idx)
{
	ApplyRel   *ar = resolve_rel(st, idx);
	AclResult	aclresult;

	if (ar->rel != NULL)
		return ar;
	ar->rel = table_open(ar->relid, RowExclusiveLock);
	if (ar->rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("replicated relation %s is not a table on this follower",
						ar->qualname)));
	aclresult = pg_class_aclcheck(ar->relid, GetUserId(),
								  ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, RelationGetRelationName(ar->rel));
	ar->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ar->rri, ar->rel, idx + 1, NULL, 0);
	ExecOpenIndices(ar->rri, false);
	ar->slots[0] = table_slot_create(ar->rel, &st->estate->es_tupleTable);
	ar->slots[1] = table_slot_create(ar->rel, &st->estate->es_tupleTable);
	ar->slots[2] = table_slot_create(ar->rel, &st->estate->es_tupleTable);
	return ar;
}

/* Drop the buffer pins the relation's slots hold. */
static void
clear_apply_slots(ApplyRel *ar)
{
	int			i;

	for (i = 0; i < 3; i++)
		if (ar->slots[i])
			ExecClearTuple(ar->slots[i]);
}

static void
close_apply_rel(ApplyRel *ar)
{
	if (ar->rel == NULL)
		return;
	clear_apply_slots(ar);
	/* the executor's trigger slots hold the last row they fetched */
	if (ar->rri->ri_TrigOldSlot)
		ExecClearTuple(ar->rri->ri_TrigOldSlot);
	if (ar->rri->ri_TrigNewSlot)
		ExecClearTuple(ar->rri->ri_TrigNewSlot);
	memset(ar->slots, 0, sizeof(ar->slots));
	ExecCloseIndices(ar->rri);
	table_close(ar->rel, NoLock);
	ar->rel = NULL;
	ar->rri = NULL;
}

/* Turn one value of a row image into a datum of column attidx. */
static Datum
decode_value(ApplyState *st, ReplRelInfo *ri, int attidx,
			 ReplColumnValue *val)
{
	ReplRelColumn *col = &ri->cols[attidx];

	if (val->format == REPL_VALUE_BINARY)
	{
		StringInfoData buf;

		repl_relinfo_prepare_input(ri, attidx, true);
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, val->data, val->len);
		return ReceiveFunctionCall(&col->recvfn, &buf, col->ioparam,
								   col->typmod);
	}
	else
	{
		char	   *str = pnstrdup(val->data, val->len);

		repl_relinfo_prepare_input(ri, attidx, false);
		if (st->hdr.encoding != GetDatabaseEncoding())
			str = (char *) pg_do_encoding_conversion((unsigned char *) str,
													 strlen(str),
													 st->hdr.encoding,
													 GetDatabaseEncoding());
		if (st->fixed_nestlevel < 0 && repl_type_needs_fixed_settings(col->typid))
			st->fixed_nestlevel = repl_fixed_settings_begin();
		return InputFunctionCall(&col->infn, str, col->ioparam, col->typmod);
	}
}

/*
 * Read count column values from data into slot (by name).  Columns the
 * image does not mention keep what the slot has.
 */
static void
read_columns(ApplyState *st, ApplyRel *ar, ReplRelInfo *ri, StringInfo data,
			 TupleTableSlot *slot)
{
	int			n = repl_proto_get_count(data);
	int			i;

	for (i = 0; i < n; i++)
	{
		ReplColumnValue val;
		int			attidx;
		char	   *name;

		repl_proto_get_column(data, &val);
		attidx = repl_relinfo_find_column(ri, val.name, val.namelen);
		if (attidx < 0)
		{
			name = pnstrdup(val.name, val.namelen);
			if (st->hdr.encoding != GetDatabaseEncoding())
				name = (char *) pg_do_encoding_conversion((unsigned char *) name,
														  strlen(name),
														  st->hdr.encoding,
														  GetDatabaseEncoding());
			attidx = repl_relinfo_find_column(ri, name, strlen(name));
		}
		if (attidx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of replicated table %s does not exist on this follower",
							pnstrdup(val.name, val.namelen), st->current_rel)));
		if (val.format == REPL_VALUE_NULL)
		{
			slot->tts_values[attidx] = (Datum) 0;
			slot->tts_isnull[attidx] = true;
		}
		else
		{
			slot->tts_values[attidx] = decode_value(st, ri, attidx, &val);
			slot->tts_isnull[attidx] = false;
		}
	}
}

/*
 * Whether row holds, in every column the relation replicates, the same
 * stored bytes as search.  REPLICA IDENTITY FULL matches rows by what they
 * hold, not by each type's "=", which may not exist (json, point) or may
 * call equal what differs (0 and -0, 1.0 and 1.00, citext 'A' and 'a'): the
 * follower must change the very row the leader changed.
 */
static bool
row_matches(ReplRelInfo *ri, TupleDesc desc, TupleTableSlot *row,
			TupleTableSlot *search)
{
	int			i;

	slot_getallattrs(row);
	for (i = 0; i < ri->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Datum		a = row->tts_values[i];
		Datum		b = search->tts_values[i];

		if (ri->cols[i].skip)
			continue;
		if (row->tts_isnull[i] != search->tts_isnull[i])
			return false;
		if (row->tts_isnull[i])
			continue;
		if (att->attlen == -1)
		{
			/* compressed or out of line in the table, plain in the image */
			struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(a));
			struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(b));
			bool		same;

			same = VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
				memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
			if ((Pointer) va != DatumGetPointer(a))
				pfree(va);
			if ((Pointer) vb != DatumGetPointer(b))
				pfree(vb);
			if (!same)
				return false;
		}
		else if (!datumIsEqual(a, b, att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * The row of a REPLICA IDENTITY FULL table that matches search (see
 * row_matches), locked, into out.  A scan with a dirty snapshot, waiting for
 * a transaction that still writes the row found, as the executor's own
 * RelationFindReplTupleSeq does; only the comparison differs.
 */
static bool
find_row_full(Relation rel, ReplRelInfo *ri, TupleTableSlot *search,
			  TupleTableSlot *out)
{
	SnapshotData snap;
	TableScanDesc scan;
	TupleTableSlot *scanslot;
	TupleDesc	desc = RelationGetDescr(rel);
	bool		found;

	InitDirtySnapshot(snap);
	scan = table_beginscan(rel, &snap, 0, NULL);
	scanslot = table_slot_create(rel, NULL);
retry:
	found = false;
	table_rescan(scan, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, scanslot))
	{
		TransactionId xwait;

		if (!row_matches(ri, desc, scanslot, search))
			continue;
		found = true;
		ExecCopySlot(out, scanslot);
		xwait = TransactionIdIsValid(snap.xmin) ? snap.xmin : snap.xmax;
		if (TransactionIdIsValid(xwait))
		{
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
			goto retry;
		}
		break;
	}
	if (found)
	{
		TM_FailureData tmfd;
		TM_Result	res;

		PushActiveSnapshot(GetLatestSnapshot());
		res = table_tuple_lock(rel, &out->tts_tid, GetLatestSnapshot(), out,
							   GetCurrentCommandId(false), LockTupleExclusive,
							   LockWaitBlock, 0, &tmfd);
		PopActiveSnapshot();
		switch (res)
		{
			case TM_Ok:
				break;
			case TM_Updated:
			case TM_Deleted:
				/* changed since the scan saw it: look again */
				goto retry;
			default:
				elog(ERROR, "unexpected result %d locking a row to apply",
					 (int) res);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(scanslot);
	return found;
}

/* Find the local row whose identity the image's key part gives. */
static void
find_row(ApplyState *st, ApplyRel *ar, ReplRelInfo *ri, StringInfo data,
		 TupleTableSlot *localslot, const char *what)
{
	TupleTableSlot *searchslot = ar->slots[0];
	bool		found;

	ExecClearTuple(searchslot);
	memset(searchslot->tts_isnull, true, sizeof(bool) * ri->natts);
	read_columns(st, ar, ri, data, searchslot);
	ExecStoreVirtualTuple(searchslot);

	if (OidIsValid(ri->identity_index))
		found = RelationFindReplTupleByIndex(ar->rel, ri->identity_index,
											 LockTupleExclusive, searchslot,
											 localslot);
	else
		found = find_row_full(ar->rel, ri, searchslot, localslot);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("row to %s in replicated table %s does not exist on this follower",
						what, st->current_rel),
				 errdetail("The follower no longer matches the leader."),
				 errhint("Re-synchronise the follower.")));
}

static void
apply_insert(ApplyState *st, ApplyRel *ar, StringInfo data)
{
	ReplRelInfo *ri = repl_relinfo_get(ar->rel);
	TupleTableSlot *slot = ar->slots[2];

	if (repl_proto_get_count(data) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("insert record carries a key part")));
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * ri->natts);
	read_columns(st, ar, ri, data, slot);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(ar->rri, st->estate, slot);
}

static void
apply_update(ApplyState *st, ApplyRel *ar, StringInfo data)
{
	ReplRelInfo *ri = repl_relinfo_get(ar->rel);
	TupleTableSlot *localslot = ar->slots[1];
	TupleTableSlot *newslot = ar->slots[2];
	EPQState	epqstate;

	find_row(st, ar, ri, data, localslot, "update");
	slot_getallattrs(localslot);
	ExecClearTuple(newslot);
	memcpy(newslot->tts_values, localslot->tts_values, sizeof(Datum) * ri->natts);
	memcpy(newslot->tts_isnull, localslot->tts_isnull, sizeof(bool) * ri->natts);
	read_columns(st, ar, ri, data, newslot);
	ExecStoreVirtualTuple(newslot);

	EvalPlanQualInit(&epqstate, st->estate, NULL, NIL, -1);
	ExecSimpleRelationUpdate(ar->rri, st->estate, &epqstate, localslot, newslot);
	EvalPlanQualEnd(&epqstate);
}

static void
apply_delete(ApplyState *st, ApplyRel *ar, StringInfo data)
{
	ReplRelInfo *ri = repl_relinfo_get(ar->rel);
	TupleTableSlot *localslot = ar->slots[1];
	EPQState	epqstate;

	find_row(st, ar, ri, data, localslot, "delete");
	if (repl_proto_get_count(data) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("delete record carries new values")));
	EvalPlanQualInit(&epqstate, st->estate, NULL, NIL, -1);
	ExecSimpleRelationDelete(ar->rri, st->estate, &epqstate, localslot);
	EvalPlanQualEnd(&epqstate);
}

static void
apply_truncate(ApplyState *st, ApplyRel *ar)
{
	int			rc;

	/* TRUNCATE refuses a relation this session still has open */
	close_apply_rel(ar);
	rc = SPI_execute(psprintf("TRUNCATE ONLY %s", ar->qualname), false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed for TRUNCATE: %s",
			 SPI_result_code_string(rc));
}

/*
 * Replay a command of repl.execute_ddl at its place in the stream, with the
 * leader's search_path.  The batch's relations are closed first: ALTER
 * TABLE refuses a relation this session still has open, and the relcache
 * invalidation makes the next change see the new definition.
 */
static void
apply_ddl(ApplyState *st, StringInfo data)
{
	char	   *search_path;
	char	   *command;
	int			nestlevel;
	int			i;

	repl_proto_get_ddl(data, &search_path, &command);
	if (st->hdr.encoding != GetDatabaseEncoding())
	{
		search_path = (char *)
			pg_do_encoding_conversion((unsigned char *) search_path,
									  strlen(search_path),
									  st->hdr.encoding, GetDatabaseEncoding());
		command = (char *)
			pg_do_encoding_conversion((unsigned char *) command,
									  strlen(command),
									  st->hdr.encoding, GetDatabaseEncoding());
	}
	st->current_ddl = command;
	for (i = 0; i < st->hdr.nrels; i++)
		close_apply_rel(&st->rels[i]);
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	repl_ddl_run(command);
	AtEOXact_GUC(true, nestlevel);
	st->current_ddl = NULL;
}

/*
 * Move a replicated sequence forward to the leader's value (never back: a
 * value from a batch that is older than one already applied, or a local
 * nextval, must not make it hand out a number again).  setval is not
 * transactional; a batch that fails later leaves the sequence ahead, which
 * is harmless.
 */
static void
apply_sequence(ApplyState *st, int idx, StringInfo data)
{
	int64		value = repl_proto_get_sequence(data);
	ApplyRel   *ar = resolve_rel(st, idx);
	HeapTuple	tup;
	int64		increment;
	LOCAL_FCINFO(fcinfo, 1);
	Datum		current;

	if (get_rel_relkind(ar->relid) != RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("replicated sequence %s is not a sequence on this follower",
						ar->qualname)));
	tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(ar->relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for sequence %u", ar->relid);
	increment = ((Form_pg_sequence) GETSTRUCT(tup))->seqincrement;
	ReleaseSysCache(tup);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(ar->relid);
	fcinfo->args[0].isnull = false;
	current = pg_sequence_last_value(fcinfo);
	if (!fcinfo->isnull &&
		(increment > 0 ? DatumGetInt64(current) >= value :
		 DatumGetInt64(current) <= value))
		return;
	(void) DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(ar->relid),
							   Int64GetDatum(value), BoolGetDatum(true));
}

static void
apply_table_event(ApplyState *st, ApplyRel *ar, char op)
{
	Oid			relid = RelationGetRelid(ar->rel);

	if (op == REPL_OP_ADD_TABLE)
	{
		(void) repl_install_capture(ar->rel);
		st->registered = lappend_oid(st->registered, relid);
		ar->registered = true;
	}
	else
	{
		(void) repl_uninstall_capture(relid);
		st->registered = list_delete_oid(st->registered, relid);
		ar->registered = false;
	}
}

/* Open one of the follower's own tables for writing, as range table entry rti. */
static ResultRelInfo *
book_open(ApplyBook *bk, Oid relid, Index rti)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	Relation	rel = table_open(relid, RowExclusiveLock);

	InitResultRelInfo(rri, rel, rti, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/* A value of the locked position row, NULL (as a datum) when it is NULL. */
static Datum
node_value(ApplyBook *bk, const char *name, bool *isnull)
{
	AttrNumber	attnum = repl_catalog_attnum(RelationGetDescr(bk->node_rri->ri_RelationDesc), name);

	*isnull = bk->node_row->tts_isnull[attnum - 1];
	return bk->node_row->tts_values[attnum - 1];
}

/*
 * Find rel's row whose primary key (one column, attnum keyatt) equals key,
 * locked, into found; search is a scratch slot of rel.
 */
static bool
book_find(Relation rel, AttrNumber keyatt, Datum key,
		  TupleTableSlot *search, TupleTableSlot *found)
{
	ExecClearTuple(search);
	memset(search->tts_isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
	search->tts_values[keyatt - 1] = key;
	search->tts_isnull[keyatt - 1] = false;
	ExecStoreVirtualTuple(search);
	return RelationFindReplTupleByIndex(rel, RelationGetPrimaryKeyIndex(rel),
										LockTupleExclusive, search, found);
}

/*
 * Read and lock this follower's position; check the batch's sender against
 * the locked row, not the cached one: a handshake of a newer leader may
 * have changed it while this batch was on its way (failover.c).
 */
static int64
lock_position(ApplyState *st)
{
	ApplyBook  *bk = &st->book;
	Oid			node_relid = repl_catalog_relid("local_node");
	RangeTblEntry *rtes[2];
	Relation	rel;
	TupleTableSlot *search;
	bool		isnull;
	char	   *role;
	char	   *leader = NULL;
	Datum		d;
	int64		epoch;
	int			i;

	bk->retained_relid = repl_catalog_relid("retained");
	bk->estate = CreateExecutorState();
	for (i = 0; i < 2; i++)
	{
		rtes[i] = makeNode(RangeTblEntry);
		rtes[i]->rtekind = RTE_RELATION;
		rtes[i]->relkind = RELKIND_RELATION;
		rtes[i]->rellockmode = RowExclusiveLock;
	}
	rtes[0]->relid = node_relid;
	rtes[1]->relid = bk->retained_relid;
	ExecInitRangeTable(bk->estate, list_make2(rtes[0], rtes[1]));

	bk->node_rri = book_open(bk, node_relid, 1);
	rel = bk->node_rri->ri_RelationDesc;
	search = table_slot_create(rel, &bk->estate->es_tupleTable);
	bk->node_row = table_slot_create(rel, &bk->estate->es_tupleTable);
	bk->node_new = table_slot_create(rel, &bk->estate->es_tupleTable);
	if (!book_find(rel, repl_catalog_attnum(RelationGetDescr(rel), "singleton"), BoolGetDatum(true),
				   search, bk->node_row))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batch from \"%s\" rejected: this node is not a follower",
						st->hdr.leader_name)));
	slot_getallattrs(bk->node_row);
	role = TextDatumGetCString(node_value(bk, "role", &isnull));
	d = node_value(bk, "leader_name", &isnull);
	if (!isnull)
		leader = TextDatumGetCString(d);
	epoch = DatumGetInt64(node_value(bk, "epoch", &isnull));
	if (strcmp(role, "follower") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batch from \"%s\" rejected: this node is not a follower",
						st->hdr.leader_name),
				 errdetail("Its role is \"%s\".", role)));
	if (leader == NULL || strcmp(leader, st->hdr.leader_name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batch from \"%s\" rejected: this node follows \"%s\"",
						st->hdr.leader_name, leader ? leader : "")));
	if (st->hdr.epoch != epoch)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batch from \"%s\" rejected: its epoch " INT64_FORMAT " is not this node's epoch " INT64_FORMAT,
						st->hdr.leader_name, st->hdr.epoch, epoch)));
	return DatumGetInt64(node_value(bk, "applied_tick", &isnull));
}

/* Store the position the batch ends at in the locked row. */
static void
store_position(ApplyState *st)
{
	ApplyBook  *bk = &st->book;
	Relation	rel = bk->node_rri->ri_RelationDesc;
	int			natts = RelationGetDescr(rel)->natts;
	TupleTableSlot *new = bk->node_new;
#if PG_VERSION_NUM < 160000
	bool		update_indexes;
#endif
	AttrNumber	att;
	bool		isnull;

	/*
	 * The first batch of a new leader's epoch: backends that keep this row
	 * (repl_local_node) must see the new applied_epoch.  Within an epoch only
	 * the position moves, which they read fresh.
	 */
	if (DatumGetInt64(node_value(bk, "applied_epoch", &isnull)) != st->hdr.epoch)
		repl_local_node_changed();

	ExecClearTuple(new);
	memcpy(new->tts_values, bk->node_row->tts_values, sizeof(Datum) * natts);
	memcpy(new->tts_isnull, bk->node_row->tts_isnull, sizeof(bool) * natts);
	att = repl_catalog_attnum(RelationGetDescr(rel), "applied_tick");
	new->tts_values[att - 1] = Int64GetDatum(st->hdr.to_tick);
	new->tts_isnull[att - 1] = false;
	att = repl_catalog_attnum(RelationGetDescr(rel), "applied_epoch");
	new->tts_values[att - 1] = Int64GetDatum(st->hdr.epoch);
	new->tts_isnull[att - 1] = false;
	att = repl_catalog_attnum(RelationGetDescr(rel), "applied_at");
	new->tts_values[att - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	new->tts_isnull[att - 1] = false;
	ExecStoreVirtualTuple(new);

	/*
	 * Only the position columns change, which no constraint of the table
	 * names: the update skips ExecConstraints, which would build the CHECK
	 * expressions again for every batch.
	 */
#if PG_VERSION_NUM < 160000
	simple_table_tuple_update(rel, &bk->node_row->tts_tid, new,
							  GetActiveSnapshot(), &update_indexes);
	if (update_indexes)
		(void) ExecInsertIndexTuples(bk->node_rri, new, bk->estate, true,
									 false, NULL, NIL);
#else
	{
		EPQState	epqstate;

		EvalPlanQualInit(&epqstate, bk->estate, NULL, NIL, -1);
		ExecSimpleRelationUpdate(bk->node_rri, bk->estate, &epqstate,
								 bk->node_row, new);
		EvalPlanQualEnd(&epqstate);
	}
#endif
}

/* Release what lock_position and retain_tick opened (not the row lock). */
static void
close_book(ApplyBook *bk)
{
	ExecResetTupleTable(bk->estate->es_tupleTable, false);
	ExecCloseIndices(bk->node_rri);
	table_close(bk->node_rri->ri_RelationDesc, NoLock);
	if (bk->retained_rri)
	{
		ExecCloseIndices(bk->retained_rri);
		table_close(bk->retained_rri->ri_RelationDesc, NoLock);
	}
	FreeExecutorState(bk->estate);
	memset(bk, 0, sizeof(ApplyBook));
}

/*
 * Keep the tick that ends here in repl.retained: a batch of its own, the
 * header of this batch with the tick's positions, and the changes from
 * tick_start to the marker (inclusive).  See failover.c.
 */
static void
retain_tick(ApplyState *st, StringInfo msg, int tick_start, int nchanges,
			int64 from_tick, int64 tick_id, TimestampTz tick_time)
{
	ApplyBook  *bk = &st->book;
	ReplBatchHeader hdr = st->hdr;
	StringInfoData buf;
	Relation	rel;
	TupleTableSlot **slots = bk->retained_slots;
	AttrNumber	tick_att;
	AttrNumber	att;
	bytea	   *b;

	if (bk->retained_rri == NULL)
	{
		int			i;

		bk->retained_rri = book_open(bk, bk->retained_relid, 2);
		for (i = 0; i < 3; i++)
			slots[i] = table_slot_create(bk->retained_rri->ri_RelationDesc,
										 &bk->estate->es_tupleTable);
	}
	rel = bk->retained_rri->ri_RelationDesc;

	hdr.from_tick = from_tick;
	hdr.to_tick = tick_id;
	hdr.to_tick_time = tick_time;
	hdr.nchanges = nchanges;
	initStringInfo(&buf);
	repl_proto_put_batch_header(&buf, &hdr);
	appendBinaryStringInfo(&buf, msg->data + tick_start, msg->cursor - tick_start);
	b = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(b, VARHDRSZ + buf.len);
	memcpy(VARDATA(b), buf.data, buf.len);

	ExecClearTuple(slots[2]);
	memset(slots[2]->tts_isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
	tick_att = repl_catalog_attnum(RelationGetDescr(rel), "tick_id");
	slots[2]->tts_values[tick_att - 1] = Int64GetDatum(tick_id);
	slots[2]->tts_isnull[tick_att - 1] = false;
	att = repl_catalog_attnum(RelationGetDescr(rel), "epoch");
	slots[2]->tts_values[att - 1] = Int64GetDatum(st->hdr.epoch);
	slots[2]->tts_isnull[att - 1] = false;
	att = repl_catalog_attnum(RelationGetDescr(rel), "batch");
	slots[2]->tts_values[att - 1] = PointerGetDatum(b);
	slots[2]->tts_isnull[att - 1] = false;
	ExecStoreVirtualTuple(slots[2]);

	/* a tick of an earlier leader with this number is replaced */
	bk->estate->es_output_cid = GetCurrentCommandId(true);
	if (book_find(rel, tick_att, Int64GetDatum(tick_id), slots[0], slots[1]))
	{
		EPQState	epqstate;

		EvalPlanQualInit(&epqstate, bk->estate, NULL, NIL, -1);
		ExecSimpleRelationUpdate(bk->retained_rri, bk->estate, &epqstate,
								 slots[1], slots[2]);
		EvalPlanQualEnd(&epqstate);
	}
	else
		ExecSimpleRelationInsert(bk->retained_rri, bk->estate, slots[2]);
	ExecClearTuple(slots[0]);
	ExecClearTuple(slots[1]);
	ExecClearTuple(slots[2]);
	pfree(b);
	pfree(buf.data);
}

/*
 * repl.apply_batch(batch bytea) returns bigint
 *		Apply one batch (see file header); returns the position afterwards.
 */
Datum
repl_apply_batch(PG_FUNCTION_ARGS)
{
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	StringInfoData msg;
	ApplyState	st;
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	int64		applied;
	int64		tick_from;
	int			tick_start;
	int			tick_changes = 0;
	int			i;

	repl_check_preloaded();
	memset(&st, 0, sizeof(st));
	st.fixed_nestlevel = -1;
	msg.data = VARDATA_ANY(raw);
	msg.len = VARSIZE_ANY_EXHDR(raw);
	msg.maxlen = msg.len;
	msg.cursor = 0;

	errcb.callback = apply_error_callback;
	errcb.arg = &st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	repl_proto_get_batch_header(&msg, &st.hdr);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	applied = lock_position(&st);
	if (st.hdr.to_tick <= applied)
	{
		/* sent again after a lost acknowledgement: already here */
		close_book(&st.book);
		SPI_finish();
		error_context_stack = errcb.previous;
		PG_RETURN_INT64(applied);
	}
	if (st.hdr.from_tick != applied)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("batch from \"%s\" starts at position " INT64_FORMAT " but this follower is at " INT64_FORMAT,
						st.hdr.leader_name, st.hdr.from_tick, applied)));

	(void) set_config_option("session_replication_role", "replica",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);

	st.registered = repl_replicated_relids(CurrentMemoryContext);
	st.rels = palloc0(sizeof(ApplyRel) * Max(st.hdr.nrels, 1));
	for (i = 0; i < st.hdr.nrels; i++)
	{
		st.rels[i].nspname = st.hdr.nspnames[i];
		st.rels[i].relname = st.hdr.relnames[i];
		if (st.hdr.encoding != GetDatabaseEncoding())
		{
			st.rels[i].nspname = (char *)
				pg_do_encoding_conversion((unsigned char *) st.rels[i].nspname,
										  strlen(st.rels[i].nspname),
										  st.hdr.encoding, GetDatabaseEncoding());
			st.rels[i].relname = (char *)
				pg_do_encoding_conversion((unsigned char *) st.rels[i].relname,
										  strlen(st.rels[i].relname),
										  st.hdr.encoding, GetDatabaseEncoding());
		}
	}

	st.estate = CreateExecutorState();
	st.estate->es_output_cid = GetCurrentCommandId(true);
	init_range_table(&st);
	st.rowcxt = AllocSetContextCreate(CurrentMemoryContext,
									  "repl_ext apply row",
									  ALLOCSET_DEFAULT_SIZES);
	AfterTriggerBeginQuery();

	tick_from = st.hdr.from_tick;
	tick_start = msg.cursor;
	for (i = 0; i < st.hdr.nchanges; i++)
	{
		int			relidx;
		char		op;
		StringInfoData data;
		ApplyRel   *ar;

		CHECK_FOR_INTERRUPTS();
		repl_proto_get_change(&msg, &st.hdr, &relidx, &op, &data);
		st.change_no = i + 1;
		tick_changes++;
		if (op == REPL_OP_TICK)
		{
			int64		tick_id;
			TimestampTz tick_time;

			repl_proto_get_tick(&data, &tick_id, &tick_time);
			if (tick_id <= tick_from || tick_id > st.hdr.to_tick)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("tick marker " INT64_FORMAT " out of order in replication batch",
								tick_id)));
			retain_tick(&st, &msg, tick_start, tick_changes, tick_from,
						tick_id, tick_time);
			tick_from = tick_id;
			tick_start = msg.cursor;
			tick_changes = 0;
			continue;
		}
		if (op == REPL_OP_DDL)
		{
			st.current_rel = NULL;
			apply_ddl(&st, &data);
			CommandCounterIncrement();
			st.estate->es_output_cid = GetCurrentCommandId(true);
			continue;
		}
		st.current_rel = st.rels[relidx].qualname;
		if (op == REPL_OP_SEQUENCE)
		{
			apply_sequence(&st, relidx, &data);
			continue;
		}
		ar = open_apply_rel(&st, relidx);
		if (op != REPL_OP_ADD_TABLE && !ar->registered)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s is not replicated on this follower",
							st.current_rel)));

		oldcxt = MemoryContextSwitchTo(st.rowcxt);
		switch (op)
		{
			case REPL_OP_INSERT:
				apply_insert(&st, ar, &data);
				break;
			case REPL_OP_UPDATE:
				apply_update(&st, ar, &data);
				break;
			case REPL_OP_DELETE:
				apply_delete(&st, ar, &data);
				break;
			case REPL_OP_TRUNCATE:
				apply_truncate(&st, ar);
				break;
			case REPL_OP_ADD_TABLE:
			case REPL_OP_REMOVE_TABLE:
				apply_table_event(&st, ar, op);
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unrecognized change kind %d in replication batch",
								op)));
		}
		MemoryContextSwitchTo(oldcxt);
		/* slots may point into rowcxt (values) and pin buffers */
		if (ar->rel)
			clear_apply_slots(ar);
		MemoryContextReset(st.rowcxt);

		/* the next change must see this one: batches touch rows twice */
		CommandCounterIncrement();
		st.estate->es_output_cid = GetCurrentCommandId(true);
	}
	if (msg.cursor != msg.len)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("replication batch has %d bytes after its last change",
						msg.len - msg.cursor)));
	if (tick_from != st.hdr.to_tick)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("replication batch to position " INT64_FORMAT " ends at tick " INT64_FORMAT,
						st.hdr.to_tick, tick_from)));
	st.current_rel = NULL;
	store_position(&st);

	/* fire ALWAYS / REPLICA after-row triggers, then clean up */
	AfterTriggerEndQuery(st.estate);
	ExecResetTupleTable(st.estate->es_tupleTable, false);
	for (i = 0; i < st.hdr.nrels; i++)
		close_apply_rel(&st.rels[i]);
	FreeExecutorState(st.estate);
	if (st.fixed_nestlevel >= 0)
		repl_fixed_settings_end(st.fixed_nestlevel);
	close_book(&st.book);
	SPI_finish();
	error_context_stack = errcb.previous;
	repl_note_leader_contact();
	PG_RETURN_INT64(st.hdr.to_tick);
}

/*
 * repl.prepare_apply_session(is_local boolean) returns void
 *		Put the calling session (or, is_local, its transaction) in
 *		session_replication_role = replica, as apply and the initial copy
 *		need: ordinary triggers, our write protection included, do not fire.
 *		The setting is superuser-only; this function lets the leader's
 *		connection role do it without being a superuser, and only members
 *		of repl_admin may call it (README, "Security").
 */
Datum
repl_prepare_apply_session(PG_FUNCTION_ARGS)
{
	bool		is_local = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);

	repl_check_preloaded();
	(void) set_config_option("session_replication_role", "replica",
							 PGC_SUSET, PGC_S_SESSION,
							 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
	PG_RETURN_VOID();
}
