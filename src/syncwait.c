/*-------------------------------------------------------------------------
 *
 * syncwait.c
 *		Synchronous followers: a commit that changed replicated tables
 *		returns only once the synchronous follower has applied it, and the
 *		supervisor moves the synchronous role when that follower fails.
 *
 * The role.  repl.followers marks at most one follower synchronous (a
 * partial unique index).  The supervisor mirrors that into the slots and
 * sets ReplShared.sync_slot to the slot of that follower once its initial
 * copy is done.  A follower still copying cannot confirm anything, and
 * making every commit wait for a copy of unknown length would stop the
 * leader: until then the follower is "pending" and commits do not wait.
 * (Until the supervisor has first read the catalog after a server start,
 * commits do not wait either: waiting could deadlock with a transaction
 * that the supervisor needs to read past.)  A follower that already holds
 * the role keeps it when it is copied again (repl.resync_follower): the
 * role then moves at once to a streaming follower if there is one, and
 * otherwise commits wait (strict) or degrade (degrade) as for a failure.
 * A commit released because the DBA turned the role off while it waited
 * gets a WARNING.
 *
 * The wait.  It runs in the XACT_EVENT_COMMIT callback: the transaction is
 * committed and visible, interrupts are held (CommitTransaction), and no
 * error may be raised.  If the transaction cut its own tick at PRE_COMMIT
 * (repl_sync_commit_prepare, repl_cut_own_tick: while no other commit
 * waits), that tick holds it, and the wait wakes the synchronous
 * follower's sender before its flush, the other senders after it
 * (ship_own_tick).
 * Otherwise the backend asks the supervisor for a tick (which the
 * supervisor cuts at once, without waiting for repl_ext.batch_interval),
 * learns the id of the first tick cut after its request -- that tick's
 * snapshot sees this transaction -- and sleeps until the synchronous
 * follower's applied position reaches it.  Senders broadcast progress_cv
 * after every acknowledgement, the supervisor after every tick and every
 * change of the role, so the sleep is on the latch only.  As in
 * replication/syncrep.c, a cancel ends the wait with a WARNING, a
 * termination also silences the client (it must not read the commit as
 * confirmed), and postmaster death is treated as a termination.
 *
 * The local flush.  A commit that will wait does not flush its own WAL
 * before it becomes visible: repl_sync_commit_prepare turns
 * synchronous_commit off for it at PRE_COMMIT.  With its own tick, nothing
 * of the tick comes after its commit record, so repl_sync_commit_wait
 * flushes up to XactLastCommitEnd at once, while the senders read and ship
 * the tick; otherwise when the wait ends, whatever ended it, as the
 * supervisor's tick (after the commit in the WAL) needs a flush of its own
 * anyway.  The flush thus runs while the batch is cut, shipped and
 * applied, not before.  The client's guarantee is unchanged: the
 * supervisor flushes every tick it cuts (which covers this commit, cut
 * after it), and a sender flushes the leader's WAL past a batch before it
 * lets the follower commit it (sender_flush_wal), so no follower ever holds
 * what the leader could lose, and no client learns of a commit not flushed
 * here.
 * As with synchronous_commit = off, other sessions may see the rows for
 * the length of one flush before they are durable; anything they write
 * after reading them commits later in the WAL and flushes them too.  Not
 * done when synchronous_standby_names is set (PostgreSQL's own wait
 * needs synchronous_commit), when the session already chose not to
 * flush, or with repl_ext.synchronous_flush_overlap = off.
 *
 * Failure.  The supervisor calls repl_sync_manage on every pass.  The
 * synchronous follower has failed when its sender has not been streaming
 * for repl_ext.synchronous_failover_timeout, or when a commit has waited
 * that long (a follower whose connection hangs still looks "streaming").
 * The role then goes to the streaming follower with the highest applied
 * position, in repl.followers as well, so the failed follower comes back
 * as asynchronous (no flapping); the DBA moves the role back with
 * repl.set_synchronous.  Waiting commits are released as soon as the new
 * synchronous follower has applied them.  With no streaming follower the
 * role stays where it is: in strict mode commits keep waiting until a
 * follower confirms; in degrade mode the first commit that has waited
 * repl_ext.synchronous_timeout sets sync_degraded, returns with a WARNING,
 * and later commits do not wait until the synchronous follower has caught
 * up again (or another follower took the role).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "shmem.h"
#include "syncwait.h"

/* How often a waiting commit looks again even without a wakeup. */
#define SYNC_RECHECK_MS		1000

