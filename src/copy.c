/*-------------------------------------------------------------------------
 *
 * copy.c
 *		Snapshot copy and schema sync: bring tables to a follower as they
 *		were at one snapshot of the leader, without locking the leader.
 *
 * Boundary.  The copy snapshot is made a tick.  The sender locks repl.tick
 * (so no tick is cut meanwhile), a second connection to the leader opens a
 * REPEATABLE READ transaction and exports its snapshot S, and the sender
 * records S as the next tick T before releasing the lock.  Every earlier
 * tick's snapshot was taken before S and every later one after it, so T is
 * a tick like any other: the batches after T hold exactly the transactions
 * S does not see, including those in flight when S was taken.  A follower
 * that gets everything at S and then streams from T has nothing twice and
 * nothing missing.  Writers are never blocked: the copy holds ACCESS SHARE
 * locks and only the supervisor's next tick waits, for milliseconds.
 *
 * Rewrites.  TRUNCATE (and any other rewrite of a table: ALTER TABLE with a
 * new relfilenode, VACUUM FULL, CLUSTER) is not MVCC-safe: a snapshot
 * taken before it sees the table empty once it has committed.  A copy that
 * read such a table after the rewrite would miss its rows as of S, while
 * the batches after T would hold only what changed after S: the follower
 * would lack rows (found by the chaos test: an UPDATE of a row the copy
 * had not seen).  So both connections lock every replicated table in
 * ACCESS SHARE mode before S is taken (snapconn) or imported (the copying
 * connection), and keep the locks until the copy ends, as pg_dump does:
 * such commands wait for the copy, ordinary writes do not.
 *
 * Tables added later (repl.add_table while followers exist) are copied the
 * same way at a new tick Tc while the follower is at some P < Tc; until it
 * reaches Tc, changes of those tables from transactions visible in Tc's
 * snapshot are filtered out of its batches (repl.follower_tables, read by
 * repl_read_batch), because the copy holds them.
 *
 * Atomicity.  Everything on the follower happens in one transaction: create
 * the missing tables, empty the existing ones, COPY every table (binary
 * where every column has a built-in type), add keys and indexes, then take
 * the follower role at T (or register the added tables).  If the follower
 * or the network fails, that transaction is rolled back and the follower is
 * exactly as before; the sender shows copy_failed and starts again after a
 * backoff.  The leader records what the follower has only after the
 * follower committed; if the leader fails in between, the tables are copied
 * again (the follower's own copies are emptied first).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "changelog.h"
#include "copy.h"
#include "shmem.h"
#include "transport.h"

/* One table of a copy. */
typedef struct CopyTable
{
	char	   *relid;			/* leader OID, as text */
	char	   *name;			/* schema-qualified, quoted */
	char	   *columns;		/* quoted column list, without generated ones */
	bool		binary;
	int64		est_rows;
	int64		est_bytes;
	bool		create;			/* missing on the follower */
} CopyTable;

/* State of one copy run, for the progress callback. */
typedef struct CopyRun
{
	ReplFollowerSlot *slot;
	int64		rows_before;	/* rows of the tables already copied */
	int64		bytes_before;
} CopyRun;

