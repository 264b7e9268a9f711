/*-------------------------------------------------------------------------
 *
 * failover.c
 *		Epochs, promote, switchover, rejoin and fencing.
 *
 * Epochs.  Every leadership is an epoch (a term): init_leader starts epoch
 * 1, and promote, switchover's takeover and every later leader start the
 * next one.  repl.epochs records, on every node, which node led each epoch
 * and after which tick it began (start_tick): the history is one line of
 * ticks, and epoch N+1 forks it after tick start_tick.  A node's position
 * is the pair (applied_epoch, applied_tick): the epoch of the leader whose
 * batch it last applied (a leader: its own), and the tick.  That position is
 * on the current leader's line unless a later epoch began before it
 * (applied_tick > start_tick of the first epoch after applied_epoch): then
 * the node has applied changes the current leader never received.  It has
 * diverged, and is copied again, never merged.
 *
 * Retention.  A follower keeps every tick it applies in repl.retained, one
 * self-contained batch per tick (apply.c), and forgets those every follower
 * has (the leader sends the oldest position still needed with the cluster's
 * node list).  A follower that becomes leader sends a follower behind it
 * those ticks, then its own: nobody is copied again for a failover unless
 * it diverged.
 *
 * Split-brain.  Every batch, handshake and cluster update carries the
 * sender's epoch.  A follower takes a leader with a newer epoch (handshake),
 * and rejects batches from any other leader or epoch (apply.c checks the
 * locked row).  A node that leads an older epoch learns of the newer one
 * from any node it contacts, or that contacts it, and fences itself: role
 * 'fenced', replicated tables refuse writes, waiting commits are released
 * with a WARNING that they were not replicated.  Before that moment an old
 * leader cut off from every follower can still commit locally; with a
 * synchronous follower it never acknowledges such a commit (strict mode, or
 * repl_ext.fence_timeout in degrade mode, syncwait.c).  Those commits are
 * what rejoin reports as lost.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/lmgr.h"
#include "common/pg_prng.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "capture.h"
#include "changelog.h"
#include "copy.h"
#include "failover.h"
#include "follower.h"
#include "guc.h"
#include "protocol.h"
#include "repl_ext.h"
#include "shmem.h"
#include "transport.h"

extern Datum repl_apply_batch(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(repl_follower_handshake);
PG_FUNCTION_INFO_V1(repl_fence);
PG_FUNCTION_INFO_V1(repl_current_leader);
PG_FUNCTION_INFO_V1(repl_failover_candidates);
PG_FUNCTION_INFO_V1(repl_promote);
PG_FUNCTION_INFO_V1(repl_takeover);
PG_FUNCTION_INFO_V1(repl_switchover);
PG_FUNCTION_INFO_V1(repl_rejoin);
PG_FUNCTION_INFO_V1(repl_accept_rejoin);
PG_FUNCTION_INFO_V1(repl_resync_follower);
PG_FUNCTION_INFO_V1(repl_note_leader_contact_sql);
PG_FUNCTION_INFO_V1(repl_forget_retained);
PG_FUNCTION_INFO_V1(repl_request_vote);
PG_FUNCTION_INFO_V1(repl_claim_epoch);

/* How often switchover polls for transactions still writing. */
#define HANDOVER_POLL_MS	10

/* One node as failover_candidates and promote see it. */
typedef struct NodeReport
{
	char	   *node_name;
	char	   *conninfo;
	bool		is_local;
	bool		reachable;
	char	   *role;
	char	   *leader_name;
	int64		epoch;
	int64		applied_epoch;
	int64		applied_position;
	char	   *error;
} NodeReport;

static void
spi_run(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL,
										   false, 0);

	if (rc != expected)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
}

/*
 * repl_set_read_only_default
 *		On a follower or fenced node, sessions of repl_ext.database start
 *		read-only (ALTER DATABASE ... SET default_transaction_read_only), so
 *		that libpq's target_session_attrs=read-write skips the node and finds
 *		the leader; a leader or a node outside any cluster resets it.  Part
 *		of the transaction that changes the role.  repl_ext's own connections
 *		turn it off (transport.c); so can any session, to write tables that
 *		are not replicated.  Needs SPI.
 */
void
repl_set_read_only_default(bool read_only)
{
	const char *db = quote_identifier(get_database_name(MyDatabaseId));

	if (read_only && !repl_follower_read_only)
		return;
	spi_run(psprintf(read_only ?
					 "ALTER DATABASE %s SET default_transaction_read_only = on" :
					 "ALTER DATABASE %s RESET default_transaction_read_only", db),
			0, NULL, NULL, SPI_OK_UTILITY);
}

/*
 * The functions that change a follower's or fenced node's role write on a
 * node whose sessions may start read-only because repl_ext made them so
 * (repl_ext.follower_read_only): lift that default for this transaction.
 * A transaction made read-only explicitly, or a hot standby, stays so.
 */
static void
allow_role_change_writes(void)
{
	if (XactReadOnly && DefaultXactReadOnly && !RecoveryInProgress())
		XactReadOnly = false;
}

/*
 * repl_position_diverged
 *		Whether a node at (applied_epoch, applied_tick) has applied changes
 *		this leader's history does not have (see file header); *why says
 *		how.  Needs SPI.
 */
bool
repl_position_diverged(int64 applied_epoch, int64 applied_tick, char **why)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int64		epoch;
	int64		start;

	values[0] = Int64GetDatum(applied_epoch);
	spi_run("SELECT epoch, start_tick FROM repl.epochs"
			" WHERE epoch OPERATOR(pg_catalog.>) $1 ORDER BY epoch LIMIT 1",
			1, types, values, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		if (applied_epoch > repl_local_node()->epoch)
		{
			*why = psprintf("it applied changes of epoch " INT64_FORMAT ", newer than this leader's epoch " INT64_FORMAT,
							applied_epoch, repl_local_node()->epoch);
			return true;
		}
		return false;
	}
	epoch = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	start = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2, &isnull));
	if (applied_tick <= start)
		return false;
	*why = psprintf("it applied position " INT64_FORMAT " of epoch " INT64_FORMAT ", but epoch " INT64_FORMAT " began after position " INT64_FORMAT,
					applied_tick, applied_epoch, epoch, start);
	return true;
}

/*
 * repl_read_retained
 *		The retained tick that follows position from_tick, as a batch from
 *		this leader (its name and epoch in the header).  false if this node
 *		does not have it.  In a transaction.
 */
bool
repl_read_retained(int64 from_tick, const char *leader_name, int64 epoch,
				   MemoryContext outcxt, ReplBatch *batch)
{
	static SPIPlanPtr plan = NULL;
	Oid			type = INT8OID;
	Datum		value = Int64GetDatum(from_tick);
	bool		isnull;
	bytea	   *raw;
	StringInfoData msg;
	ReplBatchHeader hdr;
	MemoryContext old;
	bool		found = false;

	SPI_connect();
	if (SPI_execute_plan(repl_kept_plan(&plan,
										"SELECT batch FROM repl.retained"
										" WHERE tick_id OPERATOR(pg_catalog.>) $1"
										" ORDER BY tick_id LIMIT 1",
										1, &type, 0),
						 &value, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read repl.retained");
	if (SPI_processed == 1)
	{
		raw = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		msg.data = VARDATA_ANY(raw);
		msg.len = VARSIZE_ANY_EXHDR(raw);
		msg.maxlen = msg.len;
		msg.cursor = 0;
		old = MemoryContextSwitchTo(outcxt);
		repl_proto_get_batch_header(&msg, &hdr);
		if (hdr.from_tick == from_tick)
		{
			found = true;
			hdr.leader_name = (char *) leader_name;
			hdr.epoch = epoch;
			batch->from_tick = hdr.from_tick;
			batch->to_tick = hdr.to_tick;
			batch->to_tick_time = hdr.to_tick_time;
			batch->nchanges = hdr.nchanges - 1;
			initStringInfo(&batch->data);
			repl_proto_put_batch_header(&batch->data, &hdr);
			appendBinaryStringInfo(&batch->data, msg.data + msg.cursor,
								   msg.len - msg.cursor);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return found;
}

/* Refuse writes now: this node learned that epoch is newer than its own. */
static void
raise_fenced_epoch(int64 epoch)
{
	uint64		cur = pg_atomic_read_u64(&repl_shared->fenced_epoch);

	while (cur < (uint64) epoch)
	{
		if (pg_atomic_compare_exchange_u64(&repl_shared->fenced_epoch, &cur,
										   (uint64) epoch))
			break;
	}
}

/*
 * Fence this node in the current transaction: it led an older epoch and
 * learned that leader_name leads epoch.  Writes are refused at once
 * (shared flag), and for good once this commits.  Needs SPI.
 */
static void
fence_local(const char *leader_name, int64 epoch)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(leader_name);
	values[1] = Int64GetDatum(epoch);
	spi_run("UPDATE repl.local_node SET role = 'fenced', leader_name = $1, epoch = $2",
			2, types, values, SPI_OK_UPDATE);
	repl_protect_tables(true);
	repl_set_read_only_default(true);
	repl_local_node_changed();
	repl_wake_supervisor_at_commit();
	raise_fenced_epoch(epoch);
	ConditionVariableBroadcast(&repl_shared->progress_cv);
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" fenced: \"%s\" leads the newer epoch " INT64_FORMAT,
					repl_local_node()->node_name, leader_name, epoch)));
}

/*
 * repl_fence_self
 *		A sender learned that leader_name leads a newer epoch: fence this
 *		node (see file header).  Runs its own transaction.
 */
