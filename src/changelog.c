/*-------------------------------------------------------------------------
 *
 * changelog.c
 *		The leader's replication log: writing changes, cutting ticks, reading
 *		batches, rotating and truncating log tables.
 *
 * Writing.  The capture trigger inserts one row per change straight into
 * the current log table (heap insert plus its one index, no SQL), tagged with
 * the top-level transaction id and a sequence number from shared memory.
 * Rows of one relation are ordered by sequence number; any two changes that
 * conflict are ordered by the row lock the later one waited for, so applying
 * a batch in sequence order gives the leader's result.
 *
 * Ticks.  The supervisor records pg_current_snapshot() in repl.tick after
 * new commits.  The batch between ticks A and B holds the changes of the
 * transactions visible in B's snapshot but not in A's (SQL function
 * repl.batch_changes, the one definition of a batch): whole transactions,
 * in commit order between batches, never one still in flight.  A long
 * transaction delays only itself.  The end of the tick's own row lies after
 * the commit record of every transaction the tick's snapshot sees; no
 * follower commits a tick before the leader's WAL is flushed that far, so
 * (even with synchronous_commit = off) a follower never holds a transaction
 * the leader could still lose.  Ticks cut for a copy or by a new leader are
 * flushed before they become visible.  The supervisor's ticks, which every
 * synchronous commit waits for, are not: it commits them without waiting
 * and flushes right after, while the senders read and ship them; a sender
 * sends a batch without its Sync and lets the follower commit it only after
 * its own flush up to the WAL end it saw after reading the batch (worker.c).
 * The flush thus overlaps the network and the follower's apply.  A
 * commit that will wait for the synchronous follower while no other commit
 * waits cuts a tick of its own instead, at PRE_COMMIT, in its own
 * transaction (repl_cut_own_tick): its snapshot is widened to see that
 * transaction, and the tick lock is held until the commit, so one commit
 * record holds both and the senders can ship it at once.
 *
 * Rotation.  Triggers write to repl.log_N, N = shared cur_log.  Every
 * repl_ext.log_rotate_interval the supervisor moves to the next table (which
 * must be empty), then records switch_xmax = the next transaction id to be
 * assigned, read after the switch: a trigger takes its transaction id before
 * it reads cur_log, so every transaction that wrote the old table is below
 * switch_xmax.  Once
 * every follower has applied a tick whose snapshot xmin is at least
 * switch_xmax, nothing in the old table is needed and it is truncated.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "changelog.h"
#include "failover.h"
#include "follower.h"
#include "guc.h"
#include "protocol.h"
#include "repl_ext.h"
#include "shmem.h"
#include "syncwait.h"

/* Backend-local cache of the log tables' OIDs. */
typedef struct LogCatalog
{
	bool		valid;
	Oid			log[REPL_NUM_LOG_TABLES];
	Oid			logidx[REPL_NUM_LOG_TABLES];
	IndexInfo  *indexinfo[REPL_NUM_LOG_TABLES];
} LogCatalog;

static LogCatalog logcat;
static bool logcat_callback_registered = false;
static uint64 rows_logged = 0;	/* row changes logged by this backend */
static bool wrote_log = false;
static bool wrote_table_event = false;
static bool log_xact_callback_registered = false;

/*
 * The tick this transaction cut for itself (0: none), where its row is, and
 * whether the transaction holds the tick lock and a ROW EXCLUSIVE lock on
 * repl.tick for it (repl_cut_own_tick).
 */
static int64 own_tick = 0;
static ItemPointerData own_tick_tid;
static bool own_tick_locked = false;
static Oid	own_tick_relid = InvalidOid;

static void
logcat_invalidate(Datum arg, Oid relid)
{
	int			i;

	if (!logcat.valid)
		return;
	if (!OidIsValid(relid))
	{
		logcat.valid = false;
		return;
	}
	for (i = 0; i < REPL_NUM_LOG_TABLES; i++)
		if (relid == logcat.log[i] || relid == logcat.logidx[i])
			logcat.valid = false;
}

/* The log tables' columns are where LOG_ATT_* say (scan_batch_changes). */
static void
check_log_columns(Oid relid)
{
	static const char *const names[] = {"seq", "txid", "relid", "op", "data"};
	static const Oid types[] = {INT8OID, XID8OID, OIDOID, CHAROID, BYTEAOID};
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < (int) lengthof(names); i++)
	{
		Form_pg_attribute att = i < desc->natts ? TupleDescAttr(desc, i) : NULL;

		if (att == NULL || att->attisdropped ||
			strcmp(NameStr(att->attname), names[i]) != 0 || att->atttypid != types[i])
			elog(ERROR, "replication log table %s: column %d is not \"%s\"",
				 RelationGetRelationName(rel), i + 1, names[i]);
	}
	table_close(rel, AccessShareLock);
}

static void
logcat_load(void)
{
	Oid			nsp = get_namespace_oid(REPL_SCHEMA, false);
	MemoryContext old;
	int			i;

	if (!logcat_callback_registered)
	{
		CacheRegisterRelcacheCallback(logcat_invalidate, (Datum) 0);
		logcat_callback_registered = true;
	}
	old = MemoryContextSwitchTo(CacheMemoryContext);
	for (i = 0; i < REPL_NUM_LOG_TABLES; i++)
	{
		char		name[NAMEDATALEN];
		Relation	idx;

		if (logcat.indexinfo[i])
			pfree(logcat.indexinfo[i]);
		snprintf(name, sizeof(name), "log_%d", i);
		logcat.log[i] = get_relname_relid(name, nsp);
		snprintf(name, sizeof(name), "log_%d_txid", i);
		logcat.logidx[i] = get_relname_relid(name, nsp);
		if (!OidIsValid(logcat.log[i]) || !OidIsValid(logcat.logidx[i]))
			elog(ERROR, "replication log table repl.log_%d is missing", i);
		idx = index_open(logcat.logidx[i], AccessShareLock);
		logcat.indexinfo[i] = BuildIndexInfo(idx);
		index_close(idx, AccessShareLock);
		check_log_columns(logcat.log[i]);
	}
	MemoryContextSwitchTo(old);
	logcat.valid = true;
}

/*
 * Load cur_log from repl.log_state into shared memory, once per server
 * start.
 */
static void
load_cur_log(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	int			cur = -1;

	rel = table_open(repl_catalog_relid("log_state"), AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		state = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull);

		if (strcmp(TextDatumGetCString(state), "current") == 0)
			cur = DatumGetInt32(heap_getattr(tup, 1, RelationGetDescr(rel),
											 &isnull));
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	if (cur < 0 || cur >= REPL_NUM_LOG_TABLES)
		elog(ERROR, "repl.log_state has no current log table");

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (!repl_shared->cur_log_valid)
	{
		pg_atomic_write_u32(&repl_shared->cur_log, cur);
		repl_shared->cur_log_valid = true;
	}
	LWLockRelease(repl_shared->lock);
}

static int64 repl_cut_own_tick(void);
static void drop_own_tick(void);
static int64 repl_own_tick_committed(void);

