/*-------------------------------------------------------------------------
 *
 * follower.c
 *		The node catalog and the functions that manage nodes: init_leader,
 *		add/remove/pause/resume_follower, wait_for_catchup, node_info, the
 *		status view, and the follower-side calls the leader makes.
 *
 * repl.local_node holds this node's identity and role.  Backends cache it
 * (the capture trigger needs the role on every row); every function that
 * changes it sends a relcache invalidation for the table, so all backends
 * re-read it after the change commits.  The cached applied_tick is only a
 * hint: apply reads the position under a row lock.
 *
 * add_follower only checks and records: the leader, then the follower
 * (extension and version, role, tables that exist there have the leader's
 * columns and key and no rows unless truncate_existing, tables that do not
 * exist can be created), then the follower's row with phase 'copy'.  The
 * follower is not changed.  Its sender then creates and copies the tables
 * and attaches it (copy.c), retrying with backoff until that succeeds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "capture.h"
#include "changelog.h"
#include "copy.h"
#include "failover.h"
#include "follower.h"
#include "guc.h"
#include "shmem.h"
#include "syncwait.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(repl_init_leader);
PG_FUNCTION_INFO_V1(repl_add_follower);
PG_FUNCTION_INFO_V1(repl_remove_follower);
PG_FUNCTION_INFO_V1(repl_pause_follower);
PG_FUNCTION_INFO_V1(repl_resume_follower);
PG_FUNCTION_INFO_V1(repl_set_synchronous);
PG_FUNCTION_INFO_V1(repl_wait_for_catchup);
PG_FUNCTION_INFO_V1(repl_node_info);
PG_FUNCTION_INFO_V1(repl_follower_status);
PG_FUNCTION_INFO_V1(repl_follower_attach);
PG_FUNCTION_INFO_V1(repl_follower_detach);
PG_FUNCTION_INFO_V1(repl_follower_add_tables);

static ReplLocalNode local_node;
static bool local_node_valid = false;
static Oid	local_node_relid = InvalidOid;
static MemoryContext local_node_cxt = NULL;

static void
local_node_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == local_node_relid)
		local_node_valid = false;
}

/*
 * repl_catalog_relid
 *		OID of table repl.<relname>.  Kept per backend (apply and the
 *		senders look up several tables for every batch) until a relcache
 *		invalidation names one of them or all: dropping the extension does.
 */
#define CATALOG_CACHE_SIZE	16

static struct
{
	char		name[NAMEDATALEN];
	Oid			relid;
}			catalog_cache[CATALOG_CACHE_SIZE];
static int	catalog_cache_n = 0;
static bool catalog_cache_registered = false;

static void
catalog_cache_invalidate(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < catalog_cache_n; i++)
		if (relid == InvalidOid || catalog_cache[i].relid == relid)
			catalog_cache_n = 0;
}

Oid
repl_catalog_relid(const char *relname)
{
	Oid			relid;
	int			i;

	for (i = 0; i < catalog_cache_n; i++)
		if (strcmp(catalog_cache[i].name, relname) == 0)
			return catalog_cache[i].relid;
	relid = get_relname_relid(relname, get_namespace_oid(REPL_SCHEMA, false));
	if (!OidIsValid(relid))
		elog(ERROR, "repl_ext catalog table repl.%s is missing", relname);
	if (!catalog_cache_registered)
	{
		CacheRegisterRelcacheCallback(catalog_cache_invalidate, (Datum) 0);
		catalog_cache_registered = true;
	}
	if (catalog_cache_n < CATALOG_CACHE_SIZE)
	{
		strlcpy(catalog_cache[catalog_cache_n].name, relname, NAMEDATALEN);
		catalog_cache[catalog_cache_n++].relid = relid;
	}
	return relid;
}

/*
 * repl_catalog_scan
 *		Call fn for each row of table repl.relname visible in the active
 *		snapshot, until it returns false.  A plain heap scan, for the small
 *		tables read for every batch, where a SQL statement cost more than
 *		the rest of a small batch.
 */
