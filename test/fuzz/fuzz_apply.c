/*-------------------------------------------------------------------------
 *
 * fuzz_apply.c
 *		libFuzzer harness for the follower's apply entry point: each input is
 *		sent to a running follower (FUZZ_CONNINFO) as
 *			BEGIN;
 *			UPDATE repl.local_node SET ... -- the position, leader and epoch
 *			                                  the input's header names
 *			SELECT repl.apply_batch(input);
 *			ROLLBACK;
 *		Setting the position from the header lets a mutated batch get past
 *		the position check into the row decoding and the executor; the
 *		ROLLBACK leaves the database as it was, so every input meets the same
 *		state.  A finding is: the server closing the connection (a crash),
 *		a statement that does not end within statement_timeout (a hang), or
 *		an error other than a clean ERROR (the session is then unusable).
 *		The caller (run.sh) compares the follower's tables before and after.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static PGconn *conn = NULL;
static long accepted = 0;
static long refused = 0;

static void
die(const char *what, PGresult *res)
{
	fprintf(stderr, "fuzz_apply: %s: %s\n", what,
			res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	abort();
}

static void
exec_ok(const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		die(sql, res);
	PQclear(res);
}

static void
connect_once(void)
{
	const char *conninfo = getenv("FUZZ_CONNINFO");

	if (conn != NULL)
		return;
	if (conninfo == NULL)
	{
		fprintf(stderr, "fuzz_apply: set FUZZ_CONNINFO to the follower's connection string\n");
		exit(2);
	}
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", NULL);
	exec_ok("SET statement_timeout = '10s'");
	exec_ok("SET client_min_messages = error");
}

/* big-endian readers over the input, false when it is too short */
static int
get_u32(const uint8_t *d, size_t size, size_t *pos, uint32_t *v)
{
	if (size - *pos < 4 || *pos > size)
		return 0;
	*v = ((uint32_t) d[*pos] << 24) | ((uint32_t) d[*pos + 1] << 16) |
		((uint32_t) d[*pos + 2] << 8) | d[*pos + 3];
	*pos += 4;
	return 1;
}

static int
get_i64(const uint8_t *d, size_t size, size_t *pos, long long *v)
{
	uint32_t	hi;
	uint32_t	lo;

	if (!get_u32(d, size, pos, &hi) || !get_u32(d, size, pos, &lo))
		return 0;
	*v = (long long) (((uint64_t) hi << 32) | lo);
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		pos = 5;
	uint32_t	len;
	uint32_t	encoding;
	long long	epoch = 1;
	long long	from_tick = 0;
	char		leader[64] = "fuzz";
	char		epoch_s[32];
	char		tick_s[32];
	const char *params[3];
	PGresult   *res;
	const char *state;

	connect_once();
	/* header: "RPLB", version, string leader, int32 encoding, epoch, from */
	if (size >= 9 && get_u32(data, size, &pos, &len) && len > 0 && len < sizeof(leader) &&
		pos + len <= size)
	{
		memcpy(leader, data + pos, len);
		leader[len] = '\0';
		/* a name the position update can store; apply compares it */
		for (size_t i = 0; i < len; i++)
			if (leader[i] < 0x20 || leader[i] > 0x7e)
			{
				strcpy(leader, "fuzz");
				break;
			}
		pos += len;
		if (get_u32(data, size, &pos, &encoding))
		{
			(void) get_i64(data, size, &pos, &epoch);
			(void) get_i64(data, size, &pos, &from_tick);
		}
	}
	if (epoch < 1)
		epoch = 1;
	if (from_tick < 0)
		from_tick = 0;
	snprintf(epoch_s, sizeof(epoch_s), "%lld", epoch);
	snprintf(tick_s, sizeof(tick_s), "%lld", from_tick);

	exec_ok("BEGIN");
	params[0] = tick_s;
	params[1] = leader;
	params[2] = epoch_s;
	res = PQexecParams(conn,
					   "UPDATE repl.local_node SET applied_tick = $1::bigint,"
					   " leader_name = $2, epoch = $3::bigint, applied_epoch = $3::bigint",
					   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die("position update", res);
	PQclear(res);

	{
		const char *vals[1] = {(const char *) data};
		int			lens[1] = {(int) size};
		int			fmts[1] = {1};

		res = PQexecParams(conn, "SELECT repl.apply_batch($1::bytea)", 1, NULL,
						   vals, lens, fmts, 0);
	}
	if (PQstatus(conn) != CONNECTION_OK)
		die("the follower closed the connection (crash?)", res);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		accepted++;
	else if (state != NULL && strcmp(state, "57014") == 0)
		die("apply_batch did not end within statement_timeout (hang?)", res);
	else if (state != NULL && (strcmp(state, "XX000") == 0 ||
							   strcmp(state, "XX001") == 0 ||
							   strcmp(state, "XX002") == 0))
		die("internal error (not a clean refusal)", res);
	else
		refused++;
	PQclear(res);
	exec_ok("ROLLBACK");
	if ((accepted + refused) % 100000 == 0)
		fprintf(stderr, "fuzz_apply: %ld accepted, %ld refused\n", accepted, refused);
	return 0;
}
