package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

func TestPolicyCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(file, policy.DefaultYAML(), 0o600))
	var approvers strings.Builder
	keys := map[string]string{}
	for _, a := range []struct{ name, group string }{{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"}} {
		kf, err := intent.GenerateKey(a.name)
		require.NoError(t, err)
		b, err := json.Marshal(kf)
		require.NoError(t, err)
		keys[a.name] = filepath.Join(dir, a.name+".key")
		require.NoError(t, os.WriteFile(keys[a.name], b, 0o600))
		fmt.Fprintf(&approvers, "- {name: %s, groups: [%s], key: %q}\n", a.name, a.group, kf.Public)
	}
	approversFile := filepath.Join(dir, "approvers.yaml")
	require.NoError(t, os.WriteFile(approversFile, []byte(approvers.String()), 0o600))

	var out, errOut bytes.Buffer
	require.NoError(t, runPolicy([]string{"hash", file}, &out, &errOut))
	require.Equal(t, policy.Hash(policy.DefaultYAML())+"\n", out.String())
	require.NoError(t, policyCmd([]string{"hash", file}))

	var record bytes.Buffer
	for _, n := range []string{"alice", "bob"} {
		errOut.Reset()
		require.NoError(t, runPolicy([]string{"approve", "--key", keys[n], "--reason", "reviewed", file}, &record, &errOut))
		require.Contains(t, errOut.String(), n+" approves policy "+policy.Hash(policy.DefaultYAML()))
	}
	rec := filepath.Join(dir, "policy.approvals")
	require.NoError(t, os.WriteFile(rec, record.Bytes(), 0o600))

	out.Reset()
	require.NoError(t, runPolicy([]string{"check", "--approvers", approversFile, "--approvals", rec, "--quorum", "2", "--groups", "security", file}, &out, &errOut))
	require.Contains(t, out.String(), "6 rules")
	require.Contains(t, out.String(), "approved by alice, bob")

	err := runPolicy([]string{"check", "--approvers", approversFile, "--approvals", rec, "--quorum", "3", "--groups", "security", file}, &out, &errOut)
	require.ErrorIs(t, err, policy.ErrNotApproved)

	require.NoError(t, os.WriteFile(file, append(policy.DefaultYAML(), "# edited\n"...), 0o600))
	err = runPolicy([]string{"check", "--approvers", approversFile, "--approvals", rec, "--quorum", "2", "--groups", "security", file}, &out, &errOut)
	require.ErrorIs(t, err, policy.ErrPolicyChanged)

	out.Reset()
	require.NoError(t, runPolicy([]string{"default"}, &out, &errOut))
	require.Equal(t, string(policy.DefaultYAML()), out.String())
	require.Error(t, runPolicy([]string{"frobnicate"}, &out, &errOut))
}