void
repl_fence_self(const char *leader_name, int64 epoch)
{
	/* refuse writes at once, before the transaction below commits */
	raise_fenced_epoch(epoch);
	ConditionVariableBroadcast(&repl_shared->progress_cv);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (repl_local_node()->role == REPL_ROLE_LEADER &&
		repl_local_node()->epoch < epoch)
		fence_local(leader_name, epoch);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * repl.follower_handshake(leader_name text, epoch bigint) returns
 *		(accepted, node_name, role, node_leader, node_epoch, applied_epoch,
 *		applied_position)
 *		The sender's first call.  A follower takes a leader of a newer epoch
 *		as its leader; a leader of an older epoch fences itself; anything
 *		else is refused (accepted = false) with this node's view, so that a
 *		sender of an older epoch can fence its own node.
 */
Datum
repl_follower_handshake(PG_FUNCTION_ARGS)
{
	char	   *leader = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		epoch = PG_GETARG_INT64(1);
	const ReplLocalNode *node;
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	bool		accepted = false;
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		args[2];

	repl_check_preloaded();
	allow_role_change_writes();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SPI_connect();
	/* serialize with apply and with other handshakes */
	spi_run("SELECT 1 FROM repl.local_node FOR UPDATE", 0, NULL, NULL,
			SPI_OK_SELECT);
	repl_local_node_changed();
	node = repl_local_node();
	args[0] = CStringGetTextDatum(leader);
	args[1] = Int64GetDatum(epoch);
	if (node->role == REPL_ROLE_FOLLOWER)
	{
		if (epoch == node->epoch && strcmp(node->leader_name, leader) == 0)
			accepted = true;
		else if (epoch > node->epoch)
		{
			spi_run("UPDATE repl.local_node SET leader_name = $1, epoch = $2",
					2, types, args, SPI_OK_UPDATE);
			repl_local_node_changed();
			ereport(LOG,
					(errmsg("repl_ext: node \"%s\" now follows \"%s\" in epoch " INT64_FORMAT " (was \"%s\" in epoch " INT64_FORMAT ")",
							node->node_name, leader, epoch,
							node->leader_name, node->epoch)));
			node = repl_local_node();
			accepted = true;
		}
	}
	else if ((node->role == REPL_ROLE_LEADER || node->role == REPL_ROLE_FENCED) &&
			 epoch > node->epoch)
	{
		fence_local(leader, epoch);
		node = repl_local_node();
	}
	SPI_finish();
	if (accepted)
		repl_note_leader_contact();

	values[0] = BoolGetDatum(accepted);
	if (node->role == REPL_ROLE_NONE)
	{
		nulls[1] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = true;
		values[2] = CStringGetTextDatum("none");
	}
	else
	{
		values[1] = CStringGetTextDatum(node->node_name);
		values[2] = CStringGetTextDatum(node->role == REPL_ROLE_LEADER ? "leader" :
										node->role == REPL_ROLE_FENCED ? "fenced" : "follower");
		if (node->role == REPL_ROLE_LEADER)
			values[3] = CStringGetTextDatum(node->node_name);
		else if (node->leader_name)
			values[3] = CStringGetTextDatum(node->leader_name);
		else
			nulls[3] = true;
		values[4] = Int64GetDatum(node->epoch);
		values[5] = Int64GetDatum(node->applied_epoch);
		values[6] = Int64GetDatum(repl_read_applied_tick());
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * repl.fence(leader_name text, epoch bigint) returns boolean
 *		Called by a new leader on an old one: fence it if it leads an older
 *		epoch.  true if this node is fenced afterwards.
 */
Datum
repl_fence(PG_FUNCTION_ARGS)
{
	char	   *leader = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		epoch = PG_GETARG_INT64(1);
	const ReplLocalNode *node;

	repl_check_preloaded();
	allow_role_change_writes();
	node = repl_local_node();
	if (node->role == REPL_ROLE_LEADER && epoch > node->epoch)
	{
		SPI_connect();
		fence_local(leader, epoch);
		SPI_finish();
		PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(node->role == REPL_ROLE_FENCED);
}

/*
 * repl.current_leader() returns (node_name, conninfo, epoch)
 *		The leader as this node knows it; on a fenced node the one that
 *		fenced it.  NULLs when this node is in no cluster.
 */
Datum
repl_current_leader(PG_FUNCTION_ARGS)
{
	const ReplLocalNode *node;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {true, true, true};
	char	   *conninfo = NULL;

	repl_check_preloaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	node = repl_local_node();
	if (node->role == REPL_ROLE_LEADER)
	{
		values[0] = CStringGetTextDatum(node->node_name);
		nulls[0] = false;
		conninfo = node->conninfo;
	}
	else if (node->role != REPL_ROLE_NONE && node->leader_name)
	{
		Oid			type = TEXTOID;
		Datum		arg = CStringGetTextDatum(node->leader_name);
		Oid			save_userid;
		int			save_sec_context;

		values[0] = arg;
		nulls[0] = false;

		/*
		 * Anyone may call this; repl.nodes is not theirs to read.  Read the
		 * one fixed row as the bootstrap superuser, and show it redacted.
		 */
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		SPI_connect();
		spi_run("SELECT conninfo FROM repl.nodes WHERE node_name OPERATOR(pg_catalog.=) $1",
				1, &type, &arg, SPI_OK_SELECT);
		if (SPI_processed == 1)
			conninfo = SPI_getvalue(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1);
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	if (conninfo != NULL)
		conninfo = repl_conninfo_redact(conninfo);
	if (conninfo != NULL)
	{
		values[1] = CStringGetTextDatum(conninfo);
		nulls[1] = false;
	}
	if (node->role != REPL_ROLE_NONE)
	{
		values[2] = Int64GetDatum(node->epoch);
		nulls[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * Ask every node this one knows (repl.nodes) for its role and position,
 * and add this node itself.  Unreachable nodes are reported, not errors.
 */
static List *
poll_nodes(void)
{
	const ReplLocalNode *me = repl_local_node();
	List	   *result = NIL;
	List	   *names = NIL;
	List	   *conninfos = NIL;
	ListCell   *lc1,
			   *lc2;
	NodeReport *self;
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;

	SPI_connect();
	spi_run("SELECT node_name, conninfo FROM repl.nodes ORDER BY node_name",
			0, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		names = lappend(names, pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1)));
		conninfos = lappend(conninfos, pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	self = palloc0(sizeof(NodeReport));
	self->node_name = me->node_name;
	self->is_local = true;
	self->reachable = true;
	self->role = me->role == REPL_ROLE_LEADER ? "leader" :
		me->role == REPL_ROLE_FENCED ? "fenced" : "follower";
	self->leader_name = me->role == REPL_ROLE_LEADER ? me->node_name : me->leader_name;
	self->epoch = me->epoch;
	self->applied_epoch = me->applied_epoch;
	self->applied_position = repl_read_applied_tick();
	result = lappend(result, self);

	forboth(lc1, names, lc2, conninfos)
	{
		NodeReport *r = palloc0(sizeof(NodeReport));
		char	   *err;
		ReplConn   *conn;

		r->node_name = lfirst(lc1);
		r->conninfo = lfirst(lc2);
		if (strcmp(r->node_name, me->node_name) == 0)
			continue;
		result = lappend(result, r);
		CHECK_FOR_INTERRUPTS();
		conn = repl_conn_open(r->conninfo, r->node_name, &err);
		if (conn == NULL)
		{
			r->error = err;
			continue;
		}
		{
			ReplResult *res = repl_conn_exec(conn,
											 "SELECT node_name, role, leader_name, epoch,"
											 " applied_epoch, applied_position FROM repl.node_info()",
											 0, NULL, NULL, NULL);

			repl_conn_close(conn);
			if (!res->ok)
			{
				r->error = res->message;
				continue;
			}
			r->reachable = true;
			r->role = pstrdup(repl_result_value(res, 0, 1));
			if (repl_result_value(res, 0, 2))
				r->leader_name = pstrdup(repl_result_value(res, 0, 2));
			if (repl_result_value(res, 0, 3))
				r->epoch = strtoi64(repl_result_value(res, 0, 3), NULL, 10);
			if (repl_result_value(res, 0, 4))
				r->applied_epoch = strtoi64(repl_result_value(res, 0, 4), NULL, 10);
			if (repl_result_value(res, 0, 5))
				r->applied_position = strtoi64(repl_result_value(res, 0, 5), NULL, 10);
		}
	}
	return result;
}

/* Is a ahead of b on the history (a newer epoch applied, or further)? */
static bool
position_ahead(const NodeReport *a, const NodeReport *b)
{
	if (a->applied_epoch != b->applied_epoch)
		return a->applied_epoch > b->applied_epoch;
	return a->applied_position > b->applied_position;
}

/*
 * repl.failover_candidates() returns setof (node_name, reachable, role,
 *		leader_name, epoch, applied_epoch, applied_position, is_local, error)
 */
Datum
repl_failover_candidates(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *nodes;
	ListCell   *lc;

	repl_check_preloaded();
	if (repl_local_node()->role == REPL_ROLE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is not part of a repl_ext cluster")));
	InitMaterializedSRF(fcinfo, 0);
	nodes = poll_nodes();
	foreach(lc, nodes)
	{
		NodeReport *r = lfirst(lc);
		Datum		values[9];
		bool		nulls[9] = {0};

		values[0] = CStringGetTextDatum(r->node_name);
		values[1] = BoolGetDatum(r->reachable);
		if (r->reachable)
		{
			values[2] = CStringGetTextDatum(r->role);
			if (r->leader_name)
				values[3] = CStringGetTextDatum(r->leader_name);
			else
				nulls[3] = true;
			values[4] = Int64GetDatum(r->epoch);
			values[5] = Int64GetDatum(r->applied_epoch);
			values[6] = Int64GetDatum(r->applied_position);
		}
		else
			nulls[2] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = true;
		values[7] = BoolGetDatum(r->is_local);
		if (r->error)
			values[8] = CStringGetTextDatum(r->error);
		else
			nulls[8] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Clear what a node keeps as leader: followers, ticks, log tables.  Needs
 * SPI.  The log tables are truncated: nobody writes them on a node that is
 * not leader, and a new leadership starts an empty log.
 */
void
repl_clear_leader_state(void)
{
	/*
	 * Explicitly, not through the foreign key's ON DELETE CASCADE: that is a
	 * trigger, and in a copy's session (session_replication_role replica,
	 * follower_detach of a fenced node) it does not fire, which left rows
	 * that made a later promotion of this node fail on a duplicate key.
	 */
	spi_run("DELETE FROM repl.follower_tables", 0, NULL, NULL, SPI_OK_DELETE);
	spi_run("DELETE FROM repl.followers", 0, NULL, NULL, SPI_OK_DELETE);
	/*
	 * No tick is being cut while the ticks go, and a caller that refills
	 * repl.tick (become_leader) does so under the tick lock too.
	 */
	repl_lock_ticks();
	spi_run("DELETE FROM repl.tick", 0, NULL, NULL, SPI_OK_DELETE);
	spi_run("TRUNCATE repl.log_0, repl.log_1, repl.log_2", 0, NULL, NULL,
			SPI_OK_UTILITY);
	spi_run("UPDATE repl.log_state SET state = CASE WHEN log_no OPERATOR(pg_catalog.=) 0"
			" THEN 'current' ELSE 'empty' END, switch_xmax = NULL,"
			" switched_at = pg_catalog.now()", 0, NULL, NULL, SPI_OK_UPDATE);
}

/* Replace repl.nodes with the nodes of a cluster_state() document. */
static void
store_cluster(Jsonb *cluster)
{
	Oid			type = JSONBOID;
	Datum		value = JsonbPGetDatum(cluster);

	spi_run("DELETE FROM repl.nodes", 0, NULL, NULL, SPI_OK_DELETE);
	spi_run("INSERT INTO repl.nodes (node_name, conninfo, is_leader, synchronous)"
			" SELECT r.node_name, r.conninfo, r.is_leader, r.synchronous"
			"   FROM pg_catalog.jsonb_to_recordset($1 OPERATOR(pg_catalog.->) 'nodes')"
			"     AS r(node_name text, conninfo text, is_leader boolean, synchronous boolean)",
			1, &type, &value, SPI_OK_INSERT);
	spi_run("INSERT INTO repl.epochs (epoch, leader_name, start_tick, started_at)"
			" SELECT r.epoch, r.leader_name, r.start_tick, r.started_at"
			"   FROM pg_catalog.jsonb_to_recordset($1 OPERATOR(pg_catalog.->) 'epochs')"
			"     AS r(epoch bigint, leader_name text, start_tick bigint, started_at timestamptz)"
			" ON CONFLICT ON CONSTRAINT epochs_pkey DO NOTHING",
			1, &type, &value, SPI_OK_INSERT);
}

/*
 * Make this follower the leader of epoch at position base, in the current
 * transaction (SPI connected).  Its followers are the nodes of repl.nodes
 * but itself and the old leader; old_leader_at >= 0 (switchover) keeps the
 * old leader as a follower at that position.  sync_name, if not NULL, gets
 * the synchronous role.
 */
static void
become_leader(int64 epoch, int64 base, const char *old_leader,
			  int64 old_leader_at, const char *sync_name)
{
	const ReplLocalNode *node = repl_local_node();
	Oid			types[6] = {TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	values[0] = CStringGetTextDatum(node->node_name);
	values[1] = Int64GetDatum(epoch);
	values[2] = Int64GetDatum(base);
	if (old_leader)
		values[3] = CStringGetTextDatum(old_leader);
	else
		nulls[3] = 'n';
	if (sync_name)
		values[4] = CStringGetTextDatum(sync_name);
	else
		nulls[4] = 'n';

	values[5] = Int64GetDatum(old_leader_at);
	repl_clear_leader_state();
	if (SPI_execute_with_args("UPDATE repl.local_node SET role = 'leader', leader_name = NULL,"
							  " epoch = $2, applied_epoch = $2, applied_tick = $3,"
							  " conninfo = coalesce((SELECT n.conninfo FROM repl.nodes n"
							  "   WHERE n.node_name OPERATOR(pg_catalog.=) $1), conninfo)",
							  3, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update repl.local_node");
	/* the tick followers at base start from; ours follow it */
	spi_run("INSERT INTO repl.tick (tick_id, snap, tick_time, n_changes)"
			" VALUES ($3, pg_catalog.pg_current_snapshot(), pg_catalog.clock_timestamp(), 0)",
			3, types, values, SPI_OK_INSERT);
	spi_run("DELETE FROM repl.retained WHERE tick_id OPERATOR(pg_catalog.>) $3",
			3, types, values, SPI_OK_DELETE);
	/*
	 * The other nodes follow.  The old leader follows after a switchover;
	 * after a promotion its sender only fences it (phase 'rejoin') until it
	 * calls repl.rejoin().
	 */
	if (SPI_execute_with_args("INSERT INTO repl.followers (node_name, conninfo, synchronous,"
							  " applied_tick, phase)"
							  " SELECT n.node_name, n.conninfo,"
							  "        n.node_name OPERATOR(pg_catalog.=) coalesce($5, ''),"
							  "        CASE WHEN n.is_leader THEN greatest($6, 0) ELSE 0 END,"
							  "        CASE WHEN n.is_leader AND $6 OPERATOR(pg_catalog.<) 0"
							  "             THEN 'rejoin' ELSE 'streaming' END"
							  "   FROM repl.nodes n"
							  "  WHERE n.node_name OPERATOR(pg_catalog.<>) $1",
							  6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not fill repl.followers");
	spi_run("INSERT INTO repl.follower_tables (node_name, relid, sync_tick, sync_snap)"
			" SELECT f.node_name, t.relid, 0, '1:1:' FROM repl.followers f"
			"  CROSS JOIN repl.replicated_tables t", 0, NULL, NULL, SPI_OK_INSERT);
	spi_run("INSERT INTO repl.epochs (epoch, leader_name, start_tick)"
			" VALUES ($2, $1, $3) ON CONFLICT ON CONSTRAINT epochs_pkey DO NOTHING",
			3, types, values, SPI_OK_INSERT);
	repl_protect_tables(false);
	repl_set_read_only_default(false);

	/* sequences are not replicated: new keys must not collide */
	spi_run("SELECT repl.advance_sequences()", 0, NULL, NULL, SPI_OK_SELECT);
	if (DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									&isnull)) > 0)
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" moved %s sequences of replicated tables past their columns' largest values",
						node->node_name,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));

	/* the log starts empty in log_0; nobody writes it before we commit */
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	pg_atomic_write_u32(&repl_shared->cur_log, 0);
	repl_shared->cur_log_valid = true;
	LWLockRelease(repl_shared->lock);
	repl_local_node_changed();
	repl_wake_supervisor_at_commit();
}

/*
 * Make this node (a leader or fenced) follow leader_name in epoch from
 * position (applied_epoch, position), in the current transaction.
 */
static void
become_follower(const char *leader_name, int64 epoch, int64 applied_epoch,
				int64 position)
{
	Oid			types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(leader_name);
	values[1] = Int64GetDatum(epoch);
	values[2] = Int64GetDatum(applied_epoch);
	values[3] = Int64GetDatum(position);
	repl_clear_leader_state();
	spi_run("DELETE FROM repl.retained", 0, NULL, NULL, SPI_OK_DELETE);
	spi_run("UPDATE repl.local_node SET role = 'follower', leader_name = $1,"
			" epoch = $2, applied_epoch = $3, applied_tick = $4,"
			" applied_at = pg_catalog.now()", 4, types, values, SPI_OK_UPDATE);
	repl_local_node_changed();
	repl_protect_tables(true);
	repl_set_read_only_default(true);
	repl_local_node_changed();
	repl_wake_supervisor_at_commit();
}

/*
 * Fetch from a follower ahead of this one, on the same epoch, the ticks it
 * applied since our position (its repl.retained) and apply them here, in
 * the current transaction.  Returns the new position; unchanged if the
 * other follower no longer has them.
 */
static int64
catch_up_from(NodeReport *ahead, int64 position)
{
	char	   *err;
	ReplConn   *conn = repl_conn_open(ahead->conninfo, ahead->node_name, &err);
	ReplResult *res;
	const char *params[1];
	char		p[32];
	int			i;

	if (conn == NULL)
		return position;
	snprintf(p, sizeof(p), INT64_FORMAT, position);
	params[0] = p;
	res = repl_conn_exec(conn, "SELECT batch FROM repl.retained"
						 " WHERE tick_id OPERATOR(pg_catalog.>) $1::bigint ORDER BY tick_id",
						 1, params, NULL, NULL);
	repl_conn_close(conn);
	if (!res->ok)
		return position;
	for (i = 0; i < res->ntuples; i++)
	{
		Datum		batch = DirectFunctionCall1(byteain,
												CStringGetDatum(repl_result_value(res, i, 0)));
		int64		next = DatumGetInt64(DirectFunctionCall1(repl_apply_batch, batch));

		CommandCounterIncrement();
		if (next <= position)
			break;
		position = next;
	}
	if (i > 0)
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" caught up to position " INT64_FORMAT " from follower \"%s\" before its promotion",
						repl_local_node()->node_name, position, ahead->node_name)));
	return position;
}

/*
 * Record this node's vote: epoch goes to candidate (repl.request_vote,
 * repl.claim_epoch).  SPI connected, local_node row locked.
 */
static void
record_vote(int64 epoch, const char *candidate)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2];

	args[0] = Int64GetDatum(epoch);
	args[1] = CStringGetTextDatum(candidate);
	spi_run("UPDATE repl.local_node SET voted_epoch = $1, voted_for = $2",
			2, types, args, SPI_OK_UPDATE);
}

/*
 * Claim epoch (or, if some node is in or voted in it already, a newer one)
 * on every other node reached by poll_nodes, so that two promotions can
 * never both lead one epoch: each node gives an epoch to one candidate
 * only (repl.claim_epoch), and a node being promoted holds its
 * repl.local_node row, so every claim on it fails meanwhile.  Two
 * concurrent promotions may then both fail; one called again succeeds.  A
 * leader of an older epoch is skipped (promote(force) fences it).  Returns
 * the epoch claimed; errors, changing nothing here, if a node refuses.
 */
static int64
claim_epoch_everywhere(List *nodes, int64 epoch)
{
	const char *me = repl_local_node()->node_name;
	int			attempt;

	for (attempt = 0; attempt < 3; attempt++)
	{
		int64		newer = 0;
		ListCell   *lc;

		foreach(lc, nodes)
		{
			NodeReport *r = lfirst(lc);
			ReplConn   *conn;
			ReplResult *res;
			const char *params[2];
			char		e[32];

			if (r->is_local || !r->reachable)
				continue;
			if (strcmp(r->role, "leader") == 0)
			{
				if (r->epoch >= epoch)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("node \"%s\" leads epoch " INT64_FORMAT " now",
									r->node_name, r->epoch),
							 errdetail("Another promotion finished first."),
							 errhint("Let this node follow it, or check repl.failover_candidates().")));
				continue;
			}
			snprintf(e, sizeof(e), INT64_FORMAT, epoch);
			params[0] = me;
			params[1] = e;
			conn = repl_conn_open_or_raise(r->conninfo, r->node_name,
										   psprintf("node \"%s\"", r->node_name));
			res = repl_conn_exec(conn, "SELECT granted, reason, seen_epoch FROM repl.claim_epoch($1, $2::bigint)",
								 2, params, NULL, NULL);
			repl_conn_close(conn);
			if (!res->ok && strcmp(res->sqlstate, "55P03") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("node \"%s\" is being promoted itself, or is voting, right now",
								r->node_name),
						 errdetail("Nothing was changed on this node."),
						 errhint("Promote one node only, and call repl.promote() again once it is done.")));
			if (!res->ok)
				repl_result_raise(res, r->node_name);
			if (strcmp(repl_result_value(res, 0, 0), "t") == 0)
				continue;
			if (repl_result_value(res, 0, 2) != NULL &&
				strtoi64(repl_result_value(res, 0, 2), NULL, 10) >= epoch)
			{
				newer = Max(newer, strtoi64(repl_result_value(res, 0, 2), NULL, 10));
				continue;
			}
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" refused epoch " INT64_FORMAT " to this node: %s",
							r->node_name, epoch, repl_result_value(res, 0, 1)),
					 errdetail("Nothing was changed on this node."),
					 errhint("Another promotion or an election may be running: promote one node only, and call repl.promote() again once it is done.")));
		}
		if (newer == 0)
			return epoch;
		epoch = newer + 1;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not claim a new epoch: other nodes keep moving to newer ones"),
			 errhint("An election may be running: check repl.failover_candidates().")));
	return 0;					/* not reached */
}

