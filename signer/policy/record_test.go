package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/intent"
)

var policySrc = []byte(`rules:
  - name: tiny
    when: usd < 100 && !has_finding("flagged_destination")
    action: allow
    reason: under $100
  - name: rest
    when: "true || usd > 0"
    action: approve
    reason: everything else
    quorum: 2
    groups: [security, finance]
    window: 1h
    expiry: 1h
  - name: catch-all
    action: deny
    reason: no rule matched
`)

func record(tb testing.TB, src []byte, keys map[string]ed25519.PrivateKey, names ...string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, n := range names {
		a, err := ApprovePolicy(src, n, "reviewed", keys[n], t0)
		require.NoError(tb, err)
		b, err := json.Marshal(a)
		require.NoError(tb, err)
		buf.Write(append(b, '\n'))
	}
	return buf.Bytes()
}

func TestPolicyApprovalRecord(t *testing.T) {
	as, keys := testApprovers(t, intent.Approver{Name: "gone", Groups: []string{"security"}, Disabled: true})
	_, strangerKey, _ := ed25519.GenerateKey(nil)
	keys["mallory"] = strangerKey
	q := Quorum{N: 2, Groups: []string{"security"}}

	by, err := VerifyRecord(policySrc, record(t, policySrc, keys, "bob", "alice", "bob"), q, as)
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "bob"}, by)

	changed := append(bytes.Clone(policySrc), []byte("# one more line\n")...)
	reject := func() []byte {
		a, err := ApprovePolicy(policySrc, "carol", "no", keys["carol"], t0)
		require.NoError(t, err)
		a.Decision = intent.Reject
		a.Sign(keys["carol"])
		b, _ := json.Marshal(a)
		return b
	}
	tampered := func() []byte {
		a, err := ApprovePolicy(policySrc, "carol", "ok", keys["carol"], t0)
		require.NoError(t, err)
		a.Reason = "ok, and more"
		b, _ := json.Marshal(a)
		return b
	}
	cases := []struct {
		name   string
		src    []byte
		record []byte
		is     error
		want   string
	}{
		{"the file changed after approval", changed, record(t, policySrc, keys, "alice", "bob"), ErrPolicyChanged, "the policy file is " + Hash(changed)},
		{"one approval", policySrc, record(t, policySrc, keys, "alice"), ErrNotApproved, "1 of 2 (alice): needs 1 more from security"},
		{"one approver twice", policySrc, record(t, policySrc, keys, "alice", "alice"), ErrNotApproved, "1 of 2"},
		{"approvals from another group do not count", policySrc, record(t, policySrc, keys, "alice", "dave", "erin"), ErrNotApproved, "not counted, outside security: dave, erin"},
		{"an unknown approver", policySrc, record(t, policySrc, keys, "alice", "bob", "mallory"), intent.ErrUnknownApprover, "approval 3"},
		{"a disabled approver", policySrc, record(t, policySrc, keys, "alice", "bob", "gone"), intent.ErrDisabled, "approval 3"},
		{"a signature over other words", policySrc, append(record(t, policySrc, keys, "alice", "bob"), tampered()...), intent.ErrBadSignature, "carol's key"},
		{"a rejection", policySrc, append(record(t, policySrc, keys, "alice", "bob"), reject()...), ErrNotApproved, "carol rejected it"},
		{"not JSON", policySrc, []byte("alice approves\n"), ErrRecord, "approval 1"},
		{"empty", policySrc, nil, ErrNotApproved, "0 of 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyRecord(c.src, c.record, q, as)
			require.Error(t, err)
			require.True(t, errors.Is(err, c.is), "%v is not %v", err, c.is)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestLoad(t *testing.T) {
	as, keys := testApprovers(t)
	dir := t.TempDir()
	file, rec := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "policy.approvals")
	require.NoError(t, os.WriteFile(file, policySrc, 0o600))
	require.NoError(t, os.WriteFile(rec, record(t, policySrc, keys, "alice", "carol"), 0o600))
	cfg := Config{File: file, Approvals: rec, PolicyQuorum: Quorum{N: 2, Groups: []string{"security"}}}
	var probs config.Problems
	cfg.Validate(&probs, "gate.policy", as)
	require.NoError(t, probs.Err())

	p, by, err := Load(cfg, as)
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "carol"}, by)
	require.Equal(t, Hash(policySrc), p.Hash())
	require.Equal(t, Allow, p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "99.99")}).Action)
	require.Equal(t, "rest", p.Evaluate(Input{Intent: testIntent(), USD: usd(t, "100")}).Rule)

	// An edit after approval: refused.
	require.NoError(t, os.WriteFile(file, bytes.Replace(policySrc, []byte("usd < 100"), []byte("usd < 100000"), 1), 0o600))
	_, _, err = Load(cfg, as)
	require.ErrorIs(t, err, ErrPolicyChanged)
	require.Contains(t, err.Error(), "gate.policy.approvals")

	// A stricter quorum than the record meets: refused.
	require.NoError(t, os.WriteFile(file, policySrc, 0o600))
	cfg.PolicyQuorum.N = 3
	_, _, err = Load(cfg, as)
	require.ErrorIs(t, err, ErrNotApproved)

	// A file without its record: refused.
	_, _, err = Load(Config{File: file, PolicyQuorum: Quorum{N: 2, Groups: []string{"security"}}}, as)
	require.ErrorContains(t, err, "gate.policy.approvals")

	// An approved file that does not compile: refused, naming the rule.
	bad := []byte("rules:\n  - name: x\n    when: usd < 5.0\n    action: allow\n    reason: r\n  - name: c\n    action: deny\n    reason: r\n")
	require.NoError(t, os.WriteFile(file, bad, 0o600))
	require.NoError(t, os.WriteFile(rec, record(t, bad, keys, "alice", "carol"), 0o600))
	cfg.PolicyQuorum.N = 2
	_, _, err = Load(cfg, as)
	require.ErrorContains(t, err, "rules[0].when")

	// No file: the default policy, approved by no one.
	p, by, err = Load(Config{}, as)
	require.NoError(t, err)
	require.Nil(t, by)
	require.Equal(t, Hash(DefaultYAML()), p.Hash())
}

func TestConfigValidate(t *testing.T) {
	as, _ := testApprovers(t)
	for _, c := range []struct {
		cfg  Config
		want []string
	}{
		{Config{File: "p.yaml"}, []string{"gate.policy.approvals: empty", "gate.policy.policy_quorum.quorum: 0", "gate.policy.policy_quorum.groups: empty"}},
		{Config{Approvals: "a"}, []string{"gate.policy.approvals: set without file"}},
		{Config{File: "p", Approvals: "a", PolicyQuorum: Quorum{N: 4, Groups: []string{"security"}}}, []string{"gate.policy.policy_quorum: cannot be met"}},
		{Config{Prices: PricesConfig{MaxAge: 48 * time.Hour}}, []string{"gate.policy.prices.max_age"}},
	} {
		var p config.Problems
		c.cfg.Validate(&p, "gate.policy", as)
		require.Error(t, p.Err())
		for _, w := range c.want {
			require.Contains(t, p.Err().Error(), w)
		}
	}
	var p config.Problems
	Config{}.Validate(&p, "gate.policy", as)
	require.NoError(t, p.Err())
}
