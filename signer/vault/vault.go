package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/txcheck"
	"github.com/cordonhq/cordon/signer/wallet"
)

// Signer is one signer plugin (a *pluginhost.Plugin, or an sdk.Signer in
// process).
type Signer interface {
	Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error)
}

// Blocklist is the signer's own copy of the flagged addresses
// (*intel.Index).
type Blocklist interface {
	Hits(c chain.Chain, network, addr string) []chain.Hit
}

// Refusal codes of the vault's own checks; a transaction that does not
// match its intents is refused with txcheck's codes.
const (
	CodeWallet    = "wallet"    // a wallet the signer does not hold, or of another chain or network
	CodePolicy    = "policy"    // an intent of another policy than the signer's copy, or of a rule it does not have
	CodeQuorum    = "quorum"    // the approvals do not meet the rule's quorum (forged, replayed, short, rejected, cooling)
	CodeExpired   = "expired"   // the approvals became void before signing
	CodeDuplicate = "duplicate" // a withdrawal already claimed by another transaction, or a request id asked again with other bytes
	CodeBlocklist = "blocklist" // a destination on the signer's blocklist
	CodeLimit     = "limit"     // above a limit, or an asset without one
	CodeBreaker   = "breaker"   // the signer's breaker holds the chain
	CodePlugin    = "plugin"    // a plugin refused, or its signatures did not verify
)

// tripping tells whether a refusal with code means that someone upstream
// lied (the gate, the builder or the transport), so that nothing more is
// signed on the chain until approvers reset the breaker. A fee above the
// cap (the market), an expiry, a limit, the blocklist and a policy
// update not yet copied here only refuse.
func tripping(code string) bool {
	switch code {
	case CodeQuorum, CodeDuplicate, txcheck.CodeMalformed, txcheck.CodeChain, txcheck.CodeDestination, txcheck.CodeAmount,
		txcheck.CodeAsset, txcheck.CodeCall, txcheck.CodeChange, txcheck.CodeInput, txcheck.CodeExtraOutput:
		return true
	}
	return false
}

// Vault holds the signer's decisions: entries, claims, the day's use and
// the breaker.
type Vault struct {
	cfg       Config
	approvers *intent.Approvers
	policy    *policy.Policy
	limits    map[string]limit
	btc       map[string]btcWallet
	eth       map[string]*wallet.ETHWallet
	signers   map[string]Signer
	blocklist Blocklist
	log       *slog.Logger

	entries map[string]*Entry
	claims  map[string]string // withdrawal id → request id
	uses    []use
	trips   map[string]*Trip
}

type btcWallet struct {
	w      *wallet.BTCWallet
	script *wallet.BTCScript
}

// use is one admitted withdrawal, counted against the day's limits.
type use struct {
	at       time.Time
	key, dst string
	amount   *big.Int
}

// New makes a vault of cfg (validated here, every problem named), with
// its plugins by name (each wallet key's plugin must be among them) and
// its blocklist (nil: none, which the config must then say — it is
// refused here).
func New(cfg Config, signers map[string]Signer, blocklist Blocklist, log *slog.Logger) (*Vault, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p config.Problems
	approvers, limits := cfg.Validate(&p, "signer")
	if blocklist == nil {
		p.Add("signer.blocklist", "none: the signer screens every destination against its own copy of the blocklist")
	}
	v := &Vault{cfg: cfg, approvers: approvers, limits: limits, btc: map[string]btcWallet{}, eth: map[string]*wallet.ETHWallet{},
		signers: signers, blocklist: blocklist, log: log,
		entries: map[string]*Entry{}, claims: map[string]string{}, trips: map[string]*Trip{}}
	plugin := func(k string, ref wallet.KeyRef) {
		if _, ok := signers[ref.Plugin]; !ok {
			p.Add(k+".plugin", "%q: no such plugin", ref.Plugin)
		}
	}
	for i := range cfg.Wallets.BTC {
		w := &cfg.Wallets.BTC[i]
		k := fmt.Sprintf("signer.wallets.btc[%d]", i)
		s, err := w.Script()
		if err != nil {
			p.Add(k, "%v", err)
			continue
		}
		v.btc[w.Name] = btcWallet{w, s}
		for j, ref := range w.Keys {
			plugin(fmt.Sprintf("%s.keys[%d]", k, j), ref)
		}
	}
	for i := range cfg.Wallets.ETH {
		w := &cfg.Wallets.ETH[i]
		v.eth[w.Name] = w
		plugin(fmt.Sprintf("signer.wallets.eth[%d].key", i), w.Key)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	pol, _, err := policy.Load(cfg.Policy, approvers)
	if err != nil {
		return nil, fmt.Errorf("signer.policy: %w", err)
	}
	v.policy = pol
	return v, nil
}

// PolicyHash is the hash of the signer's copy of the policy.
func (v *Vault) PolicyHash() string { return v.policy.Hash() }

// Refusal is why the vault refused a request.
type Refusal struct {
	Code   string
	Reason string
}

func (r *Refusal) Error() string { return "vault: refused: " + r.Code + ": " + r.Reason }

func refuse(code, format string, a ...any) *Refusal {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, a...)}
}