/*
 * The answer of claim_epoch and request_vote: (granted, reason, ...); the
 * columns after the first two are the caller's, already in values/nulls.
 */
static Datum
vote_answer(TupleDesc desc, const char *reason, Datum *values, bool *nulls)
{
	values[0] = BoolGetDatum(reason == NULL);
	nulls[0] = false;
	values[1] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[1] = reason == NULL;
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * End the sessions of repl_ext's connections to this node that wait for
 * their client inside a transaction (see repl_claim_epoch), when the caller
 * may signal them, before locking this node's row of repl.local_node to
 * vote or to lead: an apply of a leader that is gone holds it.  Needs SPI.
 */
static void
end_stalled_leader_sessions(const char *purpose)
{
	uint64		i;

	spi_run("SELECT a.pid, a.application_name, pg_catalog.pg_terminate_backend(a.pid)"
			" FROM pg_catalog.pg_stat_activity a"
			" WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
			" AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
			" AND a.application_name OPERATOR(pg_catalog.~~) 'repl\\_ext:%'"
			" AND a.xact_start IS NOT NULL"
			" AND a.wait_event OPERATOR(pg_catalog.=) 'ClientRead'"
			" AND pg_catalog.pg_has_role(a.usesysid, 'USAGE')",
			0, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
		ereport(LOG,
				(errmsg("repl_ext: ended session %s (\"%s\"), which waited for its client in a transaction, to %s",
						SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
						SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2),
						purpose)));
}

/*
 * repl.claim_epoch(candidate text, epoch bigint) returns (granted boolean,
 *		reason text, seen_epoch bigint)
 *		repl.promote on candidate asks this node for epoch.  Granted (and
 *		recorded as this node's vote) unless this node leads, is in or voted
 *		in epoch or a newer one (seen_epoch then says which, and a newer
 *		epoch would be granted).  A node being promoted holds its row of
 *		repl.local_node: the call fails with lock_not_available after 2 s.
 *		Calling it again for the same candidate and epoch grants again.
 */
Datum
repl_claim_epoch(PG_FUNCTION_ARGS)
{
	char	   *candidate = repl_arg_node_name(fcinfo, 0);
	int64		epoch = PG_GETARG_INT64(1);
	const ReplLocalNode *node;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, true};
	char	   *reason = NULL;
	int64		voted = 0;
	char	   *voted_for = NULL;

	repl_check_preloaded();
	if (epoch <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epoch must be positive")));
	allow_role_change_writes();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SPI_connect();

	/*
	 * An apply holds the row for a batch, until the leader sends the
	 * batch's Sync after its own WAL flush (sender_flush_wal): milliseconds,
	 * unless the leader was cut off in between.  The apply's backend then
	 * waits for its client, holding the row, until TCP gives the connection
	 * up, which can take hours; and a vote is asked for precisely when the
	 * leader is gone.  End such sessions first: their transaction has not
	 * committed, and a leader still alive sends the batch again.
	 */
	end_stalled_leader_sessions(psprintf("vote in epoch " INT64_FORMAT, epoch));

	/*
	 * A promotion holds the row while it asks the other nodes: give up
	 * after a while (two promotions asking each other would otherwise wait
	 * for ever).
	 */
	spi_run("SELECT pg_catalog.set_config('lock_timeout', '2s', true)", 0, NULL,
			NULL, SPI_OK_SELECT);
	spi_run("SELECT voted_epoch, voted_for FROM repl.local_node FOR UPDATE",
			0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		bool		isnull;

		voted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		voted_for = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	node = repl_local_node_fresh();
	if (node->role == REPL_ROLE_NONE)
		reason = "it is in no cluster";
	else if (node->role == REPL_ROLE_LEADER)
		reason = psprintf("it leads epoch " INT64_FORMAT, node->epoch);
	else if (voted == epoch && voted_for != NULL && strcmp(voted_for, candidate) == 0)
		reason = NULL;			/* asked again: same answer */
	else if (epoch <= Max(node->epoch, voted))
	{
		reason = psprintf("it is in or voted in epoch " INT64_FORMAT,
						  Max(node->epoch, voted));
		values[2] = Int64GetDatum(Max(node->epoch, voted));
		nulls[2] = false;
	}
	if (reason == NULL && !(voted == epoch && voted_for != NULL &&
							strcmp(voted_for, candidate) == 0))
	{
		record_vote(epoch, candidate);
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" gives epoch " INT64_FORMAT " to \"%s\", which is being promoted",
						node->node_name, epoch, candidate)));
	}
	SPI_finish();
	if (nulls[2])
		values[2] = (Datum) 0;
	PG_RETURN_DATUM(vote_answer(desc, reason, values, nulls));
}

