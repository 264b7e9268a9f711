/*-------------------------------------------------------------------------
 *
 * protocol.h
 *		Encoding of logged rows and of batches sent to followers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_PROTOCOL_H
#define REPL_EXT_PROTOCOL_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* One column value as read back from a row image (points into the input). */
typedef struct ReplColumnValue
{
	const char *name;
	int			namelen;
	char		format;			/* REPL_VALUE_NULL / _BINARY / _TEXT */
	const char *data;
	int			len;
} ReplColumnValue;

/* The fixed part of a batch plus its relation table. */
typedef struct ReplBatchHeader
{
	char	   *leader_name;
	int			encoding;		/* leader's server encoding */
	int64		epoch;
	int64		from_tick;		/* follower must be at this position */
	int64		to_tick;		/* position after applying the batch */
	TimestampTz to_tick_time;
	int			nrels;
	char	  **nspnames;
	char	  **relnames;
	int			nchanges;
} ReplBatchHeader;

/* Row images */
extern int	repl_proto_reserve_count(StringInfo buf);
extern void repl_proto_set_count(StringInfo buf, int offset, int count);
extern void repl_proto_put_column(StringInfo buf, const char *name,
								  char format, const char *data, int len);
extern int	repl_proto_get_count(StringInfo msg);
extern void repl_proto_get_column(StringInfo msg, ReplColumnValue *val);

/* Add-table and remove-table records */
extern void repl_proto_put_table_name(StringInfo buf, const char *nspname,
									  const char *relname);
extern void repl_proto_get_table_name(StringInfo msg, char **nspname,
									  char **relname);

/* Batches */
extern void repl_proto_put_batch_header(StringInfo buf,
										const ReplBatchHeader *hdr);
extern void repl_proto_put_change(StringInfo buf, int relidx, char op,
								  const char *data, int len);
extern void repl_proto_put_tick(StringInfo buf, int64 tick_id,
								TimestampTz tick_time);
extern void repl_proto_get_tick(StringInfo data, int64 *tick_id,
								TimestampTz *tick_time);
extern void repl_proto_put_ddl(StringInfo buf, const char *search_path,
							   const char *command);
extern void repl_proto_get_ddl(StringInfo data, char **search_path,
							   char **command);
extern void repl_proto_put_sequence(StringInfo buf, int relidx,
									int64 last_value);
extern int64 repl_proto_get_sequence(StringInfo data);
extern void repl_proto_get_batch_header(StringInfo msg, ReplBatchHeader *hdr);
extern void repl_proto_get_change(StringInfo msg, const ReplBatchHeader *hdr,
								  int *relidx, char *op, StringInfo data);

#endif							/* REPL_EXT_PROTOCOL_H */
