package wallet

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/cordonhq/cordon/internal/chain"
)

// Nonce states.
const (
	NonceUnknown  = "unknown"  // never assigned by this ledger
	NonceAssigned = "assigned" // given to a transaction, not on the canonical chain
	NonceMined    = "mined"    // a transaction of ours with it is on the canonical chain
	NonceReleased = "released" // freed by Release, to be given to another transaction
)

// NonceEntry is one assigned nonce.
type NonceEntry struct {
	Nonce uint64 `json:"nonce"`
	// Key is what the nonce was assigned to (the caller's id of the
	// transaction: a withdrawal or batch id); TxHash the signed
	// transaction's hash once the caller records it.
	Key    string `json:"key"`
	TxHash string `json:"tx_hash,omitempty"`
	// Block is the canonical block that mined a transaction of ours with
	// this nonce, and MinedTx that transaction's hash ("" when none).
	Block   string `json:"block,omitempty"`
	MinedTx string `json:"mined_tx,omitempty"`
}

type account struct {
	Assigned bool                   `json:"assigned"` // Last is meaningful
	Last     uint64                 `json:"last"`
	Entries  map[uint64]*NonceEntry `json:"-"`
	Released []uint64               `json:"released"`
}

// NonceLedger assigns the nonces of the wallet's sending addresses. The
// next nonce is max(the node's pending nonce, the last one assigned + 1),
// except that a nonce freed by Release is given again first; a nonce is
// never given to another key otherwise: after a reorganization that
// removes its transaction's block it is "assigned" again, and the same
// transaction is broadcast again. Safe for concurrent use.
type NonceLedger struct {
	mu       sync.Mutex
	network  string
	accounts map[string]*account // lowercase 0x address
}

// NewNonceLedger is an empty ledger of addrs on an Ethereum network.
func NewNonceLedger(network string, addrs ...common.Address) *NonceLedger {
	l := &NonceLedger{network: network, accounts: map[string]*account{}}
	for _, a := range addrs {
		l.accounts[lower(a)] = &account{Entries: map[uint64]*NonceEntry{}}
	}
	return l
}

// ErrUnknownAddress is address the ledger does not hold.
var ErrUnknownAddress = errors.New("wallet: not a sending address of the ledger")

func (l *NonceLedger) account(a common.Address) (*account, error) {
	acc, ok := l.accounts[lower(a)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAddress, a.Hex())
	}
	return acc, nil
}

// Assign gives key a nonce of addr: the one it already has, else the
// smallest released nonce not below nodeNonce (the node's pending
// nonce), else max(nodeNonce, last assigned + 1).
func (l *NonceLedger) Assign(addr common.Address, key string, nodeNonce uint64) (uint64, error) {
	if key == "" {
		return 0, errors.New("wallet: assign a nonce: empty key")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.account(addr)
	if err != nil {
		return 0, err
	}
	for _, e := range acc.Entries {
		if e.Key == key {
			return e.Nonce, nil
		}
	}
	sort.Slice(acc.Released, func(i, j int) bool { return acc.Released[i] < acc.Released[j] })
	for len(acc.Released) > 0 && acc.Released[0] < nodeNonce {
		acc.Released = acc.Released[1:] // used by someone else meanwhile
	}
	var n uint64
	if len(acc.Released) > 0 {
		n, acc.Released = acc.Released[0], acc.Released[1:]
	} else {
		n = nodeNonce
		if acc.Assigned && acc.Last+1 > n {
			n = acc.Last + 1
		}
	}
	acc.Entries[n] = &NonceEntry{Nonce: n, Key: key}
	if !acc.Assigned || n > acc.Last {
		acc.Assigned, acc.Last = true, n
	}
	return n, nil
}

// SetTxHash records the hash of the signed transaction of an assigned
// nonce.
func (l *NonceLedger) SetTxHash(addr common.Address, nonce uint64, hash string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.account(addr)
	if err != nil {
		return err
	}
	e, ok := acc.Entries[nonce]
	if !ok {
		return fmt.Errorf("wallet: nonce %d of %s is not assigned", nonce, addr.Hex())
	}
	e.TxHash = strings.ToLower(hash)
	return nil
}

// Release frees an assigned nonce that is not mined, for another
// transaction: only a new approval of what it was for may do so (the
// caller's check).
func (l *NonceLedger) Release(addr common.Address, nonce uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.account(addr)
	if err != nil {
		return err
	}
	e, ok := acc.Entries[nonce]
	if !ok {
		return fmt.Errorf("wallet: nonce %d of %s is not assigned", nonce, addr.Hex())
	}
	if e.Block != "" {
		return fmt.Errorf("wallet: nonce %d of %s is mined in %s", nonce, addr.Hex(), e.Block)
	}
	delete(acc.Entries, nonce)
	acc.Released = append(acc.Released, nonce)
	return nil
}

// Status is the state of one nonce (NonceUnknown… NonceReleased) and
// its entry.
func (l *NonceLedger) Status(addr common.Address, nonce uint64) (string, NonceEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.account(addr)
	if err != nil {
		return NonceUnknown, NonceEntry{}
	}
	if e, ok := acc.Entries[nonce]; ok {
		if e.Block != "" {
			return NonceMined, *e
		}
		return NonceAssigned, *e
	}
	for _, r := range acc.Released {
		if r == nonce {
			return NonceReleased, NonceEntry{Nonce: nonce}
		}
	}
	return NonceUnknown, NonceEntry{}
}

// Pending is the entries of addr assigned and not mined, by nonce: what
// is to be (re)broadcast.
func (l *NonceLedger) Pending(addr common.Address) []NonceEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc, err := l.account(addr)
	if err != nil {
		return nil
	}
	var out []NonceEntry
	for _, e := range acc.Entries {
		if e.Block == "" {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Nonce < out[j].Nonce })
	return out
}

