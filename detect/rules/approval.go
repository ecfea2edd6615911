package rules

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// RuleApproval is raised when one of our addresses lets a spender not on the allow-list
// move its tokens: an ERC-20 approve or increaseAllowance, an EIP-2612
// permit signed by it, or an NFT setApprovalForAll. The theft follows in
// a transferFrom whenever the spender wishes (the drainer kits' way).
const RuleApproval = "approval_unknown_spender"

// The selectors the approval rule reads.
const (
	selApprove           = "0x095ea7b3" // approve(address,uint256)
	selIncreaseAllowance = "0x39509351" // increaseAllowance(address,uint256)
	selPermit            = "0xd505accf" // permit(address,address,uint256,uint256,uint8,bytes32,bytes32)
	selApprovalForAll    = "0xa22cb465" // setApprovalForAll(address,bool)
)

// ApprovalConfig is the approval rule's.
type ApprovalConfig struct {
	Disabled bool `yaml:"disabled"`
	// Spenders are the allowed spenders (routers, the exchange's own
	// contracts): approvals to them raise nothing.
	Spenders []string `yaml:"spenders"`
	// Severity is for a bounded allowance (default high); an unlimited one
	// (at least 2^128, or approval for all) is critical.
	Severity string `yaml:"severity"`
}

// unlimited is the allowance from which an approval counts as
// unlimited: nobody means 2^128 base units.
var unlimited = new(big.Int).Lsh(big.NewInt(1), 128)

// approvals checks the block's transactions that grant allowances.
func (r *blockRun) approvals() {
	cfg := &r.e.cfg.Approvals
	if cfg.Disabled {
		return
	}
	for i := range r.b.Transactions {
		t := &r.b.Transactions[i]
		sel := strings.ToLower(t.MethodID)
		switch sel {
		case selApprove, selIncreaseAllowance, selApprovalForAll:
			if r.kind(t.From) == "" {
				continue // not from one of ours
			}
		case selPermit:
			// Anyone submits a permit; whose it is, only the call data says.
		default:
			continue
		}
		if t.Status != nil && *t.Status == 0 {
			continue // failed: granted nothing
		}
		if r.e.contracts == nil {
			if sel != selPermit {
				r.raise(RuleApproval, "detect", cfg.Severity,
					fmt.Sprintf("our address %s granted an allowance on %s (selector %s), and no endpoint is configured to read to whom", t.From, t.To, sel),
					fact{tx: t.Hash, subject: "approval", addrs: []string{t.From, t.To}, details: map[string]string{"selector": sel, "token": t.To}})
			}
			continue
		}
		input, err := r.e.contracts.Input(r.b.Network, t.Hash)
		if err != nil {
			if sel != selPermit {
				r.raise(RuleApproval, "detect", cfg.Severity,
					fmt.Sprintf("our address %s granted an allowance on %s (selector %s), and its call data could not be read to say to whom (%v)", t.From, t.To, sel, err),
					fact{tx: t.Hash, subject: "approval", addrs: []string{t.From, t.To}, details: map[string]string{"selector": sel, "token": t.To, "error": err.Error()}})
			}
			continue
		}
		owner, spender, amount, all, ok := decodeApproval(sel, t.From, input)
		if !ok || r.kind(owner) == "" || amount.Sign() == 0 && !all {
			continue // not ours, not decodable, or a revocation
		}
		if slices.Contains(lowerAll(cfg.Spenders), spender) {
			continue
		}
		sev, what := cfg.Severity, amount.String()+" base units"
		if all || amount.Cmp(unlimited) >= 0 {
			sev, what = SeverityCritical, "an unlimited allowance"
		}
		kind := map[string]string{selApprove: "approve", selIncreaseAllowance: "increaseAllowance", selPermit: "permit", selApprovalForAll: "setApprovalForAll"}[sel]
		r.raise(RuleApproval, "detect", sev,
			fmt.Sprintf("our address %s gave %s, a spender not on the allow-list, %s of %s (%s): it can take them whenever it wishes", owner, spender, what, t.To, kind),
			fact{tx: t.Hash, subject: "approval/" + spender, asset: strings.ToLower(t.To), amount: amount, addrs: []string{owner, spender},
				details: map[string]string{"kind": kind, "spender": spender, "token": strings.ToLower(t.To), "unlimited": fmt.Sprint(sev == SeverityCritical)}})
	}
}

// decodeApproval reads the owner, spender and amount of an approval's
// call data (sender is the transaction's sender: the owner of an approve).
func decodeApproval(sel, sender string, input []byte) (owner, spender string, amount *big.Int, all, ok bool) {
	word := func(i int) []byte {
		if len(input) < 4+32*(i+1) {
			return nil
		}
		return input[4+32*i : 4+32*(i+1)]
	}
	addr := func(w []byte) (string, bool) {
		if w == nil || new(big.Int).SetBytes(w[:12]).Sign() != 0 {
			return "", false
		}
		return fmt.Sprintf("0x%x", w[12:]), true
	}
	if len(input) < 4 || fmt.Sprintf("0x%x", input[:4]) != sel {
		return "", "", nil, false, false
	}
	owner = strings.ToLower(sender)
	first := 0
	if sel == selPermit {
		if owner, ok = addr(word(0)); !ok {
			return "", "", nil, false, false
		}
		first = 1
	}
	if spender, ok = addr(word(first)); !ok {
		return "", "", nil, false, false
	}
	v := word(first + 1)
	if v == nil {
		return "", "", nil, false, false
	}
	amount = new(big.Int).SetBytes(v)
	if sel == selApprovalForAll {
		if amount.Cmp(big.NewInt(1)) > 0 {
			return "", "", nil, false, false
		}
		all, amount = amount.Sign() == 1, new(big.Int)
	}
	return owner, spender, amount, all, true
}