static void
log_xact_callback(XactEvent event, void *arg)
{
	if (!wrote_log)
		return;
	if (event == XACT_EVENT_PRE_COMMIT)
	{
		if (!wrote_table_event && repl_sync_commit_prepare())
			(void) repl_cut_own_tick();
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		PGPROC	   *proc = repl_shared->supervisor;
		bool		table_event = wrote_table_event;
		int64		tick;

		wrote_log = false;
		wrote_table_event = false;

		/* a tick of its own covers this commit: no need of the supervisor */
		tick = repl_own_tick_committed();
		if (tick == 0)
		{
			pg_atomic_fetch_add_u64(&repl_shared->commits, 1);

			/*
			 * Wake the supervisor only if it sleeps with nothing pending:
			 * once a commit is pending it cuts the tick within
			 * batch_interval anyway, and a wakeup per commit (a signal and a
			 * context switch) cost more than the ticks.  The fetch_add
			 * above is a full barrier, paired with the supervisor's
			 * (worker.c).  A stale pointer only causes a spurious wakeup.
			 */
			if (proc != NULL &&
				pg_atomic_read_u32(&repl_shared->wake_on_commit) != 0 &&
				pg_atomic_exchange_u32(&repl_shared->wake_on_commit, 0) != 0)
				SetLatch(&proc->procLatch);
		}

		/*
		 * The wait holds this transaction's locks.  add_table/remove_table
		 * hold locks the sender needs to copy the table to the follower, so
		 * they do not wait (it would deadlock).
		 */
		if (event == XACT_EVENT_COMMIT && !table_event)
			repl_sync_commit_wait(tick);
		else if (tick > 0)
			repl_wake_senders(-1);
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
	{
		repl_sync_commit_abort();
		own_tick = 0;
		own_tick_locked = false;
		wrote_log = false;
		wrote_table_event = false;
	}
}

/*
 * repl_log_write
 *		Append one change to the current log table.  data may be NULL.
 */
void
repl_log_write(Oid relid, char op, const char *data, int len)
{
	FullTransactionId fxid;
	uint32		cur;
	Relation	logrel;
	Relation	idxrel;
	HeapTuple	tup;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	bytea	   *payload = NULL;

	if (own_tick != 0)
		drop_own_tick();

	/* the xid must exist before cur_log is read: see file header */
	fxid = GetTopFullTransactionId();
	if (!repl_shared->cur_log_valid)
		load_cur_log();
	pg_memory_barrier();
	cur = pg_atomic_read_u32(&repl_shared->cur_log);
	if (!logcat.valid)
		logcat_load();

	values[0] = Int64GetDatum((int64) pg_atomic_fetch_add_u64(&repl_shared->next_seq, 1));
	values[1] = FullTransactionIdGetDatum(fxid);
	values[2] = ObjectIdGetDatum(relid);
	values[3] = CharGetDatum(op);
	if (data != NULL)
	{
		payload = palloc(len + VARHDRSZ);
		SET_VARSIZE(payload, len + VARHDRSZ);
		memcpy(VARDATA(payload), data, len);
		values[4] = PointerGetDatum(payload);
	}
	else
		nulls[4] = true;

	logrel = table_open(logcat.log[cur], RowExclusiveLock);
	tup = heap_form_tuple(RelationGetDescr(logrel), values, nulls);
	simple_heap_insert(logrel, tup);
	idxrel = index_open(logcat.logidx[cur], RowExclusiveLock);
	index_insert(idxrel, &values[1], &nulls[1], &tup->t_self, logrel,
				 UNIQUE_CHECK_NO, false, logcat.indexinfo[cur]);
	/* locks kept to the end: switchover waits for writers by them */
	index_close(idxrel, NoLock);
	table_close(logrel, NoLock);
	heap_freetuple(tup);
	if (payload)
		pfree(payload);

	if (!log_xact_callback_registered)
	{
		RegisterXactCallback(log_xact_callback, NULL);
		log_xact_callback_registered = true;
	}
	wrote_log = true;
	if (op == REPL_OP_ADD_TABLE || op == REPL_OP_REMOVE_TABLE)
		wrote_table_event = true;
	else if (op != REPL_OP_DDL)
		rows_logged++;
}

/*
 * repl_log_rows_written
 *		How many row changes (and truncates) this backend has logged so far;
 *		repl.execute_ddl compares it before and after its command.
 */
uint64
repl_log_rows_written(void)
{
	return rows_logged;
}

static void
spi_check(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
}

/*
 * repl_kept_plan
 *		A plan prepared once per process and kept (SPI_keepplan): ticks and batch
 * reads run on every synchronous commit, and planning them each time cost
 * more than running them.  The plan cache replans after DDL on the tables.
 * cursor_options CURSOR_OPT_GENERIC_PLAN skips custom plans, for queries
 * whose parameters (snapshots) tell the planner nothing useful.
 */
SPIPlanPtr
repl_kept_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes,
			   int cursor_options)
{
	SPIPlanPtr	plan;

	if (*cache != NULL)
		return *cache;
	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/*
 * The layout of a pg_snapshot value (utils/adt/xid8funcs.c keeps it to
 * itself; the same from PostgreSQL 13 on).  xip is sorted.
 */
typedef struct ReplPgSnapshot
{
	int32		vl_len_;
	uint32		nxip;
	FullTransactionId xmin;
	FullTransactionId xmax;
	FullTransactionId xip[FLEXIBLE_ARRAY_MEMBER];
} ReplPgSnapshot;

/*
 * Ticks with at most this many changes are read by scan_batch_changes in C
 * (their rows sorted in memory); bigger ones by the SQL function, whose
 * executor start-up no longer matters and which sorts within work_mem.
 */
#define SMALL_TICK_CHANGES	1000

/* Columns of repl.log and its children (sql/repl_ext--1.0.sql). */
#define LOG_ATT_SEQ		1
#define LOG_ATT_TXID	2
#define LOG_ATT_RELID	3
#define LOG_ATT_OP		4
#define LOG_ATT_DATA	5

/* A batch reads at most this many ticks, its start included. */
#define MAX_BATCH_TICKS		1000

/* Columns of repl.tick. */
#define TICK_ATT_ID		1
#define TICK_ATT_SNAP	2
#define TICK_ATT_TIME	3
#define TICK_ATT_N_CHANGES	4
static const char *const tick_columns[] = {"tick_id", "snap", "tick_time", "n_changes"};

/* pg_visible_in_snapshot() */
static bool
fxid_visible_in(FullTransactionId x, const ReplPgSnapshot *snap)
{
	uint32		i;

	if (FullTransactionIdPrecedes(x, snap->xmin))
		return true;
	if (!FullTransactionIdPrecedes(x, snap->xmax))
		return false;
	for (i = 0; i < snap->nxip; i++)
		if (FullTransactionIdEquals(x, snap->xip[i]))
			return false;
	return true;
}

/* Called by scan_batch_changes for each row of the batch, in no order. */
typedef void (*BatchRowFn) (TupleTableSlot *slot, void *arg);

/*
 * Walk the rows repl.batch_changes(from, to) returns, straight from the log
 * tables' txid indexes with the active snapshot, which must be at least as
 * new as "to".  Same predicate: transactions from from's xmax up to to's
 * xmax that to sees, and those in flight at from that to sees.  Cheaper
 * than the SQL function for small batches: starting the executor for it
 * took most of a tick's time (perf: two thirds of the supervisor's CPU per
 * synchronous commit, and the bulk of the sender's).
 *
 * nowait (with a snapshot given): take the log tables' locks only if they
 * are free; returns false, having stopped early, if one is not, or if the
 * log catalog needs loading (which locks them all).
 */
static bool
scan_batch_changes(Datum from_datum, Datum to_datum, BatchRowFn fn, void *arg,
				   Snapshot snapshot, bool nowait)
{
	ReplPgSnapshot *from = (ReplPgSnapshot *) PG_DETOAST_DATUM(from_datum);
	ReplPgSnapshot *to = (ReplPgSnapshot *) PG_DETOAST_DATUM(to_datum);
	bool		have_range = FullTransactionIdPrecedes(from->xmax, to->xmax);
	int			i;

	Assert(!nowait || snapshot != NULL);
	if (!logcat.valid)
	{
		/* loading it locks every log table */
		if (nowait)
			return false;
		logcat_load();
	}
	for (i = 0; i < REPL_NUM_LOG_TABLES; i++)
	{
		Relation	heap;
		Relation	index;
		TupleTableSlot *slot;
		ScanKeyData keys[2];
		IndexScanDesc scan;
		uint32		j;

		/*
		 * Locks kept to the end of the transaction, as a query would, except
		 * for a tick cut at commit (repl_cut_own_tick, which passes its
		 * snapshot): that transaction may wait long for its follower, and
		 * must not keep the supervisor from truncating a drained log table
		 * meanwhile.
		 */
		LOCKMODE	release = snapshot ? AccessShareLock : NoLock;

		if (nowait)
		{
			if (!ConditionalLockRelationOid(logcat.log[i], AccessShareLock))
				return false;
			if (!ConditionalLockRelationOid(logcat.logidx[i], AccessShareLock))
			{
				UnlockRelationOid(logcat.log[i], AccessShareLock);
				return false;
			}
			heap = table_open(logcat.log[i], NoLock);
			index = index_open(logcat.logidx[i], NoLock);
		}
		else
		{
			heap = table_open(logcat.log[i], AccessShareLock);
			index = index_open(logcat.logidx[i], AccessShareLock);
		}

		/*
		 * A log table that is not the current one is mostly empty
		 * (truncated, or not yet used): no block, no scan.  Nothing can be
		 * added to it that the snapshot sees, and a truncation, which
		 * waits for the lock held now, would have hidden its rows from the
		 * scan as well.  (The current one is not worth the system call.)
		 */
		if (i != (int) pg_atomic_read_u32(&repl_shared->cur_log) &&
			RelationGetNumberOfBlocks(heap) == 0)
		{
			index_close(index, release);
			table_close(heap, release);
			continue;
		}
		slot = table_slot_create(heap, NULL);

		if (have_range)
		{
			ScanKeyInit(&keys[0], 1, BTGreaterEqualStrategyNumber, F_XID8GE,
						FullTransactionIdGetDatum(from->xmax));
			ScanKeyInit(&keys[1], 1, BTLessStrategyNumber, F_XID8LT,
						FullTransactionIdGetDatum(to->xmax));
			scan = index_beginscan(heap, index, snapshot ? snapshot : GetActiveSnapshot(), 2, 0);
			index_rescan(scan, keys, 2, NULL, 0);
			while (index_getnext_slot(scan, ForwardScanDirection, slot))
			{
				bool		isnull;
				Datum		d = slot_getattr(slot, LOG_ATT_TXID, &isnull);

				if (!isnull && fxid_visible_in(DatumGetFullTransactionId(d), to))
					fn(slot, arg);
			}
			index_endscan(scan);
		}
		for (j = 0; j < from->nxip; j++)
		{
			if (!fxid_visible_in(from->xip[j], to))
				continue;
			ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_XID8EQ,
						FullTransactionIdGetDatum(from->xip[j]));
			scan = index_beginscan(heap, index, snapshot ? snapshot : GetActiveSnapshot(), 1, 0);
			index_rescan(scan, keys, 1, NULL, 0);
			while (index_getnext_slot(scan, ForwardScanDirection, slot))
				fn(slot, arg);
			index_endscan(scan);
		}
		ExecDropSingleTupleTableSlot(slot);
		index_close(index, release);
		table_close(heap, release);
	}
	return true;
}

