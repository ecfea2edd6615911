package intent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sample() *Intent {
	return &Intent{ID: "wd_1", Request: "ex-1", Requester: "withdrawals", Account: "acct-7", Chain: "eth", Network: "mainnet",
		Asset: Native, Amount: "1500000000000000000", Destination: "0x00000000000000000000000000000000000000aa",
		Rule: "tier1", Policy: strings.Repeat("ab", 32), Requested: time.Date(2026, 12, 2, 5, 0, 0, 123, time.UTC)}
}

// The canonical bytes are RFC 8785 JSON with sorted members and string
// values only, so any JSON canonicalizer gives the same hash.
func TestCanonical(t *testing.T) {
	b, err := sample().Canonical()
	require.NoError(t, err)
	require.Equal(t, `{"account":"acct-7","amount":"1500000000000000000","asset":"native","chain":"eth",`+
		`"destination":"0x00000000000000000000000000000000000000aa","id":"wd_1","initiator":"","network":"mainnet",`+
		`"policy":"`+strings.Repeat("ab", 32)+`","request":"ex-1","requested":"2026-12-02T05:00:00.000000123Z",`+
		`"requester":"withdrawals","rule":"tier1","v":"cordon-intent/v1"}`, string(b))
	h, err := sample().Hash()
	require.NoError(t, err)
	s := sha256.Sum256(b)
	require.Equal(t, hex.EncodeToString(s[:]), h)
	// Every field is bound: changing any one changes the hash.
	for name, change := range map[string]func(*Intent){
		"amount": func(i *Intent) { i.Amount += "0" }, "destination": func(i *Intent) { i.Destination = "0x00000000000000000000000000000000000000ab" },
		"asset": func(i *Intent) { i.Asset = "0x00000000000000000000000000000000000000cc" }, "rule": func(i *Intent) { i.Rule = "tier3" },
		"policy": func(i *Intent) { i.Policy = strings.Repeat("cd", 32) }, "network": func(i *Intent) { i.Network = "sepolia" },
		"chain": func(i *Intent) { i.Chain = "btc" }, "account": func(i *Intent) { i.Account = "acct-8" },
		"id": func(i *Intent) { i.ID = "wd_2" }, "request": func(i *Intent) { i.Request = "ex-2" },
		"requester": func(i *Intent) { i.Requester = "other" }, "initiator": func(i *Intent) { i.Initiator = "ops" }, "requested": func(i *Intent) { i.Requested = i.Requested.Add(time.Nanosecond) },
	} {
		in := sample()
		change(in)
		h2, err := in.Hash()
		require.NoError(t, err)
		require.NotEqual(t, h, h2, name)
	}
}

func keys(t *testing.T, names ...string) (*Approvers, map[string]ed25519.PrivateKey) {
	t.Helper()
	var list []Approver
	priv := map[string]ed25519.PrivateKey{}
	for i, n := range names {
		kf, err := GenerateKey(n)
		require.NoError(t, err)
		k, err := kf.Key()
		require.NoError(t, err)
		priv[n] = k
		list = append(list, Approver{Name: n, Groups: []string{[]string{"security", "finance"}[i%2]}, Key: kf.Public, Disabled: n == "mallory"})
	}
	as, err := NewApprovers("gate.approvers", list)
	require.NoError(t, err)
	return as, priv
}

func approval(t *testing.T, in *Intent, who string, key ed25519.PrivateKey) Approval {
	t.Helper()
	h, err := in.Hash()
	require.NoError(t, err)
	a := Approval{Withdrawal: in.ID, Intent: h, Approver: who, Decision: Approve, Signed: time.Date(2026, 12, 2, 5, 1, 0, 0, time.UTC)}
	a.Sign(key)
	return a
}

func TestApprovalVerify(t *testing.T) {
	as, priv := keys(t, "alice", "bob", "mallory")
	in := sample()
	a := approval(t, in, "alice", priv["alice"])
	ap, err := a.Verify(as, in)
	require.NoError(t, err)
	require.Equal(t, "alice", ap.Name)
	require.True(t, ap.In("security"))

	other := sample()
	other.Destination = "0x00000000000000000000000000000000000000bb"
	_, err = a.Verify(as, other)
	require.ErrorIs(t, err, ErrWrongIntent, "an approval of intent A presented for intent B")

	bad := a
	bad.Decision = Reject
	bad.Reason = "no"
	_, err = bad.Verify(as, in)
	require.ErrorIs(t, err, ErrBadSignature, "an approval turned into a rejection")

	bad = a
	bad.Approver = "bob" // alice's signature claimed as bob's
	_, err = bad.Verify(as, in)
	require.ErrorIs(t, err, ErrBadSignature)

	bad = a
	bad.Signed = bad.Signed.Add(time.Second)
	_, err = bad.Verify(as, in)
	require.ErrorIs(t, err, ErrBadSignature, "the signing time is signed")

	m := approval(t, in, "mallory", priv["mallory"])
	_, err = m.Verify(as, in)
	require.ErrorIs(t, err, ErrDisabled)

	_, stranger := keys(t, "eve")
	e := approval(t, in, "eve", stranger["eve"])
	_, err = e.Verify(as, in)
	require.ErrorIs(t, err, ErrUnknownApprover)

	wrongID := approval(t, in, "alice", priv["alice"])
	wrongID.Withdrawal = "wd_2"
	wrongID.Sign(priv["alice"])
	_, err = wrongID.Verify(as, in)
	require.ErrorIs(t, err, ErrWrongIntent)
}