/*
 * repl.promote(force boolean DEFAULT false) returns bigint
 *		Make this follower the leader of a new epoch (see file header).
 */
Datum
repl_promote(PG_FUNCTION_ARGS)
{
	bool		force = !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
	const ReplLocalNode *node;
	List	   *nodes;
	ListCell   *lc;
	NodeReport *self = NULL;
	NodeReport *ahead = NULL;
	NodeReport *live_leader = NULL;
	NodeReport *best_other = NULL;
	int64		epoch;
	char	   *old_leader;
	char	   *sync_name = NULL;
	int			nreached = 0;
	int64		voted = 0;

	repl_check_preloaded();
	allow_role_change_writes();
	repl_require_role(REPL_ROLE_FOLLOWER, "repl.promote");

	/*
	 * One promotion at a time: a second call waits here, then finds this
	 * node a leader and is refused (it used to fail on a duplicate tick).
	 */
	SPI_connect();
	end_stalled_leader_sessions("promote this node");
	spi_run("SELECT voted_epoch FROM repl.local_node FOR UPDATE", 0, NULL, NULL,
			SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		bool		isnull;

		voted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	(void) repl_local_node_fresh();
	repl_require_role(REPL_ROLE_FOLLOWER, "repl.promote");
	node = repl_local_node();
	old_leader = pstrdup(node->leader_name);
	epoch = Max(node->epoch, voted);

	nodes = poll_nodes();
	foreach(lc, nodes)
	{
		NodeReport *r = lfirst(lc);

		if (r->is_local)
		{
			self = r;
			continue;
		}
		if (!r->reachable)
			continue;
		nreached++;
		if (r->epoch > epoch)
			epoch = r->epoch;
		if (strcmp(r->role, "leader") == 0 && r->epoch >= node->epoch)
			live_leader = r;
		if (strcmp(r->role, "follower") == 0)
		{
			if (position_ahead(r, self) && (ahead == NULL || position_ahead(r, ahead)))
				ahead = r;
			if (best_other == NULL || position_ahead(r, best_other))
				best_other = r;
		}
	}
	/*
	 * A follower ahead of us on the same epoch has applied ticks we lack:
	 * take them from it first (a synchronous follower may be a tick behind
	 * an asynchronous one, never behind on what was acknowledged).
	 */
	if (ahead && !live_leader && ahead->applied_epoch == self->applied_epoch)
	{
		ListCell   *lc2;

		self->applied_position = catch_up_from(ahead, self->applied_position);
		ahead = NULL;
		foreach(lc2, nodes)
		{
			NodeReport *r = lfirst(lc2);

			if (!r->is_local && r->reachable && strcmp(r->role, "follower") == 0 &&
				position_ahead(r, self) && (ahead == NULL || position_ahead(r, ahead)))
				ahead = r;
		}
	}
	if (live_leader && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("leader \"%s\" of epoch " INT64_FORMAT " is still reachable",
						live_leader->node_name, live_leader->epoch),
				 errhint("Use repl.switchover('%s') on \"%s\" to move the leadership without losing anything, or repl.promote(force => true) to replace it anyway.",
						 node->node_name, live_leader->node_name)));
	if (ahead && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("follower \"%s\" is more up to date than this node",
						ahead->node_name),
				 errdetail("\"%s\" has applied position " INT64_FORMAT " of epoch " INT64_FORMAT ", this node position " INT64_FORMAT " of epoch " INT64_FORMAT ".",
						   ahead->node_name, ahead->applied_position, ahead->applied_epoch,
						   self->applied_position, self->applied_epoch),
				 errhint("Promote \"%s\" instead, or pass force => true: it would then have to be copied again.",
						 ahead->node_name)));
	epoch = claim_epoch_everywhere(nodes, epoch + 1);

	/* the synchronous role stays where it was, or goes to the best other */
	SPI_connect();
	spi_run("SELECT node_name FROM repl.nodes WHERE synchronous", 0, NULL, NULL,
			SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(s, node->node_name) != 0)
			sync_name = MemoryContextStrdup(TopTransactionContext, s);
		else if (best_other)
			sync_name = best_other->node_name;
	}
	become_leader(epoch, self->applied_position, old_leader, -1, sync_name);
	SPI_finish();

	/* an old leader we can reach stops now (only with force) */
	if (live_leader)
	{
		char	   *err;
		ReplConn   *conn = repl_conn_open(live_leader->conninfo,
										  live_leader->node_name, &err);

		if (conn)
		{
			const char *params[2];
			char		e[32];

			snprintf(e, sizeof(e), INT64_FORMAT, epoch);
			params[0] = repl_local_node()->node_name;
			params[1] = e;
			(void) repl_conn_exec(conn, "SELECT repl.fence($1, $2::bigint)", 2,
								  params, NULL, NULL);
			repl_conn_close(conn);
		}
	}
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" promoted: leader of epoch " INT64_FORMAT " from position " INT64_FORMAT " (%d other nodes reached)",
					repl_local_node()->node_name, epoch, self->applied_position,
					nreached)));
	PG_RETURN_INT64(epoch);
}