static void
count_row(TupleTableSlot *slot, void *arg)
{
	(*(int64 *) arg)++;
}

/*
 * The number of rows repl.batch_changes(from, to) returns; -1 if nowait
 * and a log table is locked (scan_batch_changes).
 */
static int64
count_batch_changes(Datum from_datum, Datum to_datum, Snapshot snapshot,
					bool nowait)
{
	int64		n = 0;

	if (!scan_batch_changes(from_datum, to_datum, count_row, &n, snapshot, nowait))
		return -1;
	return n;
}

/* The rows of a batch, collected to be put in log order. */
typedef struct BatchRows
{
	HeapTuple  *rows;
	int64	   *seqs;
	int			n;
	int			size;
} BatchRows;

static void
collect_row(TupleTableSlot *slot, void *arg)
{
	BatchRows  *br = (BatchRows *) arg;
	bool		isnull;

	if (br->n == br->size)
	{
		br->size *= 2;
		br->rows = repalloc(br->rows, sizeof(HeapTuple) * br->size);
		br->seqs = repalloc(br->seqs, sizeof(int64) * br->size);
	}
	br->seqs[br->n] = DatumGetInt64(slot_getattr(slot, LOG_ATT_SEQ, &isnull));
	br->rows[br->n] = ExecCopySlotHeapTuple(slot);
	br->n++;
}

/* Open repl.tick, checking that it has the columns TICK_ATT_* name. */
static Relation
open_ticks(LOCKMODE lockmode)
{
	Relation	rel = table_open(repl_catalog_relid("tick"), lockmode);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < (int) lengthof(tick_columns); i++)
		if (desc->natts != (int) lengthof(tick_columns) ||
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), tick_columns[i]) != 0)
			elog(ERROR, "repl.tick does not have the columns of this version of repl_ext");
	return rel;
}

/*
 * The id the next tick gets, and the snapshot of the last one (*prev_snap),
 * read with a snapshot taken after the tick lock.
 */
/* Take the tick in slot as the last one so far (next_tick). */
static void
take_tick(TupleTableSlot *slot, int64 *tick_id, Datum *snap, bool *found)
{
	bool		isnull;

	if (*found)
		pfree(DatumGetPointer(*snap));
	*tick_id = DatumGetInt64(slot_getattr(slot, TICK_ATT_ID, &isnull)) + 1;
	*snap = datumCopy(slot_getattr(slot, TICK_ATT_SNAP, &isnull), false, -1);
	*found = true;
}

static int64
next_tick(Relation rel, Relation idx, Snapshot snapshot, Datum *prev_snap)
{
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	int64		hint;
	int64		tick_id = 1;
	bool		found = false;

	slot = table_slot_create(rel, NULL);

	/*
	 * Forward from the newest tick published (a hint, read unlocked): a
	 * backward scan from the index's end reads every entry of its last
	 * leaf page first.  Only if the hint is past every tick (repl.tick was
	 * refilled by a promotion), the backward scan.
	 */
	hint = ((volatile ReplShared *) repl_shared)->last_tick;
	if (hint > 0)
	{
		ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
					Int64GetDatum(hint));
		scan = index_beginscan(rel, idx, snapshot, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
			take_tick(slot, &tick_id, prev_snap, &found);
		index_endscan(scan);
	}
	if (!found)
	{
		scan = index_beginscan(rel, idx, snapshot, 0, 0);
		index_rescan(scan, NULL, 0, NULL, 0);
		if (index_getnext_slot(scan, BackwardScanDirection, slot))
			take_tick(slot, &tick_id, prev_snap, &found);
		index_endscan(scan);
	}
	if (!found)
		*prev_snap = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum("1:1:"));
	ExecDropSingleTupleTableSlot(slot);
	return tick_id;
}

/*
 * Insert tick tick_id with snapshot snap and n_changes, the changes since
 * the tick before (count_batch_changes).
 */
static ItemPointerData
insert_tick(Relation rel, Relation idx, int64 tick_id, Datum snap,
			int64 n_changes)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tup;
	ItemPointerData tid;

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc0(sizeof(bool) * desc->natts);
	values[TICK_ATT_ID - 1] = Int64GetDatum(tick_id);
	values[TICK_ATT_TIME - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[TICK_ATT_SNAP - 1] = snap;
	values[TICK_ATT_N_CHANGES - 1] = Int64GetDatum(n_changes);
	tup = heap_form_tuple(desc, values, nulls);
	simple_heap_insert(rel, tup);
	index_insert(idx, &values[TICK_ATT_ID - 1], &nulls[TICK_ATT_ID - 1],
				 &tup->t_self, rel, UNIQUE_CHECK_YES, false, BuildIndexInfo(idx));
	tid = tup->t_self;
	heap_freetuple(tup);
	pfree(values);
	pfree(nulls);
	return tid;
}

/*
 * repl_cut_tick
 *		Record a new tick; returns its id.  Runs in the caller's transaction,
 *		which must commit right after (the supervisor's).  Tick cutters are
 *		serialized by the tick lock (tick_lock_acquire), and each snapshot
 *		is taken after the lock, so snapshots grow with tick ids.
 *
 *		snapshot is NULL for a snapshot taken here, or the text of a
 *		snapshot another session took after this transaction locked
 *		repl.tick (see repl_lock_ticks): the copy for a new follower makes its
 *		snapshot a tick that way, so the follower starts exactly there.
 *
 *		ship_unflushed: the caller (the supervisor) commits the tick without
 *		waiting for its WAL flush, and only senders read it before it is
 *		flushed, which let no follower commit it before they have flushed
 *		it themselves (see file header).  Otherwise the tick is durable
 *		before it becomes visible.
 */
