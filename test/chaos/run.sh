#!/usr/bin/env bash
# Run the chaos test (test/t/130_chaos.pl) alone, for as long as you like:
#
#   test/chaos/run.sh [seconds] [seed]      e.g. test/chaos/run.sh 1800
#   CHAOS_CLIENTS=6 CHAOS_LEADER_RESTART=0 CHAOS_PROMOTE=0 test/chaos/run.sh 600 12345
#
# repl_ext must be installed (make install).  The tree is copied to
# $CHAOS_DIR (default /tmp/repl_ext_chaos, emptied first); as root the copy is
# given to the postgres user and the test runs as postgres.  The seed is
# printed at the start; the same seed replays the same fault schedule and
# workload (timing aside).  Logs stay in $CHAOS_DIR/tmp_check/ (server logs in
# log/, fault events, schedule, proxy log and client ledgers in chaos/).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-600}
seed=${2:-}
dir=${CHAOS_DIR:-/tmp/repl_ext_chaos}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

case $dir in
/tmp/?*) ;;
*) echo "CHAOS_DIR must be below /tmp" >&2; exit 2 ;;
esac
rm -rf "$dir"
mkdir -p "$dir"
cp -a "$src/." "$dir/"
rm -rf "$dir/tmp_check" "$dir/results" "$dir"/tmp_* "$dir/log" "$dir/output_iso"

# each wait of the test is bounded by PG_TEST_TIMEOUT_DEFAULT (default 180 s)
env=(CHAOS_SECONDS="$seconds" PG_CONFIG="$PG_CONFIG")
if [ -n "$seed" ]; then env+=(CHAOS_SEED="$seed"); else env+=(CHAOS_RANDOM_SEED=1); fi
[ -n "${CHAOS_CLIENTS:-}" ] && env+=(CHAOS_CLIENTS="$CHAOS_CLIENTS")
[ -n "${CHAOS_LEADER_RESTART:-}" ] && env+=(CHAOS_LEADER_RESTART="$CHAOS_LEADER_RESTART")
[ -n "${CHAOS_KINDS:-}" ] && env+=(CHAOS_KINDS="$CHAOS_KINDS")
[ -n "${CHAOS_RESYNC:-}" ] && env+=(CHAOS_RESYNC="$CHAOS_RESYNC")
[ -n "${CHAOS_PROMOTE:-}" ] && env+=(CHAOS_PROMOTE="$CHAOS_PROMOTE")

cmd=(make -C "$dir" installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/130_chaos.pl
	PROVE_FLAGS="-v -I $dir/test/perl")
rc=0
if [ "$(id -u)" = 0 ]; then
	chown -R postgres "$dir"
	runuser -u postgres -- env "${env[@]}" "${cmd[@]}" || rc=$?
else
	env "${env[@]}" "${cmd[@]}" || rc=$?
fi
echo "chaos run: $([ $rc = 0 ] && echo passed || echo FAILED); logs in $dir/tmp_check"
exit $rc
