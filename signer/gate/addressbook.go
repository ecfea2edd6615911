package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cordonhq/cordon/internal/address"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/signer/intent"
)

// AddressBookConfig is gate.address_book: who approves an addition to
// the address book, and how long after the quorum it becomes active.
type AddressBookConfig struct {
	Quorum int      `yaml:"quorum"`
	Groups []string `yaml:"groups"`
	// TimeLock is how long an approved entry waits before it counts
	// (default 48h): a stolen session that adds the thief's address has
	// that long to be noticed.
	TimeLock time.Duration `yaml:"time_lock"`
}

// ExchangeAccount is the account of address-book entries for the
// exchange's own wallets (hot to cold sweeps): they count for every
// account.
const ExchangeAccount = "*exchange*"

// BookEntry is one whitelisted destination: proposed, approved by a quorum,
// active from ActiveAt.
type BookEntry struct {
	ID          string    `json:"id"`
	Account     string    `json:"account"`
	Chain       string    `json:"chain"`
	Network     string    `json:"network"`
	Destination string    `json:"destination"`
	Label       string    `json:"label,omitempty"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
	// Approvals of adding it; QuorumAt when they reached the quorum;
	// ActiveAt when it counts (QuorumAt + the time lock).
	Approvals []intent.Approval `json:"approvals,omitempty"`
	QuorumAt  *time.Time        `json:"quorum_at,omitempty"`
	ActiveAt  *time.Time        `json:"active_at,omitempty"`
	// Removed is when the entry stopped counting, by whom and why: a
	// removal takes away trust, so one principal does it, at once; the
	// entry stays in the book (and the audit log) as it was.
	Removed       *time.Time `json:"removed,omitempty"`
	RemovedBy     string     `json:"removed_by,omitempty"`
	RemovedReason string     `json:"removed_reason,omitempty"`
}

// Subject is what an approval of the entry names: addressbook/ID.
func (e *BookEntry) Subject() string { return "addressbook/" + e.ID }

// Hash is what an approval of the entry signs: the hex SHA-256 of RFC
// 8785 JSON of its account, chain, network, destination, label, who
// proposed it and when.
func (e *BookEntry) Hash() string {
	b, _ := jcs.Marshal(map[string]string{ //nolint:errcheck // a map of strings always canonicalizes
		"v": "cordon-addressbook/v1", "id": e.ID, "account": e.Account, "chain": e.Chain, "network": e.Network,
		"destination": e.Destination, "label": e.Label, "by": e.By, "at": e.At.UTC().Format(time.RFC3339Nano),
	})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Active tells whether the entry counts at now.
func (e *BookEntry) Active(now time.Time) bool {
	return e.Removed == nil && e.ActiveAt != nil && !now.Before(*e.ActiveAt)
}

// RemoveRequest is the body of POST /v1/addressbook/{id}/removal.
type RemoveRequest struct {
	Reason string `json:"reason"`
}

// RemoveEntry takes entry id out of the address book at once: it no
// longer counts for any withdrawal assessed from now on (a withdrawal
// already decided keeps its decision). Any principal that may propose
// entries may remove one, with a reason.
func (c *Core) RemoveEntry(id string, q RemoveRequest, by string, now time.Time) (BookEntry, error) {
	reason := strings.TrimSpace(q.Reason)
	if reason == "" || len(reason) > intent.MaxReason || strings.ContainsFunc(reason, unicode.IsControl) || !utf8.ValidString(reason) {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_entry", "reason: want why the entry is removed: at most %d bytes of UTF-8 text, no control characters", intent.MaxReason)
	}
	c.book.mu.Lock()
	defer c.book.mu.Unlock()
	e, ok := c.book.entries[id]
	switch {
	case !ok:
		return BookEntry{}, refuse(http.StatusNotFound, "not_found", "no address-book entry %s", trunc(id))
	case e.Removed != nil:
		return *e, nil
	}
	e.Removed, e.RemovedBy, e.RemovedReason = at(now), by, reason
	c.bookChanged[id] = true
	c.log("addressbook", id, by, map[string]any{"action": "remove", "reason": reason})
	// One principal can take trust away: the security team hears of it.
	c.alert(alert("addressbook_removed", "warning", id, fmt.Sprintf("address-book entry %s (%s for %s) was removed by %s: %s", id, e.Destination, e.Account, by, reason),
		map[string]string{"entry": id, "account": e.Account, "destination": e.Destination, "by": by, "reason": reason}, now), e.Chain, e.Network)
	return *e, nil
}

// EntryRequest is the body of POST /v1/addressbook.
type EntryRequest struct {
	Account     string `json:"account"`
	Chain       string `json:"chain"`
	Network     string `json:"network"`
	Destination string `json:"destination"`
	Label       string `json:"label,omitempty"`
}

// book is the address book, read by assessments outside the leader's
// loop (dry runs, warm-ups) and written by the loop.
type book struct {
	mu      sync.RWMutex
	entries map[string]*BookEntry
	// byDst are the entries by chain/network/destination: what every
	// assessment looks up.
	byDst map[string][]*BookEntry
}

func dstKey(c, network, dst string) string { return c + "/" + network + "/" + dst }

// put adds e (the caller holds mu).
func (b *book) put(e *BookEntry) {
	b.entries[e.ID] = e
	k := dstKey(e.Chain, e.Network, e.Destination)
	b.byDst[k] = append(b.byDst[k], e)
}

func (b *book) whitelisted(account, c, network, dst string, now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range b.byDst[dstKey(c, network, dst)] {
		if (e.Account == account || e.Account == ExchangeAccount) && e.Active(now) {
			return true
		}
	}
	return false
}

// Propose adds an entry to the address book, waiting for its quorum.
func (c *Core) Propose(q EntryRequest, by string, now time.Time) (BookEntry, error) {
	q.Chain, q.Network = strings.ToLower(strings.TrimSpace(q.Chain)), strings.ToLower(strings.TrimSpace(q.Network))
	if q.Network == "" {
		q.Network = "mainnet"
	}
	if q.Account != ExchangeAccount && !idRe.MatchString(q.Account) {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_entry", "account %q: want the account's id, or %s for the exchange's own wallets", trunc(q.Account), ExchangeAccount)
	}
	if !c.Assets.Network(q.Chain, q.Network) {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_entry", "%s/%s: the gate takes no withdrawals on this network", trunc(q.Chain), trunc(q.Network))
	}
	dst, err := address.Normalize(chain.Chain(q.Chain), q.Network, q.Destination)
	if err != nil {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_entry", "destination: %v", err)
	}
	if len(q.Label) > 200 {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_entry", "label longer than 200 bytes")
	}
	e := &BookEntry{Account: q.Account, Chain: q.Chain, Network: q.Network, Destination: dst, Label: q.Label, By: by, At: now.UTC()}
	s := sha256.Sum256([]byte(e.Account + "\x00" + e.Chain + "\x00" + e.Network + "\x00" + e.Destination + "\x00" + e.At.Format(time.RFC3339Nano)))
	e.ID = "ab_" + hex.EncodeToString(s[:8])
	c.book.mu.Lock()
	if old, ok := c.book.entries[e.ID]; ok {
		c.book.mu.Unlock()
		return *old, nil
	}
	c.book.put(e)
	c.book.mu.Unlock()
	c.bookChanged[e.ID] = true
	c.log("addressbook", e.ID, by, map[string]any{"action": "propose", "entry": e})
	return *e, nil
}

// ApproveEntry takes one approver's signed approval of adding entry id;
// at the quorum the entry's time lock starts.
func (c *Core) ApproveEntry(id string, a intent.Approval, now time.Time) (BookEntry, error) {
	c.book.mu.Lock()
	defer c.book.mu.Unlock()
	e, ok := c.book.entries[id]
	if !ok {
		return BookEntry{}, refuse(http.StatusNotFound, "not_found", "no address-book entry %s", trunc(id))
	}
	if err := a.Check(); err != nil {
		return BookEntry{}, refuse(http.StatusBadRequest, "bad_approval", "%v", err)
	}
	if a.Withdrawal != e.Subject() || a.Intent != e.Hash() {
		return BookEntry{}, refuse(http.StatusForbidden, "wrong_intent", "it signs %s %s, and entry %s is %s", trunc(a.Withdrawal), a.Intent, id, e.Hash())
	}
	ap, err := intent.VerifySigned(c.Approvers, &a)
	switch {
	case err != nil:
		return BookEntry{}, refuse(http.StatusForbidden, "bad_approval", "%v", err)
	case a.Decision != intent.Approve:
		return BookEntry{}, refuse(http.StatusUnprocessableEntity, "bad_approval", "an entry is approved or left alone")
	case e.Removed != nil:
		return BookEntry{}, refuse(http.StatusConflict, "removed", "entry %s was removed at %s by %s: %s", id, e.Removed.Format(time.RFC3339), e.RemovedBy, e.RemovedReason)
	case e.QuorumAt != nil:
		return BookEntry{}, refuse(http.StatusConflict, "quorum_reached", "entry %s already has its quorum; it is active from %s", id, e.ActiveAt.Format(time.RFC3339))
	case !slices.ContainsFunc(c.Book.Groups, ap.In):
		return BookEntry{}, refuse(http.StatusForbidden, "wrong_group", "%s is not in %s, who approve the address book", ap.Name, strings.Join(c.Book.Groups, ", "))
	case strings.EqualFold(ap.Name, e.By):
		return BookEntry{}, refuse(http.StatusForbidden, "own_entry", "%s proposed entry %s and cannot approve it", ap.Name, id)
	case slices.ContainsFunc(e.Approvals, func(x intent.Approval) bool { return x.Approver == ap.Name }):
		return BookEntry{}, refuse(http.StatusConflict, "already_decided", "%s already approved entry %s", ap.Name, id)
	case a.Signed.Before(now.Add(-MaxSkew)) || a.Signed.After(now.Add(MaxSkew)):
		return BookEntry{}, refuse(http.StatusUnprocessableEntity, "signed_time", "signed at %s, more than %s from the gate's clock", a.Signed.UTC().Format(time.RFC3339), MaxSkew)
	}
	e.Approvals = append(e.Approvals, a)
	c.bookChanged[id] = true
	c.log("addressbook", id, ap.Name, map[string]any{"action": "approval", "approval": a})
	n := 0
	for _, x := range e.Approvals {
		if xa, err := intent.VerifySigned(c.Approvers, &x); err == nil && slices.ContainsFunc(c.Book.Groups, xa.In) {
			n++
		}
	}
	if n >= c.Book.Quorum {
		lock := c.Book.TimeLock
		e.QuorumAt, e.ActiveAt = at(now), at(now.Add(lock))
		c.log("addressbook", id, "gate", map[string]any{"action": "approved", "active_at": e.ActiveAt})
	}
	return *e, nil
}

// Entries returns the address book's entries of account ("" all).
func (c *Core) Entries(account string) []BookEntry {
	c.book.mu.RLock()
	defer c.book.mu.RUnlock()
	var out []BookEntry
	for _, e := range c.book.entries {
		if account == "" || e.Account == account {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b BookEntry) int { return a.At.Compare(b.At) })
	return out
}

func (c AddressBookConfig) validate(p interface{ Add(string, string, ...any) }, key string, approvers *intent.Approvers) {
	switch eligible := enabledIn(approvers, c.Groups); {
	case c.Quorum < 1:
		p.Add(key+".quorum", "%d: an addition needs at least one approver", c.Quorum)
	case c.Quorum > eligible:
		p.Add(key+".quorum", "%d: only %d enabled approvers are in %v", c.Quorum, eligible, c.Groups)
	}
	if c.TimeLock < 0 {
		p.Add(key+".time_lock", "%s: negative", c.TimeLock)
	}
}

// enabledIn counts the enabled approvers of any of groups.
func enabledIn(approvers *intent.Approvers, groups []string) int {
	n := 0
	for _, a := range approvers.List() {
		if !a.Disabled && slices.ContainsFunc(groups, a.In) {
			n++
		}
	}
	return n
}
