package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
)

// devApprovers are the dev system's five approvers in two groups, like
// the default policy's tiers expect.
var devApprovers = []struct{ name, group string }{
	{"alice", "security"}, {"bob", "security"}, {"carol", "security"}, {"dave", "finance"}, {"erin", "finance"},
}

// devApproverKey is the path of a dev approver's key file.
func devApproverKey(dir, name string) string { return filepath.Join(dir, "approver-"+name+".json") }

// devGate configures the gate of cordon dev: the five approvers' key
// files in the data directory (made on first use, 0600), the default
// policy with its cooling periods shortened to cooling, written as a
// policy file with its approval record signed by alice and dave (a
// policy loads only with its approvals), and dev prices.
func devGate(cfg *config.Config, dir string, cooling time.Duration, token string) error {
	var list []intent.Approver
	for _, a := range devApprovers {
		kf, err := devKeyFile(dir, a.name)
		if err != nil {
			return err
		}
		list = append(list, intent.Approver{Name: a.name, Groups: []string{a.group}, Key: kf.Public})
	}
	cfg.Roles = append(cfg.Roles, config.RoleGate)
	cfg.Gate.Approvers = list
	cfg.Gate.Assets = []gate.Asset{{Chain: "eth", Network: devNetwork, Contract: token, Symbol: "DEV", Decimals: 6}}
	cfg.Gate.Policy.Prices = policy.PricesConfig{Assets: []policy.AssetPrice{
		{Chain: "eth", Asset: intent.Native, Decimals: 18, USD: "2000", Static: true},
		{Chain: "btc", Asset: intent.Native, Decimals: 8, USD: "60000", Static: true},
		{Chain: "eth", Network: devNetwork, Asset: strings.ToLower(token), Decimals: 6, USD: "1", Static: true},
	}}
	src := bytes.ReplaceAll(policy.DefaultYAML(), []byte("cooling: 2h"), []byte("cooling: "+cooling.String()))
	pf, af := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "policy.approvals")
	if err := os.WriteFile(pf, src, 0o600); err != nil {
		return err
	}
	var record bytes.Buffer
	for _, who := range []string{"alice", "dave"} {
		_, key, err := readKeyFile(devApproverKey(dir, who))
		if err != nil {
			return err
		}
		a, err := policy.ApprovePolicy(src, who, "cordon dev: the default policy, cooling "+cooling.String(), key, time.Now())
		if err != nil {
			return err
		}
		b, _ := json.Marshal(&a)
		record.Write(append(b, '\n'))
	}
	if err := os.WriteFile(af, record.Bytes(), 0o600); err != nil {
		return err
	}
	cfg.Gate.Policy.File, cfg.Gate.Policy.Approvals = pf, af
	cfg.Gate.Policy.PolicyQuorum = policy.Quorum{N: 2, Groups: []string{"security", "finance"}}
	return nil
}

func devKeyFile(dir, name string) (intent.KeyFile, error) {
	path := devApproverKey(dir, name)
	b, err := os.ReadFile(path) // #nosec G304 G703 -- the dev data directory
	if err == nil {
		var kf intent.KeyFile
		if json.Unmarshal(b, &kf) == nil {
			if _, kerr := kf.Key(); kerr == nil {
				return kf, nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return intent.KeyFile{}, err
	}
	kf, err := intent.GenerateKey(name)
	if err != nil {
		return kf, err
	}
	out, _ := json.MarshalIndent(kf, "", "  ") // #nosec G117 -- the dev approver's own key file, 0600
	return kf, os.WriteFile(path, append(out, '\n'), 0o600)
}

// devWithdrawals is the dev traffic generator of withdrawals: every few
// seconds a withdrawal of each tier from the devnet's accounts, now and
// then one to a flagged address (denied) and one to a lookalike of a
// destination the account used (approvers reject it); and the dev
// approvers, who approve what waits for them after a short delay.
type devWithdrawals struct {
	// client requests (the withdrawals token); approver carries the
	// approvers' signed approvals (the approvals token).
	client   gateClient
	approver gateClient
	dir      string
	flagged  string
	every    time.Duration
	// btc, when running, gets a Bitcoin withdrawal every third request,
	// to one of its wallet's addresses.
	btc *btcTraffic
	log *slog.Logger
	n   int
}

func (d *devWithdrawals) Run(ctx context.Context) error {
	t := time.NewTicker(d.every)
	defer t.Stop()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)) // #nosec G404 -- dev traffic, not secrets
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		d.request(ctx, rng)
		d.approve(ctx, rng)
	}
}

