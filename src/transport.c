/*-------------------------------------------------------------------------
 *
 * transport.c
 *		Connections to other nodes over libpq, from backends and workers.
 *
 * Every wait is interruptible and bounded.  Connecting runs PQconnectPoll
 * with WaitLatchOrSocket until repl_ext.network_timeout (libpq's own
 * connect_timeout only applies to its blocking calls); commands are sent in
 * non-blocking mode with PQflush driven by socket waits (a batch can be many
 * megabytes), and results are collected with PQconsumeInput/PQisBusy on the
 * same waits.  SIGTERM, query cancel and postmaster death end a wait as
 * usual.  A dead host or path is found by TCP keepalives and
 * tcp_user_timeout, derived from repl_ext.network_timeout.
 *
 * A peer that keeps the TCP connection but stops answering (a hung server,
 * a stalled middlebox) is not: after network_timeout without any traffic,
 * the connection is checked from outside.  A second connection to the same
 * node looks for the session's backend in pg_stat_activity.  If that
 * connection cannot be made within network_timeout, or the session is gone,
 * or it is idle while a reply is awaited (the reply was lost), the
 * connection is declared dead and the wait fails.  Otherwise the peer is
 * busy (a long apply, a lock wait) and the wait goes on: a long apply is
 * never mistaken for a dead peer.
 *
 * Failures come back as a ReplResult with ok = false, so that workers can
 * record them and retry; backends turn them into errors that keep the remote
 * SQLSTATE, detail and hint (repl_result_raise).  Conninfo strings are never
 * printed: they may hold passwords.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "transport.h"

#if PG_VERSION_NUM < 150013
#error "repl_ext needs libpq-be-fe-helpers.h from PostgreSQL 15.13 or later"
#endif

#define REPL_MAX_PREPARED 4

struct ReplConn
{
	PGconn	   *conn;
	char	   *conninfo;		/* to check the session from outside */
	char		node_name[NAMEDATALEN];
	int			backend_pid;	/* the session's backend on the peer */
	bool		is_check;		/* this is such a check: never check it */
	TimestampTz last_traffic;	/* last time the socket was ready */
	char	   *dead;			/* why the connection was declared dead */
	int			nprepared;		/* statements prepared on this connection */
	char		prepared[REPL_MAX_PREPARED][NAMEDATALEN];
	WaitEventSet *wait_set;		/* latch, postmaster, socket: see wait_conn */
	int			wait_pos;		/* the socket's event in wait_set */
	int			wait_events;	/* what the socket's event waits for */
};

/*
 * repl_conninfo_is_valid
 *		Syntax check of a conninfo string; *err gets libpq's message.
 */
bool
repl_conninfo_is_valid(const char *conninfo, char **err)
{
	char	   *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);

	if (opts == NULL)
	{
		*err = pchomp(msg ? msg : "out of memory");
		if (msg)
			PQfreemem(msg);
		return false;
	}
	PQconninfoFree(opts);
	return true;
}

/*
 * repl_conninfo_redact
 *		conninfo without its secrets (password, sslpassword), for showing to
 *		anyone: the same key = value pairs libpq parsed, values quoted.  NULL
 *		if conninfo does not parse.
 */
char *
repl_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	PQconninfoOption *o;
	StringInfoData out;

	if (opts == NULL)
		return NULL;
	initStringInfo(&out);
	for (o = opts; o->keyword != NULL; o++)
	{
		const char *c;

		if (o->val == NULL || strcmp(o->keyword, "password") == 0 ||
			strcmp(o->keyword, "sslpassword") == 0)
			continue;
		if (out.len > 0)
			appendStringInfoChar(&out, ' ');
		appendStringInfo(&out, "%s='", o->keyword);
		for (c = o->val; *c; c++)
		{
			if (*c == '\\' || *c == '\'')
				appendStringInfoChar(&out, '\\');
			appendStringInfoChar(&out, *c);
		}
		appendStringInfoChar(&out, '\'');
	}
	PQconninfoFree(opts);
	return out.data;
}