func TestDecodeApproval(t *testing.T) {
	as, priv := keys(t, "alice")
	in := sample()
	a := approval(t, in, "alice", priv["alice"])
	body := `{"withdrawal":"wd_1","intent":"` + a.Intent + `","approver":"alice","decision":"approve","signed":"2026-12-02T05:01:00Z","signature":"` + a.Signature + `"}`
	got, err := DecodeApproval(strings.NewReader(body))
	require.NoError(t, err)
	_, err = got.Verify(as, in)
	require.NoError(t, err)
	for name, b := range map[string]string{
		"unknown field":  strings.Replace(body, `"approver"`, `"extra":1,"approver"`, 1),
		"trailing":       body + `{}`,
		"bad decision":   strings.Replace(body, `"approve"`, `"maybe"`, 1),
		"short hash":     strings.Replace(body, a.Intent, "abcd", 1),
		"bad signature":  strings.Replace(body, a.Signature, base64.StdEncoding.EncodeToString([]byte("short")), 1),
		"no time":        strings.Replace(body, `"signed":"2026-12-02T05:01:00Z",`, "", 1),
		"reject, no why": strings.Replace(body, `"approve"`, `"reject"`, 1),
		"too long":       strings.Replace(body, `"approver"`, `"reason":"`+strings.Repeat("x", MaxApprovalBytes)+`","approver"`, 1),
		"not json":       `{"withdrawal":`,
	} {
		_, err := DecodeApproval(strings.NewReader(b))
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestNewApprovers(t *testing.T) {
	kf, err := GenerateKey("a")
	require.NoError(t, err)
	_, err = NewApprovers("gate.approvers", []Approver{
		{Name: "a", Groups: []string{"security"}, Key: kf.Public},
		{Name: "a", Groups: []string{"security"}, Key: kf.Public},
		{Name: "bad name!", Key: "nope"},
	})
	require.Error(t, err)
	for _, want := range []string{`gate.approvers[1].name: "a" is listed twice`, "gate.approvers[1].key: also a's key",
		"gate.approvers[2].name", "gate.approvers[2].groups: empty", "gate.approvers[2].key: want the base64"} {
		require.Contains(t, err.Error(), want)
	}
	bad := kf
	bad.Public = base64.StdEncoding.EncodeToString(make([]byte, 32))
	_, err = bad.Key()
	require.ErrorContains(t, err, "does not belong")
}

func TestUSD(t *testing.T) {
	p, err := ParseUSD("3000.5")
	require.NoError(t, err)
	wei, _ := new(big.Int).SetString("2000000000000000001", 10) // 2 ETH and one wei
	v := Value(wei, 18, p)
	require.Equal(t, "6001.01", v.String(), "rounded up to the cent")
	require.Equal(t, 1, v.Cmp(Dollars(big.NewRat(6001, 1))))
	require.Equal(t, -1, v.Cmp(Dollars(big.NewRat(600101, 100))))
	unknown := Value(wei, 18, USD{})
	require.False(t, unknown.Known())
	require.Equal(t, 1, unknown.Cmp(Dollars(big.NewRat(1_000_000_000_000, 1))), "unknown is above every known value")
	require.False(t, v.Add(unknown).Known())
	require.Equal(t, "unknown", unknown.String())
	for _, bad := range []string{"", "1e6", "abc", "1/3", "+5"} {
		_, err := ParseUSD(bad)
		require.Error(t, err, bad)
	}
}

func FuzzDecodeApproval(f *testing.F) {
	f.Add(`{"withdrawal":"wd_1","intent":"` + strings.Repeat("a", 64) + `","approver":"alice","decision":"approve","signed":"2026-12-02T05:01:00Z","signature":"` +
		base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		a, err := DecodeApproval(strings.NewReader(body))
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NoError(t, a.Check())
		require.NotEmpty(t, a.SignedBytes())
	})
}
