/*-------------------------------------------------------------------------
 *
 * pg_stubs.c
 *		The few server facilities protocol.c needs, for running it outside
 *		a server under libFuzzer: memory from an arena freed after each
 *		input, the message-reading routines of pqformat.c with the same
 *		contracts (an error past the end of the message), and ereport that
 *		jumps back to the harness instead of aborting a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>

#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "pg_stubs.h"

sigjmp_buf	fuzz_error_jump;
int			fuzz_errors = 0;

/* every allocation of one input, freed together */
static void **arena = NULL;
static int	arena_n = 0;
static int	arena_size = 0;

static void *
arena_alloc(Size size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	if (arena_n == arena_size)
	{
		arena_size = arena_size ? arena_size * 2 : 64;
		arena = realloc(arena, sizeof(void *) * arena_size);
		if (arena == NULL)
			abort();
	}
	arena[arena_n++] = p;
	return p;
}

void
fuzz_arena_reset(void)
{
	int			i;

	for (i = 0; i < arena_n; i++)
		free(arena[i]);
	arena_n = 0;
}

void *
palloc(Size size)
{
	/* the server refuses these too (MaxAllocSize) */
	if (size > MaxAllocSize)
		abort();
	return arena_alloc(size);
}

void *
palloc0(Size size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

void
pfree(void *pointer)
{
	/* freed with the arena */
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out = palloc(len + 1);

	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;
	char	   *data;

	if (needed < 0 || needed > MaxAllocSize - str->len - 1)
		abort();
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	newlen = 2 * str->maxlen;
	while (needed > newlen)
		newlen = 2 * newlen;
	data = palloc(newlen);
	memcpy(data, str->data, str->len + 1);
	str->data = data;
	str->maxlen = newlen;
}

void
pq_sendbytes(StringInfo buf, const char *data, int datalen)
{
	enlargeStringInfo(buf, datalen);
	memcpy(buf->data + buf->len, data, datalen);
	buf->len += datalen;
	buf->data[buf->len] = '\0';
}

static void
past_end(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("insufficient data left in message")));
}

int
pq_getmsgbyte(StringInfo msg)
{
	if (msg->cursor >= msg->len)
		past_end();
	return (unsigned char) msg->data[msg->cursor++];
}

unsigned int
pq_getmsgint(StringInfo msg, int b)
{
	unsigned int result = 0;
	int			i;

	if (b != 1 && b != 2 && b != 4)
		elog(ERROR, "unsupported integer size %d", b);
	if (msg->cursor < 0 || b > msg->len - msg->cursor)
		past_end();
	for (i = 0; i < b; i++)
		result = (result << 8) | (unsigned char) msg->data[msg->cursor++];
	return result;
}

int64
pq_getmsgint64(StringInfo msg)
{
	uint64		result = 0;
	int			i;

	if (msg->cursor < 0 || 8 > msg->len - msg->cursor)
		past_end();
	for (i = 0; i < 8; i++)
		result = (result << 8) | (unsigned char) msg->data[msg->cursor++];
	return (int64) result;
}

const char *
pq_getmsgbytes(StringInfo msg, int datalen)
{
	const char *result;

	if (datalen < 0 || datalen > msg->len - msg->cursor)
		past_end();
	result = &msg->data[msg->cursor];
	msg->cursor += datalen;
	return result;
}

/* ereport: ERROR jumps back to the harness, anything lower is ignored */
static int	pending_level = 0;

bool
errstart(int elevel, const char *domain)
{
	pending_level = elevel;
	return elevel >= ERROR;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (pending_level >= ERROR)
	{
		fuzz_errors++;
		fuzz_arena_reset();
		siglongjmp(fuzz_error_jump, 1);
	}
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errmsg(const char *fmt,...)
{
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	abort();
}
