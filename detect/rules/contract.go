package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// RuleContractTakeover is the contract-wallet takeover rule: a watched
// contract wallet's implementation or owners changed to ones not
// approved, or it ran a delegatecall into a target not allowed.
const RuleContractTakeover = "contract_takeover"

// RuleContractUnreadable is raised when a watched contract wallet's state could not be
// read from the chain's endpoints at a block (the takeover rule is blind
// until it can).
const RuleContractUnreadable = "contract_unreadable"

// EIP1967Slot is the EIP-1967 implementation slot.
const EIP1967Slot = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"

// ContractWallet is one watched contract wallet. Register it as a hot
// or cold wallet too: the sweep that follows a takeover is an outflow.
type ContractWallet struct {
	Name    string `yaml:"name"`
	Network string `yaml:"network"`
	Address string `yaml:"address"`
	// Implementations are the implementations the proxy may point at.
	Implementations []string `yaml:"implementations"`
	// Slot is the storage slot holding the implementation (default the
	// EIP-1967 slot).
	Slot string `yaml:"implementation_slot"`
	// Owners are the approved owners: owners that change to any other
	// alert (an approved change, to owners all listed, does not). Empty:
	// any change of owners alerts.
	Owners []string `yaml:"owners"`
	// DelegateCalls are the targets the wallet may delegatecall besides
	// its implementations.
	DelegateCalls []string `yaml:"delegatecall_allow"`
	// Severity defaults to critical.
	Severity string `yaml:"severity"`
}

func (w *ContractWallet) defaults() {
	if w.Slot == "" {
		w.Slot = EIP1967Slot
	}
	if w.Severity == "" {
		w.Severity = SeverityCritical
	}
}

// ContractReader reads a contract wallet's state from the chain's
// endpoints at a block, by hash (so a replay reads what the first run
// read); declared here, wired in cmd to the Ethereum endpoints.
type ContractReader interface {
	// Account is addr's account at the block: the storage word at slot,
	// and its storage root and code hash (ErrNotDeployed without code).
	Account(network, addr, slot, blockHash string) (ContractAccount, error)
	// Owners is addr's getOwners() (Safe's, and the dev wallet's); read
	// again only when the account's storage root or code changed.
	Owners(network, addr, blockHash string) ([]string, error)
	// DelegateCalls are the delegatecalls tx made: the context address
	// (whose storage the code ran on) and the code's address, each pair.
	DelegateCalls(network, tx string) ([][2]string, error)
	// Input is tx's call data (the approval rule reads allowances from it).
	Input(network, tx string) ([]byte, error)
}

// ContractAccount is a contract wallet's account at a block, as a
// ContractReader reads it.
type ContractAccount struct {
	// Word is the 32-byte storage word at the implementation slot, 0x-hex.
	Word string
	// Storage is the account's storage root and Code its code hash: the
	// owners (in its storage, read by its code) cannot have changed
	// while both stay the same.
	Storage, Code string
}

// ErrNotDeployed is what a ContractReader says of an address without
// code at the block: a wallet not deployed yet is not checked.
var ErrNotDeployed = errors.New("no contract at the address in that block")

// contractState is what a watched contract wallet held at the stream's
// tip.
type contractState struct {
	Impl       string   `json:"impl,omitempty"`
	Owners     []string `json:"owners,omitempty"`
	Unreadable bool     `json:"unreadable,omitzero"`
	// Storage and Code: the account's storage root and code hash when
	// the owners were read.
	Storage string `json:"storage,omitempty"`
	Code    string `json:"code,omitempty"`
	// Seen: read at least once.
	Seen bool `json:"seen,omitzero"`
}

func isHexAddr(s string) bool { return len(s) == 42 && strings.HasPrefix(s, "0x") && isHex(s[2:]) }
func isHexWord(s string) bool { return len(s) == 66 && strings.HasPrefix(s, "0x") && isHex(s[2:]) }

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func lowerAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToLower(x)
	}
	slices.Sort(out)
	return out
}

func contractKey(stream, addr string) string { return "contract/" + stream + "/" + addr }

// contracts checks the block's network's contract wallets: the
// implementation and owners at the block, and the delegatecalls of the
// transactions sent to them.
func (r *blockRun) contracts() {
	if r.e.contracts == nil {
		return
	}
	for i := range r.e.cfg.ContractWallets {
		w := &r.e.cfg.ContractWallets[i]
		if w.Network != r.b.Network {
			continue
		}
		r.contract(w)
	}
}

