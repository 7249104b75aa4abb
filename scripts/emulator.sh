# Sourced by the other scripts: start_emulator [emulator args...] starts the release emulator
# on a free loopback port, sets EMULATOR_URL and stops it when the script exits (through its own
# EXIT trap when the script has none; a script with an EXIT trap calls stop_emulator in it).

start_emulator() {
    local root port_file i
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    port_file=$(mktemp -u "${TMPDIR:-/tmp}/capmonster-emulator-port.XXXXXX")
    "$root/target/release/capmonster-emulator" --port 0 --port-file "$port_file" "$@" >/dev/null &
    EMULATOR_PID=$!
    [ -n "$(trap -p EXIT)" ] || trap 'stop_emulator' EXIT
    for i in $(seq 1 200); do
        [ -s "$port_file" ] && break
        if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
            echo "the emulator did not start" >&2
            return 1
        fi
        sleep 0.05
    done
    [ -s "$port_file" ] || { echo "the emulator did not report its port" >&2; return 1; }
    EMULATOR_URL="http://127.0.0.1:$(cat "$port_file")"
    rm -f "$port_file"
    export EMULATOR_URL
}

# run_c_tests LABEL TEST_CAPMONSTER TEST_WAITER WAITS [RUNNER...]: tests/c's two programs, each
# against a fresh emulator (the scripted tasks count their requests), through RUNNER (valgrind,
# wine) when given; test_waiter makes WAITS waits unless TEST_WAITER_WAITS says otherwise.
run_c_tests() {
    local label=$1 capmonster=$2 waiter=$3 waits=$4 root
    shift 4
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    echo "== $(basename "$capmonster")$label"
    start_emulator --script "$root/tests/c/emulator-script.json"
    "$@" "$capmonster" "$EMULATOR_URL"
    stop_emulator
    echo "== $(basename "$waiter")$label"
    start_emulator
    TEST_WAITER_WAITS="${TEST_WAITER_WAITS:-$waits}" "$@" "$waiter" "$EMULATOR_URL"
    stop_emulator
}

stop_emulator() {
    if [ -n "${EMULATOR_PID:-}" ]; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
        EMULATOR_PID=
    fi
}