/*
 * repl.takeover(old_leader text, epoch bigint, position bigint,
 *		cluster jsonb) returns bigint
 *		Switchover's call on the target: become leader of epoch at the
 *		position the old leader stopped at (or at an empty tick it cut
 *		after), which is returned; the old leader follows from there.
 */
Datum
repl_takeover(PG_FUNCTION_ARGS)
{
	char	   *old_leader = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		epoch = PG_GETARG_INT64(1);
	int64		position = PG_GETARG_INT64(2);
	Jsonb	   *cluster = PG_GETARG_JSONB_P(3);
	const ReplLocalNode *node;
	int64		applied;
	char	   *sync_name = NULL;

	repl_check_preloaded();
	allow_role_change_writes();
	repl_require_role(REPL_ROLE_FOLLOWER, "repl.takeover");
	node = repl_local_node();
	if (strcmp(node->leader_name, old_leader) != 0 || epoch != node->epoch + 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" follows \"%s\" in epoch " INT64_FORMAT ", not \"%s\" in epoch " INT64_FORMAT,
						node->node_name, node->leader_name, node->epoch,
						old_leader, epoch - 1)));
	applied = repl_read_applied_tick();

	/*
	 * Past position: ticks the old leader cut after it, which hold nothing
	 * (its writes were stopped and drained); start from where we are.
	 */
	if (applied < position)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is at position " INT64_FORMAT ", not at the handover position " INT64_FORMAT,
						node->node_name, applied, position)));
	SPI_connect();
	spi_run("SELECT 1 FROM repl.local_node FOR UPDATE", 0, NULL, NULL, SPI_OK_SELECT);
	store_cluster(cluster);
	spi_run("SELECT node_name FROM repl.nodes WHERE synchronous", 0, NULL, NULL,
			SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* the old leader has everything: it takes our synchronous role */
		sync_name = strcmp(s, node->node_name) == 0 ? old_leader :
			MemoryContextStrdup(TopTransactionContext, s);
	}
	become_leader(epoch, applied, old_leader, applied, sync_name);
	SPI_finish();
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" took over from \"%s\": leader of epoch " INT64_FORMAT " from position " INT64_FORMAT,
					repl_local_node()->node_name, old_leader, epoch, applied)));
	PG_RETURN_INT64(applied);
}

/* Switchover in progress: the flag that makes writes refused. */
static bool handover_set = false;

static void
clear_handover(void)
{
	if (!handover_set)
		return;
	pg_atomic_write_u32(&repl_shared->handover_active, 0);
	handover_set = false;
}

static void
handover_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		clear_handover();
}

