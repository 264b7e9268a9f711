/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The supervisor and the per-follower senders of the leader.
 *
 * The supervisor (one per instance, in repl_ext.database) cuts ticks when
 * there are new commits or a waiter asks for one, keeps one sender running
 * per active follower, and does log housekeeping.  A sender owns one
 * follower: it connects, asks the follower where it is, and then pushes
 * batch after batch, each as one call of repl.apply_batch on the follower.
 * A slow or dead follower only stalls its own sender.
 *
 * Waits follow latch.h: reset the latch, check for work, then wait.  Network
 * errors are expected: the sender records them in its slot (repl.status),
 * closes the connection and retries with exponential backoff from 100 ms to
 * repl_ext.retry_interval.  Any other error ends the sender; the supervisor
 * starts it again after repl_ext.retry_interval.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "changelog.h"
#include "copy.h"
#include "failover.h"
#include "follower.h"
#include "guc.h"
#include "shmem.h"
#include "syncwait.h"
#include "transport.h"
#include "worker.h"

/* How long the supervisor sleeps when idle, and between housekeeping. */
#define SUPERVISOR_IDLE_MS		1000
#define MAINTENANCE_INTERVAL_MS	1000
/* next repl_trim_ticks after one that stopped at its limit */
#define TRIM_AGAIN_MS	50

/* Supervisor-local view of a sender it started. */
typedef struct SenderHandle
{
	BackgroundWorkerHandle *handle;
	TimestampTz last_start;
} SenderHandle;

/*
 * repl_worker_init
 *		Register the supervisor; called from _PG_init while preloading.
 */
void
repl_worker_init(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "repl_ext");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "repl_supervisor_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "repl_ext supervisor");
	snprintf(worker.bgw_type, BGW_MAXLEN, "repl_ext supervisor");
	RegisterBackgroundWorker(&worker);
}

/*
 * Is this database set up as a leader?  false if the extension is missing.
 * Runs its own transaction.
 */
static bool
node_is_leader(void)
{
	bool		result = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("repl_ext", true)))
		result = repl_local_node_fresh()->role == REPL_ROLE_LEADER;
	PopActiveSnapshot();
	CommitTransactionCommand();
	return result;
}

static void
process_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* Cut a tick if commits happened since the last one or a waiter asked. */
static void
maybe_cut_tick(uint64 *last_commits, TimestampTz *last_tick_time)
{
	uint64		commits = pg_atomic_read_u64(&repl_shared->commits);
	int64		requested;
	int64		tick_id;
	XLogRecPtr	tick_end;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	requested = repl_shared->tick_requested;
	LWLockRelease(repl_shared->lock);

	if (commits == *last_commits && requested <= repl_shared->tick_served)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "cutting a tick");
	tick_id = repl_cut_tick(NULL, true);
	PopActiveSnapshot();

	/*
	 * The senders ship the tick while its commit record is being flushed
	 * here: a follower's commit of it waits for their own flush of it
	 * (sender_flush_wal), so no follower ever holds a tick this node could
	 * lose in a crash.
	 */
	(void) set_config_option("synchronous_commit", "off", PGC_SUSET,
							 PGC_S_OVERRIDE, GUC_ACTION_LOCAL, true, 0, false);
	CommitTransactionCommand();
	tick_end = XactLastCommitEnd;

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	repl_publish_tick_locked(tick_id);
	if (repl_shared->tick_served < requested)
		repl_shared->tick_served = requested;
	LWLockRelease(repl_shared->lock);
	repl_wake_senders(-1);

	/* the flush first: the senders need it, the waiters only the tick id */
	XLogFlush(tick_end);
	ConditionVariableBroadcast(&repl_shared->progress_cv);
	pgstat_report_activity(STATE_IDLE, NULL);
	*last_commits = commits;
	*last_tick_time = GetCurrentTimestamp();
}

static void
start_sender(int slotno, SenderHandle *sh)
{
	BackgroundWorker worker;
	BgwHandleStatus status;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "repl_ext");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "repl_sender_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "repl_ext sender for %s",
			 repl_shared->slots[slotno].node_name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "repl_ext sender");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	worker.bgw_notify_pid = MyProcPid;

	sh->last_start = GetCurrentTimestamp();
	if (!RegisterDynamicBackgroundWorker(&worker, &sh->handle))
	{
		sh->handle = NULL;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("out of background worker slots for the sender of follower \"%s\"",
						repl_shared->slots[slotno].node_name),
				 errhint("You might need to increase max_worker_processes.")));
		return;
	}
	status = WaitForBackgroundWorkerStartup(sh->handle, &pid);
	if (status != BGWH_STARTED)
	{
		pfree(sh->handle);
		sh->handle = NULL;
	}
}

static bool
sender_running(SenderHandle *sh)
{
	pid_t		pid;

	if (sh->handle == NULL)
		return false;
	if (GetBackgroundWorkerPid(sh->handle, &pid) == BGWH_STARTED)
		return true;
	pfree(sh->handle);
	sh->handle = NULL;
	return false;
}