void
repl_catalog_scan(const char *relname, ReplCatalogRowFn fn, void *arg)
{
	Relation	rel = table_open(repl_catalog_relid(relname), AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	HeapTuple	tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		if (!fn(tup, RelationGetDescr(rel), arg))
			break;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * repl_catalog_attnum
 *		Attribute number of column colname of a table of the extension,
 *		found in its descriptor (no catalog lookup).
 */
AttrNumber
repl_catalog_attnum(TupleDesc desc, const char *colname)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
			return att->attnum;
	}
	elog(ERROR, "a repl_ext catalog table has no column \"%s\"", colname);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

static char *
text_attr(HeapTuple tup, TupleDesc desc, int attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * repl_local_node
 *		This node's row of repl.local_node (role NONE when there is none),
 *		cached until the table is invalidated.  Read with a heap scan, not
 *		SQL, so that it works for any user inside the capture trigger.
 */
const ReplLocalNode *
repl_local_node(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	MemoryContext old;

	if (local_node_valid)
		return &local_node;

	if (local_node_cxt == NULL)
	{
		local_node_cxt = AllocSetContextCreate(CacheMemoryContext,
											   "repl_ext local node",
											   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(local_node_invalidate, (Datum) 0);
	}
	MemoryContextReset(local_node_cxt);
	memset(&local_node, 0, sizeof(local_node));
	local_node.role = REPL_ROLE_NONE;

	local_node_relid = repl_catalog_relid("local_node");
	rel = table_open(local_node_relid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (tup != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		char	   *role;
		bool		isnull;

		old = MemoryContextSwitchTo(local_node_cxt);
		local_node.node_name = text_attr(tup, desc, 2);
		role = text_attr(tup, desc, 3);
		local_node.role = strcmp(role, "leader") == 0 ? REPL_ROLE_LEADER :
			strcmp(role, "fenced") == 0 ? REPL_ROLE_FENCED : REPL_ROLE_FOLLOWER;
		local_node.conninfo = text_attr(tup, desc, 4);
		local_node.leader_name = text_attr(tup, desc, 5);
		local_node.epoch = DatumGetInt64(heap_getattr(tup, 6, desc, &isnull));
		local_node.applied_tick = DatumGetInt64(heap_getattr(tup, 7, desc, &isnull));
		local_node.applied_epoch = desc->natts >= 9 ?
			DatumGetInt64(heap_getattr(tup, 9, desc, &isnull)) : local_node.epoch;
		if (isnull)
			local_node.applied_epoch = local_node.epoch;
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	local_node_valid = true;
	return &local_node;
}

/*
 * repl_local_node_fresh
 *		repl.local_node as committed now, not as cached: a worker woken by a
 *		commit that changed it may run before that commit's invalidation is
 *		sent (xact callbacks come first).
 */
const ReplLocalNode *
repl_local_node_fresh(void)
{
	local_node_valid = false;
	return repl_local_node();
}

/*
 * repl_local_node_changed
 *		Make every backend re-read repl.local_node once this transaction
 *		commits (and this one at its next command).
 */
void
repl_local_node_changed(void)
{
	CacheInvalidateRelcacheByRelid(repl_catalog_relid("local_node"));
	CommandCounterIncrement();
	local_node_valid = false;
}

/*
 * Position stored in repl.local_node (0 without a row), read afresh: the
 * cached copy is not invalidated when apply moves it.
 */
int64
repl_read_applied_tick(void)
{
	int64		applied = 0;
	Relation	rel = table_open(repl_catalog_relid("local_node"), AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	HeapTuple	tup = heap_getnext(scan, ForwardScanDirection);
	bool		isnull;

	if (tup)
		applied = DatumGetInt64(heap_getattr(tup, 7, RelationGetDescr(rel),
											 &isnull));
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return applied;
}

static const char *
role_name(ReplRole role)
{
	switch (role)
	{
		case REPL_ROLE_LEADER:
			return "leader";
		case REPL_ROLE_FOLLOWER:
			return "follower";
		case REPL_ROLE_FENCED:
			return "fenced";
		default:
			return "none";
	}
}

/*
 * repl_require_role
 *		Refuse a call on a node of the wrong role.
 */
void
repl_require_role(ReplRole role, const char *funcname)
{
	const ReplLocalNode *node = repl_local_node();

	if (node->role == role)
		return;
	if (node->role == REPL_ROLE_FOLLOWER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s must be called on the leader", funcname),
				 errdetail("This node \"%s\" is a follower of \"%s\".",
						   node->node_name, node->leader_name)));
	if (role == REPL_ROLE_LEADER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s must be called on the leader", funcname),
				 errdetail("This node has the role \"%s\".", role_name(node->role)),
				 errhint("Call repl.init_leader() first.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s must be called on a %s", funcname, role_name(role)),
			 errdetail("This node has the role \"%s\".", role_name(node->role))));
}

/* Refuse to run in a database other than repl_ext.database. */
static void
check_database(void)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	if (strcmp(dbname, repl_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("repl_ext runs in database \"%s\", not in \"%s\"",
						repl_database, dbname),
				 errhint("Set repl_ext.database in postgresql.conf and restart the server.")));
}

static char *
arg_text(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	return s;
}

/*
 * repl_arg_node_name / repl_arg_conninfo
 *		Argument argno as a node name (not null, not empty, fits a name) or a
 *		connection string (not null, not empty, parses), else an error.
 */
char *
repl_arg_node_name(FunctionCallInfo fcinfo, int argno)
{
	char	   *name = arg_text(fcinfo, argno, "node_name");

	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name \"%s\" is too long", name),
				 errdetail("Node names have at most %d bytes.", NAMEDATALEN - 1)));
	return name;
}

char *
repl_arg_conninfo(FunctionCallInfo fcinfo, int argno)
{
	char	   *conninfo = arg_text(fcinfo, argno, "conninfo");
	char	   *err;

	if (!repl_conninfo_is_valid(conninfo, &err))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid connection string"),
				 errdetail_internal("%s", err)));
	return conninfo;
}

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
		 const char *nulls, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls,
										   false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * repl.init_leader(node_name text, conninfo text) returns void
 */
