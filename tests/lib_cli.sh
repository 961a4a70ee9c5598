# lib_cli.sh — helpers for the end-to-end CLI tests (sourced, not run).
# Each check prints PASS/FAIL; finish prints "N passed, M failed" and sets
# the exit status.
set -u
PEERLESS=${PEERLESS:?PEERLESS must name the peerless binary (run through ctest)}
TMP=$(mktemp -d "${PEERLESS_TEST_TMP:-/tmp}/cli.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect_error NAME PATTERN CMD...: CMD must exit non-zero (not by a signal),
# print exactly one line on stderr matching PATTERN (grep -E), and nothing
# that looks like a crash.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  local lines
  lines=$(grep -c '' "$TMP/err" || true)
  if [[ $rc -eq 0 ]]; then fail "$name: exit status 0"; return; fi
  if [[ $rc -ge 128 ]]; then fail "$name: killed by signal (status $rc)"; return; fi
  if grep -qiE 'sanitizer|segmentation|core dumped|assert' "$TMP/err"; then fail "$name: crash: $(cat "$TMP/err")"; return; fi
  if [[ $lines -ne 1 ]]; then fail "$name: expected one error line, got $lines: $(cat "$TMP/err")"; return; fi
  if ! grep -qE -- "$pattern" "$TMP/err"; then fail "$name: message '$(cat "$TMP/err")' does not match /$pattern/"; return; fi
  echo "ok: $name: $(cat "$TMP/err")"
  pass
}

check() { # check NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then pass; echo "ok: $name"; else fail "$name"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}

# json_get FILE KEY: value of KEY in the single-line JSON object FILE.
json_get() {
  /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}