int64
repl_cut_tick(const char *snapshot, bool ship_unflushed)
{
	Relation	rel;
	Relation	idx;
	Snapshot	latest;
	int64		tick_id;
	Datum		prev_snap;
	Datum		snap;

	/*
	 * Plain heap and index access, as the capture trigger's: this runs for
	 * every tick, and SQL took half of it.
	 */
	repl_lock_ticks();
	rel = open_ticks(RowExclusiveLock);
	idx = index_open(RelationGetPrimaryKeyIndex(rel), RowExclusiveLock);
	latest = RegisterSnapshot(GetLatestSnapshot());
	tick_id = next_tick(rel, idx, latest, &prev_snap);
	UnregisterSnapshot(latest);

	/*
	 * A snapshot taken after the lock: the tick's own (or as new as the
	 * given one), and the one the log is counted with.
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	snap = snapshot == NULL ?
		DirectFunctionCall1(pg_current_snapshot, (Datum) 0) :
		DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(snapshot));
	(void) insert_tick(rel, idx, tick_id, snap,
					   count_batch_changes(prev_snap, snap, NULL, false));
	PopActiveSnapshot();
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	CommandCounterIncrement();

	/*
	 * See file header: the tick's transactions must be durable before a
	 * follower can commit them.  Our own insert above came after the
	 * snapshot, so its end lies after the commit record of every
	 * transaction the snapshot sees.  A synchronous commit of this
	 * transaction flushes that far before the tick becomes visible
	 * (RecordTransactionCommit), so only an asynchronous one needs the
	 * flush here, unless its readers flush themselves.
	 */
	if (!ship_unflushed && synchronous_commit <= SYNCHRONOUS_COMMIT_OFF)
		XLogFlush(XactLastRecEnd);
	return tick_id;
}

/* xid as a full id, given a full id less than 2^31 transactions away */
static FullTransactionId
widen_xid(TransactionId xid, FullTransactionId near)
{
	int32		diff = (int32) (xid - XidFromFullTransactionId(near));

	return FullTransactionIdFromU64(U64FromFullTransactionId(near) + diff);
}

static int
cmp_fxid(const void *a, const void *b)
{
	uint64		x = U64FromFullTransactionId(*(const FullTransactionId *) a);
	uint64		y = U64FromFullTransactionId(*(const FullTransactionId *) b);

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * pg_current_snapshot() of the active snapshot, changed to see this
 * transaction (top-level id own) as well.
 *
 * GetSnapshotData leaves our own id out of xip, so below xmax we are
 * visible already.  At or past xmax, xmax moves to own + 1, and the
 * top-level ids in between that were running must go into xip (the log is
 * tagged with top-level ids only).  None of the ids from xmax on had
 * completed when the snapshot was taken (xmax is one past the latest
 * completed id), so taking every top-level id in that range that is in
 * the proc array now is safe: one that completed since is either visible
 * to the count that follows (committed: counted here, and never shipped
 * before, as no earlier tick saw it), or has no rows (aborted).  Ids
 * assigned after the snapshot are past own.
 */
static Datum
own_tick_snapshot(FullTransactionId own)
{
	ReplPgSnapshot *cur;
	ReplPgSnapshot *snap;
	uint32		n;
	uint32		i;
	uint32		j;

	cur = (ReplPgSnapshot *) DatumGetPointer(DirectFunctionCall1(pg_current_snapshot, (Datum) 0));
	if (FullTransactionIdPrecedes(own, cur->xmax))
		return PointerGetDatum(cur);

	snap = palloc(offsetof(ReplPgSnapshot, xip) +
				  sizeof(FullTransactionId) * (cur->nxip + ProcGlobal->allProcCount));
	snap->xmin = cur->xmin;
	memcpy(snap->xip, cur->xip, sizeof(FullTransactionId) * cur->nxip);
	n = cur->nxip;
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	for (i = 0; i < ProcGlobal->allProcCount; i++)
	{
		TransactionId xid = ((volatile TransactionId *) ProcGlobal->xids)[i];
		FullTransactionId fxid;

		if (!TransactionIdIsNormal(xid))
			continue;
		fxid = widen_xid(xid, own);
		if (!FullTransactionIdPrecedes(fxid, cur->xmax) &&
			FullTransactionIdPrecedes(fxid, own))
			snap->xip[n++] = fxid;
	}
	LWLockRelease(ProcArrayLock);
	qsort(snap->xip, n, sizeof(FullTransactionId), cmp_fxid);
	for (i = j = 0; i < n; i++)
		if (j == 0 || !FullTransactionIdEquals(snap->xip[i], snap->xip[j - 1]))
			snap->xip[j++] = snap->xip[i];
	snap->nxip = j;
	snap->xmax = FullTransactionIdFromU64(U64FromFullTransactionId(own) + 1);
	SET_VARSIZE(snap, offsetof(ReplPgSnapshot, xip) + sizeof(FullTransactionId) * j);
	return PointerGetDatum(snap);
}

/*
 * The tick lock serializes tick cutters (repl_cut_tick).  It is an object
 * lock named after repl.tick (pg_locks: locktype object, classid pg_class,
 * objid repl.tick), not a lock on the table: the supervisor's deletion of
 * old ticks and autovacuum's VACUUM and ANALYZE of repl.tick take table
 * locks that an EXCLUSIVE lock on the table conflicts with.  A commit then
 * found the lock taken, left its tick to the supervisor and waited for it,
 * which came only after the deletion (1-2 ms, once a second) or after the
 * VACUUM, which sleeps for its cost delay holding its lock.
 */
static bool
tick_lock_acquire(Oid relid, bool nowait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, RelationRelationId, relid, 0);
	return LockAcquire(&tag, ExclusiveLock, false, nowait) != LOCKACQUIRE_NOT_AVAIL;
}

static void
tick_lock_release(Oid relid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, RelationRelationId, relid, 0);
	LockRelease(&tag, ExclusiveLock, false);
}

/*
 * Release what repl_cut_own_tick locked, before the commit waits for its
 * follower: the tick lock, and the table lock its insert needed (the
 * commit made the row visible; nothing else of the transaction writes
 * repl.tick).
 */
static void
release_own_tick_locks(void)
{
	if (!own_tick_locked)
		return;
	own_tick_locked = false;
	UnlockRelationOid(own_tick_relid, RowExclusiveLock);
	tick_lock_release(own_tick_relid);
}

/*
 * repl_cut_own_tick
 *		At XACT_EVENT_PRE_COMMIT of a transaction that wrote the log and
 *		will wait for the synchronous follower: record a tick whose
 *		snapshot sees every transaction committed so far and this one.  One
 *		commit record (and one flush) then holds both, and the senders can
 *		ship the tick the moment the transaction commits, without waiting
 *		for the supervisor to cut one.  The tick lock is held until
 *		repl_own_tick_committed releases it right after the commit: no
 *		other tick can come between this tick and the commit that makes it
 *		visible, so snapshots still grow with tick ids.
 *
 *		Returns 0, leaving the tick to the supervisor, if another tick is
 *		being cut (under load the supervisor's ticks, each covering many
 *		commits, beat a queue of commits taking turns for the lock), if a
 *		log table is locked (the supervisor truncating a drained one), or if
 *		the transaction is SERIALIZABLE (its insert into repl.tick would
 *		meet the predicate locks of readers of repl.status).  Holding the
 *		lock, the transaction may still wait for a lock in the rest of its
 *		commit (PreCommit_Notify takes one), but never for one that a
 *		commit waiting for a tick holds (release_notify_lock in
 *		syncwait.c).  Both scans use SnapshotSelf: on these insert-only
 *		tables, the committed rows and ours, as a new MVCC snapshot after
 *		CommandCounterIncrement would give.
 */
static int64
repl_cut_own_tick(void)
{
	Oid			relid = repl_catalog_relid("tick");
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	Relation	rel;
	Relation	idx;
	int64		tick_id;
	Datum		prev_snap;
	Datum		snap;
	int64		n_changes;

	own_tick = 0;
	if (!FullTransactionIdIsValid(own) || IsolationIsSerializable() ||
		!tick_lock_acquire(relid, true))
		return 0;
	/* nor wait for the table, which LOCK TABLE can hold */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
	{
		tick_lock_release(relid);
		return 0;
	}
	own_tick_locked = true;
	own_tick_relid = relid;
	rel = open_ticks(NoLock);
	idx = index_open(RelationGetPrimaryKeyIndex(rel), RowExclusiveLock);
	tick_id = next_tick(rel, idx, SnapshotSelf, &prev_snap);
	PushActiveSnapshot(GetLatestSnapshot());
	snap = own_tick_snapshot(own);
	PopActiveSnapshot();

	/*
	 * Never wait for a log table's lock here, holding the tick lock: the
	 * supervisor may be truncating a drained one.
	 */
	n_changes = count_batch_changes(prev_snap, snap, SnapshotSelf, true);
	if (n_changes >= 0)
		own_tick_tid = insert_tick(rel, idx, tick_id, snap, n_changes);

	/* the locks taken above cover what these did */
	index_close(idx, RowExclusiveLock);
	table_close(rel, NoLock);
	if (n_changes < 0)
	{
		release_own_tick_locks();
		return 0;
	}
	own_tick = tick_id;
	return tick_id;
}

