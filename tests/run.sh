#!/bin/sh
# Runs every cmocka suite given on the command line, then prints one closing line with the totals
# ("N passed, N failed, N skipped"). Exits non-zero if any suite failed or crashed.
passed=0; failed=0; skipped=0; bad=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ]; then
        bad=1
        [ -z "$f" ] && { echo "$t: exited with status $rc"; failed=$((failed + 1)); }
    fi
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $bad