Datum
repl_init_leader(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	char	   *conninfo = repl_arg_conninfo(fcinfo, 1);
	const ReplLocalNode *node;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	repl_check_preloaded();
	check_database();
	node = repl_local_node();
	if (node->role == REPL_ROLE_FOLLOWER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is already a follower of \"%s\"",
						node->node_name, node->leader_name),
				 errhint("Remove it from its leader with repl.remove_follower() first.")));
	if (node->role == REPL_ROLE_LEADER && strcmp(node->node_name, name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is already the leader \"%s\"", node->node_name)));
	if (node->role == REPL_ROLE_FENCED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" was fenced by leader \"%s\"",
						node->node_name, node->leader_name),
				 errhint("Call repl.rejoin() with the connection string of the current leader.")));

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(conninfo);
	SPI_connect();
	if (node->role == REPL_ROLE_LEADER)
	{
		/* same name: only the conninfo may change */
		spi_exec("UPDATE repl.local_node SET conninfo = $2 WHERE node_name = $1",
				 2, types, values, NULL, SPI_OK_UPDATE);
	}
	else
	{
		spi_exec("INSERT INTO repl.local_node (node_name, role, conninfo, epoch)"
				 " VALUES ($1, 'leader', $2, 1)",
				 2, types, values, NULL, SPI_OK_INSERT);
		repl_set_read_only_default(false);
		/* a new cluster: forget any earlier one (1.3 catalogs) */
		if (OidIsValid(get_relname_relid("epochs",
										 get_namespace_oid(REPL_SCHEMA, false))))
		{
			spi_exec("DELETE FROM repl.nodes", 0, NULL, NULL, NULL, SPI_OK_DELETE);
			spi_exec("DELETE FROM repl.retained", 0, NULL, NULL, NULL, SPI_OK_DELETE);
			spi_exec("DELETE FROM repl.epochs", 0, NULL, NULL, NULL, SPI_OK_DELETE);
			spi_exec("INSERT INTO repl.epochs (epoch, leader_name, start_tick) VALUES (1, $1, 0)",
					 1, types, values, NULL, SPI_OK_INSERT);
		}
		/* position 1: followers start from a tick that exists */
		(void) repl_cut_tick(NULL, false);
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" is now the leader", name)));
	}
	SPI_finish();
	repl_local_node_changed();
	repl_wake_supervisor_at_commit();
	PG_RETURN_VOID();
}

/* The SPI result of the last query as a ReplResult (text values). */
static ReplResult *
spi_result(void)
{
	ReplResult *r = palloc0(sizeof(ReplResult));
	uint64		i;
	int			j;

	r->ok = true;
	r->ntuples = (int) SPI_processed;
	r->nfields = SPI_tuptable->tupdesc->natts;
	r->values = palloc0(sizeof(char *) * Max(r->ntuples * r->nfields, 1));
	for (i = 0; i < SPI_processed; i++)
		for (j = 0; j < r->nfields; j++)
			r->values[i * r->nfields + j] =
				SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, j + 1);
	return r;
}

static char *
join_names(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * Check that follower conn can take the replicated tables: same definitions
 * where they exist, no rows unless truncate_existing, and the missing ones
 * can be created (their DDL is run in a transaction that is rolled back).
 * Raises an error naming every difference.  The caller is connected to SPI.
 */
static void
check_follower_tables(ReplConn *conn, const char *name, List *tables,
					  bool truncate_existing)
{
	char	   *tables_lit = repl_text_array_literal(tables);
	const char *params[1];
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(tables_lit);
	ReplResult *remote;
	ReplResult *local;
	List	   *missing;
	List	   *nonempty;
	char	   *diff;
	uint64		i;

	params[0] = tables_lit;
	repl_conn_exec_or_raise(conn,
							"SELECT table_name, item, definition FROM repl.table_definitions($1::text[])",
							1, params, name, &remote);
	spi_exec("SELECT table_name, item, definition FROM repl.table_definitions($1::text[])",
			 1, &argtype, &arg, NULL, SPI_OK_SELECT);
	local = spi_result();
	diff = repl_compare_tables(local, remote, &missing, &nonempty);
	if (diff != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replicated tables differ between the leader and follower \"%s\"",
						name),
				 errdetail_internal("%s", diff),
				 errhint("Make the tables on the follower match the leader, or drop them there: add_follower creates missing tables.")));
	if (nonempty != NIL && !truncate_existing)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replicated tables on follower \"%s\" are not empty", name),
				 errdetail_internal("Tables with rows: %s.", join_names(nonempty)),
				 errhint("Empty them on the follower, or call repl.add_follower with truncate_existing => true to have the copy replace their rows.")));
	if (missing == NIL)
		return;

	/* dry run of the DDL that will create the missing tables */
	arg = CStringGetTextDatum(repl_text_array_literal(missing));
	spi_exec("SELECT t.name, s.stmt"
			 "  FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY t(name, tord),"
			 "       LATERAL repl.table_ddl(t.name::pg_catalog.regclass) d,"
			 "       LATERAL (VALUES (d.pre, 1), (d.post, 2), (d.fkeys, 3)) k(stmts, kord),"
			 "       LATERAL pg_catalog.unnest(k.stmts) WITH ORDINALITY s(stmt, sord)"
			 " ORDER BY k.kord, t.tord, s.sord",
			 1, &argtype, &arg, NULL, SPI_OK_SELECT);
	repl_conn_exec_or_raise(conn, "BEGIN", 0, NULL, name, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *t = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *stmt = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		ReplResult *r = repl_conn_exec(conn, stmt, 0, NULL, NULL, NULL);

		if (!r->ok)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s cannot be created on follower \"%s\"", t, name),
					 errdetail_internal("%s", r->message),
					 errhint("Create what the table needs on the follower (types, schemas, extensions), or create the table there yourself.")));
	}
	repl_conn_exec_or_raise(conn, "ROLLBACK", 0, NULL, name, NULL);
}