/* Wait until cond(arg) holds or the deadline passes; false on timeout. */
static bool
wait_until(bool (*cond) (void *), void *arg, TimestampTz deadline)
{
	for (;;)
	{
		long		remaining;

		ConditionVariablePrepareToSleep(&repl_shared->progress_cv);
		if (cond(arg))
		{
			ConditionVariableCancelSleep();
			return true;
		}
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
		{
			ConditionVariableCancelSleep();
			return false;
		}
		(void) ConditionVariableTimedSleep(&repl_shared->progress_cv,
										   Min(remaining, 100),
										   PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
}

static bool
tick_served(void *arg)
{
	int64		request = *(int64 *) arg;
	bool		done;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	done = repl_shared->tick_served >= request;
	LWLockRelease(repl_shared->lock);
	return done;
}

typedef struct AppliedWait
{
	const char *node_name;
	int64		target;
} AppliedWait;

static bool
follower_applied(void *arg)
{
	AppliedWait *w = arg;
	bool		done = false;
	int			i;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	for (i = 0; i < repl_shared->nslots; i++)
	{
		ReplFollowerSlot *slot = &repl_shared->slots[i];

		if (slot->in_use && strcmp(slot->node_name, w->node_name) == 0 &&
			slot->applied_tick >= w->target)
			done = true;
	}
	LWLockRelease(repl_shared->lock);
	return done;
}

/*
 * Wait for every transaction that may have written the log before writes
 * were stopped: those holding a lock on a log table (a snapshot would not
 * list a transaction newer than every finished one).  false on timeout,
 * with the number still running in *nwaiting.
 */
static bool
wait_for_writers(TimestampTz deadline, int *nwaiting)
{
	int			log_no;

	*nwaiting = 0;
	for (log_no = 0; log_no < REPL_NUM_LOG_TABLES; log_no++)
	{
		char		name[NAMEDATALEN];
		LOCKTAG		tag;

		snprintf(name, sizeof(name), "log_%d", log_no);
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, repl_catalog_relid(name));
		for (;;)
		{
			VirtualTransactionId *holders = GetLockConflicts(&tag, ShareLock, NULL);
			int			running = 0;
			int			i;

			for (i = 0; VirtualTransactionIdIsValid(holders[i]); i++)
				if (!VirtualXactLock(holders[i], false))
					running++;
			if (running == 0)
				break;
			if (GetCurrentTimestamp() >= deadline)
			{
				*nwaiting = running;
				return false;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HANDOVER_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	return true;
}

/*
 * repl.switchover(node_name text, timeout interval DEFAULT '60 s')
 *		returns bigint
 *		Hand the leadership to a streaming follower without losing a
 *		transaction: refuse new writes, wait for those in flight, cut a last
 *		tick, wait until the target applied it, let it take over in the next
 *		epoch, and follow it from that position.
 */
Datum
repl_switchover(PG_FUNCTION_ARGS)
{
	char	   *target = repl_arg_node_name(fcinfo, 0);
	Interval   *timeout = PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1);
	int64		timeout_ms = 60000;
	const ReplLocalNode *node;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline;
	char	   *conninfo = NULL;
	char	   *my_name;
	int64		old_epoch;
	int64		epoch;
	int64		request;
	volatile int64 final_tick;
	int			nwaiting;
	bool		streaming = false;
	int			i;
	ReplConn   *volatile conn = NULL;
	static bool callback_registered = false;
	AppliedWait aw;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.switchover");
	node = repl_local_node();
	my_name = pstrdup(node->node_name);
	old_epoch = node->epoch;
	if (timeout)
		timeout_ms = timeout->time / 1000 +
			((int64) timeout->day + (int64) timeout->month * DAYS_PER_MONTH) *
			SECS_PER_DAY * 1000;
	deadline = TimestampTzPlusMilliseconds(start, timeout_ms);

	SPI_connect();
	{
		Oid			type = TEXTOID;
		Datum		value = CStringGetTextDatum(target);

		spi_run("SELECT conninfo FROM repl.followers WHERE node_name OPERATOR(pg_catalog.=) $1"
				"   AND NOT paused AND NOT needs_resync AND phase OPERATOR(pg_catalog.=) 'streaming'",
				1, &type, &value, SPI_OK_SELECT);
		if (SPI_processed == 1)
			conninfo = MemoryContextStrdup(TopTransactionContext,
										   SPI_getvalue(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 1));
	}
	SPI_finish();
	LWLockAcquire(repl_shared->lock, LW_SHARED);
	for (i = 0; i < repl_shared->nslots; i++)
		if (repl_shared->slots[i].in_use &&
			strcmp(repl_shared->slots[i].node_name, target) == 0 &&
			repl_shared->slots[i].state == REPL_FSTATE_STREAMING)
			streaming = true;
	LWLockRelease(repl_shared->lock);
	if (conninfo == NULL || !streaming)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is not a streaming follower of this leader", target),
				 errhint("Check repl.status: the target must be in state streaming.")));

	/* 1. refuse new writes (capture.c checks the flag) */
	if (!callback_registered)
	{
		RegisterXactCallback(handover_xact_callback, NULL);
		callback_registered = true;
	}
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&repl_shared->handover_active) != 0)
	{
		char		other[NAMEDATALEN];

		strlcpy(other, repl_shared->handover_to, NAMEDATALEN);
		LWLockRelease(repl_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a switchover to \"%s\" is already in progress", other)));
	}
	strlcpy(repl_shared->handover_to, target, NAMEDATALEN);
	pg_atomic_write_u32(&repl_shared->handover_active, 1);
	LWLockRelease(repl_shared->lock);
	handover_set = true;

	/* 2. wait for the transactions that may have written before */
	if (!wait_for_writers(deadline, &nwaiting))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("switchover to \"%s\" timed out waiting for %d running transactions",
						target, nwaiting),
				 errhint("Transactions that stay open (idle in transaction) delay a switchover; end them or raise the timeout.")));

	/* 3. a last tick holding everything committed */
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	request = ++repl_shared->tick_requested;
	LWLockRelease(repl_shared->lock);
	repl_wake_supervisor();
	if (!wait_until(tick_served, &request, deadline))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("switchover to \"%s\" timed out waiting for the last tick", target)));
	LWLockAcquire(repl_shared->lock, LW_SHARED);
	final_tick = repl_shared->last_tick;
	LWLockRelease(repl_shared->lock);

	/* 4. the target applies it */
	aw.node_name = target;
	aw.target = final_tick;
	if (!wait_until(follower_applied, &aw, deadline))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("switchover to \"%s\" timed out waiting for it to apply position " INT64_FORMAT,
						target, final_tick)));

	/* 5. the target takes over; then we follow it */
	epoch = old_epoch + 1;
	SPI_connect();
	spi_run("SELECT repl.cluster_state()", 0, NULL, NULL, SPI_OK_SELECT);
	{
		char	   *text = MemoryContextStrdup(TopTransactionContext,
											   SPI_getvalue(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1));
		const char *params[4];
		char		e[32];
		char		p[32];
		ReplResult *res;

		snprintf(e, sizeof(e), INT64_FORMAT, epoch);
		snprintf(p, sizeof(p), INT64_FORMAT, final_tick);
		params[0] = my_name;
		params[1] = e;
		params[2] = p;
		params[3] = text;
		conn = repl_conn_open_or_raise(conninfo, target,
									   psprintf("node \"%s\"", target));
		PG_TRY();
		{
			repl_conn_exec_or_raise(conn,
									"SELECT repl.takeover($1, $2::bigint, $3::bigint, $4::jsonb)",
									4, params, target, &res);
			final_tick = strtoi64(repl_result_value(res, 0, 0), NULL, 10);
			/* the cluster as the new leader sees it */
			store_cluster(DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															 CStringGetDatum(text))));
		}
		PG_CATCH();
		{
			repl_conn_close(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		repl_conn_close(conn);
	}
	/* a backend whose catalog cache still says leader refuses writes too */
	raise_fenced_epoch(epoch);
	become_follower(target, epoch, old_epoch, final_tick);
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2];

		/* the new leader is the leader of the stored cluster */
		values[0] = CStringGetTextDatum(target);
		values[1] = CStringGetTextDatum(my_name);
		spi_run("UPDATE repl.nodes SET is_leader = (node_name OPERATOR(pg_catalog.=) $1),"
				" synchronous = synchronous AND node_name OPERATOR(pg_catalog.<>) $1"
				" OR (node_name OPERATOR(pg_catalog.=) $2 AND EXISTS (SELECT 1 FROM repl.nodes n"
				"     WHERE n.node_name OPERATOR(pg_catalog.=) $1 AND n.synchronous))",
				2, types, values, SPI_OK_UPDATE);
	}
	SPI_finish();
	ereport(LOG,
			(errmsg("repl_ext: switchover: \"%s\" leads epoch " INT64_FORMAT " from position " INT64_FORMAT "; \"%s\" follows it; writes refused for %ld ms",
					target, epoch, final_tick, my_name,
					TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()))));
	PG_RETURN_INT64(epoch);
}

/*
 * repl.rejoin(leader_conninfo text) returns (mode, lost_changes,
 *		lost_tables)
 *		A former leader (fenced, or still leader of an old epoch) follows the
 *		current leader.  If it committed changes after the point where the
 *		next epoch began, they are reported and the node is copied again
 *		(mode 'resync'); otherwise it resumes at that point ('resumed').
 */
Datum
repl_rejoin(PG_FUNCTION_ARGS)
{
	char	   *leader_conninfo = repl_arg_conninfo(fcinfo, 0);
	const ReplLocalNode *node;
	ReplConn   *volatile conn;
	ReplResult *res;
	char	   *leader_name;
	int64		leader_epoch;
	int64		fork_tick = -1;
	int64		my_epoch;
	int64		lost = 0;
	bool		known = false;
	List	   *lost_tables = NIL;
	char	   *my_name;
	char	   *my_conninfo;
	const char *mode;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	uint64		i;

	repl_check_preloaded();
	allow_role_change_writes();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	node = repl_local_node();
	if (node->role != REPL_ROLE_FENCED && node->role != REPL_ROLE_LEADER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("repl.rejoin must be called on a former leader"),
				 errdetail("This node has the role \"%s\".",
						   node->role == REPL_ROLE_FOLLOWER ? "follower" : "none"),
				 errhint("A follower that diverged is copied again with repl.resync_follower() on the leader.")));
	my_name = pstrdup(node->node_name);
	my_conninfo = node->conninfo ? pstrdup(node->conninfo) : NULL;
	my_epoch = node->applied_epoch;
	if (my_conninfo == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" has no connection string", my_name)));

	conn = repl_conn_open_or_raise(leader_conninfo, "leader", "the leader");
	PG_TRY();
	{
		const char *params[4];
		char		e[32];

		repl_conn_exec_or_raise(conn, "SELECT node_name, role, epoch FROM repl.node_info()",
								0, NULL, "leader", &res);
		if (strcmp(repl_result_value(res, 0, 1), "leader") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" is not a leader",
							repl_result_value(res, 0, 0) ? repl_result_value(res, 0, 0) : "(none)")));
		leader_name = pstrdup(repl_result_value(res, 0, 0));
		leader_epoch = strtoi64(repl_result_value(res, 0, 2), NULL, 10);
		if (strcmp(leader_name, my_name) == 0 || leader_epoch <= my_epoch)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("leader \"%s\" of epoch " INT64_FORMAT " is not newer than this node's epoch " INT64_FORMAT,
							leader_name, leader_epoch, my_epoch)));
		snprintf(e, sizeof(e), INT64_FORMAT, my_epoch);
		params[0] = e;
		repl_conn_exec_or_raise(conn,
								"SELECT start_tick FROM repl.epochs"
								" WHERE epoch OPERATOR(pg_catalog.>) $1::bigint ORDER BY epoch LIMIT 1",
								1, params, leader_name, &res);
		if (res->ntuples == 1)
			fork_tick = strtoi64(repl_result_value(res, 0, 0), NULL, 10);

		/* what this node committed after the fork */
		SPI_connect();
		if (fork_tick >= 0)
		{
			Oid			type = INT8OID;
			Datum		value = Int64GetDatum(fork_tick);

			spi_run("SELECT 1 FROM repl.tick WHERE tick_id OPERATOR(pg_catalog.=) $1",
					1, &type, &value, SPI_OK_SELECT);
			known = SPI_processed == 1;
			if (known)
			{
				spi_run("SELECT coalesce(pg_catalog.format('%I.%I', n.nspname, c.relname), b.relid::text),"
						"       pg_catalog.count(*)"
						"  FROM repl.batch_changes((SELECT t.snap FROM repl.tick t"
						"                            WHERE t.tick_id OPERATOR(pg_catalog.=) $1),"
						"                          pg_catalog.pg_current_snapshot()) b"
						"  LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) b.relid"
						"  LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
						" WHERE b.op OPERATOR(pg_catalog.=) ANY (ARRAY['I', 'U', 'D', 'T']::\"char\"[])"
						" GROUP BY 1 ORDER BY 1",
						1, &type, &value, SPI_OK_SELECT);
				for (i = 0; i < SPI_processed; i++)
				{
					bool		isnull;
					MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

					lost_tables = lappend(lost_tables,
										  pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1)));
					MemoryContextSwitchTo(old);
					lost += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 2, &isnull));
				}
			}
		}

		if (known && lost == 0)
		{
			char		p[32];

			mode = "resumed";
			snprintf(p, sizeof(p), INT64_FORMAT, fork_tick);
			params[0] = my_name;
			params[1] = my_conninfo;
			params[2] = e;
			params[3] = p;
			become_follower(leader_name, leader_epoch, my_epoch, fork_tick);
			repl_conn_exec_or_raise(conn,
									"SELECT repl.accept_rejoin($1, $2, $3::bigint, $4::bigint)",
									4, params, leader_name, &res);
		}
		else
		{
			mode = "resync";
			if (lost > 0)
				ereport(WARNING,
						(errmsg("node \"%s\" committed %lld changes that never reached leader \"%s\"; they are discarded",
								my_name, (long long) lost, leader_name),
						 errdetail("Tables: %s.", repl_text_array_literal(lost_tables)),
						 errhint("Its tables are copied again from \"%s\"; save any of these changes you need from repl.changes first.",
								 leader_name)));
			else if (!known)
				ereport(WARNING,
						(errmsg("node \"%s\" cannot tell which of its changes reached leader \"%s\"", my_name, leader_name),
						 errdetail("Its log no longer covers the position where epoch " INT64_FORMAT " began.", my_epoch + 1),
						 errhint("Its tables are copied again from \"%s\".", leader_name)));

			/*
			 * It stays fenced, refusing writes, until the copy replaces its
			 * rows and makes it a follower in one transaction (copy.c): a
			 * write accepted in between would be lost without a word.
			 */
			fence_local(leader_name, leader_epoch);
			params[0] = my_name;
			params[1] = my_conninfo;
			repl_conn_exec_or_raise(conn,
									"SELECT repl.accept_rejoin($1, $2, NULL, NULL)",
									2, params, leader_name, &res);
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		repl_conn_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	repl_conn_close(conn);
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" rejoined as a follower of \"%s\" (%s)",
					my_name, leader_name, mode)));

	values[0] = CStringGetTextDatum(mode);
	if (known)
		values[1] = Int64GetDatum(lost);
	else
		nulls[1] = true;
	if (lost_tables == NIL)
		values[2] = PointerGetDatum(construct_empty_array(TEXTOID));
	else
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(lost_tables));
		ListCell   *lc;
		int			n = 0;

		foreach(lc, lost_tables)
			elems[n++] = CStringGetTextDatum(lfirst(lc));
		values[2] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
													TYPALIGN_INT));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * repl.accept_rejoin(node_name, conninfo, applied_epoch, position)
 *		returns text
 *		Leader side of rejoin: resume the node at position if this leader's
 *		history has it, else (or with a null position) copy it again.
 */
