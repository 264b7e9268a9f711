/*-------------------------------------------------------------------------
 *
 * protocol.c
 *		Encoding of row images and batches.  No I/O happens here.
 *
 * Row image (the data column of repl.log, sent unchanged in batches):
 *		int16 nkey, nkey x column      -- identity (old values)
 *		int16 ncol, ncol x column      -- new values
 *		column := uint8 namelen, name, uint8 format, [int32 len, bytes]
 *	format 'n' has no length and no bytes.
 *
 * Batch:
 *		"RPLB", uint8 version, string leader_name, int32 encoding,
 *		int64 epoch, int64 from_tick, int64 to_tick, int64 to_tick_time,
 *		int32 nrels, nrels x (string nspname, string relname),
 *		int32 nchanges, nchanges x (int32 relidx, uint8 op, int32 len, bytes)
 *		string := int32 len, bytes (no terminator)
 *
 * Version 2 ends the changes of each tick in a batch with a tick marker,
 * op 'K', relidx -1, data int64 tick_id, int64 tick_time: a follower keeps
 * what it applied tick by tick (failover.c), so that it can later send any
 * other follower exactly the ticks that one lacks.
 *
 * Version 3 adds two kinds of change, both inside a tick:
 *	op 'S', relidx -1: a DDL command run through repl.execute_ddl, data
 *		string search_path, string command (the leader's encoding);
 *	op 'Q', relidx of a sequence: data int64 last_value, the sequence's
 *		value when the batch was read, so at least every value the batch's
 *		transactions took from it.
 * A version 3 node reads version 2 batches (a follower's retained ticks may
 * be older than its software).
 *
 * All integers are in network byte order.  Decoding checks every length
 * against what is left, so a truncated or malformed message raises a
 * protocol-violation error and is never read past its end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"

#include "protocol.h"
#include "repl_ext.h"

#define REPL_BATCH_MAGIC "RPLB"

static void
put_string(StringInfo buf, const char *s)
{
	int			len = strlen(s);

	pq_sendint32(buf, len);
	pq_sendbytes(buf, s, len);
}

static char *
get_string(StringInfo msg)
{
	int			len = pq_getmsgint(msg, 4);
	const char *p;

	if (len < 0 || len > msg->len - msg->cursor)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid string length %d in replication batch", len)));
	p = pq_getmsgbytes(msg, len);
	return pnstrdup(p, len);
}

/*
 * repl_proto_reserve_count / repl_proto_set_count
 *		Write a placeholder int16 count and fill it in later.
 */
int
repl_proto_reserve_count(StringInfo buf)
{
	int			offset = buf->len;

	pq_sendint16(buf, 0);
	return offset;
}

void
repl_proto_set_count(StringInfo buf, int offset, int count)
{
	uint16		n = pg_hton16((uint16) count);

	Assert(count >= 0 && count <= PG_UINT16_MAX);
	memcpy(buf->data + offset, &n, sizeof(n));
}

/*
 * repl_proto_put_column
 *		Append one column value; data is ignored for REPL_VALUE_NULL.
 */
void
repl_proto_put_column(StringInfo buf, const char *name, char format,
					  const char *data, int len)
{
	int			namelen = strlen(name);

	pq_sendint8(buf, namelen);
	pq_sendbytes(buf, name, namelen);
	pq_sendint8(buf, format);
	if (format != REPL_VALUE_NULL)
	{
		pq_sendint32(buf, len);
		pq_sendbytes(buf, data, len);
	}
}

int
repl_proto_get_count(StringInfo msg)
{
	return pq_getmsgint(msg, 2);
}

/*
 * repl_proto_get_column
 *		Read one column value; the result points into msg.
 */
