# Sourced (never run) by the test, demo and benchmark scripts: what they share, written once.
#
#   REPO_ROOT                  the repository, an absolute path
#   need_deps SECTION...       fails, naming scripts/install-deps.sh, when a section's tools are missing
#   build_release [PACKAGE...] cargo build --release, quietly: the library and the emulator by default
#   LINK_LIBCAPMONSTER         gcc/g++ flags for a program using target/release's libcapmonster
#                              (header, library, rpath, threads): put them after the sources
#   go_env                     Go set up alike for every script: offline, cgo on
#   private_budget             the programs run from here count in a budget file of their own
#   start_emulator [ARG...]    the release emulator on a free loopback port: EMULATOR_URL
#   stop_emulator              stops it (also done at exit)
#   run_c_tests ...            tests/c's two programs, each against a fresh emulator
#   at_exit COMMAND [ARG...]   runs COMMAND when the script exits (last registered, first run)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# rustup's cargo, when the shell that started us did not put it on PATH (a login shell does).
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

# --- exit hooks ----------------------------------------------------------------------------
# One EXIT trap for every cleanup, so that the emulator's and the script's own both run. A
# script with an EXIT trap of its own keeps it (at_exit then installs none) and calls
# stop_emulator in it.
_exit_hooks=()
at_exit() {
    _exit_hooks+=("$(printf '%q ' "$@")")
    case "$(trap -p EXIT)" in
        "" | *_run_exit_hooks*) trap _run_exit_hooks EXIT ;;
        *) return 0 ;;
    esac
    # Interrupted or terminated: exit, so that the hooks run (a killed shell runs no EXIT trap).
    [ -n "$(trap -p INT)" ] || trap 'exit 130' INT
    [ -n "$(trap -p TERM)" ] || trap 'exit 143' TERM
}
_run_exit_hooks() {
    local rc=$? i
    set +e # a failing cleanup must not hide the script's own status
    for ((i = ${#_exit_hooks[@]} - 1; i >= 0; i--)); do
        eval "${_exit_hooks[i]}"
    done
    exit "$rc"
}

# --- packages ------------------------------------------------------------------------------
need_deps() {
    "$REPO_ROOT/scripts/install-deps.sh" --check "$@" || exit 1
}

# --- the release build -----------------------------------------------------------------------
# shellcheck disable=SC2120 # the packages are optional
build_release() {
    local packages=("$@") args=() package
    [ ${#packages[@]} -gt 0 ] || packages=(capmonster capmonster-emulator)
    for package in "${packages[@]}"; do args+=(-p "$package"); done
    (cd "$REPO_ROOT" && cargo build --release --quiet "${args[@]}")
}

# -pthread: the tests and benchmarks start threads of their own; the library needs nothing more.
# shellcheck disable=SC2034,SC2054 # used by the scripts that source this; -Wl,-rpath,DIR is one word
LINK_LIBCAPMONSTER=(-I"$REPO_ROOT/include" -pthread -L"$REPO_ROOT/target/release" -lcapmonster
                    -Wl,-rpath,"$REPO_ROOT/target/release")

# --- Go --------------------------------------------------------------------------------------
# The binding needs Go 1.24 or newer (/usr/local/go when not on PATH). Offline: no toolchain
# download, no module download (the modules here have no dependencies besides the binding, by
# replace), no go.mod rewrite; no VCS stamping (it fails on a checkout owned by another user);
# cgo on, as the binding needs it. Without HOME, Go has no default cache: one under target/.
# Returns 1, saying why, when there is no Go.
go_env() {
    if ! command -v go >/dev/null 2>&1; then
        if [ ! -x /usr/local/go/bin/go ]; then
            echo "${0##*/}: go is not installed (Go 1.24 or newer): see scripts/install-deps.sh --list" >&2
            return 1
        fi
        PATH="/usr/local/go/bin:$PATH"
    fi
    export GOTOOLCHAIN=local GOPROXY=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=1
    if [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
        export GOCACHE=${GOCACHE:-$REPO_ROOT/target/go/cache} GOPATH=${GOPATH:-$REPO_ROOT/target/go/path}
    fi
}

# --- the request budget ----------------------------------------------------------------------
# The programs a script runs (examples, consumers, pollers) count their requests in a fresh
# budget file of the script's own, removed at exit: never the user's, never another run's.
# (The test suites take one of their own per test anyway.)
private_budget() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-budget.XXXXXX")
    at_exit rm -rf "$dir"
    export CAPMONSTER_BUDGET_FILE=$dir/budget
    unset CAPMONSTER_BUDGET
}

# --- the emulator ----------------------------------------------------------------------------
# start_emulator [emulator args...]: starts target/release/capmonster-emulator on a free
# loopback port, exports EMULATOR_URL and sets EMULATOR_PID. One at a time: a running one is
# stopped first. Its output goes to a log, shown when it fails to start.
EMULATOR_PID=
_emulator_dir=
_emulator_hooked=
start_emulator() {
    local emulator=$REPO_ROOT/target/release/capmonster-emulator _
    stop_emulator
    [ -x "$emulator" ] || { echo "${0##*/}: $emulator is missing (build_release first)" >&2; return 1; }
    [ -n "$_emulator_hooked" ] || { at_exit stop_emulator; _emulator_hooked=1; }
    _emulator_dir=$(mktemp -d "${TMPDIR:-/tmp}/capmonster-emulator.XXXXXX")
    "$emulator" --port 0 --port-file "$_emulator_dir/port" "$@" >"$_emulator_dir/log" 2>&1 &
    EMULATOR_PID=$!
    # At most 10 s: the emulator writes the file (atomically) once it listens.
    for _ in $(seq 1 200); do
        [ -s "$_emulator_dir/port" ] && break
        kill -0 "$EMULATOR_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$_emulator_dir/port" ]; then
        cat "$_emulator_dir/log" >&2
        echo "${0##*/}: the emulator did not start" >&2
        stop_emulator
        return 1
    fi
    EMULATOR_URL="http://127.0.0.1:$(cat "$_emulator_dir/port")"
    export EMULATOR_URL
}

stop_emulator() {
    if [ -n "$EMULATOR_PID" ]; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
        EMULATOR_PID=
    fi
    if [ -n "$_emulator_dir" ]; then
        rm -rf "$_emulator_dir"
        _emulator_dir=
    fi
}

# run_c_tests LABEL TEST_CAPMONSTER TEST_WAITER WAITS [RUNNER...]: tests/c's two programs, each
# against a fresh emulator (the scripted tasks count their requests), through RUNNER (valgrind,
# wine) when given; test_waiter makes WAITS waits unless TEST_WAITER_WAITS says otherwise.
run_c_tests() {
    local label=$1 capmonster=$2 waiter=$3 waits=$4
    shift 4
    echo "== $(basename "$capmonster")$label"
    start_emulator --script "$REPO_ROOT/tests/c/emulator-script.json"
    "$@" "$capmonster" "$EMULATOR_URL"
    stop_emulator
    echo "== $(basename "$waiter")$label"
    start_emulator
    TEST_WAITER_WAITS="${TEST_WAITER_WAITS:-$waits}" "$@" "$waiter" "$EMULATOR_URL"
    stop_emulator
}