// Decision is what Admit decided: the entry (new, or the one already
// recorded for the same request), whether it is new and must be
// recorded, and the breaker trip the refusal pulled, if any.
type Decision struct {
	Entry *Entry
	New   bool
	Trip  *Trip
	// Refusal is set when this request was refused now.
	Refusal *Refusal
}

// Admit decides on req at now, before anything is signed. A request id
// already decided returns its entry as it is (a re-delivery), or, asked
// again with other bytes, is refused. An admitted request's entry is
// StatusSigning and its withdrawals are claimed: the caller records it
// durably, then calls Sign. A refused one is StatusRefused, with its
// code and reason; it claims nothing.
func (v *Vault) Admit(req *Request, now time.Time) Decision {
	if e, ok := v.entries[req.ID]; ok {
		if e.TxHash == req.TxHash() && slices.Equal(e.Request.IDs(), req.IDs()) {
			return Decision{Entry: e}
		}
		return v.refused(req, now, refuse(CodeDuplicate, "request %s was decided before (%s) with another transaction or other withdrawals", req.ID, e.Status))
	}
	if r := v.check(req, now); r != nil {
		return v.refused(req, now, r)
	}
	e := &Entry{Request: *req, TxHash: req.TxHash(), Status: StatusSigning, Admitted: now.UTC(), Updated: now.UTC()}
	v.put(e)
	v.log.Info("signer: admitted", "request", req.ID, "chain", req.Chain, "network", req.Network, "wallet", req.Wallet,
		"withdrawals", len(req.Withdrawals))
	return Decision{Entry: e, New: true}
}

func (v *Vault) refused(req *Request, now time.Time, r *Refusal) Decision {
	e := &Entry{Request: *req, TxHash: req.TxHash(), Status: StatusRefused, Code: r.Code, Reason: r.Reason,
		Admitted: now.UTC(), Updated: now.UTC()}
	d := Decision{Entry: e, New: true, Refusal: r}
	if _, seen := v.entries[req.ID]; seen {
		// The request id's first entry stays; this answer is not kept.
		d.New = false
	} else {
		v.put(e)
	}
	if tripping(r.Code) {
		d.Trip = v.trip(req, r, now)
	}
	v.log.Warn("signer: refused", "request", req.ID, "chain", req.Chain, "network", req.Network, "code", r.Code, "reason", r.Reason,
		"tripped", d.Trip != nil)
	return d
}

// check is every check of the second layer, cheapest first; nil admits.
func (v *Vault) check(req *Request, now time.Time) *Refusal {
	if t := v.covering(req.Chain, req.Network); t != nil {
		return refuse(CodeBreaker, "the signer's breaker holds %s/%s since %s: trip %s (%s)", req.Chain, req.Network,
			t.At.UTC().Format(time.RFC3339), t.ID, t.Reason)
	}
	for _, id := range req.IDs() {
		if by, ok := v.claims[id]; ok {
			return refuse(CodeDuplicate, "withdrawal %s is already claimed by request %s: a withdrawal is signed in one transaction only", id, by)
		}
	}
	intents := make([]intent.Intent, len(req.Withdrawals))
	for i := range req.Withdrawals {
		w := &req.Withdrawals[i]
		if r := v.checkApprovals(req, w, now); r != nil {
			return r
		}
		if r := v.screen(&w.Intent, now); r != nil {
			return r
		}
		intents[i] = w.Intent
	}
	if r := v.checkLimits(intents, now); r != nil {
		return r
	}
	return v.checkTx(req, intents)
}