// AddBlock records the transactions of an added block sent from the
// ledger's addresses: each assigned nonce among them is mined.
func (l *NonceLedger) AddBlock(ev chain.BlockEvent, txs []chain.Transaction) error {
	if ev.Type != chain.BlockAdded || ev.Chain != chain.ETH || ev.Network != l.network {
		return fmt.Errorf("nonce ledger: %s event of %s/%s, the ledger follows eth/%s added blocks", ev.Type, ev.Chain, ev.Network, l.network)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range txs {
		if t.BlockHash != ev.Hash {
			continue
		}
		acc, ok := l.accounts[strings.ToLower(t.From)]
		if !ok {
			continue
		}
		if e, ok := acc.Entries[t.Nonce]; ok {
			e.Block, e.MinedTx = ev.Hash, strings.ToLower(t.Hash)
		}
	}
	return nil
}

// RemoveBlock puts every nonce mined in the removed block back to
// assigned.
func (l *NonceLedger) RemoveBlock(ev chain.BlockEvent) error {
	if ev.Type != chain.BlockRemoved || ev.Chain != chain.ETH || ev.Network != l.network {
		return fmt.Errorf("nonce ledger: %s event of %s/%s, the ledger follows eth/%s removed blocks", ev.Type, ev.Chain, ev.Network, l.network)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, acc := range l.accounts {
		for _, e := range acc.Entries {
			if e.Block == ev.Hash {
				e.Block, e.MinedTx = "", ""
			}
		}
	}
	return nil
}

// Prune forgets the mined entries of addr below nonce (final: their
// blocks are beyond any reorganization), so the ledger does not grow
// forever.
func (l *NonceLedger) Prune(addr common.Address, below uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if acc, err := l.account(addr); err == nil {
		for n, e := range acc.Entries {
			if n < below && e.Block != "" {
				delete(acc.Entries, n)
			}
		}
	}
}

type ledgerAccount struct {
	Address  string       `json:"address"`
	Assigned bool         `json:"assigned"`
	Last     uint64       `json:"last"`
	Entries  []NonceEntry `json:"entries"`
	Released []uint64     `json:"released"`
}

type ledgerSnapshot struct {
	V        int             `json:"v"`
	Network  string          `json:"network"`
	Accounts []ledgerAccount `json:"accounts"`
}

// Snapshot is the ledger as JSON, for Restore after a restart.
func (l *NonceLedger) Snapshot() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ledgerSnapshot{V: snapshotVersion, Network: l.network, Accounts: []ledgerAccount{}}
	for a, acc := range l.accounts {
		la := ledgerAccount{Address: a, Assigned: acc.Assigned, Last: acc.Last, Entries: []NonceEntry{}, Released: append([]uint64{}, acc.Released...)}
		for _, e := range acc.Entries {
			la.Entries = append(la.Entries, *e)
		}
		sort.Slice(la.Entries, func(i, j int) bool { return la.Entries[i].Nonce < la.Entries[j].Nonce })
		sort.Slice(la.Released, func(i, j int) bool { return la.Released[i] < la.Released[j] })
		s.Accounts = append(s.Accounts, la)
	}
	sort.Slice(s.Accounts, func(i, j int) bool { return s.Accounts[i].Address < s.Accounts[j].Address })
	return json.Marshal(s)
}

// Restore replaces the ledger's state by a snapshot, checked strictly:
// only the ledger's own addresses, each nonce once, none above the last
// assigned, keys set; on any error the ledger is left as it was.
func (l *NonceLedger) Restore(b []byte) error {
	var s ledgerSnapshot
	if err := decodeStrict(b, &s); err != nil {
		return fmt.Errorf("restore nonce ledger: %w", err)
	}
	if s.V != snapshotVersion || s.Network != l.network {
		return fmt.Errorf("restore nonce ledger: version %d of network %q, want %d of %q", s.V, s.Network, snapshotVersion, l.network)
	}
	accounts := map[string]*account{}
	for a := range l.accounts {
		accounts[a] = &account{Entries: map[uint64]*NonceEntry{}}
	}
	seen := map[string]bool{}
	for _, la := range s.Accounts {
		acc, ok := accounts[la.Address]
		if !ok || seen[la.Address] {
			return fmt.Errorf("restore nonce ledger: account %q is not the ledger's, or twice", la.Address)
		}
		seen[la.Address] = true
		acc.Assigned, acc.Last = la.Assigned, la.Last
		keys := map[string]bool{}
		for _, e := range la.Entries {
			if e.Key == "" || keys[e.Key] || acc.Entries[e.Nonce] != nil || !la.Assigned || e.Nonce > la.Last ||
				(e.Block == "") != (e.MinedTx == "") {
				return fmt.Errorf("restore nonce ledger: %s: entry %+v", la.Address, e)
			}
			keys[e.Key] = true
			acc.Entries[e.Nonce] = &NonceEntry{Nonce: e.Nonce, Key: e.Key, TxHash: e.TxHash, Block: e.Block, MinedTx: e.MinedTx}
		}
		rel := map[uint64]bool{}
		for _, r := range la.Released {
			if rel[r] || acc.Entries[r] != nil || !la.Assigned || r > la.Last {
				return fmt.Errorf("restore nonce ledger: %s: released nonce %d", la.Address, r)
			}
			rel[r] = true
			acc.Released = append(acc.Released, r)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accounts = accounts
	return nil
}