/* End the backoff of name's sender, so that it retries at once. */
static void
retry_sender_now(const char *name)
{
	int			i;

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < repl_shared->nslots; i++)
	{
		ReplFollowerSlot *slot = &repl_shared->slots[i];

		if (!slot->in_use || strcmp(slot->node_name, name) != 0)
			continue;
		slot->retry_now = true;
		if (slot->proc)
			SetLatch(&slot->proc->procLatch);
	}
	LWLockRelease(repl_shared->lock);
	repl_wake_supervisor();
}

/*
 * repl.add_follower(node_name text, conninfo text, synchronous boolean,
 *		truncate_existing boolean) returns void
 *		Check the follower and record it; its sender then creates and copies
 *		the tables (copy.c) and streams.  Everything that can be checked up
 *		front is, so that a follower that cannot work is refused here and
 *		neither node changes.
 */
Datum
repl_add_follower(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	char	   *conninfo = repl_arg_conninfo(fcinfo, 1);
	bool		synchronous = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	bool		truncate_existing = PG_NARGS() > 3 && !PG_ARGISNULL(3) &&
		PG_GETARG_BOOL(3);
	const ReplLocalNode *node;
	MemoryContext callercxt = CurrentMemoryContext;
	Oid			types[5] = {TEXTOID, TEXTOID, BOOLOID, INT8OID, BOOLOID};
	Datum		values[5];
	List	   *tables;
	char	   *version;
	int64		position;
	ReplConn   *volatile conn = NULL;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.add_follower");

	node = repl_local_node();
	if (strcmp(name, node->node_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node name \"%s\" is the leader's own name", name)));
	if (node->conninfo == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the leader has no connection string"),
				 errhint("Call repl.init_leader() with the connection string other nodes, and the leader itself, use to reach it.")));

	SPI_connect();
	/* serializes with other add_follower calls and with log cleanup */
	if (SPI_execute("LOCK TABLE repl.followers IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock repl.followers");
	values[0] = CStringGetTextDatum(name);
	spi_exec("SELECT conninfo FROM repl.followers WHERE node_name = $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *old = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(old, conninfo) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("follower \"%s\" already exists with a different connection string",
							name),
					 errhint("Call repl.remove_follower() first to change it.")));
		ereport(NOTICE,
				(errmsg("node \"%s\" is already a follower, skipping", name),
				 errdetail("If its copy failed, it is retried now; see repl.status.")));
		SPI_finish();
		retry_sender_now(name);
		PG_RETURN_VOID();
	}
	if (synchronous)
	{
		spi_exec("SELECT node_name FROM repl.followers WHERE synchronous",
				 0, NULL, NULL, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("follower \"%s\" is already synchronous",
							SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
					 errdetail("At most one follower is synchronous."),
					 errhint("Add \"%s\" as asynchronous, then move the role with repl.set_synchronous('%s').",
							 name, name)));
	}
	position = repl_latest_tick();
	spi_exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'repl_ext'",
			 0, NULL, NULL, NULL, SPI_OK_SELECT);
	version = MemoryContextStrdup(callercxt,
								  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	tables = repl_replicated_table_names(callercxt);

	conn = repl_conn_open_or_raise(conninfo, name,
								   psprintf("follower \"%s\"", name));
	PG_TRY();
	{
		ReplResult *res;

		repl_conn_exec_or_raise(conn,
								"SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'repl_ext'",
								0, NULL, name, &res);
		if (res->ntuples == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("repl_ext is not installed on node \"%s\"", name),
					 errhint("Run CREATE EXTENSION repl_ext in database repl_ext.database of that node.")));
		if (strcmp(repl_result_value(res, 0, 0), version) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" has repl_ext version %s, the leader has %s",
							name, repl_result_value(res, 0, 0), version),
					 errhint("Run ALTER EXTENSION repl_ext UPDATE on both nodes.")));

		repl_conn_exec_or_raise(conn,
								"SELECT node_name, role, leader_name FROM repl.node_info()",
								0, NULL, name, &res);
		if (strcmp(repl_result_value(res, 0, 1), "leader") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" is a leader itself", name)));
		if (strcmp(repl_result_value(res, 0, 1), "follower") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" is already the follower \"%s\" of leader \"%s\"",
							name, repl_result_value(res, 0, 0),
							repl_result_value(res, 0, 2)),
					 errhint("If it was removed while unreachable, call repl.follower_detach('%s') on it first.",
							 repl_result_value(res, 0, 2))));
		check_follower_tables(conn, name, tables, truncate_existing);
	}
	PG_FINALLY();
	{
		repl_conn_close(conn);
	}
	PG_END_TRY();

	values[1] = CStringGetTextDatum(conninfo);
	values[2] = BoolGetDatum(synchronous);
	values[3] = Int64GetDatum(position);
	values[4] = BoolGetDatum(truncate_existing);
	spi_exec("INSERT INTO repl.followers (node_name, conninfo, synchronous, applied_tick,"
			 " phase, truncate_existing)"
			 " VALUES ($1, $2, $3, $4, 'copy', $5)", 5, types, values, NULL,
			 SPI_OK_INSERT);
	SPI_finish();
	ereport(LOG,
			(errmsg_plural("repl_ext: follower \"%s\" added; copying %d table to it",
						   "repl_ext: follower \"%s\" added; copying %d tables to it",
						   list_length(tables), name, list_length(tables))));
	repl_wake_supervisor_at_commit();
	PG_RETURN_VOID();
}