func (r *blockRun) contract(w *ContractWallet) {
	addr := strings.ToLower(w.Address)
	key := contractKey(r.stream, addr)
	prev := r.e.cstate[key]
	cur := contractState{Seen: true}
	acc, err := r.e.contracts.Account(r.b.Network, addr, w.Slot, r.b.Hash)
	owners := prev.Owners
	if err == nil && (!prev.Seen || prev.Unreadable || prev.Storage == "" || acc.Storage != prev.Storage || acc.Code != prev.Code) {
		owners, err = r.e.contracts.Owners(r.b.Network, addr, r.b.Hash)
	}
	switch {
	case errors.Is(err, ErrNotDeployed) && !prev.Seen:
		return // not deployed yet: nothing to check, nothing sent to it
	case err != nil:
		cur = prev
		cur.Seen, cur.Unreadable = true, true
		if !prev.Unreadable {
			r.raise(RuleContractUnreadable, "detect", SeverityHigh,
				fmt.Sprintf("contract wallet %s (%s) could not be read at block %d: the takeover rule is blind to it until it can (%v)", w.Name, addr, r.b.Height, err),
				fact{subject: addr, addrs: []string{addr}, details: map[string]string{"wallet": w.Name, "error": err.Error()}})
		}
	default:
		cur.Storage, cur.Code = strings.ToLower(acc.Storage), strings.ToLower(acc.Code)
		cur.Impl = "0x" + strings.ToLower(strings.TrimPrefix(acc.Word, "0x"))
		if len(cur.Impl) == 66 {
			cur.Impl = "0x" + cur.Impl[26:]
		}
		cur.Owners = lowerAll(owners)
		impls := lowerAll(w.Implementations)
		if (!prev.Seen || prev.Unreadable || cur.Impl != prev.Impl) && !slices.Contains(impls, cur.Impl) {
			r.raise(RuleContractTakeover, "detect", w.Severity,
				fmt.Sprintf("contract wallet %s (%s) now runs implementation %s, not one approved (was %s): a takeover rewrites it before sweeping the funds", w.Name, addr, cur.Impl, orNone(prev.Impl)),
				fact{subject: "impl/" + cur.Impl, addrs: []string{addr, cur.Impl}, details: map[string]string{"wallet": w.Name, "kind": "implementation",
					"implementation": cur.Impl, "previous": prev.Impl}})
		}
		if (!prev.Seen || prev.Unreadable || !slices.Equal(cur.Owners, prev.Owners)) && !approvedOwners(cur.Owners, w.Owners, prev) {
			var added []string
			for _, o := range cur.Owners {
				if !slices.Contains(prev.Owners, o) {
					added = append(added, o)
				}
			}
			r.raise(RuleContractTakeover, "detect", w.Severity,
				fmt.Sprintf("contract wallet %s (%s) has owners not approved: %s (owners now %s)", w.Name, addr, strings.Join(unapproved(cur.Owners, w.Owners, added), ", "), strings.Join(cur.Owners, ", ")),
				fact{subject: "owners/" + strings.Join(cur.Owners, ","), addrs: append([]string{addr}, unapproved(cur.Owners, w.Owners, added)...),
					details: map[string]string{"wallet": w.Name, "kind": "owners", "owners": strings.Join(cur.Owners, ","), "previous": strings.Join(prev.Owners, ",")}})
		}
	}
	if !equalState(prev, cur) {
		if r.undo.Contracts == nil {
			r.undo.Contracts = map[string]contractState{}
		}
		if _, ok := r.undo.Contracts[key]; !ok {
			r.undo.Contracts[key] = prev
		}
		r.e.cstate[key] = cur
		r.e.dirty[key] = true
	}
	// The transactions sent to it: every delegatecall it made.
	allowed := append(lowerAll(w.Implementations), lowerAll(w.DelegateCalls)...)
	for i := range r.b.Transactions {
		t := &r.b.Transactions[i]
		if !strings.EqualFold(t.To, addr) {
			continue
		}
		calls, err := r.e.contracts.DelegateCalls(r.b.Network, t.Hash)
		if err != nil {
			r.raise(RuleContractUnreadable, "detect", SeverityHigh,
				fmt.Sprintf("the calls of transaction %s to contract wallet %s (%s) could not be traced: its delegatecalls are unchecked (%v)", t.Hash, w.Name, addr, err),
				fact{tx: t.Hash, subject: "trace/" + t.Hash, addrs: []string{addr}, details: map[string]string{"wallet": w.Name, "error": err.Error()}})
			continue
		}
		for _, c := range calls {
			from, to := strings.ToLower(c[0]), strings.ToLower(c[1])
			if from != addr || slices.Contains(allowed, to) {
				continue
			}
			// The sender is the attacker's, unless it is one of the
			// wallet's owners (a tricked one: ours, never published).
			addrs := []string{addr, to}
			sender := strings.ToLower(t.From)
			if sender != "" && !slices.Contains(cur.Owners, sender) && !slices.Contains(lowerAll(w.Owners), sender) {
				addrs = append(addrs, sender)
			}
			r.raise(RuleContractTakeover, "detect", w.Severity,
				fmt.Sprintf("contract wallet %s (%s) ran a delegatecall into %s, not an allowed target, in a transaction from %s: the code ran with the wallet's storage and funds", w.Name, addr, to, t.From),
				fact{tx: t.Hash, subject: "delegatecall/" + to, addrs: addrs, details: map[string]string{"wallet": w.Name, "kind": "delegatecall",
					"target": to, "sender": sender}})
		}
	}
}

// approvedOwners: every owner is approved (when approved owners are
// configured); without any, the first owners seen stand and any change
// alerts.
func approvedOwners(owners, approved []string, prev contractState) bool {
	if len(approved) == 0 {
		return !prev.Seen || prev.Unreadable
	}
	ap := lowerAll(approved)
	for _, o := range owners {
		if !slices.Contains(ap, o) {
			return false
		}
	}
	return true
}

func unapproved(owners, approved, added []string) []string {
	if len(approved) == 0 {
		return added
	}
	ap := lowerAll(approved)
	var out []string
	for _, o := range owners {
		if !slices.Contains(ap, o) {
			out = append(out, o)
		}
	}
	return out
}

func equalState(a, b contractState) bool {
	return a.Impl == b.Impl && slices.Equal(a.Owners, b.Owners) && a.Unreadable == b.Unreadable && a.Seen == b.Seen &&
		a.Storage == b.Storage && a.Code == b.Code
}

func orNone(s string) string {
	if s == "" {
		return "none seen"
	}
	return s
}