/*
 * The transaction writes the log after it cut its own tick (a later
 * PRE_COMMIT callback of another module changed a replicated table): that
 * tick did not count these changes, so take it back and leave the commit
 * to the supervisor's next tick.  The lock stays until the commit, as
 * the tick row's deletion must not become visible before it.
 */
static void
drop_own_tick(void)
{
	Relation	rel = table_open(own_tick_relid, NoLock);

	simple_heap_delete(rel, &own_tick_tid);
	table_close(rel, NoLock);
	own_tick = 0;
}

/*
 * repl_own_tick_committed
 *		At XACT_EVENT_COMMIT: release the tick lock repl_cut_own_tick took
 *		(the commit made the tick visible) and make the tick the newest
 *		known.  Returns the tick's id, 0 if none was cut; the caller then
 *		wakes the senders (repl_wake_senders).
 */
static int64
repl_own_tick_committed(void)
{
	int64		tick = own_tick;

	release_own_tick_locks();
	if (tick == 0)
		return 0;
	own_tick = 0;
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	repl_publish_tick_locked(tick);
	LWLockRelease(repl_shared->lock);
	return tick;
}

/*
 * repl_lock_ticks
 *		Keep other sessions from cutting ticks until this transaction ends.
 */
void
repl_lock_ticks(void)
{
	(void) tick_lock_acquire(repl_catalog_relid("tick"), false);
}

/*
 * repl_latest_tick
 *		Id of the newest committed tick, 0 if none.  Needs SPI.
 */
int64
repl_latest_tick(void)
{
	bool		isnull;
	Datum		d;

	spi_check(SPI_execute("SELECT pg_catalog.max(tick_id) FROM repl.tick",
						  true, 1), SPI_OK_SELECT, "max tick");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * repl_tick_exists
 *		Whether the log still covers position tick_id.  Needs SPI.
 */
bool
repl_tick_exists(int64 tick_id)
{
	Datum		arg = Int64GetDatum(tick_id);
	Oid			argtype = INT8OID;

	spi_check(SPI_execute_with_args("SELECT 1 FROM repl.tick WHERE tick_id OPERATOR(pg_catalog.=) $1",
									1, &argtype, &arg, NULL, true, 1),
			  SPI_OK_SELECT, "tick lookup");
	return SPI_processed > 0;
}

/* Relation table of a batch being built. */
typedef struct BatchRels
{
	int			n;
	int			size;
	Oid		   *relids;
	char	  **nspnames;
	char	  **relnames;
	char	   *ops;			/* 0, or the A/R op that named the entry */
} BatchRels;

static int
batch_rel_index(BatchRels *rels, Oid relid, char op, StringInfo data)
{
	int			i;
	char	   *nspname = NULL;
	char	   *relname = NULL;

	/* add/remove records carry the name, so they never need the catalog */
	if (op == REPL_OP_ADD_TABLE || op == REPL_OP_REMOVE_TABLE)
	{
		repl_proto_get_table_name(data, &nspname, &relname);
		data->cursor = 0;
	}
	for (i = 0; i < rels->n; i++)
	{
		if (rels->relids[i] != relid)
			continue;
		if (nspname == NULL ||
			(strcmp(nspname, rels->nspnames[i]) == 0 &&
			 strcmp(relname, rels->relnames[i]) == 0))
			return i;
	}
	if (nspname == NULL)
	{
		relname = get_rel_name(relid);
		if (relname == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table with OID %u of a logged change no longer exists",
							relid),
					 errhint("A replicated table was dropped before its changes reached every follower.")));
		nspname = get_namespace_name(get_rel_namespace(relid));
	}
	if (rels->n == rels->size)
	{
		rels->size *= 2;
		rels->relids = repalloc(rels->relids, sizeof(Oid) * rels->size);
		rels->nspnames = repalloc(rels->nspnames, sizeof(char *) * rels->size);
		rels->relnames = repalloc(rels->relnames, sizeof(char *) * rels->size);
	}
	rels->relids[rels->n] = relid;
	rels->nspnames[rels->n] = nspname;
	rels->relnames[rels->n] = relname;
	return rels->n++;
}

/* Looks for a table copied to node_name at a tick after from_tick. */
typedef struct FilterLookup
{
	AttrNumber	node_att;
	AttrNumber	tick_att;
	const char *node_name;
	int64		from_tick;
	bool		found;
} FilterLookup;

static bool
find_newer_copy(HeapTuple tup, TupleDesc desc, void *arg)
{
	FilterLookup *fl = (FilterLookup *) arg;
	bool		isnull;
	Datum		node;

	if (fl->node_att == InvalidAttrNumber)
	{
		fl->node_att = repl_catalog_attnum(desc, "node_name");
		fl->tick_att = repl_catalog_attnum(desc, "sync_tick");
	}
	node = heap_getattr(tup, fl->node_att, desc, &isnull);
	if (isnull || strcmp(TextDatumGetCString(node), fl->node_name) != 0)
		return true;
	if (DatumGetInt64(heap_getattr(tup, fl->tick_att, desc, &isnull)) <= fl->from_tick)
		return true;
	fl->found = true;
	return false;
}

/* Stops at the first row: the table has one. */
static bool
found_row(HeapTuple tup, TupleDesc desc, void *arg)
{
	*(bool *) arg = true;
	return false;
}

/*
 * Append a sequence record for each sequence of repl.replicated_sequences
 * that has been used.  Read after the tick's snapshot was taken, each value
 * is at least every value the tick's transactions took: nextval happens
 * before the commit the snapshot sees.  Needs SPI.  Returns the number of
 * records.
 */
static int
append_sequences(BatchRels *rels, StringInfo changes, MemoryContext outcxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			nsp = get_namespace_oid(REPL_SCHEMA, false);
	uint64		i;
	int			n = 0;
	bool		any = false;

	/* the catalog arrived with 1.4: a library newer than the extension */
	if (!OidIsValid(get_relname_relid("replicated_sequences", nsp)))
		return 0;
	/* the usual case, no replicated sequence, without SQL */
	repl_catalog_scan("replicated_sequences", found_row, &any);
	if (!any)
		return 0;
	spi_check(SPI_execute_plan(repl_kept_plan(&plan,
											  "SELECT s.relid, pg_catalog.pg_sequence_last_value(s.relid)"
											  "  FROM repl.replicated_sequences s ORDER BY s.relid",
											  0, NULL, 0),
							   NULL, NULL, true, 0),
			  SPI_OK_SELECT, "sequence scan");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(t, d, 1, &isnull));
		Datum		value = SPI_getbinval(t, d, 2, &isnull);
		MemoryContext old;

		if (isnull)
			continue;			/* never used: nothing to carry */
		old = MemoryContextSwitchTo(outcxt);
		repl_proto_put_sequence(changes,
								batch_rel_index(rels, relid, REPL_OP_SEQUENCE,
												NULL),
								DatumGetInt64(value));
		MemoryContextSwitchTo(old);
		n++;
	}
	return n;
}

/*
 * Append the changes of the transactions visible in to_snap but not in
 * from_snap (one tick), in log order, then with_sequences the sequences'
 * values, then the tick's marker.  Needs SPI.  Returns the number of
 * changes.
 */