/*
 * repl.remove_follower(node_name text) returns boolean
 *		Forget a follower; tell it so if it can be reached (otherwise it keeps
 *		refusing writes until repl.follower_detach() is called on it).
 */
Datum
repl_remove_follower(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(name);
	char	   *conninfo;
	char	   *err;
	ReplConn   *conn;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.remove_follower");
	SPI_connect();
	spi_exec("DELETE FROM repl.followers WHERE node_name = $1 RETURNING conninfo",
			 1, &type, &value, NULL, SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
	{
		SPI_finish();
		ereport(NOTICE,
				(errmsg("follower \"%s\" does not exist, skipping", name)));
		PG_RETURN_BOOL(false);
	}
	conninfo = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	conninfo = MemoryContextStrdup(TopTransactionContext, conninfo);
	SPI_finish();

	conn = repl_conn_open(conninfo, name, &err);
	if (conn == NULL)
		ereport(WARNING,
				(errmsg("could not tell follower \"%s\" that it was removed", name),
				 errdetail_internal("%s", err),
				 errhint("Call repl.follower_detach('%s') on that node to let it accept writes.",
						 repl_local_node()->node_name)));
	else
	{
		const char *param = repl_local_node()->node_name;
		ReplResult *res = repl_conn_exec(conn, "SELECT repl.follower_detach($1)",
										 1, &param, NULL, NULL);

		repl_conn_close(conn);
		if (!res->ok)
			ereport(WARNING,
					(errmsg("could not detach follower \"%s\": %s", name,
							res->message)));
	}
	ereport(LOG, (errmsg("repl_ext: follower \"%s\" removed", name)));
	repl_wake_supervisor_at_commit();
	PG_RETURN_BOOL(true);
}

static void
set_paused(FunctionCallInfo fcinfo, bool paused, const char *funcname)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2];

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, funcname);
	values[0] = CStringGetTextDatum(name);
	values[1] = BoolGetDatum(paused);
	SPI_connect();
	spi_exec("UPDATE repl.followers SET paused = $2 WHERE node_name = $1",
			 2, types, values, NULL, SPI_OK_UPDATE);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("follower \"%s\" does not exist", name)));
	SPI_finish();
	repl_wake_supervisor_at_commit();
}

/*
 * repl.pause_follower(node_name text) / repl.resume_follower(node_name text)
 */
Datum
repl_pause_follower(PG_FUNCTION_ARGS)
{
	set_paused(fcinfo, true, "repl.pause_follower");
	PG_RETURN_VOID();
}

Datum
repl_resume_follower(PG_FUNCTION_ARGS)
{
	set_paused(fcinfo, false, "repl.resume_follower");
	PG_RETURN_VOID();
}

/*
 * repl.set_synchronous(node_name text, synchronous boolean) returns boolean
 *		Give the synchronous role to a follower (taking it from the one that
 *		has it) or take it away.  Returns false if nothing changed.  The
 *		supervisor applies the change when this transaction commits; commits
 *		waiting for the previous synchronous follower then wait for the new
 *		one, or stop waiting if there is none.
 */
Datum
repl_set_synchronous(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	bool		on;
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(name);
	char	   *previous = NULL;
	bool		isnull;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("synchronous must not be null")));
	on = PG_GETARG_BOOL(1);
	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.set_synchronous");

	SPI_connect();
	/* serializes with add_follower and the supervisor's moves of the role */
	if (SPI_execute("LOCK TABLE repl.followers IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock repl.followers");
	spi_exec("SELECT synchronous FROM repl.followers WHERE node_name = $1",
			 1, &type, &value, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("follower \"%s\" does not exist", name)));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
								   SPI_tuptable->tupdesc, 1, &isnull)) == on)
	{
		SPI_finish();
		ereport(NOTICE,
				(errmsg("follower \"%s\" is already %s, skipping", name,
						on ? "synchronous" : "asynchronous")));
		PG_RETURN_BOOL(false);
	}
	/* two statements: the partial unique index allows one at a time */
	spi_exec("UPDATE repl.followers SET synchronous = false WHERE synchronous"
			 " RETURNING node_name", 0, NULL, NULL, NULL,
			 SPI_OK_UPDATE_RETURNING);
	if (SPI_processed > 0)
		previous = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (on)
		spi_exec("UPDATE repl.followers SET synchronous = true WHERE node_name = $1",
				 1, &type, &value, NULL, SPI_OK_UPDATE);
	if (on && previous != NULL)
		ereport(LOG,
				(errmsg("repl_ext: synchronous role moved from follower \"%s\" to \"%s\"",
						previous, name)));
	else
		ereport(LOG,
				(errmsg("repl_ext: follower \"%s\" is now %s", name,
						on ? "synchronous" : "asynchronous")));
	SPI_finish();
	repl_wake_supervisor_at_commit();
	PG_RETURN_BOOL(true);
}

