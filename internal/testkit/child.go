package testkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// InfraEnv names the environment variable that turns a test binary into a
// benchmark's helper process (see SpawnChild).
const InfraEnv = "CORDON_BENCH_INFRA"

// ChildMode returns the helper mode this test binary was started in, or
// "" for a normal run. A TestMain calls it first.
func ChildMode() string { return os.Getenv(InfraEnv) }

// Ready prints a helper process's READY line.
func Ready(fields ...any) { fmt.Println(append([]any{"READY"}, fields...)...) }

// WaitStdin blocks until the parent closes the helper's standard input.
func WaitStdin() { _, _ = io.Copy(io.Discard, os.Stdin) }

// SpawnChild starts this test binary again as a helper in mode, so that
// what it runs (a broker, a node) does not share the benchmark's process,
// heap and collector. It waits for the READY line and returns the
// helper's pid and the line's fields; the helper stops with the test.
func SpawnChild(tb testing.TB, mode string) (int, []string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$") //nolint:gosec,noctx // this test binary, again; stopped by the cleanup below
	// Helpers run with Go's default collector settings, whatever this
	// process was given.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, InfraEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "READY" {
		tb.Fatalf("helper %s: %s", mode, line)
	}
	return cmd.Process.Pid, f[1:]
}

// CPUSeconds is the user+system CPU time a process (0: this one) has used
// so far, from /proc.
func CPUSeconds(pid int) float64 {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