/*
 * Ask slot i's sender to stop (it exits at its next check), or free the slot
 * if no sender runs for it.  Caller holds repl_shared->lock exclusively.
 */
static void
stop_slot_locked(int i, SenderHandle *handles)
{
	ReplFollowerSlot *slot = &repl_shared->slots[i];

	slot->stop_requested = true;
	slot->synchronous = false;
	if (slot->proc)
		SetLatch(&slot->proc->procLatch);
	else if (handles[i].handle == NULL)
		slot->in_use = false;
}

/*
 * Bring the slots in line with repl.followers: one slot per follower, a
 * running sender for each active one, and a stop request for the others.
 */
static void
sync_senders(SenderHandle *handles)
{
	int			i;
	int			n;
	bool	   *wanted = palloc0(sizeof(bool) * repl_shared->nslots);
	char	  **names;
	bool	   *active;
	bool	   *sync;
	bool	   *copied;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT node_name, NOT (paused OR needs_resync), synchronous,"
					"       phase OPERATOR(pg_catalog.=) 'streaming'"
					"  FROM repl.followers ORDER BY node_name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read repl.followers");
	n = (int) SPI_processed;
	names = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * Max(n, 1));
	active = MemoryContextAlloc(TopMemoryContext, sizeof(bool) * Max(n, 1));
	sync = MemoryContextAlloc(TopMemoryContext, sizeof(bool) * Max(n, 1));
	copied = MemoryContextAlloc(TopMemoryContext, sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		names[i] = MemoryContextStrdup(TopMemoryContext,
									   SPI_getvalue(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1));
		active[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
											   SPI_tuptable->tupdesc, 2, &isnull));
		sync[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
											 SPI_tuptable->tupdesc, 3, &isnull));
		copied[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
											   SPI_tuptable->tupdesc, 4, &isnull));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	for (i = 0; i < n; i++)
	{
		int			s;
		int			slotno = -1;
		int			freeslot = -1;
		bool		attached;

		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		for (s = 0; s < repl_shared->nslots; s++)
		{
			ReplFollowerSlot *slot = &repl_shared->slots[s];

			if (slot->in_use && strcmp(slot->node_name, names[i]) == 0)
				slotno = s;
			else if (!slot->in_use && freeslot < 0 && !sender_running(&handles[s]))
				freeslot = s;
		}
		if (slotno < 0 && freeslot >= 0)
		{
			ReplFollowerSlot *slot = &repl_shared->slots[freeslot];

			memset(slot, 0, sizeof(*slot));
			slot->in_use = true;
			strlcpy(slot->node_name, names[i], NAMEDATALEN);
			slot->state = REPL_FSTATE_CONNECTING;
			slotno = freeslot;
		}
		attached = false;
		if (slotno >= 0)
		{
			ReplFollowerSlot *slot = &repl_shared->slots[slotno];

			/*
			 * A sender attached to the slot that this supervisor did not
			 * start: it was started by the previous supervisor, which exited
			 * (an ERROR, a SIGTERM) while its senders ran on.  It goes on
			 * serving the follower; a second one would stream to it too.
			 */
			attached = slot->proc != NULL;
			wanted[slotno] = true;
			slot->synchronous = sync[i];
			slot->copied = copied[i];
			slot->stop_requested = !active[i];
			if (!active[i] && slot->proc)
				SetLatch(&slot->proc->procLatch);
		}
		LWLockRelease(repl_shared->lock);

		if (slotno < 0)
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no free slot for follower \"%s\"", names[i]),
					 errhint("Increase repl_ext.max_followers and restart the server.")));
			continue;
		}
		if (active[i] && !attached && !sender_running(&handles[slotno]) &&
			TimestampDifferenceExceeds(handles[slotno].last_start,
									   GetCurrentTimestamp(),
									   handles[slotno].last_start ? repl_retry_interval : 0))
			start_sender(slotno, &handles[slotno]);
	}

	/* slots of removed followers: stop their sender, then free them */
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < repl_shared->nslots; i++)
		if (repl_shared->slots[i].in_use && !wanted[i])
			stop_slot_locked(i, handles);
	repl_sync_assign_locked();
	LWLockRelease(repl_shared->lock);

	for (i = 0; i < n; i++)
		pfree(names[i]);
	pfree(names);
	pfree(active);
	pfree(sync);
	pfree(copied);
	pfree(wanted);
}

/* When the supervisor last forgot ticks, and whether some were left. */
typedef struct TrimState
{
	TimestampTz last;
	bool		more;
} TrimState;

/*
 * Forget old ticks (leading: repl_trim_ticks) or kept ones (following:
 * repl_trim_retained): when due (once every MAINTENANCE_INTERVAL_MS, on a
 * leader right after repl_log_maintain), and a chunk every TRIM_AGAIN_MS
 * while some are left; shortens *timeout to come back.  Only a call that
 * is due may wait for a lock on repl.tick or repl.retained (the others
 * skip): on a leader the truncation of drained log tables thus always comes
 * first.
 */