static char *
conn_error(PGconn *conn)
{
	char	   *msg = pchomp(PQerrorMessage(conn));

	return msg[0] ? msg : pstrdup("connection failed");
}

/*
 * Connect, polling until repl_ext.network_timeout.  Returns NULL with *err
 * set on failure; the external FD reserved for the connection is released
 * on every failure path (as libpqsrv_connect_params does).
 */
static PGconn *
connect_bounded(const char *const *keys, const char *const *vals, char **err)
{
	PGconn	   *conn;
	volatile PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	TimestampTz deadline;

	libpqsrv_connect_prepare();
	conn = PQconnectStartParams(keys, vals, true);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		*err = pstrdup("out of memory");
		return NULL;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   repl_network_timeout);
	PG_TRY();
	{
		while (PQstatus(conn) != CONNECTION_BAD &&
			   status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			int			io = status == PGRES_POLLING_READING ?
				WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															   deadline);
			int			rc;

			if (left <= 0)
				break;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET |
								   WL_TIMEOUT | io,
								   PQsocket(conn), left, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & io)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		libpqsrv_disconnect(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (PQstatus(conn) != CONNECTION_OK)
	{
		*err = status == PGRES_POLLING_FAILED || PQstatus(conn) == CONNECTION_BAD ?
			conn_error(conn) :
			psprintf("no answer within %d ms (repl_ext.network_timeout)",
					 repl_network_timeout);
		libpqsrv_disconnect(conn);
		return NULL;
	}
	return conn;
}

static ReplResult *conn_exec(ReplConn *conn, const char *sql, int nparams,
							 const char *const *values, const int *lengths,
							 const int *formats);

static ReplConn *
conn_open(const char *conninfo, const char *node_name, bool is_check,
		  char **err)
{
	const char *keys[10];
	const char *vals[10];
	char		appname[NAMEDATALEN + 24];
	char		connect_timeout[16];
	char		idle[16];
	char		interval[16];
	char		user_timeout[16];
	PGconn	   *pgconn;
	ReplResult *res;
	ReplConn   *rc;
	int			n = 0;
	int			timeout_s = Max(repl_network_timeout / 1000, 2);

	snprintf(appname, sizeof(appname), "repl_ext:%s%s", node_name,
			 is_check ? ":check" : "");
	snprintf(connect_timeout, sizeof(connect_timeout), "%d", timeout_s);
	snprintf(idle, sizeof(idle), "%d", Max(timeout_s / 3, 1));
	snprintf(interval, sizeof(interval), "%d", Max(timeout_s / 9, 1));
	snprintf(user_timeout, sizeof(user_timeout), "%d", repl_network_timeout);

	keys[n] = "dbname";
	vals[n++] = conninfo;
	keys[n] = "fallback_application_name";
	vals[n++] = appname;
	keys[n] = "connect_timeout";
	vals[n++] = connect_timeout;
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = idle;
	keys[n] = "keepalives_interval";
	vals[n++] = interval;
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "tcp_user_timeout";
	vals[n++] = user_timeout;
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = NULL;
	vals[n] = NULL;

	pgconn = connect_bounded(keys, vals, err);
	if (pgconn == NULL)
		return NULL;
	if (PQsetnonblocking(pgconn, 1) != 0)
	{
		*err = conn_error(pgconn);
		libpqsrv_disconnect(pgconn);
		return NULL;
	}
	rc = MemoryContextAllocZero(TopMemoryContext, sizeof(ReplConn));
	rc->conn = pgconn;
	rc->conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
	strlcpy(rc->node_name, node_name, NAMEDATALEN);
	rc->backend_pid = PQbackendPID(pgconn);
	rc->is_check = is_check;

	/* as libpqrcv_connect does: nothing may resolve through search_path */
	/*
	 * ... and our calls write on followers, whose sessions start read-only
	 * (repl_ext.follower_read_only)
	 */
	res = conn_exec(rc, "SELECT pg_catalog.set_config('search_path', '', false),"
					" pg_catalog.set_config('default_transaction_read_only', 'off', false)",
					0, NULL, NULL, NULL);
	if (!res->ok)
	{
		*err = res->message;
		repl_conn_close(rc);
		return NULL;
	}
	return rc;
}

