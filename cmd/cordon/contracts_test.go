package main

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
)

type kinds map[string]string

func (k kinds) Kind(_ chain.Chain, _ string, a string) (string, bool) {
	v, ok := k[strings.ToLower(a)]
	return v, ok
}

func lowerHex(a common.Address) string { return strings.ToLower(a.Hex()) }

// TestContractTakeoverDevnet: the February 2025 theft replayed on the
// devnet against a contract wallet of the project's own (a multisig-style
// EIP-1967 proxy): detection, reading the wallet's implementation slot
// and owners every block and tracing the transactions sent to it on the
// devnet's real JSON-RPC, raises contract_takeover on the block of the
// owner's delegatecall into the attacker's contract (the delegatecall
// itself, and the implementation it rewrote), before the sweep's block.
// The near misses raise nothing: an owner change to approved owners, a
// delegatecall into the wallet's own implementation, a genuine payment.
// A second wallet whose owners change to an unapproved one alerts.
func TestContractTakeoverDevnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 5}, nil)
	require.NoError(t, err)
	acct := dev.Accounts()
	w, err := tr.DeployWallet(ctx, 0, []int{20, 21}, devnet.Ether(50), big.NewInt(5_000_000_000))
	require.NoError(t, err)
	w2, err := tr.DeployWallet(ctx, 0, []int{22}, devnet.Ether(1), big.NewInt(1))
	require.NoError(t, err)
	// the near misses
	_, err = tr.SetOwners(ctx, 20, w, []common.Address{acct[20], acct[21], acct[23]})
	require.NoError(t, err)
	dev.Commit()
	_, err = tr.DelegateTo(ctx, 21, w, w.Logic, common.FromHex("0xa0e67e2b")) // getOwners(), run by the wallet's own logic
	require.NoError(t, err)
	_, err = tr.WalletPay(ctx, 20, w, acct[9], devnet.Ether(1))
	require.NoError(t, err)
	dev.Commit()
	// the unapproved owner change on the second wallet
	_, err = tr.SetOwners(ctx, 22, w2, []common.Address{acct[22], acct[27]})
	require.NoError(t, err)
	dev.Commit()
	attack, err := tr.RunAttack(ctx, w, 20, 25, 3)
	require.NoError(t, err)
	for _, h := range append([]common.Hash{attack.Takeover, attack.Sweep}, attack.Peel...) {
		r, err := dev.Client().TransactionReceipt(ctx, h)
		require.NoError(t, err)
		tx, _, _ := dev.Client().TransactionByHash(ctx, h)
		require.Equal(t, uint64(1), r.Status, "the attack's transaction %s succeeds (to %v, gas %d of %d, value %v)", h, tx.To(), r.GasUsed, tx.Gas(), tx.Value())
	}
	hop, err := dev.Client().BalanceAt(ctx, attack.Hops[len(attack.Hops)-1], nil)
	require.NoError(t, err)
	require.Positive(t, hop.Cmp(devnet.Ether(30)), "the funds reach the last hop")
	for range 2 {
		dev.Commit()
	}

	var cfg config.Config
	cfg.Chains.ETH = []config.ETH{{Config: eth.Config{Network: "devnet", Endpoints: []eth.EndpointConfig{{Name: "a", URL: iconfig.SecretValue(dev.HTTPURL())}, {Name: "b", URL: iconfig.SecretValue(dev.WSURL())}}}}}
	cfg.Detect.Rules.ContractWallets = []rules.ContractWallet{
		{Name: "treasury", Network: "devnet", Address: w.Proxy.Hex(), Implementations: []string{w.Logic.Hex()},
			Owners: []string{acct[20].Hex(), acct[21].Hex(), acct[23].Hex()}},
		{Name: "ops", Network: "devnet", Address: w2.Proxy.Hex(), Implementations: []string{w2.Logic.Hex()}, Owners: []string{acct[22].Hex()}},
	}
	require.NoError(t, cfg.Detect.Rules.Validate("detect.rules"))
	reader, err := contractReader(cfg)
	require.NoError(t, err)
	defer reader.Close()
	e, err := rules.New(cfg.Detect.Rules, kinds{lowerHex(w.Proxy): rules.KindHot, lowerHex(w2.Proxy): rules.KindHot}, nil)
	require.NoError(t, err)
	e.SetContracts(reader)
	var takeovers []chain.Alert
	heights := map[string]uint64{}
	applyDevnet(t, ctx, dev, e, func(b *chain.Block, alerts []chain.Alert) {
		for _, tx := range b.Transactions {
			heights[tx.Hash] = b.Height
		}
		for _, a := range alerts {
			require.NotEqual(t, rules.RuleContractUnreadable, a.Rule, a.Message)
			if a.Rule == rules.RuleContractTakeover {
				takeovers = append(takeovers, a)
			}
		}
	})
	byKind := map[string][]chain.Alert{}
	for _, a := range takeovers {
		byKind[a.Details["wallet"]+"/"+a.Details["kind"]] = append(byKind[a.Details["wallet"]+"/"+a.Details["kind"]], a)
	}
	keys := func() []string {
		var out []string
		for k := range byKind {
			out = append(out, k)
		}
		return out
	}
	require.Len(t, takeovers, 4, "exactly: the delegatecall, the implementation, the sweep's delegatecall into the attacker's logic, the second wallet's owners: %v", keys())
	dc := byKind["treasury/delegatecall"]
	require.Len(t, dc, 2)
	require.Equal(t, attack.Sweep.Hex(), dc[1].TxHash, "the sweep runs the attacker's logic: a delegatecall into it")
	require.Equal(t, lowerHex(attack.Logic), dc[1].Details["target"])
	require.Equal(t, []string{lowerHex(w.Proxy), lowerHex(attack.Logic), lowerHex(attack.Thief)}, dc[1].Addresses, "the thief, not an owner, sent it")
	require.Equal(t, attack.Takeover.Hex(), dc[0].TxHash)
	require.Equal(t, lowerHex(attack.Upgrader), dc[0].Details["target"])
	require.Equal(t, rules.SeverityCritical, dc[0].Severity)
	require.Equal(t, []string{lowerHex(w.Proxy), lowerHex(attack.Upgrader)}, dc[0].Addresses)
	im := byKind["treasury/implementation"]
	require.Len(t, im, 1)
	require.Equal(t, lowerHex(attack.Logic), im[0].Details["implementation"])
	require.Equal(t, heights[attack.Takeover.Hex()], dc[0].Height)
	require.Equal(t, dc[0].Height, im[0].Height, "the implementation alert is on the delegatecall's block")
	require.Less(t, dc[0].Height, heights[attack.Sweep.Hex()], "before the sweep's block")
	ow := byKind["ops/owners"]
	require.Len(t, ow, 1)
	require.Contains(t, ow[0].Addresses, lowerHex(acct[27]))
	require.NotContains(t, ow[0].Addresses, lowerHex(acct[22]))
}