Datum
repl_accept_rejoin(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	char	   *conninfo = repl_arg_conninfo(fcinfo, 1);
	bool		resume = !PG_ARGISNULL(2) && !PG_ARGISNULL(3);
	Oid			types[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		values[3];
	char	   *why;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.accept_rejoin");
	if (strcmp(name, repl_local_node()->node_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node name \"%s\" is the leader's own name", name)));
	SPI_connect();
	spi_run("LOCK TABLE repl.followers IN SHARE ROW EXCLUSIVE MODE", 0, NULL,
			NULL, SPI_OK_UTILITY);
	if (resume)
	{
		int64		position = PG_GETARG_INT64(3);

		if (repl_position_diverged(PG_GETARG_INT64(2), position, &why))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" has diverged from leader \"%s\"", name,
							repl_local_node()->node_name),
					 errdetail("Node \"%s\": %s.", name, why)));
	}
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(conninfo);
	values[2] = Int64GetDatum(resume ? PG_GETARG_INT64(3) : repl_latest_tick());
	spi_run("DELETE FROM repl.followers WHERE node_name OPERATOR(pg_catalog.=) $1",
			1, types, values, SPI_OK_DELETE);
	if (resume)
	{
		spi_run("INSERT INTO repl.followers (node_name, conninfo, applied_tick, phase)"
				" VALUES ($1, $2, $3, 'streaming')", 3, types, values, SPI_OK_INSERT);
		spi_run("INSERT INTO repl.follower_tables (node_name, relid, sync_tick, sync_snap)"
				" SELECT $1, t.relid, 0, '1:1:' FROM repl.replicated_tables t",
				1, types, values, SPI_OK_INSERT);
	}
	else
		spi_run("INSERT INTO repl.followers (node_name, conninfo, applied_tick, phase,"
				" truncate_existing) VALUES ($1, $2, $3, 'copy', true)",
				3, types, values, SPI_OK_INSERT);
	SPI_finish();
	repl_wake_supervisor_at_commit();
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" rejoins (%s)", name,
					resume ? "resuming" : "copying it again")));
	PG_RETURN_TEXT_P(cstring_to_text(resume ? "resumed" : "copy"));
}

/*
 * repl.resync_follower(node_name text) returns void
 *		Copy a follower again, replacing its rows: one that diverged or fell
 *		out of the log.  It keeps its role until the copy's transaction
 *		on it replaces its rows and its position at once.
 */
Datum
repl_resync_follower(PG_FUNCTION_ARGS)
{
	char	   *name = repl_arg_node_name(fcinfo, 0);
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(name);
	char	   *conninfo;
	ReplConn   *conn;
	ReplResult *res;

	repl_check_preloaded();
	repl_require_role(REPL_ROLE_LEADER, "repl.resync_follower");
	SPI_connect();

	/*
	 * The table lock first, as the supervisor takes it when it moves the
	 * synchronous role: taking only the row lock and updating the row later
	 * deadlocked with it (found by the chaos test).
	 */
	spi_run("LOCK TABLE repl.followers IN SHARE ROW EXCLUSIVE MODE", 0, NULL,
			NULL, SPI_OK_UTILITY);
	spi_run("SELECT conninfo FROM repl.followers WHERE node_name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
			1, &type, &value, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("follower \"%s\" does not exist", name)));
	conninfo = MemoryContextStrdup(TopTransactionContext,
								   SPI_getvalue(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1));

	/*
	 * Only checked here: the follower keeps its role, and refuses writes,
	 * until the copy's transaction on it detaches it and attaches it again
	 * (copy.c), whichever leader of this cluster it follows now.  Detaching
	 * it here would let it take writes that the copy then wipes out.
	 */
	conn = repl_conn_open_or_raise(conninfo, name,
								   psprintf("follower \"%s\"", name));
	res = repl_conn_exec(conn, "SELECT role FROM repl.node_info()", 0,
						 NULL, NULL, NULL);
	repl_conn_close(conn);
	if (!res->ok)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not read the role of follower \"%s\": %s", name, res->message)));
	spi_run("UPDATE repl.followers SET needs_resync = false, paused = false,"
			" phase = 'copy', truncate_existing = true, applied_tick = 0"
			" WHERE node_name OPERATOR(pg_catalog.=) $1", 1, &type, &value,
			SPI_OK_UPDATE);
	spi_run("DELETE FROM repl.follower_tables WHERE node_name OPERATOR(pg_catalog.=) $1",
			1, &type, &value, SPI_OK_DELETE);
	SPI_finish();
	repl_wake_supervisor_at_commit();
	ereport(NOTICE,
			(errmsg("follower \"%s\" is copied again; watch repl.status", name)));
	PG_RETURN_VOID();
}


/*
 * Automatic failover
 *
 * A follower notes every contact from its leader (a batch, a handshake, the
 * once-a-second node list) in shared memory.  With repl_ext.auto_failover,
 * its supervisor checks the time since (repl_failover_watch): after
 * repl_ext.leader_timeout without contact, and if the leader cannot be
 * reached directly either, it stands for election in epoch E = one more
 * than any epoch it has seen or voted in.  It first votes for itself
 * (committed: a node votes at most once per epoch, repl.local_node.
 * voted_epoch), then asks every other node of the cluster
 * (repl.request_vote).  A node grants its vote only if it has not voted in
 * E, is no live leader, has itself not heard from the leader within
 * leader_timeout, and the candidate's position is at least its own.  With
 * votes from a majority of all the cluster's nodes (the old leader
 * included) the candidate promotes itself in epoch E.  Two candidates can
 * never both win E (a majority each would need one node voting twice), and
 * a minority never wins.  A candidate that loses waits a random part of
 * leader_timeout before trying again with a newer epoch.
 */

/*
 * repl_note_leader_contact
 *		The leader reached this follower just now.
 */
void
repl_note_leader_contact(void)
{
	if (repl_shared != NULL)
		pg_atomic_write_u64(&repl_shared->leader_contact,
							(uint64) GetCurrentTimestamp());
}

/*
 * repl.note_leader_contact() returns void
 *		For repl.follower_sync_cluster, the leader's heartbeat.
 */
Datum
repl_note_leader_contact_sql(PG_FUNCTION_ARGS)
{
	repl_note_leader_contact();
	PG_RETURN_VOID();
}

/*
 * repl.forget_retained(retain_from bigint)
 *		For repl.follower_sync_cluster: every follower has the ticks up to
 *		retain_from.  This node's supervisor deletes them from repl.retained
 *		a chunk at a time (changelog.c, repl_trim_retained), not the
 *		leader's session, in which the deletion held up the next batch.
 */
Datum
repl_forget_retained(PG_FUNCTION_ARGS)
{
	int64		retain_from = PG_GETARG_INT64(0);

	/* a bound left from another role would cut the ticks kept in the next */
	repl_require_role(REPL_ROLE_FOLLOWER, "repl.forget_retained");
	pg_atomic_write_u64(&repl_shared->retain_bound, (uint64) Max(retain_from, 0));
	PG_RETURN_VOID();
}

static bool
leader_heard_recently(void)
{
	TimestampTz contact = (TimestampTz) pg_atomic_read_u64(&repl_shared->leader_contact);

	return contact != 0 &&
		!TimestampDifferenceExceeds(contact, GetCurrentTimestamp(), repl_leader_timeout);
}

/*
 * repl.request_vote(candidate text, epoch bigint, applied_epoch bigint,
 *		applied_position bigint) returns (granted boolean, reason text)
 *		A candidate asks for this node's vote in epoch (see above).
 */