void
repl_proto_get_column(StringInfo msg, ReplColumnValue *val)
{
	val->namelen = pq_getmsgbyte(msg);
	if (val->namelen <= 0 || val->namelen >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid column name length %d in replicated row",
						val->namelen)));
	val->name = pq_getmsgbytes(msg, val->namelen);
	val->format = pq_getmsgbyte(msg);
	val->data = NULL;
	val->len = 0;
	switch (val->format)
	{
		case REPL_VALUE_NULL:
			break;
		case REPL_VALUE_BINARY:
		case REPL_VALUE_TEXT:
			val->len = pq_getmsgint(msg, 4);
			if (val->len < 0 || val->len > msg->len - msg->cursor)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("invalid value length %d in replicated row",
								val->len)));
			val->data = pq_getmsgbytes(msg, val->len);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unrecognized value format %d in replicated row",
							val->format)));
	}
}

/*
 * repl_proto_put_table_name / repl_proto_get_table_name
 *		Data of an add-table or remove-table record: the table's name.
 */
void
repl_proto_put_table_name(StringInfo buf, const char *nspname,
						  const char *relname)
{
	put_string(buf, nspname);
	put_string(buf, relname);
}

void
repl_proto_get_table_name(StringInfo msg, char **nspname, char **relname)
{
	*nspname = get_string(msg);
	*relname = get_string(msg);
}

/*
 * repl_proto_put_batch_header
 *		Append the header and relation table; the changes follow with
 *		repl_proto_put_change, hdr->nchanges of them.
 */
void
repl_proto_put_batch_header(StringInfo buf, const ReplBatchHeader *hdr)
{
	int			i;

	pq_sendbytes(buf, REPL_BATCH_MAGIC, 4);
	pq_sendint8(buf, REPL_PROTOCOL_VERSION);
	put_string(buf, hdr->leader_name);
	pq_sendint32(buf, hdr->encoding);
	pq_sendint64(buf, hdr->epoch);
	pq_sendint64(buf, hdr->from_tick);
	pq_sendint64(buf, hdr->to_tick);
	pq_sendint64(buf, hdr->to_tick_time);
	pq_sendint32(buf, hdr->nrels);
	for (i = 0; i < hdr->nrels; i++)
	{
		put_string(buf, hdr->nspnames[i]);
		put_string(buf, hdr->relnames[i]);
	}
	pq_sendint32(buf, hdr->nchanges);
}

/*
 * repl_proto_put_tick / repl_proto_get_tick
 *		The tick marker that ends the changes of one tick (see file header).
 */
void
repl_proto_put_tick(StringInfo buf, int64 tick_id, TimestampTz tick_time)
{
	pq_sendint32(buf, -1);
	pq_sendint8(buf, REPL_OP_TICK);
	pq_sendint32(buf, 16);
	pq_sendint64(buf, tick_id);
	pq_sendint64(buf, tick_time);
}

void
repl_proto_get_tick(StringInfo data, int64 *tick_id, TimestampTz *tick_time)
{
	if (data->len != 16)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid tick marker length %d in replication batch",
						data->len)));
	*tick_id = pq_getmsgint64(data);
	*tick_time = pq_getmsgint64(data);
}

/*
 * repl_proto_put_ddl / repl_proto_get_ddl
 *		A DDL record (see file header): the data column of its repl.log row.
 *		get returns strings palloc'd in the current memory context.
 */
void
repl_proto_put_ddl(StringInfo buf, const char *search_path,
				   const char *command)
{
	put_string(buf, search_path);
	put_string(buf, command);
}

void
repl_proto_get_ddl(StringInfo data, char **search_path, char **command)
{
	*search_path = get_string(data);
	*command = get_string(data);
	if (data->cursor != data->len)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid DDL record in replication batch")));
}

/*
 * repl_proto_put_sequence / repl_proto_get_sequence
 *		A sequence record (see file header), whole: header and data.
 */
void
repl_proto_put_sequence(StringInfo buf, int relidx, int64 last_value)
{
	pq_sendint32(buf, relidx);
	pq_sendint8(buf, REPL_OP_SEQUENCE);
	pq_sendint32(buf, 8);
	pq_sendint64(buf, last_value);
}

