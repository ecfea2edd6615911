package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/internal/recordauth"
	devkeys "github.com/cordonhq/cordon/plugins/devkey/keys"
	"github.com/cordonhq/cordon/signer/intent"
)

// signerFixture is a signer config on a real dev key plugin binary.
type signerFixture struct {
	dir, bin, sum, keys, pub string
	approvers                string
	seed, gatePub, signerPub string
}

func newSignerFixture(t *testing.T) *signerFixture {
	t.Helper()
	f := &signerFixture{dir: t.TempDir()}
	f.bin = filepath.Join(f.dir, "devkey")
	if out, err := exec.Command("go", "build", "-o", f.bin, "../../plugins/devkey").CombinedOutput(); err != nil {
		t.Fatalf("go build devkey: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f.bin)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	f.sum = hex.EncodeToString(sum[:])
	f.keys = filepath.Join(f.dir, "keys.json")
	require.NoError(t, devkeys.Generate(f.keys, []string{"hot"}))
	s, err := devkeys.Load(f.keys)
	require.NoError(t, err)
	pub, err := s.PublicKey(context.Background(), "hot")
	require.NoError(t, err)
	f.pub = hex.EncodeToString(pub)
	var ap strings.Builder
	for _, a := range []struct{ name, group string }{{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"}} {
		kf, err := intent.GenerateKey(a.name)
		require.NoError(t, err)
		fmt.Fprintf(&ap, "    - {name: %s, groups: [%s], key: %q}\n", a.name, a.group, kf.Public)
	}
	f.approvers = ap.String()
	f.seed, f.signerPub, err = recordauth.GenerateKey()
	require.NoError(t, err)
	_, f.gatePub, err = recordauth.GenerateKey()
	require.NoError(t, err)
	return f
}

// write writes the config with edits applied (old → new) and returns
// its path.
func (f *signerFixture) write(t *testing.T, edits ...string) string {
	t.Helper()
	c := fmt.Sprintf(`kafka:
  brokers: [127.0.0.1:1]
record_auth:
  keys: {signer: %q}
  trust: {gate: [%q], signer: [%q]}
plugins:
  - name: dev
    path: %s
    sha256: %s
    args: [--keys, %s]
blocklist:
  - {format: ofac, path: %s, currency: ETH}
signer:
  approvers:
%s  wallets:
    eth:
      - name: hot-eth
        network: devnet
        chain_id: 1337
        key: {plugin: dev, key_id: hot, public_key: %s}
        max_fee_per_gas: "100000000000"
        max_priority_fee_per_gas: "2000000000"
  limits:
    - {chain: eth, network: devnet, asset: native, per_withdrawal: "1000000000000000000000"}
`, f.seed, f.gatePub, f.signerPub, f.bin, f.sum, f.keys, ofacFixture(t), f.approvers, f.pub)
	for i := 0; i+1 < len(edits); i += 2 {
		require.Contains(t, c, edits[i])
		c = strings.Replace(c, edits[i], edits[i+1], 1)
	}
	p := filepath.Join(f.dir, "signer.yaml")
	require.NoError(t, os.WriteFile(p, []byte(c), 0o600))
	return p
}

func ofacFixture(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../../shared/data/ofac/sanctioned_addresses_ETH.txt")
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		// The repository's own copy, for a checkout without ../shared.
		p, err = filepath.Abs("../../intel/testdata/ofac/sanctioned_addresses_ETH.txt")
		require.NoError(t, err)
	}
	return p
}

func TestSignerCheck(t *testing.T) {
	f := newSignerFixture(t)
	ctx := context.Background()
	require.NoError(t, signerCmd(ctx, []string{"check", "--config", f.write(t)}))

	cases := []struct {
		name  string
		edits []string
		want  string
	}{
		{"a binary not the pinned one", []string{f.sum, strings.Repeat("0", 64)}, "does not match its pinned sha256"},
		{"a wallet key the plugin holds another of", []string{"public_key: " + f.pub, "public_key: 0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"}, "the config says"},
		{"a key the plugin does not hold", []string{"key_id: hot", "key_id: cold"}, `key "cold"`},
		{"a plugin not configured", []string{"{plugin: dev,", "{plugin: hsm,"}, `"hsm": no such plugin`},
		{"no gate to trust", []string{fmt.Sprintf("gate: [%q], ", f.gatePub), ""}, "record_auth.trust.gate"},
		{"no plugins", []string{"plugins:\n  - name: dev", "plugins: []\nx:\n  - name: dev"}, "field x not found"},
		{"an unpinned plugin", []string{"sha256: " + f.sum, "sha256: latest"}, "plugins[0].sha256"},
		{"a blocklist that does not parse", []string{"currency: ETH}", "currency: ETH}\n  - {format: csv, path: " + f.keys + "}"}, "blocklist[1]"},
		{"a limit not in base units", []string{`per_withdrawal: "1000000000000000000000"`, `per_withdrawal: "1.5"`}, "signer.limits[0].per_withdrawal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := signerCmd(ctx, []string{"check", "--config", f.write(t, c.edits...)})
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