Datum
repl_request_vote(PG_FUNCTION_ARGS)
{
	char	   *candidate = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		epoch = PG_GETARG_INT64(1);
	int64		cand_epoch = PG_GETARG_INT64(2);
	int64		cand_pos = PG_GETARG_INT64(3);
	const ReplLocalNode *node;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	char	   *reason = NULL;
	int64		voted;
	int64		applied;
	bool		isnull;

	repl_check_preloaded();
	allow_role_change_writes();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SPI_connect();
	end_stalled_leader_sessions("vote in an election");
	spi_run("SELECT voted_epoch FROM repl.local_node FOR UPDATE", 0, NULL, NULL,
			SPI_OK_SELECT);
	voted = SPI_processed == 1 ?
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) : 0;
	repl_local_node_changed();
	node = repl_local_node();
	applied = node->role == REPL_ROLE_NONE ? 0 : repl_read_applied_tick();
	if (node->role == REPL_ROLE_NONE)
		reason = "it is in no cluster";
	else if (node->role == REPL_ROLE_LEADER)
		reason = psprintf("it leads epoch " INT64_FORMAT, node->epoch);
	else if (epoch <= node->epoch || epoch <= voted)
		reason = psprintf("it already is in epoch " INT64_FORMAT " or voted in it", Max(node->epoch, voted));
	else if (node->role == REPL_ROLE_FOLLOWER && leader_heard_recently())
		reason = psprintf("it still hears from leader \"%s\"", node->leader_name);
	else if (node->role == REPL_ROLE_FOLLOWER &&
			 (cand_epoch < node->applied_epoch ||
			  (cand_epoch == node->applied_epoch && cand_pos < applied)))
		reason = psprintf("the candidate is behind it (position " INT64_FORMAT " of epoch " INT64_FORMAT ")",
						  applied, node->applied_epoch);
	if (reason == NULL)
	{
		record_vote(epoch, candidate);
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" votes for \"%s\" in epoch " INT64_FORMAT,
						node->node_name, candidate, epoch)));
	}
	SPI_finish();
	PG_RETURN_DATUM(vote_answer(desc, reason, values, nulls));
}

/* Transaction wrapper for the supervisor. */
static void
begin_work(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
}

static void
end_work(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Whether the leader's node list marks this node synchronous. */
static bool
self_is_synchronous(void)
{
	bool		sync = false;

	begin_work();
	if (OidIsValid(get_extension_oid("repl_ext", true)))
	{
		spi_run("SELECT n.synchronous FROM repl.nodes n, repl.local_node l"
				" WHERE n.node_name OPERATOR(pg_catalog.=) l.node_name",
				0, NULL, NULL, SPI_OK_SELECT);
		if (SPI_processed == 1)
		{
			bool		isnull;

			sync = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		}
	}
	end_work();
	return sync;
}

/*
 * Stand for election (see above).  Runs several transactions; returns true
 * if this node is now the leader.
 */
static bool
run_election(void)
{
	const ReplLocalNode *node;
	char	   *me;
	char	   *old_leader;
	int64		epoch;
	int64		applied;
	int64		applied_epoch;
	bool		isnull;
	int			nnodes = 1;
	int			votes = 1;
	List	   *names = NIL;
	List	   *conninfos = NIL;
	List	   *leaders = NIL;
	ListCell   *lc1,
			   *lc2,
			   *lc3;
	uint64		i;
	MemoryContext cxt = CurrentMemoryContext;

	/* 1. who is there, and a vote for ourselves, committed */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("repl_ext", true)))
	{
		CommitTransactionCommand();
		return false;
	}
	CommitTransactionCommand();
	begin_work();
	end_stalled_leader_sessions("stand in an election");
	spi_run("SELECT greatest(epoch, voted_epoch) FROM repl.local_node FOR UPDATE",
			0, NULL, NULL, SPI_OK_SELECT);
	repl_local_node_changed();
	node = repl_local_node();
	if (node->role != REPL_ROLE_FOLLOWER || SPI_processed != 1)
	{
		end_work();
		return false;
	}
	epoch = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) + 1;
	me = MemoryContextStrdup(cxt, node->node_name);
	old_leader = MemoryContextStrdup(cxt, node->leader_name);
	applied = repl_read_applied_tick();
	applied_epoch = node->applied_epoch;
	spi_run("SELECT node_name, conninfo, is_leader FROM repl.nodes ORDER BY node_name",
			0, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old;
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (strcmp(name, me) == 0)
			continue;
		old = MemoryContextSwitchTo(cxt);
		names = lappend(names, pstrdup(name));
		conninfos = lappend(conninfos, pstrdup(SPI_getvalue(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2)));
		leaders = lappend_int(leaders,
							  DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 3, &isnull)));
		MemoryContextSwitchTo(old);
		nnodes++;
	}
	record_vote(epoch, me);
	end_work();
	ereport(LOG,
			(errmsg("repl_ext: no contact with leader \"%s\" for %d ms; node \"%s\" stands for election in epoch " INT64_FORMAT,
					old_leader, repl_leader_timeout, me, epoch)));

	/* 2. ask the others; a leader that answers is alive after all */
	forthree(lc1, names, lc2, conninfos, lc3, leaders)
	{
		char	   *err;
		ReplConn   *conn = repl_conn_open(lfirst(lc2), lfirst(lc1), &err);
		ReplResult *res;
		const char *params[4];
		char		e[32],
					ae[32],
					ap[32];

		CHECK_FOR_INTERRUPTS();
		if (conn == NULL)
			continue;
		snprintf(e, sizeof(e), INT64_FORMAT, epoch);
		snprintf(ae, sizeof(ae), INT64_FORMAT, applied_epoch);
		snprintf(ap, sizeof(ap), INT64_FORMAT, applied);
		params[0] = me;
		params[1] = e;
		params[2] = ae;
		params[3] = ap;
		res = repl_conn_exec(conn, "SELECT granted, reason FROM repl.request_vote($1, $2::bigint, $3::bigint, $4::bigint)",
							 4, params, NULL, NULL);
		repl_conn_close(conn);
		if (!res->ok)
		{
			ereport(LOG,
					(errmsg("repl_ext: could not ask node \"%s\" for its vote: %s",
							(char *) lfirst(lc1), res->message)));
			continue;
		}
		if (strcmp(repl_result_value(res, 0, 0), "t") == 0)
			votes++;
		else
			ereport(LOG,
					(errmsg("repl_ext: node \"%s\" does not vote for \"%s\" in epoch " INT64_FORMAT ": %s",
							(char *) lfirst(lc1), me, epoch, repl_result_value(res, 0, 1))));
	}
	if (votes * 2 <= nnodes)
	{
		ereport(LOG,
				(errmsg("repl_ext: node \"%s\" lost the election in epoch " INT64_FORMAT ": %d of %d votes",
						me, epoch, votes, nnodes)));
		return false;
	}

	/* 3. elected: lead epoch, unless something changed meanwhile */
	begin_work();
	spi_run("SELECT voted_epoch, voted_for FROM repl.local_node FOR UPDATE",
			0, NULL, NULL, SPI_OK_SELECT);
	repl_local_node_changed();
	node = repl_local_node();
	if (node->role != REPL_ROLE_FOLLOWER || SPI_processed != 1 ||
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) != epoch ||
		node->epoch >= epoch)
	{
		end_work();
		return false;
	}
	{
		char	   *sync_name = NULL;

		spi_run("SELECT node_name FROM repl.nodes WHERE synchronous", 0, NULL, NULL,
				SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			char	   *sname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (strcmp(sname, me) != 0)
				sync_name = sname;
		}
		become_leader(epoch, repl_read_applied_tick(), old_leader, -1, sync_name);
	}
	end_work();
	ereport(LOG,
			(errmsg("repl_ext: node \"%s\" elected leader of epoch " INT64_FORMAT " with %d of %d votes",
					me, epoch, votes, nnodes)));
	return true;
}

/*
 * repl_failover_watch
 *		The supervisor of a node that does not lead: with
 *		repl_ext.auto_failover, stand for election once the leader has been
 *		silent for repl_ext.leader_timeout.  Returns how long the supervisor
 *		may sleep before calling again, in ms.
 */
long
repl_failover_watch(void)
{
	static TimestampTz next_try = 0;
	static TimestampTz staggered_for = 0;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz contact = (TimestampTz) pg_atomic_read_u64(&repl_shared->leader_contact);
	long		remaining;

	/* a supervisor that starts counts from its own start */
	if (contact == 0 || !repl_auto_failover)
	{
		repl_note_leader_contact();
		return 1000;
	}
	remaining = repl_leader_timeout - (long) TimestampDifferenceMilliseconds(contact, now);
	if (remaining > 0)
		return Min(remaining + 1, 1000);

	/*
	 * The first candidacy after a silence: followers that all lost the
	 * leader at the same moment would otherwise stand at the same moment and
	 * split the vote.  The synchronous follower, which has every
	 * acknowledged commit, stands at once; the others wait another random
	 * 20-50% of the timeout (Raft randomises the first timeout likewise).
	 */
	if (staggered_for != contact)
	{
		staggered_for = contact;
		if (!self_is_synchronous())
			next_try = TimestampTzPlusMilliseconds(now,
												   (long) (repl_leader_timeout *
														   (0.2 + 0.3 * pg_prng_double(&pg_global_prng_state))));
	}
	if (now < next_try)
		return Max(TimestampDifferenceMilliseconds(now, next_try), 1);
	if (run_election())
		return 0;

	/* lost, or nothing to do: wait a random part of the timeout */
	next_try = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   (long) (repl_leader_timeout *
												   (0.1 + 0.4 * pg_prng_double(&pg_global_prng_state))));
	return 100;
}