/* Append one logged change to the batch being built. */
static void
put_change(Oid relid, char op, Datum datad, bool isnull, MemoryContext outcxt,
		   BatchRels *rels, StringInfo changes)
{
	StringInfoData data = {0};
	MemoryContext old;
	int			relidx;

	if (!isnull)
	{
		bytea	   *b = DatumGetByteaPP(datad);

		data.data = VARDATA_ANY(b);
		data.len = VARSIZE_ANY_EXHDR(b);
	}
	old = MemoryContextSwitchTo(outcxt);
	/* a DDL record belongs to no relation */
	relidx = op == REPL_OP_DDL ? -1 : batch_rel_index(rels, relid, op, &data);
	repl_proto_put_change(changes, relidx, op, data.data, data.len);
	MemoryContextSwitchTo(old);
}

static int
cmp_seq(const void *a, const void *b)
{
	int64		x = **(const int64 *const *) a;
	int64		y = **(const int64 *const *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The changes of a small tick read by scan_batch_changes, put in log
 * order; the same rows the SQL query below returns.
 */
static int
read_small_tick(Datum from_snap, Datum to_snap, MemoryContext outcxt,
				BatchRels *rels, StringInfo changes)
{
	BatchRows	br;
	int64	  **order;
	Relation	log;
	TupleDesc	desc;
	int			i;

	br.n = 0;
	br.size = 16;
	br.rows = palloc(sizeof(HeapTuple) * br.size);
	br.seqs = palloc(sizeof(int64) * br.size);
	/* the caller's snapshot sees the tick, so every transaction to_snap sees */
	(void) scan_batch_changes(from_snap, to_snap, collect_row, &br, NULL, false);
	order = palloc(sizeof(int64 *) * Max(br.n, 1));
	for (i = 0; i < br.n; i++)
		order[i] = &br.seqs[i];
	qsort(order, br.n, sizeof(int64 *), cmp_seq);
	/* every log table has the same columns (check_log_columns) */
	log = table_open(logcat.log[0], AccessShareLock);
	desc = RelationGetDescr(log);
	for (i = 0; i < br.n; i++)
	{
		HeapTuple	t = br.rows[order[i] - br.seqs];
		bool		isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(t, LOG_ATT_RELID, desc, &isnull));
		char		op = DatumGetChar(heap_getattr(t, LOG_ATT_OP, desc, &isnull));
		Datum		datad = heap_getattr(t, LOG_ATT_DATA, desc, &isnull);

		put_change(relid, op, datad, isnull, outcxt, rels, changes);
		heap_freetuple(t);
	}
	table_close(log, NoLock);
	pfree(order);
	pfree(br.rows);
	pfree(br.seqs);
	return br.n;
}

static int
read_tick_changes(Datum from_snap, Datum to_snap, bool filtered,
				  int64 expected, const char *node_name, int64 from_tick,
				  int64 tick_id, TimestampTz tick_time, bool with_sequences,
				  MemoryContext outcxt, BatchRels *rels, StringInfo changes)
{
	static SPIPlanPtr batch_plan = NULL;
	static SPIPlanPtr filtered_batch_plan = NULL;
	Oid			snaptype;
	SPIPlanPtr	plan;
	Datum		args[4];
	Oid			argtypes[4];
	Portal		portal;
	int			nchanges = 0;
	uint64		i;
	bool		isnull;
	MemoryContext old;

	if (!filtered && expected <= SMALL_TICK_CHANGES)
	{
		nchanges = read_small_tick(from_snap, to_snap, outcxt, rels, changes);
		goto tick_end;
	}
	snaptype = TypenameGetTypid("pg_snapshot");
	argtypes[0] = snaptype;
	argtypes[1] = snaptype;
	argtypes[2] = TEXTOID;
	argtypes[3] = INT8OID;
	args[0] = from_snap;
	args[1] = to_snap;
	args[2] = CStringGetTextDatum(node_name);
	args[3] = Int64GetDatum(from_tick);
	if (filtered)
		plan = repl_kept_plan(&filtered_batch_plan,
							  "SELECT b.relid, b.op, b.data"
							  "  FROM repl.batch_changes($1, $2) b"
							  " WHERE NOT EXISTS (SELECT 1 FROM repl.follower_tables f"
							  "   WHERE f.node_name OPERATOR(pg_catalog.=) $3"
							  "     AND f.relid OPERATOR(pg_catalog.=) b.relid"
							  "     AND f.sync_tick OPERATOR(pg_catalog.>) $4"
							  "     AND pg_catalog.pg_visible_in_snapshot(b.txid, f.sync_snap))"
							  " ORDER BY b.seq",
							  4, argtypes, CURSOR_OPT_GENERIC_PLAN);
	else
		plan = repl_kept_plan(&batch_plan,
							  "SELECT b.relid, b.op, b.data"
							  "  FROM repl.batch_changes($1, $2) b ORDER BY b.seq",
							  2, argtypes, CURSOR_OPT_GENERIC_PLAN);
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			Oid			relid = DatumGetObjectId(SPI_getbinval(t, d, 1, &isnull));
			char		op = DatumGetChar(SPI_getbinval(t, d, 2, &isnull));
			Datum		datad = SPI_getbinval(t, d, 3, &isnull);

			put_change(relid, op, datad, isnull, outcxt, rels, changes);
			nchanges++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
tick_end:
	if (with_sequences)
		nchanges += append_sequences(rels, changes, outcxt);
	old = MemoryContextSwitchTo(outcxt);
	repl_proto_put_tick(changes, tick_id, tick_time);
	MemoryContextSwitchTo(old);
	return nchanges;
}

/*
 * repl_read_batch
 *		Read the batch that follows position from_tick: that tick's successor
 *		and as many further ticks as fit in max_changes (at least one), each
 *		tick's changes ended by its marker.  A position older than this
 *		node's log that it applied as a follower comes from repl.retained
 *		(failover.c), one tick per batch.  Returns false if there is no newer
 *		tick.  Errors if from_tick is in neither.  The caller is in a
 *		transaction with a snapshot; batch->data is allocated in outcxt,
 *		which must outlive the transaction.
 */
bool
repl_read_batch(int64 from_tick, int64 max_changes, const char *leader_name,
				int64 epoch, const char *node_name, MemoryContext outcxt,
				ReplBatch *batch)
{
	Datum	   *snaps;
	int64	   *tick_ids;
	TimestampTz *tick_times;
	int64	   *tick_counts;
	int			nticks = 0;
	int64		total = 0;
	uint64		i;
	bool		isnull;
	bool		filtered = false;
	StringInfoData changes;
	BatchRels	rels;
	ReplBatchHeader hdr;
	int			nchanges = 0;
	Relation	rel;
	Relation	idx;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	/* the ticks of this batch, with their snapshots copied out */
	snaps = palloc(sizeof(Datum) * MAX_BATCH_TICKS);
	tick_ids = palloc(sizeof(int64) * MAX_BATCH_TICKS);
	tick_times = palloc(sizeof(TimestampTz) * MAX_BATCH_TICKS);
	tick_counts = palloc(sizeof(int64) * MAX_BATCH_TICKS);
	rel = open_ticks(AccessShareLock);
	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(from_tick));
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	slot = table_slot_create(rel, NULL);
	while (nticks < MAX_BATCH_TICKS &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		id = DatumGetInt64(slot_getattr(slot, TICK_ATT_ID, &isnull));
		int64		n = DatumGetInt64(slot_getattr(slot, TICK_ATT_N_CHANGES, &isnull));

		if (nticks == 0 && id != from_tick)
			break;
		if (nticks > 1 && total + n > max_changes)
			break;
		if (nticks > 0)
			total += n;
		tick_counts[nticks] = n;
		tick_ids[nticks] = id;
		tick_times[nticks] = DatumGetTimestampTz(slot_getattr(slot, TICK_ATT_TIME, &isnull));
		snaps[nticks] = datumCopy(slot_getattr(slot, TICK_ATT_SNAP, &isnull), false, -1);
		nticks++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (nticks == 0)
	{
		if (!repl_read_retained(from_tick, leader_name, epoch, outcxt, batch))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("position %lld is no longer in the replication log",
							(long long) from_tick),
					 errhint("The follower must be re-synchronised.")));
		return true;
	}
	if (nticks == 1)
		return false;
	SPI_connect();
	batch->from_tick = from_tick;
	batch->to_tick = tick_ids[nticks - 1];
	batch->to_tick_time = tick_times[nticks - 1];

	{
		MemoryContext old = MemoryContextSwitchTo(outcxt);

		initStringInfo(&changes);
		MemoryContextSwitchTo(old);
	}
	rels.n = 0;
	rels.size = 8;
	rels.relids = MemoryContextAlloc(outcxt, sizeof(Oid) * rels.size);
	rels.nspnames = MemoryContextAlloc(outcxt, sizeof(char *) * rels.size);
	rels.relnames = MemoryContextAlloc(outcxt, sizeof(char *) * rels.size);

	if (total > 0)
	{
		/*
		 * Tables copied to this follower at a snapshot newer than from_tick:
		 * their changes from transactions that snapshot sees are in the copy
		 * already (see repl.follower_tables).
		 */
		FilterLookup fl;

		fl.node_att = InvalidAttrNumber;
		fl.node_name = node_name;
		fl.from_tick = from_tick;
		fl.found = false;
		repl_catalog_scan("follower_tables", find_newer_copy, &fl);
		filtered = fl.found;
	}

	/*
	 * Tick by tick: a follower keeps each tick apart (see protocol.c).  The
	 * ticks' transactions are in commit order between ticks, so applying
	 * them tick after tick gives the leader's result.
	 */
	for (i = 1; i < (uint64) nticks; i++)
	{
		/* sequences travel at the end of a batch that changed something */
		bool		with_sequences = (i == (uint64) nticks - 1 && total > 0);

		if (tick_counts[i] == 0)
		{
			MemoryContext old;

			if (with_sequences)
				nchanges += append_sequences(&rels, &changes, outcxt);
			old = MemoryContextSwitchTo(outcxt);
			repl_proto_put_tick(&changes, tick_ids[i], tick_times[i]);
			MemoryContextSwitchTo(old);
			continue;
		}
		nchanges += read_tick_changes(snaps[i - 1], snaps[i], filtered,
									  tick_counts[i],
									  node_name, from_tick, tick_ids[i],
									  tick_times[i], with_sequences, outcxt,
									  &rels, &changes);
	}
	SPI_finish();

	MemoryContextSwitchTo(outcxt);
	hdr.leader_name = (char *) leader_name;
	hdr.encoding = GetDatabaseEncoding();
	hdr.epoch = epoch;
	hdr.from_tick = batch->from_tick;
	hdr.to_tick = batch->to_tick;
	hdr.to_tick_time = batch->to_tick_time;
	hdr.nrels = rels.n;
	hdr.nspnames = rels.nspnames;
	hdr.relnames = rels.relnames;
	hdr.nchanges = nchanges + nticks - 1;
	initStringInfo(&batch->data);
	repl_proto_put_batch_header(&batch->data, &hdr);
	appendBinaryStringInfo(&batch->data, changes.data, changes.len);
	pfree(changes.data);
	batch->nchanges = nchanges;
	return true;
}