/*
 * repl_conn_open
 *		Connect to a node.  Returns NULL with *err set when the node cannot
 *		be reached within repl_ext.network_timeout or refuses the connection.
 */
ReplConn *
repl_conn_open(const char *conninfo, const char *node_name, char **err)
{
	return conn_open(conninfo, node_name, false, err);
}

void
repl_conn_close(ReplConn *conn)
{
	if (conn == NULL)
		return;
	if (conn->wait_set)
		FreeWaitEventSet(conn->wait_set);
	/* non-blocking: PQfinish's goodbye never waits for a hung peer */
	libpqsrv_disconnect(conn->conn);
	pfree(conn->conninfo);
	if (conn->dead)
		pfree(conn->dead);
	pfree(conn);
}

static ReplResult *
result_failed(const char *message)
{
	ReplResult *r = palloc0(sizeof(ReplResult));

	r->ok = false;
	r->message = pstrdup(message);
	return r;
}

/*
 * The peer has been silent for network_timeout while we waited for events:
 * is its session still alive and busy (see file header)?  Returns false with
 * conn->dead set when it is not.
 */
static bool
peer_is_busy(ReplConn *conn, int events)
{
	char	   *err = NULL;
	char		pid[16];
	const char *params[1];
	ReplConn   *check;
	ReplResult *res;
	const char *state;
	char	   *why = NULL;

	if (conn->is_check)
		why = pstrdup("no reply");
	else if ((check = conn_open(conn->conninfo, conn->node_name, true, &err)) == NULL)
		why = psprintf("a new connection failed: %s", err);
	else
	{
		snprintf(pid, sizeof(pid), "%d", conn->backend_pid);
		params[0] = pid;
		res = conn_exec(check, "SELECT COALESCE(state, '') FROM pg_catalog.pg_stat_activity"
						" WHERE pid OPERATOR(pg_catalog.=) $1::pg_catalog.int4",
						1, params, NULL, NULL);
		repl_conn_close(check);
		if (!res->ok)
			why = psprintf("a new connection failed: %s", res->message);
		else if (res->ntuples == 0)
			why = pstrdup("its session has ended");
		else
		{
			state = repl_result_value(res, 0, 0);
			if (events == WL_SOCKET_READABLE && state != NULL &&
				strcmp(state, "idle") == 0)
				why = pstrdup("its session is idle, so the reply was lost");
		}
	}
	if (why == NULL)
		return true;
	conn->dead = MemoryContextStrdup(TopMemoryContext,
									 psprintf("no reply for %d ms (repl_ext.network_timeout) and %s",
											  repl_network_timeout, why));
	return false;
}

/*
 * Wait until conn's socket is ready for events, handling interrupts.
 * After network_timeout without any traffic the peer is checked
 * (peer_is_busy); returns false once it is declared dead.  A true return
 * does not promise readiness: callers poll libpq and come back.
 *
 * The connection keeps one WaitEventSet for its life, as the walsender
 * keeps FeBeWaitSet: WaitLatchOrSocket would build and tear down an epoll
 * set, five system calls, around every wait, and a sender waits twice per
 * batch.  The socket stays the same once connected; the set is freed with
 * the connection (repl_conn_close).
 */
