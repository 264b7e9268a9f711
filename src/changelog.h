/*-------------------------------------------------------------------------
 *
 * changelog.h
 *		The replication log: writes, ticks, batches, rotation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_CHANGELOG_H
#define REPL_EXT_CHANGELOG_H

#include "executor/spi.h"
#include "lib/stringinfo.h"

#include "protocol.h"

/* A batch read from the log, ready to send. */
typedef struct ReplBatch
{
	int64		from_tick;
	int64		to_tick;
	TimestampTz to_tick_time;
	int64		nchanges;
	StringInfoData data;		/* complete encoded batch */
} ReplBatch;

extern SPIPlanPtr repl_kept_plan(SPIPlanPtr *cache, const char *sql,
								 int nargs, Oid *argtypes, int cursor_options);
extern void repl_log_write(Oid relid, char op, const char *data, int len);
extern uint64 repl_log_rows_written(void);
extern int64 repl_cut_tick(const char *snapshot, bool ship_unflushed);
extern void repl_lock_ticks(void);
extern int64 repl_latest_tick(void);
extern bool repl_read_batch(int64 from_tick, int64 max_changes,
							const char *leader_name, int64 epoch,
							const char *node_name, MemoryContext outcxt,
							ReplBatch *batch);
extern bool repl_tick_exists(int64 tick_id);
extern void repl_log_startup(void);
extern void repl_log_maintain(void);
extern bool repl_trim_ticks(bool nowait);
extern bool repl_trim_retained(bool nowait);

/* rows of repl.tick or repl.retained deleted at most per transaction */
#define REPL_TRIM_CHUNK		200

#endif							/* REPL_EXT_CHANGELOG_H */
