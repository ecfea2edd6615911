package rules_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/detect/rules/rulestest"
	"github.com/cordonhq/cordon/internal/chain"
)

const (
	cwallet = "0x00000000000000000000000000000000000000c1"
	impl    = "0x00000000000000000000000000000000000000a1"
	evil    = "0x00000000000000000000000000000000000000e1"
	owner1  = "0x0000000000000000000000000000000000000001"
	owner2  = "0x0000000000000000000000000000000000000002"
)

// chainState is a fake chain: the implementation and owners of cwallet
// by block hash, and the delegatecalls of transactions.
type chainState struct {
	impl   map[string]string
	owners map[string][]string
	calls  map[string][][2]string
	down   map[string]bool
	inputs map[string][]byte
	// ownerReads counts the Owners calls.
	ownerReads int
}

func (c *chainState) Account(_, _, _, hash string) (rules.ContractAccount, error) {
	if c.down[hash] {
		return rules.ContractAccount{}, errors.New("connection refused")
	}
	v, ok := c.impl[hash]
	if !ok {
		return rules.ContractAccount{}, rules.ErrNotDeployed
	}
	// The storage root follows what the storage holds: the
	// implementation and the owners.
	return rules.ContractAccount{Word: "0x000000000000000000000000" + strings.TrimPrefix(v, "0x"),
		Storage: v + "/" + strings.Join(c.owners[hash], ","), Code: "proxy"}, nil
}

func (c *chainState) Owners(_, _, hash string) ([]string, error) {
	c.ownerReads++
	if _, ok := c.impl[hash]; !ok {
		return nil, rules.ErrNotDeployed
	}
	return c.owners[hash], nil
}

func (c *chainState) DelegateCalls(_, tx string) ([][2]string, error) { return c.calls[tx], nil }

func (c *chainState) Input(_, tx string) ([]byte, error) {
	if in, ok := c.inputs[tx]; ok {
		return in, nil
	}
	return nil, errors.New("no such transaction")
}

func takeovers(as []chain.Alert) []string {
	var out []string
	for _, a := range as {
		if a.Rule == rules.RuleContractTakeover || a.Rule == rules.RuleContractUnreadable {
			k := a.Rule + "/" + a.Details["kind"]
			if a.Retracted {
				k += " retracted"
			}
			out = append(out, k)
		}
	}
	return out
}