static bool
wait_conn(ReplConn *conn, int events)
{
	TimestampTz now = GetCurrentTimestamp();
	long		left;
	WaitEvent	event;
	int			rc;

	if (conn->dead)
		return false;
	if (conn->last_traffic == 0)
		conn->last_traffic = now;
	left = TimestampDifferenceMilliseconds(now,
										   TimestampTzPlusMilliseconds(conn->last_traffic,
																	   repl_network_timeout));
	if (left <= 0)
	{
		if (!peer_is_busy(conn, events))
			return false;
		conn->last_traffic = GetCurrentTimestamp();
		return true;
	}
	if (conn->wait_set == NULL)
	{
		conn->wait_set = CreateWaitEventSet(TopMemoryContext, 3);
		AddWaitEventToSet(conn->wait_set, WL_LATCH_SET, PGINVALID_SOCKET,
						  MyLatch, NULL);
		AddWaitEventToSet(conn->wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
						  NULL, NULL);
		conn->wait_pos = AddWaitEventToSet(conn->wait_set, events,
										   PQsocket(conn->conn), NULL, NULL);
		conn->wait_events = events;
	}
	else if (conn->wait_events != events)
	{
		ModifyWaitEvent(conn->wait_set, conn->wait_pos, events, NULL);
		conn->wait_events = events;
	}
	if (WaitEventSetWait(conn->wait_set, left, &event, 1, PG_WAIT_EXTENSION) == 0)
		rc = WL_TIMEOUT;
	else
		rc = event.events;
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (rc & events)
		conn->last_traffic = GetCurrentTimestamp();
	return true;
}

/* Why conn failed: declared dead, or libpq's message. */
static char *
failure_message(ReplConn *conn)
{
	return conn->dead ? pstrdup(conn->dead) : conn_error(conn->conn);
}

/* Push the output buffer out, waiting on the socket; false on failure. */
static bool
flush_output(ReplConn *conn)
{
	for (;;)
	{
		int			r = PQflush(conn->conn);

		if (r == 0)
			return true;
		if (r < 0)
			return false;
		if (!wait_conn(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE))
			return false;
		/* the server may talk while we write: keep reading */
		if (!PQconsumeInput(conn->conn))
			return false;
	}
}

/*
 * The next result of the command in progress, waiting for it (the shape
 * of libpqsrv_get_result, bounded by wait_conn).  NULL when there is none,
 * or when the connection failed (conn->dead or a libpq error then says why).
 */
static PGresult *
get_result(ReplConn *conn)
{
	while (PQisBusy(conn->conn))
	{
		if (!wait_conn(conn, WL_SOCKET_READABLE))
			return NULL;
		if (!PQconsumeInput(conn->conn))
			break;
	}
	return PQgetResult(conn->conn);
}

/* A ReplResult (allocated in the current context) from libpq's last result. */
static ReplResult *
convert_result(ReplConn *conn, PGresult *last)
{
	ReplResult *r;

	if (last == NULL)
		r = result_failed(failure_message(conn));
	else if (PQresultStatus(last) == PGRES_TUPLES_OK ||
			 PQresultStatus(last) == PGRES_COMMAND_OK)
	{
		int			i;
		int			j;

		r = palloc0(sizeof(ReplResult));
		r->ok = true;
		r->ntuples = PQntuples(last);
		r->nfields = PQnfields(last);
		r->values = palloc0(sizeof(char *) * Max(r->ntuples * r->nfields, 1));
		for (i = 0; i < r->ntuples; i++)
			for (j = 0; j < r->nfields; j++)
				if (!PQgetisnull(last, i, j))
					r->values[i * r->nfields + j] = pstrdup(PQgetvalue(last, i, j));
	}
	else
	{
		const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(last, PG_DIAG_MESSAGE_DETAIL);
		const char *hint = PQresultErrorField(last, PG_DIAG_MESSAGE_HINT);
		const char *context = PQresultErrorField(last, PG_DIAG_CONTEXT);

		r = result_failed(msg ? msg : pchomp(PQresultErrorMessage(last)));
		if (state)
			strlcpy(r->sqlstate, state, sizeof(r->sqlstate));
		if (detail)
			r->detail = pstrdup(detail);
		if (hint)
			r->hint = pstrdup(hint);
		if (context)
			r->context = pstrdup(context);
	}
	return r;
}

/*
 * Collect the outcome of the command just sent.  Never raises for remote
 * or network errors; does raise on interrupts.  All PGresults are cleared
 * on every path.
 */