/*
 * repl_log_startup
 *		Supervisor start: raise the sequence counter above the log's largest
 *		number, load cur_log, and give a switch_xmax to a table that was left
 *		draining without one.  In a transaction, connected to SPI.
 */
void
repl_log_startup(void)
{
	bool		isnull;
	Datum		d;

	spi_check(SPI_execute("SELECT pg_catalog.max(seq) FROM repl.log", true, 1),
			  SPI_OK_SELECT, "max seq");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		repl_advance_seq_floor((uint64) DatumGetInt64(d));
	spi_check(SPI_execute(psprintf("UPDATE repl.log_state"
								   "   SET switch_xmax = '" UINT64_FORMAT "'::pg_catalog.xid8"
								   " WHERE state OPERATOR(pg_catalog.=) 'draining' AND switch_xmax IS NULL",
								   U64FromFullTransactionId(ReadNextFullTransactionId())),
						  false, 0), SPI_OK_UPDATE, "log_state fix");
	if (!repl_shared->cur_log_valid)
		load_cur_log();
}

/*
 * Truncate a draining log table once every follower is past it.  min_xmin
 * is the xmin of the oldest snapshot any follower still needs.
 */
static void
truncate_drained(void)
{
	uint64		i;
	int			nready = 0;
	int			ready[REPL_NUM_LOG_TABLES];

	/*
	 * Oldest needed snapshot: the position of the slowest follower that is
	 * still kept; with no such follower, the newest tick.
	 */
	spi_check(SPI_execute("SELECT s.log_no FROM repl.log_state s,"
						  " (SELECT pg_catalog.pg_snapshot_xmin(t.snap) AS xmin"
						  "    FROM repl.tick t"
						  "   WHERE t.tick_id OPERATOR(pg_catalog.=) coalesce("
						  "     (SELECT pg_catalog.min(f.applied_tick) FROM repl.followers f"
						  "       WHERE NOT f.needs_resync AND f.phase OPERATOR(pg_catalog.<>) 'rejoin'),"
						  "     (SELECT pg_catalog.max(tick_id) FROM repl.tick))) m"
						  " WHERE s.state OPERATOR(pg_catalog.=) 'draining'"
						  "   AND s.switch_xmax IS NOT NULL"
						  "   AND m.xmin OPERATOR(pg_catalog.>=) s.switch_xmax",
						  true, 0), SPI_OK_SELECT, "drained tables");
	for (i = 0; i < SPI_processed && nready < REPL_NUM_LOG_TABLES; i++)
	{
		bool		isnull;

		ready[nready++] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc,
													  1, &isnull));
	}
	for (i = 0; i < (uint64) nready; i++)
	{
		char		name[NAMEDATALEN];
		Oid			relid;

		snprintf(name, sizeof(name), "log_%d", ready[i]);
		relid = repl_catalog_relid(name);
		/* never wait for a reader: try again next time */
		if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
			continue;
		spi_check(SPI_execute(psprintf("TRUNCATE repl.log_%d", ready[i]),
							  false, 0), SPI_OK_UTILITY, "log truncate");
		spi_check(SPI_execute(psprintf("UPDATE repl.log_state SET state = 'empty',"
									   " switch_xmax = NULL WHERE log_no = %d",
									   ready[i]), false, 0),
				  SPI_OK_UPDATE, "log_state update");
		elog(DEBUG1, "repl_ext: truncated replication log table repl.log_%d",
			 ready[i]);
	}

	/*
	 * A table still draining needs a tick newer than its switch; on an idle
	 * leader none would come, so ask for one.
	 */
	spi_check(SPI_execute("SELECT 1 FROM repl.log_state WHERE state OPERATOR(pg_catalog.=) 'draining'",
						  true, 1), SPI_OK_SELECT, "draining tables");
	if (SPI_processed > 0)
	{
		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		repl_shared->tick_requested++;
		LWLockRelease(repl_shared->lock);
	}
}

/*
 * Forgetting ticks.  A synchronous commit cuts a tick of its own, so a busy
 * leader has a thousand or more ticks a second to forget, and each follower
 * as many kept ticks (repl.retained).  Deleted all at once, once a second,
 * they took 1.5-2 ms of CPU: the leader's supervisor's, or the follower's
 * apply session (repl.follower_sync_cluster).  On two CPUs a commit's
 * backend, woken on the CPU the supervisor held, waited that long (the
 * scheduler neither preempted the supervisor nor moved the backend to the
 * idle CPU), and a commit waited for the follower's deletion to end.
 * Now the supervisor of each node deletes at most REPL_TRIM_CHUNK rows of
 * each table per transaction, and comes back after TRIM_AGAIN_MS while
 * rows remain (worker.c).  The transaction commits without waiting for its
 * flush: a crash that took it back would only leave rows to delete again.
 */