int64
repl_proto_get_sequence(StringInfo data)
{
	if (data->len != 8)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid sequence record length %d in replication batch",
						data->len)));
	return pq_getmsgint64(data);
}

void
repl_proto_put_change(StringInfo buf, int relidx, char op,
					  const char *data, int len)
{
	pq_sendint32(buf, relidx);
	pq_sendint8(buf, op);
	pq_sendint32(buf, len);
	pq_sendbytes(buf, data, len);
}

/*
 * repl_proto_get_batch_header
 *		Read and check the header and relation table of a batch.  Strings
 *		are palloc'd in the current memory context.
 */
void
repl_proto_get_batch_header(StringInfo msg, ReplBatchHeader *hdr)
{
	const char *magic;
	int			version;
	int			i;

	if (msg->len < 5)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("replication batch is too short")));
	magic = pq_getmsgbytes(msg, 4);
	if (memcmp(magic, REPL_BATCH_MAGIC, 4) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("data is not a repl_ext replication batch")));
	version = pq_getmsgbyte(msg);
	if (version < REPL_PROTOCOL_MIN_VERSION || version > REPL_PROTOCOL_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unsupported replication batch version %d", version),
				 errdetail("This node understands versions %d to %d.",
						   REPL_PROTOCOL_MIN_VERSION, REPL_PROTOCOL_VERSION),
				 errhint("Update repl_ext on every node to the same version.")));
	hdr->leader_name = get_string(msg);
	hdr->encoding = pq_getmsgint(msg, 4);
	if (!PG_VALID_BE_ENCODING(hdr->encoding))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid encoding %d in replication batch",
						hdr->encoding)));
	hdr->epoch = pq_getmsgint64(msg);
	hdr->from_tick = pq_getmsgint64(msg);
	hdr->to_tick = pq_getmsgint64(msg);
	hdr->to_tick_time = pq_getmsgint64(msg);
	if (hdr->from_tick < 0 || hdr->to_tick < hdr->from_tick)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid positions %lld to %lld in replication batch",
						(long long) hdr->from_tick, (long long) hdr->to_tick)));
	hdr->nrels = pq_getmsgint(msg, 4);
	/* each relation takes at least 8 bytes: bounds the allocation */
	if (hdr->nrels < 0 || hdr->nrels > (msg->len - msg->cursor) / 8)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid relation count %d in replication batch",
						hdr->nrels)));
	hdr->nspnames = palloc(sizeof(char *) * Max(hdr->nrels, 1));
	hdr->relnames = palloc(sizeof(char *) * Max(hdr->nrels, 1));
	for (i = 0; i < hdr->nrels; i++)
	{
		hdr->nspnames[i] = get_string(msg);
		hdr->relnames[i] = get_string(msg);
	}
	hdr->nchanges = pq_getmsgint(msg, 4);
	if (hdr->nchanges < 0 || hdr->nchanges > (msg->len - msg->cursor) / 9)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid change count %d in replication batch",
						hdr->nchanges)));
}

/*
 * repl_proto_get_change
 *		Read the next change.  data is set up to read the row image in place
 *		(it points into msg; do not free).
 */
void
repl_proto_get_change(StringInfo msg, const ReplBatchHeader *hdr,
					  int *relidx, char *op, StringInfo data)
{
	int			len;

	*relidx = pq_getmsgint(msg, 4);
	*op = pq_getmsgbyte(msg);
	if ((*op == REPL_OP_TICK || *op == REPL_OP_DDL) ? *relidx != -1 :
		(*relidx < 0 || *relidx >= hdr->nrels))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid relation index %d in replication batch",
						*relidx)));
	len = pq_getmsgint(msg, 4);
	if (len < 0 || len > msg->len - msg->cursor)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid change length %d in replication batch", len)));
	data->data = (char *) pq_getmsgbytes(msg, len);
	data->len = len;
	data->maxlen = len;
	data->cursor = 0;
}
