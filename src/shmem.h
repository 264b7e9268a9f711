/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared state of repl_ext: counters the capture trigger bumps, the
 *		supervisor's latch, and one slot per follower for its sender.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_SHMEM_H
#define REPL_EXT_SHMEM_H

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/proc.h"

/* What a follower's sender is doing; shown by repl.status. */
typedef enum ReplFollowerState
{
	REPL_FSTATE_STOPPED = 0,
	REPL_FSTATE_CONNECTING,
	REPL_FSTATE_STREAMING,
	REPL_FSTATE_DISCONNECTED,
	REPL_FSTATE_PAUSED,
	REPL_FSTATE_NEEDS_RESYNC,
	REPL_FSTATE_CREATING_SCHEMA,	/* copy: creating tables on the follower */
	REPL_FSTATE_COPYING,		/* copy: transferring rows */
	REPL_FSTATE_COPY_FAILED,	/* copy failed; retried after a backoff */
	REPL_FSTATE_CATCHING_UP,	/* copied; applying what came since */
	REPL_FSTATE_DIVERGED		/* applied what this leader never had */
} ReplFollowerState;

#define REPL_ERROR_LEN 512

/*
 * One follower as the leader's workers see it.  All fields are protected by
 * ReplShared.lock; the sender is the only writer of the position and error
 * fields, the supervisor of the rest.
 */
typedef struct ReplFollowerSlot
{
	bool		in_use;
	char		node_name[NAMEDATALEN];
	PGPROC	   *proc;			/* sender's PGPROC, NULL when none runs */
	pid_t		pid;
	ReplFollowerState state;
	bool		synchronous;	/* configured synchronous (repl.followers) */
	bool		copied;			/* initial copy done (phase 'streaming') */
	bool		stop_requested; /* supervisor asks the sender to exit */
	bool		retry_now;		/* add_follower again: end the backoff */
	int64		sent_tick;		/* last tick sent */
	int64		applied_tick;	/* last tick the follower confirmed */
	TimestampTz applied_tick_time;	/* when that tick was cut (leader) */
	TimestampTz last_contact;	/* last successful call on the follower */
	TimestampTz last_error_time;
	char		last_error[REPL_ERROR_LEN];
	/* progress of a copy (copy.c), valid while copy_started != 0 */
	TimestampTz copy_started;
	char		copy_table[2 * NAMEDATALEN + 8];	/* table being copied */
	int			copy_tables_done;
	int			copy_tables_total;
	int64		copy_rows;		/* rows sent so far, all tables */
	int64		copy_bytes;		/* COPY data bytes sent so far */
	int64		copy_rows_estimate; /* planner estimate for all tables */
	int64		copy_bytes_estimate;	/* size on disk of all tables */
} ReplFollowerSlot;

typedef struct ReplShared
{
	LWLock	   *lock;			/* protects the fields not marked atomic */
	PGPROC	   *supervisor;		/* supervisor's PGPROC, NULL if not running */
	pg_atomic_uint64 next_seq;	/* atomic: next change sequence number */
	pg_atomic_uint64 commits;	/* atomic: commits that wrote the log */
	pg_atomic_uint32 wake_on_commit;	/* atomic: the supervisor sleeps with
										 * no commit pending; the next commit
										 * clears it and wakes it */
	pg_atomic_uint32 sync_nwaiting; /* atomic: commits waiting for the
									 * synchronous follower now */
	pg_atomic_uint32 config_generation; /* atomic: catalog changes */
	pg_atomic_uint32 cur_log;	/* atomic: log table triggers write into */
	bool		cur_log_valid;	/* cur_log has been loaded from the catalog */
	int64		tick_requested; /* number of fresh-tick requests */
	int64		tick_served;	/* requests satisfied by a committed tick */
	int64		last_tick;		/* newest committed tick id */
	ConditionVariable progress_cv;	/* broadcast on new tick, apply, or a
									 * change of the synchronous role */
	/* synchronous replication (syncwait.c); the supervisor writes these */
	int			sync_slot;		/* slot holding the synchronous role, or -1 */
	bool		sync_degraded;	/* degrade mode: commits stopped waiting */
	/* failover.c */
	pg_atomic_uint64 fenced_epoch;	/* atomic: a newer epoch this node
									 * learned of while leading: writes
									 * refused, waits released */
	pg_atomic_uint32 handover_active;	/* atomic: switchover, writes refused */
	pg_atomic_uint64 leader_contact;	/* atomic: follower: when the leader
										 * last reached us (TimestampTz) */
	pg_atomic_uint64 retain_bound;	/* atomic: follower: kept ticks up to
									 * here every follower has (0: none
									 * known; repl.forget_retained) */
	char		handover_to[NAMEDATALEN];	/* the switchover's target */
	int			nslots;
	ReplFollowerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ReplShared;

/*
 * A backend waiting at commit for the synchronous follower (syncwait.c),
 * indexed by BackendId - 1.  Protected by ReplShared.lock; start is 0 when
 * the backend is not waiting.
 */
typedef struct ReplSyncWaiter
{
	TimestampTz start;			/* when the wait began */
	int64		target;			/* tick the follower must apply, -1 until known */
} ReplSyncWaiter;

extern ReplShared *repl_shared;
extern ReplSyncWaiter *repl_sync_waiters;
extern int	repl_sync_nwaiters;

extern void repl_shmem_init(void);
extern void repl_check_preloaded(void);
extern void repl_wake_supervisor(void);
extern void repl_publish_tick_locked(int64 tick);
extern void repl_wake_senders(int except);
extern void repl_wake_sender(int slotno);
extern void repl_wake_supervisor_at_commit(void);
extern void repl_advance_seq_floor(uint64 floor);

#endif							/* REPL_EXT_SHMEM_H */