/* Does a list of names contain name? */
static bool
name_in(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

/* Is the value at row, col of res equal to value? */
static bool
value_is(ReplResult *res, int row, int col, const char *value)
{
	const char *v = repl_result_value(res, row, col);

	return v != NULL && strcmp(v, value) == 0;
}

/*
 * repl_compare_tables
 *		Compare repl.table_definitions() of the leader and the follower for
 *		the same tables.  Returns NULL when the tables that exist on both
 *		sides agree, else the differences as one sentence list.  *missing
 *		gets the tables the follower lacks, *nonempty those with rows there.
 */
char *
repl_compare_tables(ReplResult *leader, ReplResult *follower,
					List **missing, List **nonempty)
{
	StringInfoData diff;
	int			i;
	int			j;
	int			ndiff = 0;

	initStringInfo(&diff);
	*missing = NIL;
	*nonempty = NIL;
	for (j = 0; j < follower->ntuples; j++)
	{
		const char *t = repl_result_value(follower, j, 0);

		if (value_is(follower, j, 1, "table"))
			*missing = lappend(*missing, pstrdup(t));
		else if (value_is(follower, j, 1, "rows") &&
				 !value_is(follower, j, 2, "empty"))
			*nonempty = lappend(*nonempty, pstrdup(t));
	}
	for (i = 0; i < leader->ntuples; i++)
	{
		const char *t = repl_result_value(leader, i, 0);
		const char *item = repl_result_value(leader, i, 1);
		const char *def = repl_result_value(leader, i, 2);
		const char *rdef = NULL;

		if (strcmp(item, "rows") == 0 || name_in(*missing, t))
			continue;
		for (j = 0; j < follower->ntuples; j++)
			if (strcmp(repl_result_value(follower, j, 0), t) == 0 &&
				strcmp(repl_result_value(follower, j, 1), item) == 0)
				rdef = repl_result_value(follower, j, 2);
		if (rdef == NULL)
			appendStringInfo(&diff, "%stable %s: %s is missing on the follower",
							 ndiff++ ? "; " : "", t, item);
		else if (strcmp(def, rdef) != 0)
			appendStringInfo(&diff, "%stable %s: %s is %s on the leader but %s on the follower",
							 ndiff++ ? "; " : "", t, item, def, rdef);
	}
	/* columns only the follower has */
	for (j = 0; j < follower->ntuples; j++)
	{
		const char *t = repl_result_value(follower, j, 0);
		const char *item = repl_result_value(follower, j, 1);
		bool		found = false;

		if (strcmp(item, "rows") == 0 || strcmp(item, "table") == 0)
			continue;
		for (i = 0; i < leader->ntuples && !found; i++)
			found = strcmp(repl_result_value(leader, i, 0), t) == 0 &&
				strcmp(repl_result_value(leader, i, 1), item) == 0;
		if (!found)
			appendStringInfo(&diff, "%stable %s: %s exists only on the follower",
							 ndiff++ ? "; " : "", t, item);
	}
	if (ndiff == 0)
		return NULL;
	appendStringInfoChar(&diff, '.');
	return diff.data;
}

/* A text[] literal of the names, for a remote parameter. */
char *
repl_text_array_literal(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, names)
	{
		const char *p;

		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '"');
		for (p = lfirst(lc); *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static void
set_state(ReplFollowerSlot *slot, ReplFollowerState state)
{
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	slot->state = state;
	LWLockRelease(repl_shared->lock);
}

/* Progress callback of repl_conn_copy: publish, and stop if asked. */
static bool
copy_progress(void *arg, int64 rows, int64 bytes)
{
	CopyRun    *run = (CopyRun *) arg;
	bool		stop;

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	run->slot->copy_rows = run->rows_before + rows;
	run->slot->copy_bytes = run->bytes_before + bytes;
	stop = run->slot->stop_requested;
	LWLockRelease(repl_shared->lock);
	return !stop;
}

/* Run sql on conn; on failure set *err (prefixed with what) and say so. */
static bool
remote(ReplConn *conn, const char *what, const char *sql, int nparams,
	   const char *const *params, ReplResult **res, char **err)
{
	ReplResult *r = repl_conn_exec(conn, sql, nparams, params, NULL, NULL);

	if (res)
		*res = r;
	if (r->ok)
		return true;
	*err = psprintf("%s: %s%s%s", what, r->message,
					r->detail ? " " : "", r->detail ? r->detail : "");
	return false;
}

static double
ms_since(TimestampTz start)
{
	return (double) TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
}

/*
 * Make a snapshot of the leader the next tick (see file header).  snapconn
 * must be in a REPEATABLE READ transaction that has not run a query yet.
 * Returns the tick id, with the exported snapshot's name and the snapshot
 * itself in *snapshot_name and *snapshot (allocated in cxt); -1 on failure.
 */
static int64
cut_copy_tick(ReplConn *snapconn, MemoryContext cxt, char **snapshot_name,
			  char **snapshot, char **err)
{
	ReplResult *res;
	int64		tick;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	repl_lock_ticks();
	if (!remote(snapconn, "could not take the copy snapshot",
				"SELECT pg_catalog.pg_export_snapshot(),"
				" pg_catalog.pg_current_snapshot()::text",
				0, NULL, &res, err))
	{
		PopActiveSnapshot();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		return -1;
	}
	*snapshot_name = MemoryContextStrdup(cxt, repl_result_value(res, 0, 0));
	*snapshot = MemoryContextStrdup(cxt, repl_result_value(res, 0, 1));
	tick = repl_cut_tick(*snapshot, false);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (repl_shared->last_tick < tick)
		repl_shared->last_tick = tick;
	LWLockRelease(repl_shared->lock);
	return tick;
}

/* After the follower committed: record what it has now. */
static void
record_copy(const ReplCopyRequest *req, int64 tick, const char *snapshot,
			List *relids)
{
	Oid			types[4] = {TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[4];
	int			rc;

	values[0] = CStringGetTextDatum(req->node_name);
	values[1] = Int64GetDatum(tick);
	values[2] = CStringGetTextDatum(repl_text_array_literal(relids));
	values[3] = CStringGetTextDatum(snapshot);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (req->initial)
	{
		rc = SPI_execute_with_args("DELETE FROM repl.follower_tables WHERE node_name OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "could not update repl.follower_tables: %s",
				 SPI_result_code_string(rc));
		rc = SPI_execute_with_args("UPDATE repl.followers SET phase = 'streaming',"
								   " truncate_existing = false, applied_tick = $2,"
								   " applied_at = pg_catalog.now()"
								   " WHERE node_name OPERATOR(pg_catalog.=) $1",
								   2, types, values, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "could not update repl.followers: %s",
				 SPI_result_code_string(rc));
		/* the supervisor may now give it the synchronous role */
		repl_wake_supervisor_at_commit();
	}
	rc = SPI_execute_with_args("INSERT INTO repl.follower_tables (node_name, relid, sync_tick, sync_snap)"
							   " SELECT $1, r, $2, $4::pg_catalog.pg_snapshot"
							   "   FROM pg_catalog.unnest($3::pg_catalog.oid[]) r"
							   "  WHERE EXISTS (SELECT 1 FROM repl.followers f"
							   "                 WHERE f.node_name OPERATOR(pg_catalog.=) $1)"
							   " ON CONFLICT (node_name, relid) DO UPDATE"
							   "   SET sync_tick = excluded.sync_tick, sync_snap = excluded.sync_snap,"
							   "       synced_at = pg_catalog.now()",
							   4, types, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not update repl.follower_tables: %s",
			 SPI_result_code_string(rc));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * repl_copy_tables
 *		Copy tables to the follower on fconn (see file header).  With
 *		req->initial, every replicated table, and the follower takes its role
 *		at the copy's tick; otherwise the replicated tables it does not have
 *		yet.  Runs in a sender, outside a transaction; publishes progress in
 *		slot.  Returns true with *tick set to the copy's tick, or false with
 *		*err set; then fconn is in an unknown state and must be closed.
 */
bool
repl_copy_tables(ReplConn *fconn, const ReplCopyRequest *req,
				 ReplFollowerSlot *slot, int64 *tick, char **err)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "repl_ext copy",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	ReplConn   *snapconn = NULL;
	ReplConn   *src = NULL;
	ReplResult *res;
	ReplResult *ldefs;
	ReplResult *fdefs;
	ReplResult *ddl;
	char	   *snapshot_name;
	char	   *snapshot;
	char	   *lock_sql;
	const char *params[5];
	CopyTable  *tables = NULL;
	int			ntables = 0;
	List	   *names = NIL;
	List	   *relids = NIL;
	List	   *missing;
	List	   *nonempty;
	List	   *registered = NIL;
	char	   *diff;
	StringInfoData sql;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz phase_start;
	int64		est_rows = 0;
	int64		est_bytes = 0;
	int64		total_rows = 0;
	int64		total_bytes = 0;
	int			ncreated = 0;
	int			i;
	bool		ok = false;
	CopyRun		run;

	*tick = -1;
	set_state(slot, REPL_FSTATE_CREATING_SCHEMA);
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	slot->copy_started = start;
	slot->copy_table[0] = '\0';
	slot->copy_tables_done = slot->copy_tables_total = 0;
	slot->copy_rows = slot->copy_bytes = 0;
	slot->copy_rows_estimate = slot->copy_bytes_estimate = 0;
	LWLockRelease(repl_shared->lock);

	/* 1. the snapshot, made a tick, imported by the copying connection */
	pgstat_report_activity(STATE_RUNNING, "copy: taking the snapshot");
	snapconn = repl_conn_open(req->leader_conninfo, req->node_name, err);
	if (snapconn == NULL)
	{
		*err = psprintf("could not connect to the leader itself: %s", *err);
		goto done;
	}
	src = repl_conn_open(req->leader_conninfo, req->node_name, err);
	if (src == NULL)
	{
		*err = psprintf("could not connect to the leader itself: %s", *err);
		goto done;
	}
	/* every replicated table, locked before the snapshot (see Rewrites) */
	if (!remote(src, "could not list the tables to lock",
				"SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname),"
				"                             ', ' ORDER BY n.nspname, c.relname)"
				"  FROM repl.replicated_tables t"
				"  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
				"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace",
				0, NULL, &res, err))
		goto done;
	lock_sql = repl_result_value(res, 0, 0) == NULL ? NULL :
		psprintf("LOCK TABLE %s IN ACCESS SHARE MODE", repl_result_value(res, 0, 0));
	if (!remote(snapconn, "could not start the snapshot transaction",
				"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
				0, NULL, NULL, err))
		goto done;
	if (lock_sql != NULL &&
		!remote(snapconn, "could not lock the tables to copy", lock_sql,
				0, NULL, NULL, err))
		goto done;
	*tick = cut_copy_tick(snapconn, cxt, &snapshot_name, &snapshot, err);
	if (*tick < 0)
		goto done;
	params[0] = snapshot_name;
	if (!remote(src, "could not prepare the copy session",
				"SELECT pg_catalog.set_config('datestyle', 'ISO', false),"
				" pg_catalog.set_config('intervalstyle', 'postgres', false),"
				" pg_catalog.set_config('extra_float_digits', '3', false),"
				" pg_catalog.set_config('timezone', 'UTC', false)",
				0, NULL, NULL, err) ||
		!remote(src, "could not start the copy transaction",
				"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
				0, NULL, NULL, err) ||
		(lock_sql != NULL &&
		 !remote(src, "could not lock the tables to copy", lock_sql,
				 0, NULL, NULL, err)) ||
		!remote(src, "could not import the copy snapshot",
				psprintf("SET TRANSACTION SNAPSHOT %s",
						 quote_literal_cstr(snapshot_name)),
				0, NULL, NULL, err))
		goto done;
	/* the snapshot lives on in src's transaction */
	repl_conn_close(snapconn);
	snapconn = NULL;

	/* 2. what to copy, as of the snapshot */
	params[0] = req->node_name;
	if (!remote(src, "could not list the tables to copy",
				req->initial ?
				"SELECT p.relid, p.table_name, p.columns, p.binary_ok, p.est_rows, p.est_bytes"
				"  FROM repl.copy_plan(ARRAY(SELECT t.relid::pg_catalog.regclass"
				"                              FROM repl.replicated_tables t"
				"                             ORDER BY t.schema_name, t.table_name)) p" :
				"SELECT p.relid, p.table_name, p.columns, p.binary_ok, p.est_rows, p.est_bytes"
				"  FROM repl.copy_plan(ARRAY(SELECT t.relid::pg_catalog.regclass"
				"                              FROM repl.replicated_tables t"
				"                             WHERE NOT EXISTS (SELECT 1 FROM repl.follower_tables f"
				"                                WHERE f.node_name OPERATOR(pg_catalog.=) $1"
				"                                  AND f.relid OPERATOR(pg_catalog.=) t.relid)"
				"                             ORDER BY t.schema_name, t.table_name)) p",
				req->initial ? 0 : 1, params, &res, err))
		goto done;
	ntables = res->ntuples;
	tables = palloc0(sizeof(CopyTable) * Max(ntables, 1));
	for (i = 0; i < ntables; i++)
	{
		tables[i].relid = pstrdup(repl_result_value(res, i, 0));
		tables[i].name = pstrdup(repl_result_value(res, i, 1));
		tables[i].columns = pstrdup(repl_result_value(res, i, 2));
		tables[i].binary = strcmp(repl_result_value(res, i, 3), "t") == 0;
		tables[i].est_rows = strtoi64(repl_result_value(res, i, 4), NULL, 10);
		tables[i].est_bytes = strtoi64(repl_result_value(res, i, 5), NULL, 10);
		est_rows += tables[i].est_rows;
		est_bytes += tables[i].est_bytes;
		names = lappend(names, tables[i].name);
		relids = lappend(relids, tables[i].relid);
	}
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	slot->copy_tables_total = ntables;
	slot->copy_rows_estimate = est_rows;
	slot->copy_bytes_estimate = est_bytes;
	LWLockRelease(repl_shared->lock);
	ereport(LOG,
			(errmsg_plural("repl_ext: follower \"%s\": copy of %d table started at position " INT64_FORMAT " (estimated %lld rows, %lld bytes)",
						   "repl_ext: follower \"%s\": copy of %d tables started at position " INT64_FORMAT " (estimated %lld rows, %lld bytes)",
						   ntables, req->node_name, ntables, *tick,
						   (long long) est_rows, (long long) est_bytes)));

	/* 3. compare with the follower; create what is missing */
	phase_start = GetCurrentTimestamp();
	pgstat_report_activity(STATE_RUNNING, "copy: creating the schema");
	params[0] = repl_text_array_literal(names);
	if (!remote(src, "could not read the leader's table definitions",
				"SELECT table_name, item, definition FROM repl.table_definitions($1::text[])",
				1, params, &ldefs, err) ||
		!remote(fconn, "could not read the follower's table definitions",
				"SELECT table_name, item, definition FROM repl.table_definitions($1::text[])",
				1, params, &fdefs, err))
		goto done;
	if (!req->initial)
	{
		if (!remote(fconn, "could not read the follower's replicated tables",
					"SELECT pg_catalog.format('%I.%I', schema_name, table_name)"
					"  FROM repl.replicated_tables", 0, NULL, &res, err))
			goto done;
		for (i = 0; i < res->ntuples; i++)
			registered = lappend(registered, pstrdup(repl_result_value(res, i, 0)));
	}
	diff = repl_compare_tables(ldefs, fdefs, &missing, &nonempty);
	if (diff != NULL)
	{
		*err = psprintf("replicated tables differ between the leader and the follower: %s",
						diff);
		goto done;
	}
	if (!req->truncate_existing)
	{
		ListCell   *lc;

		foreach(lc, nonempty)
			if (!name_in(registered, lfirst(lc)))
			{
				*err = psprintf("table %s already has rows on the follower; empty it there, or add the follower with truncate_existing => true",
								(char *) lfirst(lc));
				goto done;
			}
	}

	if (!remote(fconn, "could not start the follower's transaction",
				"BEGIN", 0, NULL, NULL, err) ||
		!remote(fconn, "could not prepare the follower's session",
				"SELECT repl.prepare_apply_session(true),"
				" pg_catalog.set_config('client_min_messages', 'warning', true),"
				" pg_catalog.set_config('datestyle', 'ISO', true),"
				" pg_catalog.set_config('intervalstyle', 'postgres', true),"
				" pg_catalog.set_config('array_nulls', 'on', true),"
				" pg_catalog.set_config('xmloption', 'content', true)",
				0, NULL, NULL, err))
		goto done;

	/*
	 * A node copied again (repl.resync_follower, or a former leader in
	 * repl.rejoin) keeps its role, and so refuses writes, until this
	 * transaction replaces its rows: it stops following (or being a fenced
	 * leader of) this cluster here, in the transaction that attaches it
	 * again.  Only for a leader of this cluster's history: a node of
	 * another cluster makes follower_attach fail below.
	 */
	if (req->initial && req->truncate_existing)
	{
		params[0] = req->leader_name;
		if (!remote(src, "could not read the leaders of this cluster",
					"SELECT pg_catalog.array_agg(l)::text FROM"
					" (SELECT leader_name FROM repl.epochs UNION SELECT $1) e(l)",
					1, params, &res, err))
			goto done;
		params[0] = repl_result_value(res, 0, 0);
		if (!remote(fconn, "could not detach the follower for its new copy",
					"SELECT repl.follower_detach(n.leader_name) FROM repl.node_info() n"
					" WHERE n.leader_name OPERATOR(pg_catalog.=) ANY ($1::text[])",
					1, params, NULL, err))
			goto done;
	}

	params[0] = repl_text_array_literal(relids);
	if (!remote(src, "could not read the table definitions",
				"SELECT t.rel::pg_catalog.oid::text, k.kind, s.stmt"
				"  FROM pg_catalog.unnest($1::pg_catalog.oid[]::pg_catalog.regclass[])"
				"       WITH ORDINALITY t(rel, tord),"
				"       LATERAL repl.table_ddl(t.rel) d,"
				"       LATERAL (VALUES ('pre', d.pre, 1), ('post', d.post, 2),"
				"                       ('fkey', d.fkeys, 3)) k(kind, stmts, kord),"
				"       LATERAL pg_catalog.unnest(k.stmts) WITH ORDINALITY s(stmt, sord)"
				" ORDER BY k.kord, t.tord, s.sord",
				1, params, &ddl, err))
		goto done;
	{
		int			j;

		for (i = 0; i < ntables; i++)
			tables[i].create = name_in(missing, tables[i].name);
		for (j = 0; j < ddl->ntuples; j++)
		{
			for (i = 0; i < ntables; i++)
				if (strcmp(tables[i].relid, repl_result_value(ddl, j, 0)) == 0)
					break;
			if (i == ntables || !tables[i].create ||
				strcmp(repl_result_value(ddl, j, 1), "pre") != 0)
				continue;
			if (!remote(fconn, psprintf("could not create table %s on the follower",
										tables[i].name),
						repl_result_value(ddl, j, 2), 0, NULL, NULL, err))
				goto done;
		}
	}
	initStringInfo(&sql);
	for (i = 0; i < ntables; i++)
	{
		if (tables[i].create)
		{
			ncreated++;
			continue;
		}
		appendStringInfo(&sql, "%s%s", sql.len ? ", " : "TRUNCATE ONLY ",
						 tables[i].name);
	}
	if (sql.len > 0 &&
		!remote(fconn, "could not empty the follower's tables",
				sql.data, 0, NULL, NULL, err))
		goto done;
	ereport(LOG,
			(errmsg("repl_ext: follower \"%s\": schema ready in %.0f ms (tables created: %d, emptied: %d)",
					req->node_name, ms_since(phase_start), ncreated,
					ntables - ncreated)));

	/* 4. the data */
	set_state(slot, REPL_FSTATE_COPYING);
	phase_start = GetCurrentTimestamp();
	run.slot = slot;
	for (i = 0; i < ntables; i++)
	{
		const char *format = tables[i].binary ? "binary" : "text";
		TimestampTz table_start = GetCurrentTimestamp();
		ReplResult *cr;
		int64		rows;
		int64		bytes;

		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		strlcpy(slot->copy_table, tables[i].name, sizeof(slot->copy_table));
		run.rows_before = slot->copy_rows;
		run.bytes_before = slot->copy_bytes;
		LWLockRelease(repl_shared->lock);
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("copy: table %s", tables[i].name));

		/* FREEZE: the table was created or emptied in this transaction */
		cr = repl_conn_copy(src,
							psprintf("COPY %s (%s) TO STDOUT WITH (FORMAT %s)",
									 tables[i].name, tables[i].columns, format),
							fconn,
							psprintf("COPY %s (%s) FROM STDIN WITH (FORMAT %s, FREEZE)",
									 tables[i].name, tables[i].columns, format),
							copy_progress, &run);
		if (!cr->ok)
		{
			*err = psprintf("could not copy table %s: %s%s%s", tables[i].name,
							cr->message, cr->detail ? " " : "",
							cr->detail ? cr->detail : "");
			goto done;
		}
		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		rows = slot->copy_rows - run.rows_before;
		bytes = slot->copy_bytes - run.bytes_before;
		/* binary COPY sends its trailer as one more message */
		if (tables[i].binary && rows > 0)
		{
			rows--;
			slot->copy_rows--;
		}
		slot->copy_tables_done = i + 1;
		LWLockRelease(repl_shared->lock);
		total_rows += rows;
		total_bytes += bytes;
		ereport(LOG,
				(errmsg("repl_ext: follower \"%s\": copied table %s: %lld rows, %lld bytes (%s) in %.0f ms",
						req->node_name, tables[i].name, (long long) rows,
						(long long) bytes, format, ms_since(table_start))));
	}

	/* 5. keys, indexes and foreign keys of the tables created, then the role */
	pgstat_report_activity(STATE_RUNNING, "copy: building indexes");
	{
		int			j;

		for (j = 0; j < ddl->ntuples; j++)
		{
			for (i = 0; i < ntables; i++)
				if (strcmp(tables[i].relid, repl_result_value(ddl, j, 0)) == 0)
					break;
			if (i == ntables || !tables[i].create ||
				strcmp(repl_result_value(ddl, j, 1), "pre") == 0)
				continue;
			if (!remote(fconn, psprintf("could not build keys and indexes of table %s on the follower",
										tables[i].name),
						repl_result_value(ddl, j, 2), 0, NULL, NULL, err))
				goto done;
		}
	}
	if (req->initial)
	{
		char		epoch[32];
		char		pos[32];

		snprintf(epoch, sizeof(epoch), INT64_FORMAT, req->epoch);
		snprintf(pos, sizeof(pos), INT64_FORMAT, *tick);
		params[0] = req->node_name;
		params[1] = req->leader_name;
		params[2] = epoch;
		params[3] = pos;
		params[4] = repl_text_array_literal(names);
		if (!remote(fconn, "could not make the node a follower",
					"SELECT repl.follower_attach($1, $2, $3::bigint, $4::bigint, $5::text[])",
					5, params, NULL, err))
			goto done;
	}
	else
	{
		params[0] = req->leader_name;
		params[1] = repl_text_array_literal(names);
		if (!remote(fconn, "could not register the copied tables on the follower",
					"SELECT repl.follower_add_tables($1, $2::text[])",
					2, params, NULL, err))
			goto done;
	}
	if (!remote(fconn, "could not commit the copy on the follower",
				"COMMIT", 0, NULL, NULL, err))
		goto done;
	(void) remote(src, "could not end the copy transaction", "COMMIT",
				  0, NULL, NULL, err);
	record_copy(req, *tick, snapshot, relids);
	ereport(LOG,
			(errmsg("repl_ext: follower \"%s\": copy finished at position " INT64_FORMAT " in %.0f ms (data %.0f ms): tables: %d, rows: %lld, bytes: %lld",
					req->node_name, *tick, ms_since(start), ms_since(phase_start),
					ntables, (long long) total_rows, (long long) total_bytes)));
	ok = true;

done:
	pgstat_report_activity(STATE_IDLE, NULL);
	repl_conn_close(snapconn);
	repl_conn_close(src);
	MemoryContextSwitchTo(oldcxt);
	if (!ok)
		*err = pstrdup(*err);
	MemoryContextDelete(cxt);
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	slot->copy_started = 0;
	slot->copy_table[0] = '\0';
	LWLockRelease(repl_shared->lock);
	return ok;
}