// devUsed is the destination every dev account withdraws to first.
func devUsed(account int) string {
	return fmt.Sprintf("0x%04x00000000000000000000000000000000%04x", 0xd0+account, 0xbeef)
}

func (d *devWithdrawals) request(ctx context.Context, rng *rand.Rand) {
	d.n++
	account := rng.IntN(5)
	dst := devUsed(account)
	amount := fmt.Sprintf("%d", 1+rng.IntN(400)) + "000000000000000000" // up to 400 ETH: below $1,000,000
	switch d.n % 10 {
	case 3:
		amount = "600000000000000000000" // 600 ETH: $1,200,000, the second tier
	case 6:
		amount = "3000000000000000000000" // $6,000,000: the third
	case 8:
		dst = d.flagged // denied
	case 9:
		// A lookalike: the same first and last four hex digits as the
		// account's usual destination, another address in between.
		dst = dst[:6] + strings.Repeat("7", 32) + dst[38:]
	}
	body := gate.Request{ID: fmt.Sprintf("dev-%d-%d", time.Now().Unix(), d.n), Account: fmt.Sprintf("dev-account-%d", account),
		Chain: "eth", Network: devNetwork, Asset: intent.Native, Amount: amount, Destination: dst}
	if d.btc != nil && d.n%3 == 1 {
		if addrs := d.btc.wallet.Addresses(); len(addrs) > 0 {
			// 0.001 to 0.5 BTC to an address of the dev chain's wallet.
			body.Chain, body.Network, body.Destination = "btc", devBTCNetwork, addrs[account%len(addrs)]
			body.Amount = fmt.Sprintf("%d", 100_000*(1+rng.IntN(500)))
		}
	}
	var out gate.Accepted
	if err := d.client.call(ctx, "POST", gate.WithdrawalsEndpoint, body, &out); err != nil {
		if ctx.Err() == nil {
			d.log.Debug("dev withdrawal not taken", "err", err)
		}
		return
	}
	d.log.Debug("dev withdrawal", "id", out.ID, "status", out.Status, "rule", out.Rule)
}

// approve has the dev approvers decide on every pending withdrawal at
// least a few seconds old: lookalike destinations are rejected, the rest
// approved by as many approvers as the rule needs.
func (d *devWithdrawals) approve(ctx context.Context, rng *rand.Rand) {
	var out struct{ Withdrawals []gate.Withdrawal }
	if err := d.approver.call(ctx, "GET", gate.WithdrawalsEndpoint+"?status="+gate.StatusPending+"&limit=50", nil, &out); err != nil {
		return
	}
	for _, w := range out.Withdrawals {
		if time.Since(w.Intent.Requested) < 3*time.Second {
			continue
		}
		decided := map[string]bool{}
		for _, a := range w.Approvals {
			decided[a.Approver] = true
		}
		lookalike := false
		for _, f := range w.Findings {
			lookalike = lookalike || f.Code == intent.Lookalike
		}
		// One approver acts per round, so approvals arrive one by one.
		order := rng.Perm(len(devApprovers))
		for _, i := range order {
			who := devApprovers[i].name
			if decided[who] || (w.Decision.Rule == "above-5m" && len(w.Approvals) == 3 && !needsGroup(w, devApprovers[i].group)) {
				continue
			}
			h, err := w.Intent.Hash()
			if err != nil || h != w.Hash {
				d.log.Error("dev approver: the intent does not hash to what the gate says; not signing", "withdrawal", w.Intent.ID)
				break
			}
			_, key, err := readKeyFile(devApproverKey(d.dir, who))
			if err != nil {
				return
			}
			a := intent.Approval{Withdrawal: w.Intent.ID, Intent: h, Approver: who, Decision: intent.Approve, Signed: time.Now()}
			if lookalike {
				a.Decision, a.Reason = intent.Reject, "the destination only looks like the account's usual one (address poisoning)"
			}
			a.Sign(key)
			var after gate.Withdrawal
			if err := d.approver.call(ctx, "POST", gate.WithdrawalsEndpoint+"/"+w.Intent.ID+"/approvals", a, &after); err != nil {
				d.log.Debug("dev approval refused", "withdrawal", w.Intent.ID, "approver", who, "err", err)
			}
			break
		}
	}
}

// needsGroup tells whether w's approvals so far lack one from group.
func needsGroup(w gate.Withdrawal, group string) bool {
	for _, a := range w.Approvals {
		for _, d := range devApprovers {
			if d.name == a.Approver && d.group == group {
				return false
			}
		}
	}
	return true
}