static void
maybe_trim(bool leading, bool due, TrimState *trim, long *timeout)
{
	TimestampTz now = GetCurrentTimestamp();

	if (due || (trim->more && TimestampDifferenceExceeds(trim->last, now, TRIM_AGAIN_MS)))
	{
		trim->last = now;
		SetCurrentStatementStartTimestamp();
		pgstat_report_activity(STATE_RUNNING, leading ? "tick cleanup" : "retained tick cleanup");
		trim->more = leading ? repl_trim_ticks(!due) : repl_trim_retained(!due);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	if (trim->more)
		*timeout = Min(*timeout, TRIM_AGAIN_MS);
}

/*
 * repl_supervisor_main
 *		Entry point of the supervisor background worker.
 */
void
repl_supervisor_main(Datum main_arg)
{
	SenderHandle *handles;
	uint64		last_commits = 0;
	uint32		last_generation = 0;
	TimestampTz last_tick_time = 0;
	TimestampTz last_maintenance = 0;
	TrimState	trim = {0, false};
	bool		maintained;
	TimestampTz last_sync = 0;
	bool		started = false;
	MemoryContext loopcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(repl_database, NULL, 0);
	pgstat_report_appname("repl_ext supervisor");
	/* ticks and log housekeeping must be durable whatever the server default */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	/* a follower's database may default to read-only (failover.c) */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	repl_shared->supervisor = MyProc;
	LWLockRelease(repl_shared->lock);

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(SenderHandle) * repl_shared->nslots);
	loopcxt = AllocSetContextCreate(TopMemoryContext, "repl_ext supervisor loop",
									ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		long		timeout = SUPERVISOR_IDLE_MS;
		uint32		generation;
		TimestampTz now;

		ResetLatch(MyLatch);
		MemoryContextReset(loopcxt);
		MemoryContextSwitchTo(loopcxt);

		generation = pg_atomic_read_u32(&repl_shared->config_generation);
		if (!started)
		{
			/* wait quietly until the extension exists and we lead */
			if (generation != last_generation && node_is_leader())
			{
				SetCurrentStatementStartTimestamp();
				StartTransactionCommand();
				PushActiveSnapshot(GetTransactionSnapshot());
				SPI_connect();
				repl_log_startup();
				LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
				repl_shared->last_tick = repl_latest_tick();
				LWLockRelease(repl_shared->lock);
				SPI_finish();
				PopActiveSnapshot();
				CommitTransactionCommand();
				started = true;
				elog(LOG, "repl_ext supervisor started in database \"%s\"",
					 repl_database);
				last_generation = 0;	/* force a sync below */
			}
			else
			{
				long		watch;

				last_generation = generation;
				/* not leading: watch the leader (automatic failover) */
				watch = repl_failover_watch();
				if (watch == 0)
					last_generation = 0;	/* elected: start below */
				timeout = Min(timeout, Max(watch, 1));
				/* and forget kept ticks every follower has */
				maybe_trim(false,
						   TimestampDifferenceExceeds(trim.last, GetCurrentTimestamp(),
													  MAINTENANCE_INTERVAL_MS),
						   &trim, &timeout);
			}
		}

		if (started)
		{
			bool		requested;
			long		sync_timeout;

			/*
			 * A waiter (a synchronous commit, wait_for_catchup) gets its tick
			 * at once; plain commits are gathered for batch_interval.
			 */
			LWLockAcquire(repl_shared->lock, LW_SHARED);
			requested = repl_shared->tick_requested > repl_shared->tick_served;
			LWLockRelease(repl_shared->lock);
			now = GetCurrentTimestamp();
			if (!requested &&
				!TimestampDifferenceExceeds(last_tick_time, now, repl_batch_interval))
				timeout = Min(timeout, TimestampDifferenceMilliseconds(now,
																	   TimestampTzPlusMilliseconds(last_tick_time, repl_batch_interval)) + 1);
			else
				maybe_cut_tick(&last_commits, &last_tick_time);

			sync_timeout = repl_sync_manage();
			if (sync_timeout >= 0)
				timeout = Min(timeout, sync_timeout);

			if (generation != last_generation ||
				TimestampDifferenceExceeds(last_sync, now, repl_retry_interval))
			{
				if (!node_is_leader())
				{
					/* extension dropped or role changed: stop everything */
					int			i;

					ereport(LOG,
							(errmsg("repl_ext supervisor: this node no longer leads; its senders stop")));
					started = false;
					last_generation = generation;
					LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
					repl_shared->cur_log_valid = false;
					repl_shared->sync_slot = -1;
					for (i = 0; i < repl_shared->nslots; i++)
						if (repl_shared->slots[i].in_use)
							stop_slot_locked(i, handles);
					LWLockRelease(repl_shared->lock);
					ConditionVariableBroadcast(&repl_shared->progress_cv);
					continue;
				}
				last_generation = generation;
				last_sync = now;
				sync_senders(handles);
			}
			maintained = TimestampDifferenceExceeds(last_maintenance, now,
													MAINTENANCE_INTERVAL_MS);
			if (maintained)
			{
				last_maintenance = now;
				SetCurrentStatementStartTimestamp();
				pgstat_report_activity(STATE_RUNNING, "log maintenance");
				repl_log_maintain();
				pgstat_report_activity(STATE_IDLE, NULL);
			}
			maybe_trim(true, maintained, &trim, &timeout);
		}

		/*
		 * Ask for a wakeup by the next commit only when none is pending
		 * (see log_xact_callback); with commits pending, wake up in time to
		 * cut their tick.  The barrier pairs with the committer's fetch_add:
		 * either it sees the flag, or this sees its commit.
		 */
		if (started)
		{
			if (pg_atomic_read_u64(&repl_shared->commits) == last_commits)
			{
				pg_atomic_write_u32(&repl_shared->wake_on_commit, 1);
				pg_memory_barrier();
				if (pg_atomic_read_u64(&repl_shared->commits) != last_commits)
					timeout = Min(timeout, repl_batch_interval);
			}
			else
				timeout = Min(timeout, repl_batch_interval);
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		process_interrupts();
	}
}

static void sender_flush_wal(void *arg);

/*
 * The end of the WAL inserted so far, in the form XLogFlush takes.  At the
 * start of a page the insert position lies past the page header, where no
 * record ends: the WAL inserted so far ends at the page boundary.
 */
static XLogRecPtr
wal_insert_end(void)
{
	XLogRecPtr	ptr = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(ptr, wal_segment_size) == SizeOfXLogLongPHD)
		ptr -= SizeOfXLogLongPHD;
	else if (ptr % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		ptr -= SizeOfXLogShortPHD;
	return ptr;
}

/*
 * Sender state
 */
static int	sender_slotno = -1;
static char sender_node[NAMEDATALEN];

static ReplFollowerSlot *
my_slot(void)
{
	return &repl_shared->slots[sender_slotno];
}

static void
sender_set_state(ReplFollowerState state)
{
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	my_slot()->state = state;
	LWLockRelease(repl_shared->lock);
}

static void
sender_record_failure(ReplFollowerState state, const char *what,
					  const char *msg)
{
	ReplFollowerSlot *slot = my_slot();

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	snprintf(slot->last_error, REPL_ERROR_LEN, "%s: %s", what, msg);
	slot->last_error_time = GetCurrentTimestamp();
	slot->state = state;
	LWLockRelease(repl_shared->lock);
	ereport(LOG,
			(errmsg("repl_ext: follower \"%s\": %s: %s", sender_node, what, msg)));
}

/* Whether this follower still waits for its initial copy. */
static bool sender_needs_copy = false;

static void
sender_record_error(const char *what, const char *msg)
{
	sender_record_failure(sender_needs_copy ? REPL_FSTATE_COPY_FAILED :
						  REPL_FSTATE_DISCONNECTED, what, msg);
}

static bool
sender_stop_requested(void)
{
	bool		stop;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	stop = my_slot()->stop_requested;
	LWLockRelease(repl_shared->lock);
	return stop;
}

static void
sender_detach(int code, Datum arg)
{
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (sender_slotno >= 0 && my_slot()->proc == MyProc)
	{
		my_slot()->proc = NULL;
		my_slot()->pid = 0;
		if (my_slot()->state != REPL_FSTATE_DISCONNECTED &&
			my_slot()->state != REPL_FSTATE_COPY_FAILED &&
			my_slot()->state != REPL_FSTATE_NEEDS_RESYNC &&
			my_slot()->state != REPL_FSTATE_DIVERGED)
			my_slot()->state = REPL_FSTATE_STOPPED;
		my_slot()->copy_started = 0;
	}
	LWLockRelease(repl_shared->lock);
}

/* Wait on the latch up to ms, handling interrupts; stop if asked. */
static void
sender_sleep(long ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		remaining;

		bool		retry_now;

		ResetLatch(MyLatch);
		if (sender_stop_requested())
			proc_exit(0);
		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		retry_now = my_slot()->retry_now;
		my_slot()->retry_now = false;
		LWLockRelease(repl_shared->lock);
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0 || retry_now)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining, PG_WAIT_EXTENSION);
		process_interrupts();
	}
}

