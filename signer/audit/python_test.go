package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pythonNaCl is a python3 that imports PyNaCl (Debian's python3-nacl,
// which make test installs): the one on PATH, else Debian's own. The
// test skips without one, and fails under CORDON_TEST_REQUIRE_TOOLS.
func pythonNaCl(tb testing.TB) string {
	tb.Helper()
	var cands []string
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	for _, p := range cands {
		if exec.Command(p, "-c", "import nacl.signing").Run() == nil { //nolint:gosec // a test probing its own interpreter
			return p
		}
	}
	if os.Getenv("CORDON_TEST_REQUIRE_TOOLS") != "" {
		tb.Fatal("no python3 with PyNaCl (apt-get install python3-nacl; make test installs it)")
	}
	tb.Skip("no python3 with PyNaCl (apt-get install python3-nacl; make test installs it)")
	return ""
}

// runPython re-verifies es with testdata/verify.py.
func runPython(t *testing.T, py string, es []Entry, keys ...*Key) (string, error) {
	t.Helper()
	var b bytes.Buffer
	for _, e := range es {
		line, err := json.Marshal(map[string]any{"offset": e.Offset, "key": string(e.Key), "value": string(e.Value)})
		require.NoError(t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "log.jsonl")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	args := []string{"testdata/verify.py", path}
	for _, k := range keys {
		args = append(args, k.Public())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, args...).Output() //nolint:gosec // the test's own script
	return strings.TrimSpace(string(out)), err
}

// TestPythonReverifies: an outside implementation (Python's hashlib,
// json and PyNaCl, no JCS library) re-verifies the log cordon writes
// from docs/gate/audit.md alone: it reaches the same head and
// checkpoint, which also shows that Python's sorted compact JSON is the
// records' RFC 8785 form (the log's bodies hold quotes, HTML, U+2028 and
// characters outside the BMP); and it names the record with a changed
// byte, and a forged checkpoint.
func TestPythonReverifies(t *testing.T) {
	py := pythonNaCl(t)
	leader := testKey("leader")
	es := buildLog(t, 305, 50, leader)
	rep, err := Verify(es, trusted(t, leader))
	require.NoError(t, err)

	out, err := runPython(t, py, es, leader)
	require.NoError(t, err, out)
	require.Equal(t, fmt.Sprintf("ok %d %d %s %d", rep.Records, rep.HeadSeq, rep.HeadHash, rep.LastCheckpoint.Seq), out)

	out, err = runPython(t, py, es, testKey("other"))
	require.Error(t, err)
	require.Equal(t, "tampered 51 50 checkpoint key not trusted", out, "the first checkpoint, after 50 records")

	for _, tc := range tampers() {
		switch tc.name {
		case "one byte of a record's body changed", "a forged checkpoint signature", "one record removed":
		default:
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			bad := renumber(tc.do(t, clone(es)))
			grep, gerr := Verify(bad, trusted(t, leader))
			require.ErrorIs(t, gerr, ErrTampered)
			out, err := runPython(t, py, bad, leader)
			require.Error(t, err, out)
			f := strings.Fields(out)
			require.Equal(t, "tampered", f[0], out)
			require.Equal(t, fmt.Sprint(grep.Problem.Seq), f[1], "python names the record Go names: %s / %s", out, grep.Problem.Detail)
		})
	}
}