static ReplResult *
collect_result(ReplConn *conn)
{
	ReplResult *volatile r = NULL;
	PGresult   *volatile last = NULL;

	PG_TRY();
	{
		PGresult   *res;

		while ((res = get_result(conn)) != NULL)
		{
			PQclear(last);
			last = res;
		}
		/* a dead connection ends the command, whatever came before */
		if (conn->dead)
		{
			PQclear(last);
			last = NULL;
		}
		r = convert_result(conn, last);
	}
	PG_CATCH();
	{
		PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQclear(last);
	return r;
}

/*
 * repl_conn_exec
 *		Run one command with parameters (text unless formats says binary) and
 *		return its outcome.  Never raises for remote or network errors; does
 *		raise on interrupts.
 */
ReplResult *
repl_conn_exec(ReplConn *conn, const char *sql, int nparams,
			   const char *const *values, const int *lengths,
			   const int *formats)
{
	return conn_exec(conn, sql, nparams, values, lengths, formats);
}

static ReplResult *
conn_exec(ReplConn *conn, const char *sql, int nparams,
		  const char *const *values, const int *lengths, const int *formats)
{
	conn->last_traffic = GetCurrentTimestamp();
	if (conn->dead ||
		!PQsendQueryParams(conn->conn, sql, nparams, NULL, values, lengths,
						   formats, 0) ||
		!flush_output(conn))
		return result_failed(failure_message(conn));
	return collect_result(conn);
}

/*
 * Collect the outcome of a command sent in pipeline mode, followed by its
 * Sync, and leave pipeline mode: the command's error if it failed, else its
 * last result.  A connection that fails before the Sync's result arrives
 * fails the command, as in collect_result.
 */
static ReplResult *
collect_pipeline_result(ReplConn *conn)
{
	ReplResult *volatile r = NULL;
	PGresult   *volatile kept = NULL;
	volatile bool synced = false;

	PG_TRY();
	{
		int			nulls = 0;

		while (!synced)
		{
			PGresult   *res = get_result(conn);

			if (conn->dead)
				break;
			if (res == NULL)
			{
				/*
				 * The end of the command's results; libpq returns NULL at
				 * most once between two results of a healthy pipeline.
				 */
				if (PQstatus(conn->conn) == CONNECTION_BAD || ++nulls > 1)
					break;
				continue;
			}
			nulls = 0;
			if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			{
				synced = true;
				PQclear(res);
			}
			else if (kept == NULL ||
					 PQresultStatus(kept) == PGRES_TUPLES_OK ||
					 PQresultStatus(kept) == PGRES_COMMAND_OK)
			{
				PQclear(kept);
				kept = res;
			}
			else
				PQclear(res);
		}
		if (!synced || conn->dead)
		{
			PQclear(kept);
			kept = NULL;
		}
		r = convert_result(conn, kept);
	}
	PG_CATCH();
	{
		PQclear(kept);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQclear(kept);
	/* after the Sync nothing is pending, so this only fails on a broken one */
	if (synced && !PQexitPipelineMode(conn->conn) && r->ok)
		r = result_failed(failure_message(conn));
	return r;
}

/*
 * repl_conn_exec_prepared
 *		As repl_conn_exec, for a command run many times on one connection:
 *		it is prepared as statement name on first use (sql gives the
 *		parameter types by casts), so the remote side neither parses nor
 *		plans it again.  At most REPL_MAX_PREPARED names per connection.
 *
 *		With before_commit, the command is sent without its Sync (libpq's
 *		pipeline mode), so the remote side runs it but cannot commit;
 *		before_commit(arg) runs meanwhile, and only then the Sync goes out
 *		and the remote transaction commits.  A failure of the command
 *		reaches the caller after before_commit has run.
 */
ReplResult *
repl_conn_exec_prepared(ReplConn *conn, const char *name, const char *sql,
						int nparams, const char *const *values,
						const int *lengths, const int *formats,
						ReplBeforeCommit before_commit, void *arg)
{
	PGconn	   *pgconn = conn->conn;
	int			i;
	bool		prepared = false;

	for (i = 0; i < conn->nprepared; i++)
		if (strcmp(conn->prepared[i], name) == 0)
			prepared = true;
	if (!prepared)
	{
		ReplResult *r;

		if (conn->nprepared >= REPL_MAX_PREPARED)
			elog(ERROR, "too many prepared statements on one connection");
		conn->last_traffic = GetCurrentTimestamp();
		if (conn->dead || !PQsendPrepare(pgconn, name, sql, nparams, NULL) ||
			!flush_output(conn))
			return result_failed(failure_message(conn));
		r = collect_result(conn);
		if (!r->ok)
			return r;
		strlcpy(conn->prepared[conn->nprepared++], name, NAMEDATALEN);
	}
	conn->last_traffic = GetCurrentTimestamp();
	if (before_commit == NULL)
	{
		if (conn->dead ||
			!PQsendQueryPrepared(pgconn, name, nparams, values, lengths,
								 formats, 0) ||
			!flush_output(conn))
			return result_failed(failure_message(conn));
		return collect_result(conn);
	}
	if (conn->dead || !PQenterPipelineMode(pgconn) ||
		!PQsendQueryPrepared(pgconn, name, nparams, values, lengths,
							 formats, 0) ||
		!flush_output(conn))
		return result_failed(failure_message(conn));
	before_commit(arg);
	if (!PQpipelineSync(pgconn) || !flush_output(conn))
		return result_failed(failure_message(conn));
	return collect_pipeline_result(conn);
}

const char *
repl_result_value(ReplResult *res, int row, int col)
{
	Assert(row < res->ntuples && col < res->nfields);
	return res->values[row * res->nfields + col];
}

/*
 * repl_result_raise
 *		Raise a failed result as an ERROR that keeps the remote SQLSTATE,
 *		detail and hint, naming the node.
 */
void
repl_result_raise(ReplResult *res, const char *node_name)
{
	int			code = ERRCODE_CONNECTION_FAILURE;

	/* no SQLSTATE: the connection failed, not the command */
	if (!res->sqlstate[0])
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to node \"%s\"", node_name),
				 errdetail_internal("%s", res->message),
				 errhint("Nothing was changed on this node; call the function again once \"%s\" answers.",
						 node_name)));
	if (res->sqlstate[0])
		code = MAKE_SQLSTATE(res->sqlstate[0], res->sqlstate[1],
							 res->sqlstate[2], res->sqlstate[3],
							 res->sqlstate[4]);
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", res->message),
			 res->detail ? errdetail_internal("%s", res->detail) : 0,
			 res->hint ? errhint("%s", res->hint) : 0,
			 errcontext("on node \"%s\"", node_name)));
}