/* Supervisor only: since when each slot has not been streaming (0: it is). */
static TimestampTz *unhealthy_since = NULL;

/* Supervisor only: a failure without a replacement has been logged. */
static bool reported_no_candidate = false;

/*
 * repl_slot_is_streaming
 *		Whether the slot's sender is connected and streaming.  The caller
 *		holds ReplShared.lock.
 */
bool
repl_slot_is_streaming(const ReplFollowerSlot *slot)
{
	return slot->in_use && slot->proc != NULL && !slot->stop_requested &&
		slot->state == REPL_FSTATE_STREAMING;
}

/*
 * repl_sync_waiting_locked
 *		Number of commits waiting, and the start of the oldest wait (0 when
 *		none).  The caller holds ReplShared.lock.
 */
int
repl_sync_waiting_locked(TimestampTz *oldest)
{
	int			n = 0;
	int			i;

	*oldest = 0;
	for (i = 0; i < repl_sync_nwaiters; i++)
	{
		TimestampTz start = repl_sync_waiters[i].start;

		if (start == 0)
			continue;
		n++;
		if (*oldest == 0 || start < *oldest)
			*oldest = start;
	}
	return n;
}

/*
 * repl_sync_assign_locked
 *		Point sync_slot at the slot of the configured synchronous follower
 *		once its copy is done, and wake waiters if that changed.  Called by
 *		the supervisor with ReplShared.lock held exclusively, after it has
 *		copied repl.followers into the slots.
 */
void
repl_sync_assign_locked(void)
{
	int			old = repl_shared->sync_slot;
	int			i;

	repl_shared->sync_slot = -1;
	for (i = 0; i < repl_shared->nslots; i++)
	{
		ReplFollowerSlot *slot = &repl_shared->slots[i];

		/*
		 * A follower that held the role keeps it while it is copied again
		 * (repl.resync_follower): commits must not stop waiting because the
		 * DBA repairs the synchronous follower.  repl_sync_manage hands the
		 * role on at once if another follower is streaming.
		 */
		if (slot->in_use && slot->synchronous && (slot->copied || i == old))
			repl_shared->sync_slot = i;
	}
	if (repl_shared->sync_slot != old)
	{
		repl_shared->sync_degraded = false;
		/* waiters only read the shared state: a spurious wakeup is harmless */
		ConditionVariableBroadcast(&repl_shared->progress_cv);
	}
}

/*
 * Record the move of the synchronous role from one follower to another in
 * repl.followers.  Returns false (and changes nothing) if the catalog no
 * longer matches: the DBA moved the role, or the candidate was paused or
 * removed meanwhile.  The supervisor's own transaction.
 */
