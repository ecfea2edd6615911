package policy

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/signer/intent"
)

// testApprovers are five approvers: alice, bob and carol in security,
// dave and erin in finance; keys[name] signs for each.
func testApprovers(tb testing.TB, extra ...intent.Approver) (*intent.Approvers, map[string]ed25519.PrivateKey) {
	tb.Helper()
	keys := map[string]ed25519.PrivateKey{}
	var list []intent.Approver
	add := func(name string, groups ...string) {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, name)
		k := ed25519.NewKeyFromSeed(seed)
		keys[name] = k
		list = append(list, intent.Approver{Name: name, Groups: groups,
			Key: base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	for _, n := range []string{"alice", "bob", "carol"} {
		add(n, "security")
	}
	for _, n := range []string{"dave", "erin"} {
		add(n, "finance")
	}
	for _, e := range extra {
		add(e.Name, e.Groups...)
		list[len(list)-1].Disabled = e.Disabled
	}
	as, err := intent.NewApprovers("gate.approvers", list)
	require.NoError(tb, err)
	return as, keys
}

func usd(tb testing.TB, s string) intent.USD {
	tb.Helper()
	u, err := intent.ParseUSD(s)
	require.NoError(tb, err)
	return u
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testIntent() intent.Intent {
	return intent.Intent{ID: "wd_1", Request: "req-1", Requester: "exchange", Account: "acct-7", Chain: "eth",
		Network: "mainnet", Asset: intent.Native, Amount: "1500000000000000000",
		Destination: "0x1111111111111111111111111111111111111111", Rule: "below-1m", Policy: "p", Requested: t0}
}

func bigInt(tb testing.TB, s string) *big.Int {
	tb.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	require.True(tb, ok, s)
	return n
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