/*
 * Lowest applied position among the named followers as the senders last
 * reported it; -1 if one of them has no running sender yet.
 */
static int64
min_applied(List *names)
{
	int64		result = PG_INT64_MAX;
	ListCell   *lc;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	foreach(lc, names)
	{
		int			i;
		int64		applied = -1;

		for (i = 0; i < repl_shared->nslots; i++)
		{
			ReplFollowerSlot *slot = &repl_shared->slots[i];

			if (slot->in_use && strcmp(slot->node_name, lfirst(lc)) == 0)
				applied = slot->applied_tick;
		}
		result = Min(result, applied);
	}
	LWLockRelease(repl_shared->lock);
	return result;
}

/*
 * repl.wait_for_catchup(node_name text, timeout interval) returns boolean
 *		Ask the supervisor for a tick that covers every commit so far, then
 *		wait until the follower (or every follower) has applied it.
 */
Datum
repl_wait_for_catchup(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1);
	List	   *names = NIL;
	int64		request;
	int64		target = -1;
	TimestampTz deadline;
	int64		timeout_ms;
	bool		result = false;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.wait_for_catchup");
	if (timeout == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	timeout_ms = (int64) (timeout->time / 1000) +
		((int64) timeout->day * SECS_PER_DAY +
		 (int64) timeout->month * DAYS_PER_MONTH * SECS_PER_DAY) * 1000;
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));

	SPI_connect();
	if (PG_ARGISNULL(0))
		spi_exec("SELECT node_name FROM repl.followers ORDER BY node_name",
				 0, NULL, NULL, NULL, SPI_OK_SELECT);
	else
	{
		Oid			type = TEXTOID;
		Datum		value = PG_GETARG_DATUM(0);

		spi_exec("SELECT node_name FROM repl.followers WHERE node_name = $1",
				 1, &type, &value, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("follower \"%s\" does not exist",
							text_to_cstring(PG_GETARG_TEXT_PP(0)))));
	}
	{
		uint64		i;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		for (i = 0; i < SPI_processed; i++)
			names = lappend(names, pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 1)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	request = ++repl_shared->tick_requested;
	LWLockRelease(repl_shared->lock);
	repl_wake_supervisor();

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ConditionVariablePrepareToSleep(&repl_shared->progress_cv);
	for (;;)
	{
		long		remaining;

		if (target < 0)
		{
			LWLockAcquire(repl_shared->lock, LW_SHARED);
			if (repl_shared->tick_served >= request)
				target = repl_shared->last_tick;
			LWLockRelease(repl_shared->lock);
		}
		if (target >= 0 && (names == NIL || min_applied(names) >= target))
		{
			result = true;
			break;
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													deadline);
		if (remaining <= 0)
			break;
		(void) ConditionVariableTimedSleep(&repl_shared->progress_cv,
										   remaining, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(result);
}

/*
 * repl.node_info() returns (node_name, role, leader_name, epoch,
 *		applied_position)
 */
Datum
repl_node_info(PG_FUNCTION_ARGS)
{
	const ReplLocalNode *node;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	repl_check_preloaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	node = repl_local_node();
	values[1] = CStringGetTextDatum(role_name(node->role));
	if (node->role == REPL_ROLE_NONE)
	{
		nulls[0] = nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
	}
	else
	{
		values[0] = CStringGetTextDatum(node->node_name);
		if (node->role == REPL_ROLE_LEADER)
			values[2] = CStringGetTextDatum(node->node_name);
		else
			values[2] = CStringGetTextDatum(node->leader_name);
		values[3] = Int64GetDatum(node->epoch);
		values[5] = Int64GetDatum(node->applied_epoch);
		if (node->role != REPL_ROLE_LEADER)
			values[4] = Int64GetDatum(repl_read_applied_tick());
		else
		{
			LWLockAcquire(repl_shared->lock, LW_SHARED);
			values[4] = Int64GetDatum(repl_shared->last_tick);
			LWLockRelease(repl_shared->lock);
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

static const char *
state_name(ReplFollowerState state)
{
	switch (state)
	{
		case REPL_FSTATE_CONNECTING:
			return "connecting";
		case REPL_FSTATE_STREAMING:
			return "streaming";
		case REPL_FSTATE_DISCONNECTED:
			return "disconnected";
		case REPL_FSTATE_PAUSED:
			return "paused";
		case REPL_FSTATE_NEEDS_RESYNC:
			return "needs_resync";
		case REPL_FSTATE_CREATING_SCHEMA:
			return "creating_schema";
		case REPL_FSTATE_COPYING:
			return "copying";
		case REPL_FSTATE_COPY_FAILED:
			return "copy_failed";
		case REPL_FSTATE_CATCHING_UP:
			return "catching_up";
		case REPL_FSTATE_DIVERGED:
			return "diverged";
		default:
			return "stopped";
	}
}

/*
 * repl.follower_status() returns setof (node_name, state, synchronous,
 *		paused, sent_position, applied_position, last_error, last_error_time,
 *		copy_table, copy_tables_done, copy_tables_total, copy_rows,
 *		copy_bytes, copy_rows_estimate, copy_bytes_estimate, copy_started,
 *		sync_state, waiting_commits, longest_wait)
 */
Datum
repl_follower_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64		i;

	repl_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	spi_exec("SELECT node_name, synchronous, paused, needs_resync, applied_tick"
			 "  FROM repl.followers ORDER BY node_name",
			 0, NULL, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(t, d, 1);
		bool		isnull;
		bool		paused = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		bool		resync = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		int64		applied = DatumGetInt64(SPI_getbinval(t, d, 5, &isnull));
		int64		sent = applied;
		ReplFollowerState state = REPL_FSTATE_CONNECTING;
		char		errbuf[REPL_ERROR_LEN] = "";
		TimestampTz errtime = 0;
		Datum		values[19];
		bool		nulls[19];
		ReplFollowerSlot copy;
		int			s;
		bool		configured_sync = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
		const char *sync_state = configured_sync ? "pending" : "async";
		int			nwaiting = 0;
		TimestampTz oldest = 0;

		memset(nulls, 0, sizeof(nulls));
		memset(&copy, 0, sizeof(copy));

		LWLockAcquire(repl_shared->lock, LW_SHARED);
		for (s = 0; s < repl_shared->nslots; s++)
		{
			ReplFollowerSlot *slot = &repl_shared->slots[s];

			if (!slot->in_use || strcmp(slot->node_name, name) != 0)
				continue;
			state = slot->state;
			if (slot->applied_tick > 0)
			{
				applied = slot->applied_tick;
				sent = Max(slot->sent_tick, applied);
			}
			strlcpy(errbuf, slot->last_error, sizeof(errbuf));
			errtime = slot->last_error_time;
			if (slot->copy_started != 0)
				memcpy(&copy, slot, sizeof(copy));
			if (s == repl_shared->sync_slot)
			{
				sync_state = repl_shared->sync_degraded ? "degraded" : "sync";
				nwaiting = repl_sync_waiting_locked(&oldest);
			}
		}
		LWLockRelease(repl_shared->lock);
		if (resync && state != REPL_FSTATE_DIVERGED)
			state = REPL_FSTATE_NEEDS_RESYNC;
		else if (paused)
			state = REPL_FSTATE_PAUSED;

		values[0] = CStringGetTextDatum(name);
		values[1] = CStringGetTextDatum(state_name(state));
		values[2] = SPI_getbinval(t, d, 2, &isnull);
		values[3] = BoolGetDatum(paused);
		values[4] = Int64GetDatum(sent);
		values[5] = Int64GetDatum(applied);
		if (errbuf[0])
		{
			values[6] = CStringGetTextDatum(errbuf);
			values[7] = TimestampTzGetDatum(errtime);
		}
		else
			nulls[6] = nulls[7] = true;
		if (copy.copy_started != 0)
		{
			values[8] = CStringGetTextDatum(copy.copy_table);
			nulls[8] = copy.copy_table[0] == '\0';
			values[9] = Int32GetDatum(copy.copy_tables_done);
			values[10] = Int32GetDatum(copy.copy_tables_total);
			values[11] = Int64GetDatum(copy.copy_rows);
			values[12] = Int64GetDatum(copy.copy_bytes);
			values[13] = Int64GetDatum(copy.copy_rows_estimate);
			values[14] = Int64GetDatum(copy.copy_bytes_estimate);
			values[15] = TimestampTzGetDatum(copy.copy_started);
		}
		else
			memset(&nulls[8], true, sizeof(bool) * 8);
		values[16] = CStringGetTextDatum(sync_state);
		values[17] = Int32GetDatum(nwaiting);
		if (oldest != 0)
			values[18] = Float8GetDatum((double) (GetCurrentTimestamp() - oldest) / USECS_PER_SEC);
		else
			nulls[18] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * repl.follower_attach(node_name, leader_name, epoch, position, tables)
 *		returns bigint
 *		Follower side of add_follower: take the follower role at position and
 *		protect the replicated tables.  Calling it again for the same leader
 *		returns the current position and changes nothing.
 */
Datum
repl_follower_attach(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	char	   *leader = repl_arg_node_name(fcinfo, 1);
	int64		epoch;
	int64		position;
	ArrayType  *tables;
	const ReplLocalNode *node;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	int			i;
	Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, INT8OID};
	Datum		values[4];

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("epoch, position and tables must not be null")));
	epoch = PG_GETARG_INT64(2);
	position = PG_GETARG_INT64(3);
	tables = PG_GETARG_ARRAYTYPE_P(4);
	repl_check_preloaded();
	check_database();
	node = repl_local_node();
	if (node->role == REPL_ROLE_LEADER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is a leader", node->node_name)));
	if (node->role == REPL_ROLE_FOLLOWER)
	{
		if (strcmp(node->leader_name, leader) != 0 ||
			strcmp(node->node_name, name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" already follows leader \"%s\"",
							node->node_name, node->leader_name)));
		PG_RETURN_INT64(node->applied_tick);
	}

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(leader);
	values[2] = Int64GetDatum(epoch);
	values[3] = Int64GetDatum(position);
	SPI_connect();
	spi_exec("INSERT INTO repl.local_node (node_name, role, leader_name, epoch,"
			 " applied_epoch, applied_tick, applied_at)"
			 " VALUES ($1, 'follower', $2, $3, $3, $4, pg_catalog.now())",
			 4, types, values, NULL, SPI_OK_INSERT);
	/* retained ticks of an earlier membership are not this history */
	spi_exec("DELETE FROM repl.retained", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	repl_set_read_only_default(true);
	/* the triggers installed below must see the follower role */
	repl_local_node_changed();
	deconstruct_array(tables, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		char	   *tname;
		RangeVar   *rv;
		Relation	rel;

		if (elemnulls[i])
			continue;
		tname = TextDatumGetCString(elems[i]);
		rv = makeRangeVarFromNameList(stringToQualifiedNameList(tname));
		rel = table_openrv_extended(rv, ShareRowExclusiveLock, true);
		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("replicated table %s does not exist on this node", tname)));
		(void) repl_install_capture(rel);
		table_close(rel, NoLock);
	}
	SPI_finish();
	repl_local_node_changed();
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" now follows leader \"%s\" from position " INT64_FORMAT,
					name, leader, position)));
	PG_RETURN_INT64(position);
}