/*
 * repl_conn_open_or_raise
 *		repl_conn_open for a function a user called: an unreachable node is
 *		an error naming it (what: e.g. 'follower "n2"'), with libpq's text.
 */
ReplConn *
repl_conn_open_or_raise(const char *conninfo, const char *node_name,
						const char *what)
{
	char	   *err;
	ReplConn   *conn = repl_conn_open(conninfo, node_name, &err);

	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to %s", what),
				 errdetail_internal("%s", err)));
	return conn;
}

/*
 * repl_conn_exec_or_raise
 *		repl_conn_exec with text parameters, raising on failure.  *res (if
 *		not NULL) receives the result.
 */
void
repl_conn_exec_or_raise(ReplConn *conn, const char *sql, int nparams,
						const char *const *values, const char *node_name,
						ReplResult **res)
{
	ReplResult *r = repl_conn_exec(conn, sql, nparams, values, NULL, NULL);

	if (!r->ok)
		repl_result_raise(r, node_name);
	if (res)
		*res = r;
}

/* Start a COPY on conn and wait for the server to enter copy state. */
static bool
start_copy(ReplConn *conn, const char *sql, ExecStatusType expected,
		   ReplResult **failure)
{
	PGresult   *res;

	conn->last_traffic = GetCurrentTimestamp();
	if (conn->dead || !PQsendQuery(conn->conn, sql) || !flush_output(conn))
	{
		*failure = result_failed(failure_message(conn));
		return false;
	}
	res = get_result(conn);
	if (res != NULL && PQresultStatus(res) == expected)
	{
		PQclear(res);
		return true;
	}
	if (res == NULL)
		*failure = result_failed(failure_message(conn));
	else
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

		*failure = result_failed(msg ? msg : pchomp(PQresultErrorMessage(res)));
		if (state)
			strlcpy((*failure)->sqlstate, state, sizeof((*failure)->sqlstate));
		if (detail)
			(*failure)->detail = pstrdup(detail);
		PQclear(res);
	}
	return false;
}