static bool
persist_role_move(const char *from, const char *to)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		ok;
	bool		isnull;

	values[0] = CStringGetTextDatum(from);
	values[1] = CStringGetTextDatum(to);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	pgstat_report_activity(STATE_RUNNING, "moving the synchronous role");
	if (SPI_execute("LOCK TABLE repl.followers IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock repl.followers");
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FILTER (WHERE node_name OPERATOR(pg_catalog.=) $1 AND synchronous)"
							  "     OPERATOR(pg_catalog.=) 1"
							  "   AND pg_catalog.count(*) FILTER (WHERE node_name OPERATOR(pg_catalog.=) $2"
							  "     AND NOT synchronous AND NOT paused AND NOT needs_resync"
							  "     AND phase OPERATOR(pg_catalog.=) 'streaming') OPERATOR(pg_catalog.=) 1"
							  "  FROM repl.followers",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read repl.followers");
	ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull));
	if (ok)
	{
		/* two statements: the partial unique index allows one at a time */
		if (SPI_execute_with_args("UPDATE repl.followers SET synchronous = false"
								  " WHERE node_name OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE ||
			SPI_execute_with_args("UPDATE repl.followers SET synchronous = true"
								  " WHERE node_name OPERATOR(pg_catalog.=) $1",
								  1, &types[1], &values[1], NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update repl.followers");
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/*
 * repl_sync_manage
 *		Supervisor: watch the synchronous follower, hand its role to the
 *		best streaming follower when it fails, and end the degraded state
 *		once it confirms again (see file header).  Returns how many ms until
 *		it needs to look again, or -1 if only a wakeup matters.
 */
long
repl_sync_manage(void)
{
	TimestampTz now = GetCurrentTimestamp();
	ReplFollowerSlot *slot;
	TimestampTz oldest;
	TimestampTz deadline = 0;
	int			nwaiting;
	int			s;
	int			i;
	int			cand = -1;
	bool		healthy;
	bool		failed = false;
	bool		copying = false;
	bool		resumed = false;
	char		sync_name[NAMEDATALEN];
	char		failed_name[NAMEDATALEN];
	char		cand_name[NAMEDATALEN];

	if (unhealthy_since == NULL)
		unhealthy_since = MemoryContextAllocZero(TopMemoryContext,
												 sizeof(TimestampTz) * repl_shared->nslots);

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	s = repl_shared->sync_slot;
	if (s < 0)
	{
		repl_shared->sync_degraded = false;
		LWLockRelease(repl_shared->lock);
		reported_no_candidate = false;
		return -1;
	}
	slot = &repl_shared->slots[s];
	strlcpy(sync_name, slot->node_name, NAMEDATALEN);
	healthy = repl_slot_is_streaming(slot);
	copying = !slot->copied;
	if (healthy)
		unhealthy_since[s] = 0;
	else if (unhealthy_since[s] == 0)
		unhealthy_since[s] = now;
	nwaiting = repl_sync_waiting_locked(&oldest);

	if (repl_shared->sync_degraded &&
		(repl_synchronous_mode == REPL_SYNC_STRICT ||
		 (healthy && slot->applied_tick >= repl_shared->last_tick)))
	{
		repl_shared->sync_degraded = false;
		resumed = true;
	}

	if (!healthy && copying)
		deadline = unhealthy_since[s];	/* being copied again: it cannot
										 * confirm for a while */
	else if (!healthy)
		deadline = TimestampTzPlusMilliseconds(unhealthy_since[s],
											   repl_synchronous_failover_timeout);
	if (nwaiting > 0)
	{
		TimestampTz d = TimestampTzPlusMilliseconds(oldest,
													repl_synchronous_failover_timeout);

		if (deadline == 0 || d < deadline)
			deadline = d;
	}
	if (deadline != 0 && now >= deadline)
	{
		failed = true;
		for (i = 0; i < repl_shared->nslots; i++)
		{
			ReplFollowerSlot *other = &repl_shared->slots[i];

			if (i == s || !other->copied || !repl_slot_is_streaming(other))
				continue;
			if (cand < 0 || other->applied_tick > repl_shared->slots[cand].applied_tick)
				cand = i;
		}
		strlcpy(failed_name, sync_name, NAMEDATALEN);
		if (cand >= 0)
			strlcpy(cand_name, repl_shared->slots[cand].node_name, NAMEDATALEN);
	}
	LWLockRelease(repl_shared->lock);

	if (resumed)
	{
		ereport(LOG,
				(errmsg("repl_ext: synchronous follower \"%s\" has caught up; commits wait for it again",
						sync_name)));
		ConditionVariableBroadcast(&repl_shared->progress_cv);
	}

	if (!failed)
	{
		reported_no_candidate = false;
		if (deadline == 0)
			return -1;
		return Max(TimestampDifferenceMilliseconds(now, deadline), 1);
	}

	if (cand < 0)
	{
		if (!reported_no_candidate)
			ereport(LOG,
					(errmsg("repl_ext: synchronous follower \"%s\" does not confirm commits and no other follower is streaming",
							failed_name),
					 errdetail(repl_synchronous_mode == REPL_SYNC_STRICT ?
							   "Commits keep waiting until a follower confirms them (repl_ext.synchronous_mode = strict)." :
							   "Commits stop waiting after repl_ext.synchronous_timeout (repl_ext.synchronous_mode = degrade).")));
		reported_no_candidate = true;
		/* look again soon: a follower may start streaming */
		return 100;
	}
	reported_no_candidate = false;

	if (!persist_role_move(failed_name, cand_name))
		return 100;				/* the catalog changed; the next sync reads it */

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (repl_shared->sync_slot == s)
	{
		repl_shared->slots[s].synchronous = false;
		repl_shared->slots[cand].synchronous = true;
		repl_sync_assign_locked();
	}
	unhealthy_since[cand] = 0;
	LWLockRelease(repl_shared->lock);
	ConditionVariableBroadcast(&repl_shared->progress_cv);
	ereport(LOG,
			(errmsg("repl_ext: synchronous follower \"%s\" failed; follower \"%s\" is now synchronous",
					failed_name, cand_name),
			 copying ?
			 errdetail("\"%s\" is being copied again (repl.resync_follower). It continues as asynchronous.",
					   failed_name) :
			 errdetail("\"%s\" has not confirmed commits for %d ms (repl_ext.synchronous_failover_timeout). It stays a follower and continues as asynchronous.",
					   failed_name, repl_synchronous_failover_timeout),
			 errhint("Move the role back with repl.set_synchronous('%s') once it has caught up.",
					 failed_name)));
	return 100;
}

/*
 * The leader's epoch when this transaction wrote the log (set by the
 * capture trigger): a newer fenced_epoch means the node was fenced since.
 */
int64		repl_write_epoch = 0;

/*
 * With repl_ext.fence_timeout set: has this leader reached no follower
 * within that time, or since since (a commit's wait began)?  Then it may
 * have been replaced, and it must not acknowledge a commit that no
 * follower confirmed, whatever the mode.
 */
static bool
leader_isolated_locked(TimestampTz since)
{
	TimestampTz limit;
	int			i;

	if (repl_fence_timeout <= 0)
		return false;
	limit = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -repl_fence_timeout);
	if (since > limit)
		limit = since;
	for (i = 0; i < repl_shared->nslots; i++)
	{
		ReplFollowerSlot *slot = &repl_shared->slots[i];

		if (slot->in_use && slot->last_contact >= limit)
			return false;
	}
	return true;
}

static bool
leader_isolated(TimestampTz since)
{
	bool		isolated;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	isolated = leader_isolated_locked(since);
	LWLockRelease(repl_shared->lock);
	return isolated;
}

/*
 * Was this node fenced since the transaction wrote the log?  Then no
 * follower will confirm the commit: say so (it is not replicated) and
 * return true.
 */
static bool
fenced_since_write(void)
{
	int64		fenced = (int64) pg_atomic_read_u64(&repl_shared->fenced_epoch);

	if (fenced <= repl_write_epoch)
		return false;
	ereport(WARNING,
			(errmsg("canceling wait for synchronous follower: this node was fenced by a leader of epoch " INT64_FORMAT,
					fenced),
			 errdetail("The transaction has already committed locally, but was not replicated and will be reported as lost by repl.rejoin().")));
	return true;
}

/* Why a commit wait ended. */
typedef enum SyncWaitOutcome
{
	SYNC_WAITING,
	SYNC_CONFIRMED,
	SYNC_NO_ROLE,				/* no follower is synchronous (any more) */
	SYNC_DEGRADED				/* degrade mode: commits no longer wait */
} SyncWaitOutcome;

static void
end_wait(ReplSyncWaiter *me)
{
	ConditionVariableCancelSleep();
	pg_atomic_fetch_sub_u32(&repl_shared->sync_nwaiting, 1);
	if (me == NULL)
		return;
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	me->start = 0;
	me->target = -1;
	LWLockRelease(repl_shared->lock);
}

/*
 * Would a commit of this backend wait now?  Unlocked peek, as a hint
 * only: a commit that then does not wait still flushes (see below).
 */
static bool
sync_wait_expected(void)
{
	if (!repl_synchronous_commit || repl_shared == NULL)
		return false;
	if (repl_shared->sync_slot < 0)
		return false;
	if (repl_shared->sync_degraded && repl_synchronous_mode == REPL_SYNC_DEGRADE)
		return false;
	return (int64) pg_atomic_read_u64(&repl_shared->fenced_epoch) <= repl_write_epoch;
}

static bool flush_deferred = false;

/*
 * Is no other commit waiting for the synchronous follower?  Otherwise a
 * batch is on its way, which this commit cannot join, and by the time it
 * is confirmed the supervisor has cut one tick for all commits that came
 * meanwhile (cheaper than one each).  A hint only.
 */
static bool
sync_no_waiters(void)
{
	return pg_atomic_read_u32(&repl_shared->sync_nwaiting) == 0;
}

/*
 * repl_sync_commit_prepare
 *		At XACT_EVENT_PRE_COMMIT of a transaction that wrote the log: if
 *		its commit is going to wait for the synchronous follower, let the
 *		commit skip the local WAL flush, which the wait then takes (see
 *		file header).  Returns true if the caller should cut the
 *		transaction's own tick (repl_cut_own_tick): the commit will wait,
 *		no other commit waits (sync_no_waiters), the commit does not flush
 *		(the tick lock would be held across the flush), and PostgreSQL's
 *		own synchronous replication does not wait inside it
 *		(synchronous_standby_names).
 */
bool
repl_sync_commit_prepare(void)
{
	flush_deferred = false;
	if ((SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0') ||
		IsInParallelMode() ||
		!sync_wait_expected())
		return false;
	if (synchronous_commit <= SYNCHRONOUS_COMMIT_OFF)
		return sync_no_waiters();
	if (!repl_synchronous_flush_overlap)
		return false;

	/*
	 * Reverted with the transaction's other SET LOCALs.  Not applied (it
	 * cannot fail here, but must never abort the commit): the commit
	 * flushes as usual.
	 */
	if (set_config_option("synchronous_commit", "off", PGC_USERSET,
						  PGC_S_SESSION, GUC_ACTION_LOCAL, true, DEBUG1,
						  false) > 0)
		flush_deferred = true;
	return flush_deferred && sync_no_waiters();
}

/*
 * repl_sync_commit_abort
 *		The transaction did not commit after all.
 */
void
repl_sync_commit_abort(void)
{
	flush_deferred = false;
}

/*
 * Flush this transaction's commit record if its commit did not.  Mostly a
 * no-op by then: the supervisor and the sender flushed past it.
 */
static void
flush_own_commit(void)
{
	if (!flush_deferred)
		return;
	flush_deferred = false;
	XLogFlush(XactLastCommitEnd);
}

/*
 * A commit with its own tick (repl_own_tick_committed published it): wake
 * the senders, which read and ship the tick while this flushes the commit
 * record.  Nothing of the tick comes after that record.  Each wakeup costs
 * the commit a signal (often an interprocessor interrupt too), so only the
 * sender of sync_slot, the follower the commit waits for, is woken before
 * the flush; the others after it, while that follower applies the tick.
 */
static void
ship_own_tick(int64 own_tick, int sync_slot)
{
	if (own_tick > 0 && sync_slot >= 0)
		repl_wake_sender(sync_slot);
	else if (own_tick > 0)
		repl_wake_senders(-1);
	flush_own_commit();
	if (own_tick > 0 && sync_slot >= 0)
		repl_wake_senders(sync_slot);
}

/*
 * A transaction that sent notifications holds the lock that PreCommit_Notify
 * (commands/async.c) takes to keep the notification queue in commit order
 * until its locks are released, after this wait.  It has committed: let the
 * next notifying transaction go now.  Otherwise every NOTIFY in the database
 * would wait for this confirmation, and a commit cutting its own tick could
 * wait for this lock while it holds the tick lock that the supervisor needs
 * to cut the tick this commit waits for (repl_cut_own_tick).
 */
static void
release_notify_lock(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, InvalidOid, 0);
	if (LockHeldByMe(&tag, AccessExclusiveLock))
		UnlockSharedObject(DatabaseRelationId, InvalidOid, 0, AccessExclusiveLock);
}

/*
 * repl_sync_commit_wait
 *		Wait until the synchronous follower has applied the transaction
 *		that just committed (see file header).  Called at XACT_EVENT_COMMIT
 *		by a transaction that wrote the replication log.  Never raises an
 *		error: the commit has happened.
 */
void
repl_sync_commit_wait(int64 own_tick)
{
	ReplSyncWaiter *me = NULL;
	PGPROC	   *supervisor;
	TimestampTz start;
	int64		request;
	int64		target = -1;
	char		node_name[NAMEDATALEN];
	char		waited_for[NAMEDATALEN] = "";
	int			sync_slot;

	if (!repl_synchronous_commit || repl_shared == NULL)
	{
		ship_own_tick(own_tick, -1);
		return;
	}
	if (fenced_since_write())
	{
		ship_own_tick(own_tick, -1);
		return;
	}

	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	if (repl_shared->sync_slot < 0 ||
		(repl_shared->sync_degraded &&
		 repl_synchronous_mode == REPL_SYNC_DEGRADE &&
		 !leader_isolated_locked(0)))
	{
		LWLockRelease(repl_shared->lock);
		ship_own_tick(own_tick, -1);
		return;
	}
	if (own_tick > 0)
	{
		/* the transaction's own tick holds it (repl_cut_own_tick) */
		request = 0;
		target = own_tick;
	}
	else
		request = ++repl_shared->tick_requested;
	start = GetCurrentTimestamp();
	pg_atomic_fetch_add_u32(&repl_shared->sync_nwaiting, 1);
	if (MyBackendId > 0 && MyBackendId <= repl_sync_nwaiters)
	{
		me = &repl_sync_waiters[MyBackendId - 1];
		me->start = start;
		me->target = target;
	}
	supervisor = repl_shared->supervisor;
	sync_slot = repl_shared->sync_slot;
	LWLockRelease(repl_shared->lock);
	if (own_tick > 0)
		ship_own_tick(own_tick, sync_slot);
	else if (supervisor != NULL)
		SetLatch(&supervisor->procLatch);
	release_notify_lock();

	for (;;)
	{
		SyncWaitOutcome outcome = SYNC_WAITING;
		long		timeout = SYNC_RECHECK_MS;
		int			s;
		int			rc;

		ConditionVariablePrepareToSleep(&repl_shared->progress_cv);
		ResetLatch(MyLatch);

		LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
		if (target < 0 && repl_shared->tick_served >= request)
		{
			target = repl_shared->last_tick;
			if (me != NULL)
				me->target = target;
		}
		s = repl_shared->sync_slot;
		node_name[0] = '\0';
		if (s < 0)
			outcome = SYNC_NO_ROLE;
		else
		{
			strlcpy(node_name, repl_shared->slots[s].node_name, NAMEDATALEN);
			strlcpy(waited_for, node_name, NAMEDATALEN);
			if (target >= 0 && repl_shared->slots[s].applied_tick >= target)
				outcome = SYNC_CONFIRMED;
			else if (repl_shared->sync_degraded &&
					 repl_synchronous_mode == REPL_SYNC_DEGRADE &&
					 !leader_isolated_locked(start))
				outcome = SYNC_DEGRADED;
		}
		LWLockRelease(repl_shared->lock);

		if (outcome == SYNC_CONFIRMED)
			break;

		/*
		 * Fenced: a newer leader exists, so no follower will confirm this
		 * commit, and nothing may pretend it was replicated.
		 */
		if (fenced_since_write())
			break;
		if (outcome == SYNC_NO_ROLE)
		{
			/*
			 * The DBA turned synchronous replication off (set_synchronous,
			 * remove_follower) while this commit waited.  syncrep.c
			 * releases such waiters silently; here the client learns that
			 * its commit was not confirmed.
			 */
			if (waited_for[0] != '\0')
				ereport(WARNING,
						(errmsg("not waiting for synchronous follower \"%s\" any more: no follower is synchronous now",
								waited_for),
						 errdetail("The transaction has already committed locally, but might not have been replicated to a follower.")));
			break;
		}
		if (outcome == SYNC_DEGRADED)
		{
			ereport(WARNING,
					(errmsg("not waiting for synchronous follower \"%s\": synchronous replication is degraded",
							node_name),
					 errdetail("The transaction has already committed locally, but might not have been replicated to the synchronous follower.")));
			break;
		}

		/*
		 * As syncrep.c: a termination cannot undo the commit, so warn and
		 * make sure the client does not take it as confirmed.
		 * ProcDiePending stays set so the backend exits afterwards.
		 */
		if (ProcDiePending)
		{
			ereport(WARNING,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("canceling the wait for synchronous follower \"%s\" and terminating connection due to administrator command",
							node_name),
					 errdetail("The transaction has already committed locally, but might not have been replicated to the synchronous follower.")));
			whereToSendOutput = DestNone;
			break;
		}
		if (QueryCancelPending)
		{
			QueryCancelPending = false;
			ereport(WARNING,
					(errmsg("canceling wait for synchronous follower \"%s\" due to user request",
							node_name),
					 errdetail("The transaction has already committed locally, but might not have been replicated to the synchronous follower.")));
			break;
		}
		if (repl_synchronous_mode == REPL_SYNC_DEGRADE && !leader_isolated(start))
		{
			long		waited = TimestampDifferenceMilliseconds(start,
																 GetCurrentTimestamp());

			if (waited >= repl_synchronous_timeout)
			{
				bool		first;

				LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
				first = !repl_shared->sync_degraded;
				repl_shared->sync_degraded = true;
				LWLockRelease(repl_shared->lock);
				ereport(WARNING,
						(errmsg("synchronous follower \"%s\" did not confirm the commit within repl_ext.synchronous_timeout (%d ms)",
								node_name, repl_synchronous_timeout),
						 errdetail("The transaction has already committed locally, but might not have been replicated to the synchronous follower."),
						 first ?
						 errhint("Commits no longer wait until a follower confirms again (repl_ext.synchronous_mode = degrade); see repl.status.") : 0));
				break;
			}
			timeout = Min(timeout, repl_synchronous_timeout - waited);
		}

		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH,
					   timeout, PG_WAIT_EXTENSION);

		/*
		 * Without the postmaster no follower will confirm anything: end the
		 * wait and the connection, as syncrep.c does.
		 */
		if (rc & WL_POSTMASTER_DEATH)
		{
			ProcDiePending = true;
			whereToSendOutput = DestNone;
			break;
		}
	}
	end_wait(me);
	flush_own_commit();
}
