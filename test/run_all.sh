#!/usr/bin/env bash
# Build repl_ext and run every test suite: pg_regress, isolation and TAP.
#
#   sudo bash test/run_all.sh
#
# As root it installs what is missing (Debian packages), builds with warnings
# as errors, installs the extension, copies the tree to a directory the
# postgres user owns and runs the suites there as postgres.  The last line
# of output is "N passed, N failed"; the exit status is 0 only if all passed.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
packages=(postgresql-15 postgresql-server-dev-15 libipc-run-perl make gcc)

if [ "$(id -u)" = 0 ]; then
	missing=()
	for p in "${packages[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing ${missing[*]}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
			{ echo "could not install ${missing[*]}"; echo "0 passed, 1 failed"; exit 1; }
	fi
	echo "== build (warnings are errors)"
	make -C "$src" clean >/dev/null
	if ! make -C "$src" PG_CONFIG="$PG_CONFIG" COPT='-Wall -Wextra -Wno-unused-parameter -Werror'; then
		echo "build failed"; echo "0 passed, 1 failed"; exit 1
	fi
	make -C "$src" PG_CONFIG="$PG_CONFIG" install >/dev/null || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }
	work=$(mktemp -d /tmp/repl_ext_test.XXXXXX)
	cp -a "$src/." "$work/"
	rm -rf "$work/results" "$work/output_iso" "$work/tmp_check" "$work"/tmp_* "$work/log"
	chown -R postgres "$work"
	runuser -u postgres -- bash "$work/test/run_all.sh"
	rc=$?
	[ $rc = 0 ] && rm -rf "$work" || echo "(test tree kept in $work)"
	exit $rc
fi

# From here on: the postgres user, in a tree it can write.
cd "$src"
out=$(mktemp)
passed=0
failed=0

run_suite() {
	local name=$1; shift
	echo "== $name"
	make PG_CONFIG="$PG_CONFIG" installcheck "$@" 2>&1 | tee "$out" | grep -E '^(test |ok |not ok |test/t/|Files=|Result:|All |Failed|Dubious)' || true
}

count_pg_regress() {
	local p f
	p=$(grep -cE '^(test |ok ).* ok( |$)' "$out")
	f=$(grep -cE '^(test |not ok ).*FAILED' "$out")
	# a suite that could not start counts as one failure
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; fi
	passed=$((passed + p)); failed=$((failed + f))
}

show_diffs() {
	if [ -f regression.diffs ]; then
		echo "-- regression.diffs"; cat regression.diffs; rm -f regression.diffs
	fi
}

rm -f regression.diffs
run_suite "pg_regress" ISOLATION= TAP_TESTS=
count_pg_regress
show_diffs

run_suite "isolation" REGRESS= TAP_TESTS=
count_pg_regress
show_diffs

run_suite "TAP" REGRESS= ISOLATION=
total=$(ls test/t/*.pl | wc -l)
tap_failed=$(grep -cE '^test/t/\S+ +\(Wstat' "$out")
if ! grep -q '^Result: PASS' "$out" && [ "$tap_failed" = 0 ]; then
	tap_failed=$total	# prove did not run
fi
passed=$((passed + total - tap_failed)); failed=$((failed + tap_failed))
if [ "$tap_failed" != 0 ]; then
	for f in tmp_check/log/*; do
		echo "-- tail of $f"; tail -n 40 "$f"
	done
fi
for f in log/postmaster.log output_iso/log/postmaster.log; do
	[ "$failed" != 0 ] && [ -f "$f" ] && { echo "-- tail of $f"; tail -n 40 "$f"; }
done

rm -f "$out"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