/* Collect the results that end a COPY; NULL when it succeeded. */
static ReplResult *
finish_copy(ReplConn *conn)
{
	ReplResult *failure = NULL;
	PGresult   *res;

	while ((res = get_result(conn)) != NULL)
	{
		if (failure == NULL && PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

			failure = result_failed(msg ? msg : pchomp(PQresultErrorMessage(res)));
			if (state)
				strlcpy(failure->sqlstate, state, sizeof(failure->sqlstate));
			if (detail)
				failure->detail = pstrdup(detail);
		}
		PQclear(res);
	}
	if (failure == NULL && conn->dead)
		failure = result_failed(conn->dead);
	return failure;
}

/*
 * repl_conn_copy
 *		Stream a COPY from one node to another: copy_out (COPY ... TO STDOUT)
 *		runs on src, copy_in (COPY ... FROM STDIN, same format) on dst, and
 *		every data message goes straight from one to the other; nothing is
 *		parsed or held beyond one row.  Both sockets are driven non-blocking
 *		with latch waits.  progress(arg, rows, bytes) is called every few
 *		thousand rows and whenever the latch is set; when it returns false
 *		the copy is abandoned (the caller then closes both connections).
 *		Returns an ok result on success, otherwise the first failure.
 */
ReplResult *
repl_conn_copy(ReplConn *src, const char *copy_out,
			   ReplConn *dst, const char *copy_in,
			   ReplCopyProgress progress, void *arg)
{
	PGconn	   *in = src->conn;
	PGconn	   *out = dst->conn;
	ReplResult *failure = NULL;
	int64		rows = 0;
	int64		bytes = 0;
	int64		next_report = 4096;
	bool		src_done = false;

	if (!start_copy(dst, copy_in, PGRES_COPY_IN, &failure) ||
		!start_copy(src, copy_out, PGRES_COPY_OUT, &failure))
		return failure;

	while (!src_done)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(in, &buf, 1);

		if (n > 0)
		{
			int			r;

			while ((r = PQputCopyData(out, buf, n)) == 0)
			{
				/* output buffer full: wait until the follower takes more */
				if (!flush_output(dst))
				{
					r = -1;
					break;
				}
			}
			PQfreemem(buf);
			if (r < 0)
				return result_failed(failure_message(dst));
			rows++;
			bytes += n;
			if (rows >= next_report)
			{
				next_report = rows + 4096;
				if (!progress(arg, rows, bytes))
					return result_failed("copy cancelled");
			}
			continue;
		}
		if (n == 0)
		{
			/* nothing buffered: send what we have, then wait for more */
			switch (PQflush(out))
			{
				case 0:
					/* all sent: the follower takes data */
					dst->last_traffic = GetCurrentTimestamp();
					break;
				case 1:
					break;
				default:
					return result_failed(conn_error(out));
			}
			if (!wait_conn(src, WL_SOCKET_READABLE))
				return result_failed(failure_message(src));
			if (!PQconsumeInput(in))
				return result_failed(conn_error(in));
			if (!progress(arg, rows, bytes))
				return result_failed("copy cancelled");
			continue;
		}
		if (n == -2)
			return result_failed(conn_error(in));
		src_done = true;		/* n == -1: the source sent everything */
	}
	(void) progress(arg, rows, bytes);

	failure = finish_copy(src);
	if (failure != NULL)
		return failure;
	for (;;)
	{
		int			r = PQputCopyEnd(out, NULL);

		if (r > 0)
			break;
		if (r < 0 || !flush_output(dst))
			return result_failed(failure_message(dst));
	}
	if (!flush_output(dst))
		return result_failed(failure_message(dst));
	failure = finish_copy(dst);
	if (failure != NULL)
		return failure;
	failure = palloc0(sizeof(ReplResult));
	failure->ok = true;
	return failure;
}