typedef struct SenderConfig
{
	char	   *conninfo;
	char	   *leader_name;
	char	   *leader_conninfo;	/* for the copy's own connections */
	int64		epoch;
	bool		active;
	bool		needs_copy;		/* phase 'copy': initial copy not done */
	bool		truncate_existing;
} SenderConfig;

/* Read this follower's row; false if it is gone. */
static bool
sender_load_config(SenderConfig *cfg)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(sender_node);
	bool		found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute_with_args("SELECT conninfo, NOT (paused OR needs_resync),"
							  "       phase = 'copy', truncate_existing"
							  "  FROM repl.followers WHERE node_name = $1",
							  1, &type, &value, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read repl.followers");
	if (SPI_processed == 1)
	{
		const ReplLocalNode *node = repl_local_node_fresh();
		bool		isnull;

		found = node->role == REPL_ROLE_LEADER;
		cfg->conninfo = MemoryContextStrdup(TopMemoryContext,
											SPI_getvalue(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1));
		cfg->active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 2, &isnull));
		cfg->needs_copy = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 3, &isnull));
		cfg->truncate_existing = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 4, &isnull));
		if (found)
		{
			cfg->leader_name = MemoryContextStrdup(TopMemoryContext, node->node_name);
			cfg->leader_conninfo = node->conninfo ?
				MemoryContextStrdup(TopMemoryContext, node->conninfo) : NULL;
			cfg->epoch = node->epoch;
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

/* Store the follower's position on the leader, for log cleanup. */
static void
sender_persist_position(int64 applied)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(sender_node);
	values[1] = Int64GetDatum(applied);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute_with_args("UPDATE repl.followers SET applied_tick = $2,"
							  " applied_at = pg_catalog.now()"
							  " WHERE node_name = $1 AND applied_tick OPERATOR(pg_catalog.<=) $2",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update repl.followers");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Mark this follower as needing a new copy (SPI connected); no sender runs for it. */
static void
sender_mark_needs_resync(void)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(sender_node);

	if (SPI_execute_with_args("UPDATE repl.followers SET needs_resync = true"
							  " WHERE node_name = $1",
							  1, &type, &value, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update repl.followers");
	repl_wake_supervisor_at_commit();
}

/*
 * Whether the log still holds what follows position applied.  If not, mark
 * the follower as needing re-synchronisation and return false.
 */
static bool
sender_position_kept(int64 applied)
{
	bool		kept;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	kept = repl_tick_exists(applied);
	if (!kept)
	{
		ReplBatch	b;

		SPI_finish();
		kept = repl_read_retained(applied, "", 0, CurrentMemoryContext, &b);
		SPI_connect();
	}
	if (!kept)
		sender_mark_needs_resync();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return kept;
}

/*
 * Whether the follower applied changes this leader's history lacks
 * (failover.c); if so it is marked for re-synchronisation, and the reason
 * recorded for repl.status.
 */
static bool
sender_diverged(int64 applied_epoch, int64 applied)
{
	char	   *why = NULL;
	bool		diverged;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	diverged = repl_position_diverged(applied_epoch, applied, &why);
	if (diverged)
	{
		why = MemoryContextStrdup(TopMemoryContext, why);
		sender_mark_needs_resync();
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (diverged)
	{
		sender_record_failure(REPL_FSTATE_DIVERGED, "diverged", why);
		ereport(WARNING,
				(errmsg("follower \"%s\" has diverged from this leader", sender_node),
				 errdetail("Follower \"%s\": %s.", sender_node, why),
				 errhint("Copy it again with repl.resync_follower('%s').", sender_node)));
	}
	return diverged;
}

/* When the initial copy (or a table copy) finished; 0 once caught up. */
static TimestampTz sender_catchup_start = 0;

/*
 * Copy tables to the follower (copy.c): all of them before it first
 * streams (initial), or those added on the leader since.  Returns false
 * after recording the failure; the caller closes the connection.
 */
static bool
sender_copy(ReplConn *conn, SenderConfig *cfg, bool initial)
{
	ReplCopyRequest req;
	int64		tick;
	char	   *err;

	if (cfg->leader_conninfo == NULL)
	{
		sender_record_failure(REPL_FSTATE_COPY_FAILED, "copy failed",
							  "the leader has no connection string (repl.init_leader)");
		return false;
	}
	req.node_name = sender_node;
	req.leader_name = cfg->leader_name;
	req.leader_conninfo = cfg->leader_conninfo;
	req.epoch = cfg->epoch;
	req.initial = initial;
	req.truncate_existing = cfg->truncate_existing;
	if (!repl_copy_tables(conn, &req, my_slot(), &tick, &err))
	{
		sender_record_failure(REPL_FSTATE_COPY_FAILED, "copy failed", err);
		return false;
	}
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	my_slot()->last_error[0] = '\0';
	my_slot()->last_error_time = 0;
	my_slot()->state = REPL_FSTATE_CATCHING_UP;
	LWLockRelease(repl_shared->lock);
	sender_catchup_start = GetCurrentTimestamp();
	return true;
}

/*
 * After a change of repl's catalogs: is this follower to be copied again
 * (repl.resync_follower; or it is gone), and does it lack a replicated table
 * (added on the leader)?
 */
static void
sender_check_config(bool *recopy, bool *tables_missing)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(sender_node);
	bool		isnull;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute_with_args("SELECT NOT EXISTS (SELECT 1 FROM repl.followers"
							  "                    WHERE node_name OPERATOR(pg_catalog.=) $1"
							  "                      AND phase OPERATOR(pg_catalog.=) 'streaming'),"
							  "       EXISTS (SELECT 1 FROM repl.replicated_tables t"
							  "                WHERE NOT EXISTS (SELECT 1 FROM repl.follower_tables f"
							  "                  WHERE f.node_name OPERATOR(pg_catalog.=) $1"
							  "                    AND f.relid OPERATOR(pg_catalog.=) t.relid))",
							  1, &type, &value, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read repl.followers");
	*recopy = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	*tables_missing = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * The follower already took its role from an earlier copy whose end the
 * leader did not record (it failed in between): the copy is complete.
 */
static void
sender_mark_copied(void)
{
	Oid			type = TEXTOID;
	Datum		value = CStringGetTextDatum(sender_node);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute_with_args("UPDATE repl.followers SET phase = 'streaming',"
							  " truncate_existing = false"
							  " WHERE node_name OPERATOR(pg_catalog.=) $1",
							  1, &type, &value, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update repl.followers");
	/* the supervisor may now give it the synchronous role */
	repl_wake_supervisor_at_commit();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Send the follower the cluster's nodes and epochs and the oldest position
 * any follower needs (repl.follower_sync_cluster); it also tells whether
 * the follower still takes this leader.  A follower that knows a newer
 * epoch fences this node, and the sender exits.  Returns false after
 * recording a failure.
 */
static bool
sender_push_cluster(ReplConn *conn, SenderConfig *cfg)
{
	char	   *cluster;
	const char *params[3];
	char		epoch[32];
	ReplResult *res;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT repl.cluster_state()::text", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read repl.cluster_state()");
	cluster = MemoryContextStrdup(TopMemoryContext,
								  SPI_getvalue(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	snprintf(epoch, sizeof(epoch), INT64_FORMAT, cfg->epoch);
	params[0] = cfg->leader_name;
	params[1] = epoch;
	params[2] = cluster;
	res = repl_conn_exec_prepared(conn, "repl_sync_cluster",
								  "SELECT accepted, node_epoch, node_leader"
								  "  FROM repl.follower_sync_cluster($1, $2::bigint, $3::jsonb)",
								  3, params, NULL, NULL, NULL, NULL);
	pfree(cluster);
	if (!res->ok)
	{
		sender_record_error("could not update the follower's node list", res->message);
		return false;
	}
	if (strcmp(repl_result_value(res, 0, 0), "t") != 0)
	{
		const char *their_epoch = repl_result_value(res, 0, 1);
		const char *their_leader = repl_result_value(res, 0, 2);
		int64		e = their_epoch ? strtoi64(their_epoch, NULL, 10) : 0;

		if (e > cfg->epoch && their_leader != NULL)
		{
			sender_record_failure(REPL_FSTATE_DISCONNECTED, "fenced",
								  psprintf("the follower follows \"%s\" in the newer epoch " INT64_FORMAT,
										   their_leader, e));
			repl_fence_self(their_leader, e);
			proc_exit(0);
		}
		sender_record_error("follower no longer follows this leader",
							psprintf("it follows \"%s\" in epoch %s",
									 their_leader ? their_leader : "(none)",
									 their_epoch ? their_epoch : "(none)"));
		return false;
	}
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	my_slot()->last_contact = GetCurrentTimestamp();
	LWLockRelease(repl_shared->lock);
	return true;
}

/*
 * Stream batches over an open connection until an error.  Returns after
 * recording the error; the caller reconnects.
 */
static void
sender_stream(ReplConn *conn, SenderConfig *cfg, int64 applied,
			  MemoryContext batchcxt, long *backoff)
{
	TimestampTz last_persist = GetCurrentTimestamp();
	TimestampTz last_push = GetCurrentTimestamp();
	int64		persisted = applied;
	uint32		tables_generation = 0;
	uint32		pushed_generation = 0;

	for (;;)
	{
		ReplBatch	batch;
		bool		have;
		ReplResult *res;
		const char *values[1];
		int			lengths[1];
		int			formats[1] = {1};
		uint32		generation;
		XLogRecPtr	batch_wal_end;

		ResetLatch(MyLatch);
		if (sender_stop_requested())
			proc_exit(0);

		/* tables added on the leader: copy them before any batch needs them */
		generation = pg_atomic_read_u32(&repl_shared->config_generation);
		if (generation != tables_generation)
		{
			bool		recopy;
			bool		missing;

			tables_generation = generation;
			sender_check_config(&recopy, &missing);
			/* repl.resync_follower: stop streaming; the copy starts over */
			if (recopy)
				return;
			if (missing && !sender_copy(conn, cfg, false))
				return;
		}
		/*
		 * Once a second, even when idle: the node list and retention point
		 * for the follower, and a heartbeat that tells whether it still
		 * takes this leader.
		 */
		if (TimestampDifferenceExceeds(last_push, GetCurrentTimestamp(), 1000) ||
			generation != pushed_generation)
		{
			pushed_generation = generation;
			if (!sender_push_cluster(conn, cfg))
				return;
			last_push = GetCurrentTimestamp();
		}
		MemoryContextReset(batchcxt);
		MemoryContextSwitchTo(batchcxt);

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "reading a batch");
		have = repl_read_batch(applied, repl_batch_max_changes,
							   cfg->leader_name, cfg->epoch, sender_node,
							   batchcxt, &batch);
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(batchcxt);
		/* past the commit of every tick this batch's snapshot saw */
		batch_wal_end = wal_insert_end();

		if (!have)
		{
			pgstat_report_activity(STATE_IDLE, NULL);
			if (sender_catchup_start != 0)
			{
				ereport(LOG,
						(errmsg("repl_ext: follower \"%s\" caught up at position " INT64_FORMAT " in %ld ms after its copy",
								sender_node, applied,
								TimestampDifferenceMilliseconds(sender_catchup_start,
																GetCurrentTimestamp()))));
				sender_catchup_start = 0;
				sender_set_state(REPL_FSTATE_STREAMING);
			}

			/*
			 * Also refresh applied_at now and then while idle: it tells the
			 * retention check that this follower is alive.
			 */
			if ((applied != persisted &&
				 TimestampDifferenceExceeds(last_persist, GetCurrentTimestamp(), 1000)) ||
				TimestampDifferenceExceeds(last_persist, GetCurrentTimestamp(), 10000))
			{
				sender_persist_position(applied);
				persisted = applied;
				last_persist = GetCurrentTimestamp();
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			process_interrupts();
			continue;
		}

		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		my_slot()->sent_tick = batch.to_tick;
		LWLockRelease(repl_shared->lock);

		pgstat_report_activity(STATE_RUNNING, "sending a batch");
		values[0] = batch.data.data;
		lengths[0] = batch.data.len;
		res = repl_conn_exec_prepared(conn, "repl_apply_batch",
									  "SELECT repl.apply_batch($1::bytea)", 1,
									  values, lengths, formats,
									  sender_flush_wal, &batch_wal_end);
		if (!res->ok)
		{
			/* the follower's context names the change or DDL command */
			sender_record_error("apply failed",
								res->context ?
								psprintf("%s (%s)", res->message, res->context) :
								res->message);
			return;
		}
		applied = strtoi64(repl_result_value(res, 0, 0), NULL, 10);
		*backoff = 100;


		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		my_slot()->last_contact = GetCurrentTimestamp();
		my_slot()->applied_tick = applied;
		my_slot()->applied_tick_time = batch.to_tick_time;
		my_slot()->state = sender_catchup_start != 0 ?
			REPL_FSTATE_CATCHING_UP : REPL_FSTATE_STREAMING;
		LWLockRelease(repl_shared->lock);
		ConditionVariableBroadcast(&repl_shared->progress_cv);

		if (TimestampDifferenceExceeds(last_persist, GetCurrentTimestamp(), 1000))
		{
			sender_persist_position(applied);
			persisted = applied;
			last_persist = GetCurrentTimestamp();
		}
	}
}

/*
 * Before the follower commits a batch: make this node's WAL durable up to
 * *arg.  Ticks are committed without waiting for their flush
 * (maybe_cut_tick); the flush runs while the follower applies, and the
 * follower's commit waits for it, so no follower holds a tick or change
 * that a crash of this node could take back.
 */
static void
sender_flush_wal(void *arg)
{
	XLogFlush(*(XLogRecPtr *) arg);
}

/*
 * After a failure: close the connection (if any), wait out the backoff on
 * the latch, and double it for next time, up to repl_ext.retry_interval.
 */
static void
sender_back_off(ReplConn *conn, long *backoff)
{
	if (conn != NULL)
		repl_conn_close(conn);
	sender_sleep(*backoff);
	*backoff = Min(*backoff * 2, repl_retry_interval);
}

/*
 * repl_sender_main
 *		Entry point of a sender; main_arg is its slot number.
 */
void
repl_sender_main(Datum main_arg)
{
	long		backoff = 100;
	MemoryContext batchcxt;

	sender_slotno = DatumGetInt32(main_arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(repl_database, NULL, 0);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	strlcpy(sender_node, my_slot()->node_name, NAMEDATALEN);
	my_slot()->proc = MyProc;
	my_slot()->pid = MyProcPid;
	my_slot()->state = REPL_FSTATE_CONNECTING;
	LWLockRelease(repl_shared->lock);
	before_shmem_exit(sender_detach, (Datum) 0);
	pgstat_report_appname(psprintf("repl_ext sender for %s", sender_node));

	batchcxt = AllocSetContextCreate(TopMemoryContext, "repl_ext batch",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SenderConfig cfg;
		ReplConn   *conn;
		ReplResult *res;
		char	   *err;
		const char *params[2];
		char		epoch[32];
		int64		applied;
		int64		applied_epoch;

		if (sender_stop_requested())
			proc_exit(0);
		if (!sender_load_config(&cfg) || !cfg.active)
			proc_exit(0);
		sender_needs_copy = cfg.needs_copy;

		sender_set_state(REPL_FSTATE_CONNECTING);
		pgstat_report_activity(STATE_RUNNING, "connecting");
		conn = repl_conn_open(cfg.conninfo, sender_node, &err);
		if (conn == NULL)
		{
			sender_record_error("could not connect", err);
			sender_back_off(NULL, &backoff);
			continue;
		}

		if (cfg.needs_copy)
		{
			res = repl_conn_exec(conn, "SELECT role, leader_name FROM repl.node_info()",
								 0, NULL, NULL, NULL);
			if (!res->ok)
			{
				sender_record_error("could not read the follower's role", res->message);
				sender_back_off(conn, &backoff);
				continue;
			}
			/* a copy again (resync, rejoin) replaces even a follower of ours */
			if (!cfg.truncate_existing &&
				strcmp(repl_result_value(res, 0, 0), "follower") == 0 &&
				repl_result_value(res, 0, 1) != NULL &&
				strcmp(repl_result_value(res, 0, 1), cfg.leader_name) == 0)
				sender_mark_copied();
			else if (!sender_copy(conn, &cfg, true))
			{
				sender_back_off(conn, &backoff);
				continue;
			}
			sender_needs_copy = false;
		}

		snprintf(epoch, sizeof(epoch), INT64_FORMAT, cfg.epoch);
		params[0] = cfg.leader_name;
		params[1] = epoch;
		res = repl_conn_exec(conn,
							 "SELECT accepted, role, node_leader, node_epoch, applied_epoch,"
							 "       applied_position FROM repl.follower_handshake($1, $2::bigint)",
							 2, params, NULL, NULL);
		if (!res->ok)
		{
			sender_record_error("handshake failed", res->message);
			sender_back_off(conn, &backoff);
			continue;
		}
		if (strcmp(repl_result_value(res, 0, 0), "t") != 0)
		{
			const char *role = repl_result_value(res, 0, 1);
			const char *their_leader = repl_result_value(res, 0, 2);
			int64		their_epoch = repl_result_value(res, 0, 3) ?
				strtoi64(repl_result_value(res, 0, 3), NULL, 10) : 0;

			if (their_epoch > cfg.epoch && their_leader != NULL &&
				strcmp(their_leader, cfg.leader_name) != 0)
			{
				/* someone leads a newer epoch: this node must stop */
				sender_record_failure(REPL_FSTATE_DISCONNECTED, "fenced",
									  psprintf("node \"%s\" follows \"%s\" in the newer epoch " INT64_FORMAT,
											   sender_node, their_leader, their_epoch));
				repl_conn_close(conn);
				repl_fence_self(their_leader, their_epoch);
				proc_exit(0);
			}
			sender_record_error("handshake refused",
								strcmp(role, "fenced") == 0 ?
								psprintf("node \"%s\" is a fenced former leader; call repl.rejoin() on it",
										 sender_node) :
								psprintf("node \"%s\" has the role \"%s\"%s%s in epoch " INT64_FORMAT,
										 sender_node, role,
										 their_leader ? " with leader " : "",
										 their_leader ? their_leader : "", their_epoch));
			sender_back_off(conn, &backoff);
			continue;
		}
		applied = strtoi64(repl_result_value(res, 0, 5), NULL, 10);
		applied_epoch = strtoi64(repl_result_value(res, 0, 4), NULL, 10);
		if (sender_diverged(applied_epoch, applied))
		{
			repl_conn_close(conn);
			proc_exit(0);
		}

		/*
		 * apply_batch switches to replica mode for its transaction anyway;
		 * having the session there already spares two plan cache resets
		 * per batch (the GUC's assign hook resets it on every change).
		 */
		res = repl_conn_exec(conn, "SELECT repl.prepare_apply_session(false)",
							 0, NULL, NULL, NULL);
		if (!res->ok)
		{
			sender_record_error("could not set session_replication_role", res->message);
			sender_back_off(conn, &backoff);
			continue;
		}
		if (!sender_position_kept(applied))
		{
			sender_record_error("needs re-synchronisation",
								psprintf("position " INT64_FORMAT " is no longer in the replication log",
										 applied));
			repl_conn_close(conn);
			proc_exit(0);
		}
		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		my_slot()->last_contact = GetCurrentTimestamp();
		my_slot()->applied_tick = applied;
		my_slot()->sent_tick = applied;
		my_slot()->state = sender_catchup_start != 0 ?
			REPL_FSTATE_CATCHING_UP : REPL_FSTATE_STREAMING;
		LWLockRelease(repl_shared->lock);
		ConditionVariableBroadcast(&repl_shared->progress_cv);
		ereport(LOG,
				(errmsg("repl_ext: streaming to follower \"%s\" from position " INT64_FORMAT,
						sender_node, applied)));

		sender_stream(conn, &cfg, applied, batchcxt, &backoff);
		sender_back_off(conn, &backoff);
	}
}
