package rules_test

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/detect/rules/rulestest"
	"github.com/cordonhq/cordon/internal/chain"
)

// call packs a selector and 32-byte words (addresses and numbers).
func call(sel string, words ...any) []byte {
	out, _ := hex.DecodeString(strings.TrimPrefix(sel, "0x"))
	for _, w := range words {
		var b [32]byte
		switch v := w.(type) {
		case string:
			raw, _ := hex.DecodeString(strings.TrimPrefix(v, "0x"))
			copy(b[32-len(raw):], raw)
		case *big.Int:
			v.FillBytes(b[:])
		case int:
			big.NewInt(int64(v)).FillBytes(b[:])
		}
		out = append(out, b[:]...)
	}
	return out
}

type regKinds map[string]string

func (k regKinds) Kind(_ chain.Chain, _ string, a string) (string, bool) { v, ok := k[a]; return v, ok }

// TestApprovalRule: allowances our addresses grant to spenders not on
// the allow-list alert (unlimited ones critical), read from the call
// data; the near misses raise nothing: an allowed spender, a revocation
// (zero), a failed transaction, someone else's approval or permit.
func TestApprovalRule(t *testing.T) {
	const (
		hotW     = "0x00000000000000000000000000000000000000a0"
		stranger = "0x00000000000000000000000000000000000000f0"
		token    = "0x00000000000000000000000000000000000000d0"
		router   = "0x00000000000000000000000000000000000000b0"
		drainer  = "0x00000000000000000000000000000000000000e0"
	)
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	cfg := rules.Config{Approvals: rules.ApprovalConfig{Spenders: []string{router}}}
	require.NoError(t, cfg.Validate("rules"))
	cs := &chainState{impl: map[string]string{}, inputs: map[string][]byte{}}
	e, err := rules.New(cfg, regKinds{hotW: rules.KindHot}, nil)
	require.NoError(t, err)
	e.SetContracts(cs)
	s := &rulestest.Stream{}
	failed := uint8(0)
	type tx struct {
		from   string
		input  []byte
		failed bool
	}
	cases := []struct {
		name string
		tx   tx
		want string // "" none, else the severity
	}{
		{"unlimited approve to a drainer", tx{hotW, call("0x095ea7b3", drainer, max), false}, rules.SeverityCritical},
		{"bounded approve to a drainer", tx{hotW, call("0x095ea7b3", drainer, 5000), false}, rules.SeverityHigh},
		{"increaseAllowance to a drainer", tx{hotW, call("0x39509351", drainer, 5000), false}, rules.SeverityHigh},
		{"approval for all", tx{hotW, call("0xa22cb465", drainer, 1), false}, rules.SeverityCritical},
		{"permit signed by our wallet, sent by the drainer", tx{drainer, call("0xd505accf", hotW, drainer, max, 99, 27, 0, 0), false}, rules.SeverityCritical},
		{"near miss: the allowed router", tx{hotW, call("0x095ea7b3", router, max), false}, ""},
		{"near miss: a revocation", tx{hotW, call("0x095ea7b3", drainer, 0), false}, ""},
		{"near miss: approval for all revoked", tx{hotW, call("0xa22cb465", drainer, 0), false}, ""},
		{"near miss: failed", tx{hotW, call("0x095ea7b3", drainer, max), true}, ""},
		{"near miss: someone else's approve", tx{stranger, call("0x095ea7b3", drainer, max), false}, ""},
		{"near miss: someone else's permit", tx{drainer, call("0xd505accf", stranger, drainer, max, 99, 27, 0, 0), false}, ""},
		{"near miss: short call data", tx{hotW, call("0x095ea7b3", drainer), false}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := s.Block("a", rulestest.Xfer{From: c.tx.from, To: token, Amount: "0"})
			u.Block.Transfers = nil
			txn := &u.Block.Transactions[0]
			txn.MethodID = "0x" + hex.EncodeToString(c.tx.input[:4])
			if c.tx.failed {
				txn.Status = &failed
			}
			cs.inputs[txn.Hash] = c.tx.input
			var got []chain.Alert
			for _, a := range e.Apply(u) {
				if a.Rule == rules.RuleApproval {
					got = append(got, a)
				}
			}
			if c.want == "" {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			require.Equal(t, c.want, got[0].Severity)
			require.Equal(t, drainer, got[0].Details["spender"])
			require.Equal(t, []string{hotW, drainer}, got[0].Addresses)
		})
	}
	// call data that cannot be read: our approval still alerts
	u := s.Block("a", rulestest.Xfer{From: hotW, To: token, Amount: "0"})
	u.Block.Transfers = nil
	u.Block.Transactions[0].MethodID = "0x095ea7b3"
	as := e.Apply(u)
	require.Len(t, as, 1)
	require.Contains(t, as[0].Message, "could not be read")
}