// TestContractTakeoverRule: each change alerts once, on its block; an
// unchanged state alerts nothing more; a reorg that removes the block
// retracts its alerts and puts the state back, so the block mined again
// alerts again; the state survives a restore; a wallet the endpoints
// cannot read alerts once, when it becomes unreadable.
func TestContractTakeoverRule(t *testing.T) {
	cfg := rules.Config{ContractWallets: []rules.ContractWallet{{Name: "treasury", Network: "devnet", Address: cwallet,
		Implementations: []string{impl}, Owners: []string{owner1, owner2}}}}
	require.NoError(t, cfg.Validate("rules"))
	cs := &chainState{impl: map[string]string{}, owners: map[string][]string{}, calls: map[string][][2]string{}, down: map[string]bool{}}
	e, err := rules.New(cfg, nil, nil)
	require.NoError(t, err)
	e.SetContracts(cs)
	s := &rulestest.Stream{}
	at := func(u chain.Update, im string, owners ...string) chain.Update {
		cs.impl[u.Block.Hash], cs.owners[u.Block.Hash] = im, owners
		return u
	}
	// not deployed yet: nothing
	require.Empty(t, takeovers(e.Apply(s.Block("a"))))
	// deployed with the approved implementation and owners: nothing
	require.Empty(t, takeovers(e.Apply(at(s.Block("a"), impl, owner1))))
	// an approved owner change, and a delegatecall into its own logic
	u := at(s.Block("a", rulestest.Xfer{From: owner1, To: cwallet, Amount: "0"}), impl, owner1, owner2)
	cs.calls[u.Block.Transactions[0].Hash] = [][2]string{{cwallet, impl}}
	require.Empty(t, takeovers(e.Apply(u)))
	// the takeover: a delegatecall into evil, which rewrote the slot
	take := at(s.Block("a", rulestest.Xfer{From: owner1, To: cwallet, Amount: "0"}), evil, owner1, owner2)
	cs.calls[take.Block.Transactions[0].Hash] = [][2]string{{cwallet, impl}, {cwallet, evil}}
	require.Equal(t, []string{"contract_takeover/implementation", "contract_takeover/delegatecall"}, takeovers(e.Apply(take)))
	// the same state in the next block: nothing more, and the owners are
	// not read again (the storage root is the same)
	reads := cs.ownerReads
	require.Empty(t, takeovers(e.Apply(at(s.Block("a"), evil, owner1, owner2))))
	require.Equal(t, reads, cs.ownerReads, "the storage root did not change: the owners are not read again")
	// a restore carries the state on
	e2, err := rules.New(cfg, nil, nil)
	require.NoError(t, err)
	e2.SetContracts(cs)
	state := map[string][]byte{}
	for _, r := range e.TakeState() {
		if r.Value != nil {
			state[r.Key] = r.Value
		}
	}
	require.NoError(t, e2.Restore(state))
	next := at(s.Block("a"), evil, owner1, owner2)
	require.Empty(t, takeovers(e2.Apply(next)))
	// a reorg removes both blocks and the takeover's: retracted, the state
	// back to before it
	require.Empty(t, takeovers(e2.Apply(s.Remove(next))))
	after := chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: 100, Header: chain.Header{Chain: chain.ETH,
		Network: "devnet", Height: take.Block.Height + 1, Hash: "0xb" + itoa(take.Block.Height+1) + "a"}}}
	require.Empty(t, takeovers(e2.Apply(after)))
	require.Equal(t, []string{"contract_takeover/implementation retracted", "contract_takeover/delegatecall retracted"},
		takeovers(e2.Apply(chain.Update{Event: chain.BlockEvent{V: chain.SchemaVersion, Type: chain.BlockRemoved, Seq: 101, Header: take.Block.Header}})))
	// the takeover mined again in another block: alerts again
	s3 := &rulestest.Stream{Height: take.Block.Height - 1, Parent: take.Block.ParentHash, Seq: 200}
	again := at(s3.Block("b", rulestest.Xfer{From: owner1, To: cwallet, Amount: "0"}), evil, owner1, owner2)
	cs.calls[again.Block.Transactions[0].Hash] = [][2]string{{cwallet, evil}}
	require.Equal(t, []string{"contract_takeover/implementation", "contract_takeover/delegatecall"}, takeovers(e2.Apply(again)))
	// an owner not approved
	require.Equal(t, []string{"contract_takeover/owners"}, takeovers(e2.Apply(at(s3.Block("b"), evil, owner1, evil))))
	// unreadable: once, then nothing until it reads again
	down := s3.Block("b")
	cs.down[down.Block.Hash] = true
	require.Equal(t, []string{"contract_unreadable/"}, takeovers(e2.Apply(down)))
	down2 := s3.Block("b")
	cs.down[down2.Block.Hash] = true
	require.Empty(t, takeovers(e2.Apply(down2)))
	// readable again: what it holds is checked afresh (the owners read
	// again), and the unapproved state raised again — its change may
	// have happened while the rule was blind
	reads = cs.ownerReads
	require.Equal(t, []string{"contract_takeover/implementation", "contract_takeover/owners"}, takeovers(e2.Apply(at(s3.Block("b"), evil, owner1, evil))))
	require.Equal(t, reads+1, cs.ownerReads)
}

// TestContractWalletConfig: bad contract-wallet keys are named.
func TestContractWalletConfig(t *testing.T) {
	cfg := rules.Config{ContractWallets: []rules.ContractWallet{{Name: "x", Address: "0x12", Implementations: nil, Owners: []string{"nope"},
		Slot: "0x1", Severity: "dire"}}}
	err := cfg.Validate("detect.rules")
	require.Error(t, err)
	for _, key := range []string{"contract_wallets[0].address", "contract_wallets[0].network", "contract_wallets[0].implementations",
		"contract_wallets[0].owners[0]", "contract_wallets[0].implementation_slot", "contract_wallets[0].severity"} {
		require.Contains(t, err.Error(), "detect.rules."+key)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
