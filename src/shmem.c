/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory of repl_ext and the ways to wake its supervisor.
 *
 * The segment is sized for repl_ext.max_followers slots and is set up once
 * at postmaster start.  Change sequence numbers start from the clock (in
 * units of 1/16 microsecond) so that numbers handed out after a restart are
 * above every number handed out before it; the supervisor also raises the
 * counter above the largest number still in the log when it starts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "shmem.h"

ReplShared *repl_shared = NULL;
ReplSyncWaiter *repl_sync_waiters = NULL;
int			repl_sync_nwaiters = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Set when this transaction must wake the supervisor at commit. */
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

static Size
repl_shmem_size(void)
{
	return add_size(offsetof(ReplShared, slots),
					mul_size(repl_max_followers, sizeof(ReplFollowerSlot)));
}

/* One waiter entry per possible backend; MaxBackends is known by now. */
static Size
repl_waiters_size(void)
{
	return mul_size(MaxBackends, sizeof(ReplSyncWaiter));
}

static void
repl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(repl_shmem_size(), repl_waiters_size()));
	RequestNamedLWLockTranche("repl_ext", 1);
}

static void
repl_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	repl_shared = ShmemInitStruct("repl_ext", repl_shmem_size(), &found);
	if (!found)
	{
		memset(repl_shared, 0, repl_shmem_size());
		repl_shared->lock = &(GetNamedLWLockTranche("repl_ext"))->lock;
		pg_atomic_init_u64(&repl_shared->next_seq,
						   ((uint64) GetCurrentTimestamp()) << 4);
		pg_atomic_init_u64(&repl_shared->commits, 0);
		pg_atomic_init_u32(&repl_shared->wake_on_commit, 1);
		pg_atomic_init_u32(&repl_shared->sync_nwaiting, 0);
		pg_atomic_init_u32(&repl_shared->config_generation, 1);
		pg_atomic_init_u32(&repl_shared->cur_log, 0);
		pg_atomic_init_u64(&repl_shared->fenced_epoch, 0);
		pg_atomic_init_u32(&repl_shared->handover_active, 0);
		pg_atomic_init_u64(&repl_shared->leader_contact, 0);
		pg_atomic_init_u64(&repl_shared->retain_bound, 0);
		repl_shared->nslots = repl_max_followers;
		repl_shared->sync_slot = -1;
		ConditionVariableInit(&repl_shared->progress_cv);
	}
	repl_sync_waiters = ShmemInitStruct("repl_ext sync waiters",
										repl_waiters_size(), &found);
	if (!found)
		memset(repl_sync_waiters, 0, repl_waiters_size());
	repl_sync_nwaiters = MaxBackends;
	LWLockRelease(AddinShmemInitLock);
}

/*
 * repl_shmem_init
 *		Install the shared memory hooks; called from _PG_init.
 */
void
repl_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = repl_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = repl_shmem_startup;
}

/*
 * repl_check_preloaded
 *		Refuse to work when the library was not preloaded: without it there
 *		is no shared memory and no background worker.
 */
void
repl_check_preloaded(void)
{
	if (repl_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("repl_ext must be loaded via shared_preload_libraries"),
				 errhint("Add repl_ext to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * repl_wake_supervisor
 *		Set the supervisor's latch now.
 */
void
repl_wake_supervisor(void)
{
	PGPROC	   *proc;

	LWLockAcquire(repl_shared->lock, LW_SHARED);
	proc = repl_shared->supervisor;
	if (proc != NULL)
		SetLatch(&proc->procLatch);
	LWLockRelease(repl_shared->lock);
}

/*
 * repl_publish_tick_locked
 *		Record tick as the newest committed one.  Ticks commit in id order,
 *		but whoever cut them (the supervisor, a commit with its own tick)
 *		may get here in any order.  The caller holds ReplShared.lock
 *		exclusively, and wakes the senders (repl_wake_senders) once it has
 *		released it.
 */
void
repl_publish_tick_locked(int64 tick)
{
	if (repl_shared->last_tick < tick)
		repl_shared->last_tick = tick;
}

/*
 * repl_wake_senders
 *		Set the latch of every sender but slot except's (-1: every sender).
 *		Called without ReplShared.lock: a sender woken while the waker
 *		holds it exclusively goes straight back to sleep on the lock (each
 *		round of its loop starts by reading its slot), and the waker then
 *		pays a second wakeup when it releases the lock, on a commit's way
 *		to its flush.  A slot read unlocked may be stale: that only causes a
 *		spurious wakeup, or none for a sender that is starting and reads the
 *		newest tick anyway.
 */
void
repl_wake_senders(int except)
{
	int			i;

	for (i = 0; i < repl_shared->nslots; i++)
	{
		if (i != except)
			repl_wake_sender(i);
	}
}

/*
 * repl_wake_sender
 *		Set the latch of slot slotno's sender, if it has one; as
 *		repl_wake_senders.
 */
void
repl_wake_sender(int slotno)
{
	PGPROC	   *proc = ((volatile ReplFollowerSlot *) &repl_shared->slots[slotno])->proc;

	if (proc != NULL)
		SetLatch(&proc->procLatch);
}

static void
repl_xact_callback(XactEvent event, void *arg)
{
	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		wake_at_commit = false;
		pg_atomic_fetch_add_u32(&repl_shared->config_generation, 1);
		repl_wake_supervisor();
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = false;
}

/*
 * repl_wake_supervisor_at_commit
 *		Tell the supervisor that repl's catalogs changed, once this
 *		transaction commits.  An abort wakes nobody.
 */
void
repl_wake_supervisor_at_commit(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(repl_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

/*
 * repl_advance_seq_floor
 *		Make sure the next change sequence number is above floor.
 */
void
repl_advance_seq_floor(uint64 floor)
{
	uint64		cur = pg_atomic_read_u64(&repl_shared->next_seq);

	while (cur <= floor)
	{
		if (pg_atomic_compare_exchange_u64(&repl_shared->next_seq, &cur,
										   floor + 1))
			break;
	}
}