/*
 * repl.follower_detach(leader_name text) returns boolean
 *		Stop following leader_name: drop the write protection and the role.
 *		A former leader fenced by leader_name leaves its role the same way
 *		(what it kept as leader goes too): the copy that makes it a
 *		follower again (repl.rejoin, mode resync) calls this in its own
 *		transaction.
 */
Datum
repl_follower_detach(PG_FUNCTION_ARGS)
{
	char	   *leader = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const ReplLocalNode *node;
	List	   *relids;
	ListCell   *lc;

	repl_check_preloaded();
	SPI_connect();
	/* the row first, as apply takes it, then the tables' triggers */
	spi_exec("SELECT 1 FROM repl.local_node FOR UPDATE", 0, NULL, NULL, NULL,
			 SPI_OK_SELECT);
	repl_local_node_changed();
	node = repl_local_node();
	if ((node->role != REPL_ROLE_FOLLOWER && node->role != REPL_ROLE_FENCED) ||
		node->leader_name == NULL || strcmp(node->leader_name, leader) != 0)
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	relids = repl_replicated_relids(TopTransactionContext);
	foreach(lc, relids)
		(void) repl_uninstall_capture(lfirst_oid(lc));
	if (node->role == REPL_ROLE_FENCED)
		repl_clear_leader_state();
	spi_exec("DELETE FROM repl.local_node", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	spi_exec("DELETE FROM repl.nodes", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	spi_exec("DELETE FROM repl.retained", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	spi_exec("DELETE FROM repl.epochs", 0, NULL, NULL, NULL, SPI_OK_DELETE);
	repl_set_read_only_default(false);
	SPI_finish();
	repl_local_node_changed();
	ereport(LOG,
			(errmsg("repl_ext: node no longer follows leader \"%s\"", leader)));
	PG_RETURN_BOOL(true);
}

/*
 * repl.follower_add_tables(leader_name text, tables text[]) returns void
 *		Follower side of copying tables added on the leader: apply changes to
 *		them from now on and refuse local writes.  Runs in the transaction
 *		that copied them.
 */
Datum
repl_follower_add_tables(PG_FUNCTION_ARGS)
{
	char	   *leader = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *tables = PG_GETARG_ARRAYTYPE_P(1);
	const ReplLocalNode *node;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	int			i;

	repl_check_preloaded();
	node = repl_local_node();
	if (node->role != REPL_ROLE_FOLLOWER || strcmp(node->leader_name, leader) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is not a follower of \"%s\"",
						node->node_name ? node->node_name : "(none)", leader)));
	deconstruct_array(tables, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, &nelems);
	SPI_connect();
	for (i = 0; i < nelems; i++)
	{
		char	   *tname;
		RangeVar   *rv;
		Relation	rel;

		if (elemnulls[i])
			continue;
		tname = TextDatumGetCString(elems[i]);
		rv = makeRangeVarFromNameList(stringToQualifiedNameList(tname));
		rel = table_openrv_extended(rv, ShareRowExclusiveLock, true);
		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("replicated table %s does not exist on this node", tname)));
		/* earlier ticks lack this table's changes: no longer a history */
		spi_exec("DELETE FROM repl.retained", 0, NULL, NULL, NULL, SPI_OK_DELETE);
		if (repl_install_capture(rel))
			ereport(LOG,
					(errmsg("repl_ext: table %s copied from leader \"%s\"",
							tname, leader)));
		table_close(rel, NoLock);
	}
	SPI_finish();
	PG_RETURN_VOID();
}