static void
trim_begin(void)
{
	StartTransactionCommand();
	/* the supervisor's synchronous_commit is set as an override */
	(void) set_config_option("synchronous_commit", "off", PGC_SUSET,
							 PGC_S_OVERRIDE, GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
}

/*
 * With nowait, take the table locks the deletions need only if they are
 * free; false (nothing locked) if one is not.
 */
static bool
trim_lock(bool nowait, bool ticks_too)
{
	Oid			retained = repl_catalog_relid("retained");

	if (!nowait)
		return true;
	if (!ConditionalLockRelationOid(retained, RowExclusiveLock))
		return false;
	if (ticks_too && !ConditionalLockRelationOid(repl_catalog_relid("tick"), RowExclusiveLock))
	{
		UnlockRelationOid(retained, RowExclusiveLock);
		return false;
	}
	return true;
}

static void
trim_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Delete the oldest retained ticks up to *bound, at most a chunk. */
static uint64
trim_retained_chunk(Datum *bound)
{
	Oid			type = INT8OID;

	spi_check(SPI_execute_with_args(psprintf("DELETE FROM repl.retained"
											 " WHERE tick_id OPERATOR(pg_catalog.<=) $1"
											 "   AND tick_id OPERATOR(pg_catalog.<=)"
											 "       ((SELECT pg_catalog.min(tick_id) FROM repl.retained)"
											 "         OPERATOR(pg_catalog.+) %d)",
											 REPL_TRIM_CHUNK - 1),
									1, &type, bound, NULL, false, 0),
			  SPI_OK_DELETE, "retained cleanup");
	return SPI_processed;
}

/*
 * repl_trim_ticks
 *		Leader's supervisor: forget ticks every follower has applied, and the
 *		ticks of earlier epochs kept in repl.retained that every follower
 *		has, at most a chunk of each.  Returns true if it stopped at that
 *		limit.  nowait: do nothing if a table lock the deletions need is
 *		taken.
 */
bool
repl_trim_ticks(bool nowait)
{
	uint64		deleted;
	bool		isnull;
	Datum		bound;
	Oid			type = INT8OID;

	trim_begin();
	if (!trim_lock(nowait, true))
	{
		trim_end();
		return false;
	}
	/* the oldest position a follower still needs, as truncate_drained */
	spi_check(SPI_execute("SELECT coalesce("
						  "  (SELECT pg_catalog.min(f.applied_tick) FROM repl.followers f"
						  "    WHERE NOT f.needs_resync AND f.phase OPERATOR(pg_catalog.<>) 'rejoin'),"
						  "  (SELECT pg_catalog.max(tick_id) FROM repl.tick))",
						  true, 1), SPI_OK_SELECT, "oldest needed tick");
	bound = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
	{
		trim_end();
		return false;
	}
	deleted = trim_retained_chunk(&bound);
	spi_check(SPI_execute_with_args(psprintf("DELETE FROM repl.tick WHERE tick_id OPERATOR(pg_catalog.<) $1"
											 "  AND tick_id OPERATOR(pg_catalog.<)"
											 "      ((SELECT pg_catalog.min(tick_id) FROM repl.tick)"
											 "        OPERATOR(pg_catalog.+) %d)",
											 REPL_TRIM_CHUNK),
									1, &type, &bound, NULL, false, 0),
			  SPI_OK_DELETE, "tick cleanup");
	deleted = Max(deleted, SPI_processed);
	trim_end();
	return deleted >= REPL_TRIM_CHUNK;
}

/*
 * repl_trim_retained
 *		Follower's supervisor: forget kept ticks up to the position every
 *		follower has, which the leader sends once a second
 *		(repl.forget_retained), at most a chunk.  Returns true if it stopped
 *		at that limit.  nowait: as for repl_trim_ticks.
 */
bool
repl_trim_retained(bool nowait)
{
	int64		bound = (int64) pg_atomic_read_u64(&repl_shared->retain_bound);
	uint64		deleted = 0;

	if (bound <= 0)
		return false;
	trim_begin();
	/* the extension may be gone since the leader sent the bound */
	if (!OidIsValid(get_extension_oid("repl_ext", true)))
		pg_atomic_write_u64(&repl_shared->retain_bound, 0);
	else if (trim_lock(nowait, false))
	{
		Datum		value = Int64GetDatum(bound);

		deleted = trim_retained_chunk(&value);
	}
	trim_end();
	return deleted >= REPL_TRIM_CHUNK;
}

/*
 * repl_log_maintain
 *		Supervisor housekeeping (see file header): mark followers that fell
 *		out of the retention window, truncate drained log tables, and
 *		rotate.  Runs several short transactions of its own.  Old ticks go
 *		in repl_trim_ticks.
 */
void
repl_log_maintain(void)
{
	int			cur;
	int			next;
	bool		rotate = false;
	bool		isnull;

	/*
	 * 1. truncation, in a transaction of its own that waits for no lock
	 * after taking the ACCESS EXCLUSIVE one: a tick cutter holds the tick
	 * lock while it counts the log tables (the copy's tick, a commit's own
	 * tick), so anything below waiting for a lock such a cutter holds while
	 * a truncated table stays locked would close a deadlock cycle.
	 */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	truncate_drained();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* 2. retention */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (repl_max_retention > 0)
	{
		Datum		arg = Int32GetDatum(repl_max_retention);
		Oid			argtype = INT4OID;

		spi_check(SPI_execute_with_args("UPDATE repl.followers SET needs_resync = true"
										" WHERE NOT needs_resync AND phase OPERATOR(pg_catalog.<>) 'rejoin'"
										"   AND applied_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
										"       OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1))"
										"   AND applied_tick OPERATOR(pg_catalog.<) (SELECT pg_catalog.max(tick_id) FROM repl.tick)"
										" RETURNING node_name",
										1, &argtype, &arg, NULL, false, 0),
				  SPI_OK_UPDATE_RETURNING, "retention");
		if (SPI_processed > 0)
		{
			uint64		i;

			for (i = 0; i < SPI_processed; i++)
				ereport(WARNING,
						(errmsg("follower \"%s\" needs re-synchronisation",
								SPI_getvalue(SPI_tuptable->vals[i],
											 SPI_tuptable->tupdesc, 1)),
						 errdetail("It has not applied changes for longer than repl_ext.max_retention (%d s); the leader no longer keeps them.",
								   repl_max_retention)));
			repl_wake_supervisor_at_commit();
		}
	}

	/* 3. decide on rotation */
	cur = (int) pg_atomic_read_u32(&repl_shared->cur_log);
	next = (cur + 1) % REPL_NUM_LOG_TABLES;
	{
		Datum		args[3];
		Oid			argtypes[3] = {INT4OID, INT4OID, INT4OID};

		args[0] = Int32GetDatum(cur);
		args[1] = Int32GetDatum(next);
		args[2] = Int32GetDatum(repl_log_rotate_interval);
		spi_check(SPI_execute_with_args("SELECT (SELECT switched_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
										"          OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $3))"
										"          FROM repl.log_state WHERE log_no OPERATOR(pg_catalog.=) $1)"
										"   AND (SELECT state OPERATOR(pg_catalog.=) 'empty'"
										"          FROM repl.log_state WHERE log_no OPERATOR(pg_catalog.=) $2)",
										3, argtypes, args, NULL, true, 1),
				  SPI_OK_SELECT, "rotation check");
		rotate = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			rotate = false;
		if (rotate)
		{
			char		name[NAMEDATALEN];

			/* pointless to rotate an empty table */
			snprintf(name, sizeof(name), "repl.log_%d", cur);
			spi_check(SPI_execute(psprintf("SELECT 1 FROM %s LIMIT 1", name),
								  true, 1), SPI_OK_SELECT, "log probe");
			rotate = SPI_processed > 0;
		}
		if (rotate)
		{
			spi_check(SPI_execute_with_args("UPDATE repl.log_state SET"
											" state = CASE WHEN log_no OPERATOR(pg_catalog.=) $1 THEN 'draining' ELSE 'current' END,"
											" switch_xmax = NULL, switched_at = pg_catalog.now()"
											" WHERE log_no OPERATOR(pg_catalog.=) ANY (ARRAY[$1, $2])",
											2, argtypes, args, NULL, false, 0),
					  SPI_OK_UPDATE, "rotate");
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (!rotate)
		return;

	/* 4. switch writers over, then record the bound of the old table */
	pg_memory_barrier();
	pg_atomic_write_u32(&repl_shared->cur_log, next);
	pg_memory_barrier();

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	spi_check(SPI_execute(psprintf("UPDATE repl.log_state"
								   "   SET switch_xmax = '" UINT64_FORMAT "'::pg_catalog.xid8"
								   " WHERE log_no = %d",
								   U64FromFullTransactionId(ReadNextFullTransactionId()),
								   cur), false, 0),
			  SPI_OK_UPDATE, "switch_xmax");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	elog(DEBUG1, "repl_ext: replication log switched from repl.log_%d to repl.log_%d",
		 cur, next);
}