// TestContractReaderLyingEndpoint: an endpoint that reports another
// implementation than the others makes the wallet unreadable (an error,
// which the rule raises as contract_unreadable), never the liar's word.
func TestContractReaderLyingEndpoint(t *testing.T) {
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID,
			"result": map[string]any{"codeHash": "0x" + strings.Repeat("c0", 32), "storageHash": "0x" + strings.Repeat("5e", 32),
				"storageProof": []map[string]any{{"key": rules.EIP1967Slot, "value": "0xbeef", "proof": []string{}}}}})
	}))
	defer liar.Close()
	var cfg config.Config
	cfg.Chains.ETH = []config.ETH{{Config: eth.Config{Network: "devnet", Endpoints: []eth.EndpointConfig{{Name: "a", URL: iconfig.SecretValue(dev.HTTPURL())}, {Name: "liar", URL: iconfig.SecretValue(liar.URL)}}}}}
	cfg.Detect.Rules.ContractWallets = []rules.ContractWallet{{Name: "x", Network: "devnet", Address: "0x" + strings.Repeat("11", 20), Implementations: []string{"0x" + strings.Repeat("22", 20)}}}
	reader, err := contractReader(cfg)
	require.NoError(t, err)
	defer reader.Close()
	_, err = reader.Account("devnet", "0x"+strings.Repeat("11", 20), rules.EIP1967Slot, dev.Head().Hash().Hex())
	require.ErrorContains(t, err, "disagree")
}

// TestApprovalDevnet: an unlimited approval of the devnet token by one
// of our wallets to an unknown spender is raised (critical), read from
// the transaction's call data on the devnet's JSON-RPC; the near misses
// (the allowed spender, a revocation, a stranger's approval) are not.
func TestApprovalDevnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev, err := devnet.Start(devnet.Config{})
	require.NoError(t, err)
	defer dev.Close()
	tr, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{Seed: 6}, nil)
	require.NoError(t, err)
	acct := dev.Accounts()
	hot, drainer, router := acct[5], acct[7], acct[8] // account 6 is a stranger
	maxU := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	bad, err := tr.Approve(ctx, 5, drainer, maxU)
	require.NoError(t, err)
	_, err = tr.Approve(ctx, 5, router, big.NewInt(1000))
	require.NoError(t, err)
	_, err = tr.Approve(ctx, 6, drainer, maxU)
	require.NoError(t, err)
	dev.Commit()
	_, err = tr.Approve(ctx, 5, drainer, big.NewInt(0))
	require.NoError(t, err)
	dev.Commit()
	var cfg config.Config
	cfg.Chains.ETH = []config.ETH{{Config: eth.Config{Network: "devnet", Endpoints: []eth.EndpointConfig{{Name: "a", URL: iconfig.SecretValue(dev.HTTPURL())}}}}}
	cfg.Detect.Rules.Approvals.Spenders = []string{router.Hex()}
	require.NoError(t, cfg.Detect.Rules.Validate("detect.rules"))
	reader, err := contractReader(cfg)
	require.NoError(t, err)
	defer reader.Close()
	e, err := rules.New(cfg.Detect.Rules, kinds{lowerHex(hot): rules.KindHot}, nil)
	require.NoError(t, err)
	e.SetContracts(reader)
	var got []chain.Alert
	applyDevnet(t, ctx, dev, e, func(_ *chain.Block, alerts []chain.Alert) {
		for _, a := range alerts {
			if a.Rule == rules.RuleApproval {
				got = append(got, a)
			}
		}
	})
	require.Len(t, got, 1, "%v", got)
	require.Equal(t, bad.Hex(), got[0].TxHash)
	require.Equal(t, rules.SeverityCritical, got[0].Severity)
	require.Equal(t, []string{lowerHex(hot), lowerHex(drainer)}, got[0].Addresses)
	require.Equal(t, strings.ToLower(tr.Token.Hex()), got[0].Details["token"])
}