// checkApprovals checks w's intent against the signer's policy and its
// approvals against the signer's approvers.
func (v *Vault) checkApprovals(req *Request, w *Withdrawal, now time.Time) *Refusal {
	in := &w.Intent
	if in.Chain != req.Chain || in.Network != req.Network {
		return refuse(txcheck.CodeChain, "withdrawal %s is %s/%s, the request %s/%s", in.ID, in.Chain, in.Network, req.Chain, req.Network)
	}
	if in.Policy != v.policy.Hash() {
		return refuse(CodePolicy, "withdrawal %s was decided under policy %s; the signer's copy is %s", in.ID, trunc(in.Policy), v.policy.Hash())
	}
	terms, ok := v.policy.Terms(in.Rule)
	if !ok {
		return refuse(CodePolicy, "withdrawal %s names rule %q, which asks for no approvals in the signer's policy", in.ID, trunc(in.Rule))
	}
	tl := policy.CheckQuorum(terms, v.approvers, in, w.Approvals, now)
	if !tl.Ready {
		why := tl.Missing
		switch {
		case tl.Rejected:
			why = "rejected by " + strings.Join(tl.RejectedBy, ", ")
		case tl.Met:
			why = "cooling until " + tl.CoolingUntil.UTC().Format(time.RFC3339)
		}
		var ign []string
		for _, g := range tl.Ignored {
			ign = append(ign, g.Approver+": "+g.Why)
		}
		if len(ign) > 0 {
			why += " (not counted: " + strings.Join(ign, "; ") + ")"
		}
		return refuse(CodeQuorum, "withdrawal %s: %s", in.ID, why)
	}
	if terms.Expiry > 0 {
		ready := later(tl.ReachedAt, tl.CoolingUntil)
		if end := ready.Add(terms.Expiry); !now.Before(end) {
			return refuse(CodeExpired, "withdrawal %s: its approvals became void at %s", in.ID, end.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (v *Vault) screen(in *intent.Intent, _ time.Time) *Refusal {
	hits := v.blocklist.Hits(chain.Chain(in.Chain), in.Network, in.Destination)
	if len(hits) == 0 {
		return nil
	}
	h := hits[0]
	return refuse(CodeBlocklist, "withdrawal %s: destination %s is flagged by %s (%s, indicator %s)", in.ID, in.Destination, h.Source, h.Category, h.Indicator)
}

const day = 24 * time.Hour

// checkLimits checks intents against the limits, counting what was
// admitted in the last 24 hours.
func (v *Vault) checkLimits(intents []intent.Intent, now time.Time) *Refusal {
	v.prune(now)
	type sum struct{ day, dst *big.Int }
	pending := map[string]*sum{}
	for i := range intents {
		in := &intents[i]
		key := limitKey(in.Chain, in.Network, in.Asset)
		lm, ok := v.limits[key]
		if !ok {
			return refuse(CodeLimit, "withdrawal %s: the signer has no limit for %s: it signs only assets it has limits for", in.ID, key)
		}
		amt, ok := new(big.Int).SetString(in.Amount, 10)
		if !ok || amt.Sign() <= 0 {
			return refuse(txcheck.CodeAmount, "withdrawal %s: amount %q", in.ID, trunc(in.Amount))
		}
		if lm.perWithdrawal != nil && amt.Cmp(lm.perWithdrawal) > 0 {
			return refuse(CodeLimit, "withdrawal %s: %s is above the signer's limit of %s per withdrawal of %s", in.ID, amt, lm.perWithdrawal, key)
		}
		dstKey := key + "/" + strings.ToLower(in.Destination)
		if pending[key] == nil {
			pending[key] = &sum{day: v.used(key, ""), dst: nil}
		}
		pending[key].day.Add(pending[key].day, amt)
		if pending[dstKey] == nil {
			pending[dstKey] = &sum{day: v.used(key, strings.ToLower(in.Destination))}
		}
		pending[dstKey].day.Add(pending[dstKey].day, amt)
		if lm.perDay != nil && pending[key].day.Cmp(lm.perDay) > 0 {
			return refuse(CodeLimit, "withdrawal %s: %s of %s in 24 hours would pass the signer's limit of %s", in.ID, pending[key].day, key, lm.perDay)
		}
		if lm.perDestination != nil && pending[dstKey].day.Cmp(lm.perDestination) > 0 {
			return refuse(CodeLimit, "withdrawal %s: %s of %s to %s in 24 hours would pass the signer's limit of %s per destination",
				in.ID, pending[dstKey].day, key, in.Destination, lm.perDestination)
		}
	}
	return nil
}

// used sums the uses of key (and of destination dst, when set).
func (v *Vault) used(key, dst string) *big.Int {
	s := new(big.Int)
	for _, u := range v.uses {
		if u.key == key && (dst == "" || u.dst == dst) {
			s.Add(s, u.amount)
		}
	}
	return s
}

func (v *Vault) prune(now time.Time) {
	i := 0
	for i < len(v.uses) && !v.uses[i].at.After(now.Add(-day)) {
		i++
	}
	v.uses = v.uses[i:]
}

// checkTx decodes the unsigned transaction and checks it against intents
// with the signer's own copy of the wallet.
func (v *Vault) checkTx(req *Request, intents []intent.Intent) *Refusal {
	var err error
	switch req.Chain {
	case "btc":
		bw, ok := v.btc[req.Wallet]
		if !ok || bw.w.Network != req.Network {
			return refuse(CodeWallet, "the signer holds no Bitcoin wallet %q on %s", req.Wallet, req.Network)
		}
		_, err = txcheck.CheckBTC(req.Unsigned, intents, bw.w.CheckPolicy(bw.script))
	case "eth":
		w, ok := v.eth[req.Wallet]
		if !ok || w.Network != req.Network {
			return refuse(CodeWallet, "the signer holds no Ethereum wallet %q on %s", req.Wallet, req.Network)
		}
		var p txcheck.ETHPolicy
		if p, err = w.CheckPolicy(); err == nil {
			_, err = txcheck.CheckETH(req.Unsigned, intents[0], p)
		}
	}
	if err == nil {
		return nil
	}
	if code := txcheck.CodeOf(err); code != "" {
		return refuse(code, "%v", err)
	}
	return refuse(txcheck.CodeMalformed, "%v", err)
}

// put records e: its claims and uses once admitted.
func (v *Vault) put(e *Entry) {
	v.entries[e.Request.ID] = e
	if e.Status == StatusRefused {
		return
	}
	for i := range e.Request.Withdrawals {
		in := &e.Request.Withdrawals[i].Intent
		v.claims[in.ID] = e.Request.ID
		amt, ok := new(big.Int).SetString(in.Amount, 10)
		if !ok {
			continue
		}
		u := use{at: e.Admitted, key: limitKey(in.Chain, in.Network, in.Asset), dst: strings.ToLower(in.Destination), amount: amt}
		j := len(v.uses)
		for j > 0 && v.uses[j-1].at.After(u.at) {
			j--
		}
		v.uses = append(v.uses[:j], append([]use{u}, v.uses[j:]...)...)
	}
}

// Restore puts back an entry read from the signer's state.
func (v *Vault) Restore(e *Entry) { v.put(e) }

// Entry is the entry of request id.
func (v *Vault) Entry(id string) (*Entry, bool) {
	e, ok := v.entries[id]
	return e, ok
}

// Unfinished are the admitted entries not signed yet: after a restart,
// they are signed again (the same transaction).
func (v *Vault) Unfinished() []*Entry {
	var out []*Entry
	for _, e := range v.entries {
		if e.Status == StatusSigning {
			out = append(out, e)
		}
	}
	return out
}

// ErrRetry wraps a signing that did not finish for a reason that may pass
// (a plugin that did not answer): the entry stays signing and is signed
// again, the same transaction.
var ErrRetry = errors.New("vault: signing did not finish; it is retried")

// Sign asks the plugins for e's signatures, e having been admitted and
// recorded, and assembles and verifies the transaction: the Bitcoin
// inputs run through btcd's script engine, the Ethereum sender recovered
// by go-ethereum must be the wallet. e becomes StatusSigned, or
// StatusFailed when a plugin refused or its signatures were bad (the
// withdrawals stay claimed). An error wrapping ErrRetry leaves it
// signing.
func (v *Vault) Sign(ctx context.Context, e *Entry, now time.Time) error {
	if e.Status != StatusSigning {
		return fmt.Errorf("vault: request %s is %s, not signing", e.Request.ID, e.Status)
	}
	auth, err := authorizations(&e.Request)
	if err != nil {
		return v.fail(e, now, err)
	}
	var raw []byte
	var txid string
	switch e.Request.Chain {
	case "btc":
		raw, txid, err = v.signBTC(ctx, e, auth)
	case "eth":
		raw, txid, err = v.signETH(ctx, e, auth)
	default:
		err = fmt.Errorf("chain %q", e.Request.Chain)
	}
	if errors.Is(err, ErrRetry) {
		v.log.Warn("signer: signing retried", "request", e.Request.ID, "err", err)
		return err
	}
	if err != nil {
		return v.fail(e, now, err)
	}
	e.Status, e.Raw, e.TxID, e.Updated = StatusSigned, raw, txid, now.UTC()
	v.log.Info("signer: signed", "request", e.Request.ID, "chain", e.Request.Chain, "network", e.Request.Network, "txid", txid)
	return nil
}

func (v *Vault) fail(e *Entry, now time.Time, err error) error {
	e.Status, e.Code, e.Reason, e.Updated = StatusFailed, CodePlugin, err.Error(), now.UTC()
	v.log.Error("signer: signing failed", "request", e.Request.ID, "err", err)
	return nil
}

// authorizations are what each plugin is told the signature is for.
func authorizations(req *Request) ([]sdk.Authorization, error) {
	out := make([]sdk.Authorization, len(req.Withdrawals))
	for i := range req.Withdrawals {
		w := &req.Withdrawals[i]
		c, err := w.Intent.Canonical()
		if err != nil {
			return nil, err
		}
		h, err := w.Intent.Hash()
		if err != nil {
			return nil, err
		}
		a := sdk.Authorization{Withdrawal: w.Intent.ID, Intent: c, IntentHash: h}
		for j := range w.Approvals {
			b, err := json.Marshal(&w.Approvals[j])
			if err != nil {
				return nil, err
			}
			a.Approvals = append(a.Approvals, b)
		}
		out[i] = a
	}
	return out, nil
}

// transient tells whether a plugin's error may pass: anything but its
// refusal, an unknown key or a bad request.
func transient(err error) bool {
	return !errors.Is(err, sdk.ErrRefused) && !errors.Is(err, sdk.ErrUnknownKey) && !errors.Is(err, sdk.ErrBadRequest)
}

func (v *Vault) signBTC(ctx context.Context, e *Entry, auth []sdk.Authorization) ([]byte, string, error) {
	bw := v.btc[e.Request.Wallet]
	b, err := bw.script.Load(e.Request.Unsigned)
	if err != nil {
		return nil, "", err
	}
	digests, err := b.Digests()
	if err != nil {
		return nil, "", err
	}
	sigs := make([]map[int]sdk.Signature, len(digests))
	for i, d := range digests {
		sigs[i] = map[int]sdk.Signature{}
		var errs []error
		for k, ref := range d.Keys {
			if len(sigs[i]) == d.Need {
				break
			}
			sig, err := v.signers[ref.Plugin].Sign(ctx, sdk.SignRequest{KeyID: ref.KeyID, Digest: d.Digest, Context: sdk.SignContext{
				Chain: e.Request.Chain, Network: e.Request.Network, TxID: b.TxID, Input: d.Input, Authorizations: auth}})
			if err != nil {
				errs = append(errs, fmt.Errorf("input %d, key %s of plugin %s: %w", i, ref.KeyID, ref.Plugin, err))
				continue
			}
			sigs[i][k] = sig
		}
		if len(sigs[i]) < d.Need {
			err := fmt.Errorf("input %d has %d of the %d signatures it needs: %w", i, len(sigs[i]), d.Need, errors.Join(errs...))
			for _, e := range errs {
				if transient(e) {
					return nil, "", fmt.Errorf("%w: %w", ErrRetry, err)
				}
			}
			return nil, "", err
		}
	}
	tx, err := b.Finalize(sigs)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), tx.TxHash().String(), nil
}

func (v *Vault) signETH(ctx context.Context, e *Entry, auth []sdk.Authorization) ([]byte, string, error) {
	w := v.eth[e.Request.Wallet]
	p, err := w.CheckPolicy()
	if err != nil {
		return nil, "", err
	}
	// Decoded and checked again: the entry may come from the state.
	t, err := txcheck.CheckETH(e.Request.Unsigned, e.Request.Withdrawals[0].Intent, p)
	if err != nil {
		return nil, "", err
	}
	b, err := w.Rebuild(t)
	if err != nil {
		return nil, "", err
	}
	sig, err := v.signers[w.Key.Plugin].Sign(ctx, sdk.SignRequest{KeyID: w.Key.KeyID, Digest: b.SigningHash, Context: sdk.SignContext{
		Chain: e.Request.Chain, Network: e.Request.Network, TxID: fmt.Sprintf("%x", b.SigningHash), Authorizations: auth}})
	if err != nil {
		err = fmt.Errorf("key %s of plugin %s: %w", w.Key.KeyID, w.Key.Plugin, err)
		if transient(err) {
			return nil, "", fmt.Errorf("%w: %w", ErrRetry, err)
		}
		return nil, "", err
	}
	tx, err := b.FinalizeETH(sig)
	if err != nil {
		return nil, "", err
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, "", err
	}
	return raw, tx.Hash().Hex(), nil
}
