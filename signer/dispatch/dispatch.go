// Package dispatch is the builder between the withdrawal gate and the
// signer: it turns approved withdrawals into unsigned transactions of
// the exchange's hot wallets, hands each to the signer as a request on
// cordon.sign-requests, broadcasts what the signer returns, and follows
// it on the block stream to its confirmation.
//
// It runs in the gate's process while that instance leads. Its durable
// state is the gate's: a withdrawal is handed to signing by the gate in
// the same Kafka transaction that writes its request (Gate.Dispatch),
// and moves on (signed, broadcast, mined, confirmed, failed) through the
// gate, so a new leader's dispatcher knows every transaction the one
// before it made, and a withdrawal is never asked to be signed twice.
//
// What it keeps in memory is rebuilt at start: the wallets' spendable
// outputs and nonces from the block stream (read from its start), with
// the outputs and nonces the transactions in flight hold reserved again
// from the gate's state before anything new is built.
package dispatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/clock"
	"github.com/cordonhq/cordon/internal/uuid"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/vault"
	"github.com/cordonhq/cordon/signer/wallet"
)

// Gate is the withdrawal gate's side of the dispatcher (*gate.Service).
type Gate interface {
	InSigning(ctx context.Context) ([]gate.Withdrawal, error)
	Dispatch(ctx context.Context, ids []string, tx gate.Tx, out gate.Outgoing) error
	Advance(ctx context.Context, ids []string, request, status, reason string, update func(*gate.Tx)) error
	Trip(ctx context.Context, t gate.Trip) (gate.Trip, error)
}

// Options are what the dispatcher is wired to.
type Options struct {
	Config Config
	Gate   Gate
	// BTC and ETH are each wallet network's nodes, by network name.
	BTC map[string]BTCNode
	ETH map[string]ETHNode
	// SignRequests is the topic requests are written to.
	SignRequests string
	Clock        clock.Clock
	Log          *slog.Logger
	Metrics      *Metrics
}

// Dispatcher builds, hands on, broadcasts and follows. Run owns it.
type Dispatcher struct {
	o   Options
	log *slog.Logger
	btc map[string]*btcWallet // by network
	eth map[string]*ethWallet

	// flights are the transactions in the signing stage, by request id.
	flights map[string]*flight
	// byTx finds a flight by its transaction's id (lowercase hex).
	byTx map[string]string
	tips map[string]uint64 // stream → height of its tip
	// caught says the block stream was read to its end once (nothing is
	// built before: the wallets' outputs would be stale).
	caught bool
	// warned is when a build that could not be made was last logged,
	// by its withdrawals: once a minute, not at every step.
	warned map[string]time.Time
	// wake asks for a step now (Wake): an approval just committed.
	wake chan struct{}
	// stats counts what was done, for the status line (read by other
	// goroutines: under smu).
	smu   sync.Mutex
	stats Stats
}

type btcWallet struct {
	w       wallet.BTCWallet
	view    *wallet.UTXOView
	builder *wallet.BTCBuilder
	node    BTCNode
}

type ethWallet struct {
	w      wallet.ETHWallet
	addr   common.Address
	ledger *wallet.NonceLedger
	node   ETHNode
}

// flight is one transaction in the signing stage.
type flight struct {
	ids     []string
	chain   string
	network string
	status  string
	tx      gate.Tx
	sent    time.Time // last broadcast
}

// Stats count the transactions of this dispatcher's term.
type Stats struct {
	Requested, Signed, Broadcast, Mined, Confirmed, Failed, Rebroadcast int
}

// New returns a dispatcher of the wallets in o.Config (validated).
func New(o Options) (*Dispatcher, error) {
	if o.Gate == nil {
		return nil, errors.New("dispatch: no gate")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SignRequests == "" {
		o.SignRequests = "cordon.sign-requests"
	}
	d := &Dispatcher{o: o, log: o.Log, warned: map[string]time.Time{}, wake: make(chan struct{}, 1), btc: map[string]*btcWallet{}, eth: map[string]*ethWallet{},
		flights: map[string]*flight{}, byTx: map[string]string{}, tips: map[string]uint64{}}
	for _, w := range o.Config.Wallets.BTC {
		node := o.BTC[w.Network]
		if node == nil {
			return nil, fmt.Errorf("dispatch: wallet %s: no node of btc/%s", w.Name, w.Network)
		}
		s, err := w.Script()
		if err != nil {
			return nil, fmt.Errorf("dispatch: wallet %s: %w", w.Name, err)
		}
		view := wallet.NewUTXOView(w.Network, []string{s.Address}, 0)
		b, err := wallet.NewBTCBuilder(w, view, node.PrevTx)
		if err != nil {
			return nil, fmt.Errorf("dispatch: wallet %s: %w", w.Name, err)
		}
		d.btc[w.Network] = &btcWallet{w: w, view: view, builder: b, node: node}
	}
	for _, w := range o.Config.Wallets.ETH {
		node := o.ETH[w.Network]
		if node == nil {
			return nil, fmt.Errorf("dispatch: wallet %s: no node of eth/%s", w.Name, w.Network)
		}
		a, err := w.Address()
		if err != nil {
			return nil, fmt.Errorf("dispatch: wallet %s: %w", w.Name, err)
		}
		d.eth[w.Network] = &ethWallet{w: w, addr: a, ledger: wallet.NewNonceLedger(w.Network, a), node: node}
	}
	return d, nil
}

// Streams are the block streams the dispatcher follows ("chain/network").
func (d *Dispatcher) Streams() []string {
	out := make([]string, 0, len(d.btc)+len(d.eth))
	for n := range d.btc {
		out = append(out, chain.StreamKey(chain.BTC, n))
	}
	for n := range d.eth {
		out = append(out, chain.StreamKey(chain.ETH, n))
	}
	sort.Strings(out)
	return out
}

// Wake asks for a step at once instead of at the next interval (the
// gate committed an approval). It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats are the counts of this term.
func (d *Dispatcher) Stats() Stats {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.stats
}

func (d *Dispatcher) count(f func(*Stats)) {
	d.smu.Lock()
	f(&d.stats)
	d.smu.Unlock()
}

// Inputs are the dispatcher's feeds: blocks of its streams in stream
// order, with a zero Update once the stream was read to its end, and the
// signer's results.
type Inputs struct {
	Blocks  <-chan chain.Update
	Results <-chan vault.Result
}

// Run dispatches until ctx ends or the gate fails it. It builds nothing
// until the block stream was read to its end.
func (d *Dispatcher) Run(ctx context.Context, in Inputs) error {
	err := d.run(ctx, in)
	if ctx.Err() != nil {
		return nil //nolint:nilerr // stopping: what failed was cut short by it
	}
	return err
}

func (d *Dispatcher) run(ctx context.Context, in Inputs) error {
	tick := time.NewTicker(d.o.Config.Interval)
	defer tick.Stop()
	// The flights first, before any block: a block read while catching
	// up may mine, reorganize out or confirm one of them.
	for {
		ws, err := d.o.Gate.InSigning(ctx)
		if err == nil {
			d.load(ws)
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-in.Blocks:
			switch {
			case !ok:
				return errors.New("dispatch: the block stream ended")
			case u.Event.Type == "" && !d.caught:
				d.caught = true
				if err := d.reserve(); err != nil {
					return err
				}
				d.log.Info("dispatch: block stream read", "tips", d.tips, "in_flight", len(d.flights))
			case u.Event.Type != "":
				if err := d.block(ctx, u); err != nil {
					return err
				}
			}
		case r, ok := <-in.Results:
			if !ok {
				return errors.New("dispatch: the results ended")
			}
			if err := d.result(ctx, r); err != nil {
				return err
			}
		case <-tick.C:
			if !d.caught {
				continue
			}
			if err := d.step(ctx); err != nil {
				return err
			}
		case <-d.wake:
			if !d.caught {
				continue
			}
			if err := d.step(ctx); err != nil {
				return err
			}
		}
	}
}

// step restores the flights once, hands approved withdrawals on,
// broadcasts what is signed and not yet sent, and sends again what was
// not mined in time.
func (d *Dispatcher) step(ctx context.Context) error {
	ws, err := d.o.Gate.InSigning(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopping
		}
		d.log.Warn("dispatch: the gate did not list withdrawals", "err", err)
		return nil //nolint:nilerr // the gate answers again at the next step (a new leader starts a new dispatcher)
	}
	var btcBatch = map[string][]gate.Withdrawal{}
	for _, w := range ws {
		if w.Status != gate.StatusApproved {
			continue
		}
		if w.Expires != nil && d.o.Clock.Now().Add(d.o.Config.Margin).After(*w.Expires) {
			continue // its approvals end too soon: the gate expires it
		}
		switch w.Intent.Chain {
		case "btc":
			if d.btc[w.Intent.Network] != nil {
				btcBatch[w.Intent.Network] = append(btcBatch[w.Intent.Network], w)
			}
		case "eth":
			if d.eth[w.Intent.Network] != nil {
				if err := d.dispatchETH(ctx, w); err != nil {
					return err
				}
			}
		}
	}
	for n, batch := range btcBatch {
		slices.SortFunc(batch, func(a, b gate.Withdrawal) int { return a.Intent.Requested.Compare(b.Intent.Requested) })
		for len(batch) > 0 {
			k := min(len(batch), d.o.Config.Batch)
			if err := d.dispatchBTC(ctx, d.btc[n], batch[:k]); err != nil {
				return err
			}
			batch = batch[k:]
		}
	}
	now := d.o.Clock.Now()
	for _, id := range d.flightIDs() {
		f := d.flights[id]
		var err error
		switch {
		case f.status == gate.StatusSigned:
			err = d.broadcast(ctx, f, "")
		case f.status == gate.StatusBroadcast && f.sent.IsZero():
			// Taken over from another term: sent again at once, which
			// changes nothing for a node that has it (a failure is
			// logged and tried again at rebroadcast).
			_ = d.send(ctx, f) //nolint:errcheck // logged by send
		case f.status == gate.StatusBroadcast && now.Sub(f.sent) >= d.o.Config.Rebroadcast:
			err = d.broadcast(ctx, f, fmt.Sprintf("not mined %s after it was sent", now.Sub(f.sent).Round(time.Second)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Dispatcher) flightIDs() []string {
	ids := make([]string, 0, len(d.flights))
	for id := range d.flights {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// load takes the flights the gate holds (another term's).
func (d *Dispatcher) load(ws []gate.Withdrawal) {
	for _, w := range ws {
		if w.Tx == nil || w.Status == gate.StatusApproved {
			continue
		}
		if _, ok := d.flights[w.Tx.Request]; ok {
			continue
		}
		if (w.Intent.Chain == "btc" && d.btc[w.Intent.Network] == nil) || (w.Intent.Chain == "eth" && d.eth[w.Intent.Network] == nil) {
			d.log.Error("dispatch: a transaction in flight of a wallet no longer configured", "request", w.Tx.Request, "wallet", w.Tx.Wallet)
			continue
		}
		f := &flight{ids: w.Tx.Batch, chain: w.Intent.Chain, network: w.Intent.Network, status: w.Status, tx: *w.Tx}
		d.flights[w.Tx.Request] = f
		if f.tx.TxID != "" {
			d.byTx[strings.ToLower(f.tx.TxID)] = w.Tx.Request
		}
	}
	if len(d.flights) > 0 {
		d.log.Info("dispatch: transactions in flight taken over", "count", len(d.flights))
	}
}

// reserve holds again, once the block stream was read, the outputs and
// nonces of the transactions in flight, before anything new is built.
func (d *Dispatcher) reserve() error {
	type nonceOf struct {
		w     *ethWallet
		f     *flight
		nonce uint64
	}
	var nonces []nonceOf
	for _, id := range d.flightIDs() {
		f := d.flights[id]
		switch f.chain {
		case "btc":
			bw := d.btc[f.network]
			var held []wallet.UTXO
			for _, u := range bw.view.All() {
				if slices.Contains(f.tx.Inputs, u.TxHash+":"+strconv.FormatUint(uint64(u.Vout), 10)) {
					held = append(held, u)
				}
			}
			if err := bw.view.Reserve(f.tx.TxID, held); err != nil {
				return fmt.Errorf("dispatch: hold the inputs of request %s again: %w", id, err)
			}
		case "eth":
			if f.tx.Nonce != nil {
				nonces = append(nonces, nonceOf{d.eth[f.network], f, *f.tx.Nonce})
			}
		}
	}
	slices.SortFunc(nonces, func(a, b nonceOf) int {
		switch {
		case a.nonce < b.nonce:
			return -1
		case a.nonce > b.nonce:
			return 1
		}
		return 0
	})
	for _, n := range nonces {
		if st, e := n.w.ledger.Status(n.w.addr, n.nonce); st == wallet.NonceMined && e.Key != n.f.tx.Request {
			continue // mined while no one led, by this transaction: the block stream says so
		}
		got, err := n.w.ledger.Assign(n.w.addr, n.f.tx.Request, n.nonce)
		if err != nil || got != n.nonce {
			return fmt.Errorf("dispatch: nonce %d of request %s could not be held again (got %d): %w", n.nonce, n.f.tx.Request, got, err)
		}
		if n.f.tx.TxID != "" {
			_ = n.w.ledger.SetTxHash(n.w.addr, n.nonce, n.f.tx.TxID) //nolint:errcheck // the entry was just assigned
		}
	}
	return nil
}

// request is the signing request of one transaction.
func request(id string, chainName, network, walletName string, unsigned []byte, ws []gate.Withdrawal, now time.Time) (gate.Outgoing, []byte, error) {
	r := vault.Request{V: 1, ID: id, Chain: chainName, Network: network, Wallet: walletName, Unsigned: unsigned, Created: now.UTC()}
	for _, w := range ws {
		r.Withdrawals = append(r.Withdrawals, vault.Withdrawal{Intent: w.Intent, Approvals: w.Approvals})
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return gate.Outgoing{}, nil, err
	}
	return gate.Outgoing{Key: id, Type: vault.TypeRequest, Value: b}, b, nil
}

func ids(ws []gate.Withdrawal) []string {
	out := make([]string, len(ws))
	for i := range ws {
		out[i] = ws[i].Intent.ID
	}
	return out
}

func requestID() string {
	id, err := uuid.V4()
	if err != nil {
		panic(err) // crypto/rand failed
	}
	return "sr_" + id
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// dispatchBTC builds one transaction for ws and hands it on.
func (d *Dispatcher) dispatchBTC(ctx context.Context, bw *btcWallet, ws []gate.Withdrawal) error {
	rate, err := bw.node.FeeRate(ctx)
	if err != nil {
		d.log.Warn("dispatch: no fee estimate", "wallet", bw.w.Name, "err", err)
	}
	if rate <= 0 {
		rate = d.o.Config.FeeRate
	}
	intents := make([]intent.Intent, len(ws))
	for i := range ws {
		intents[i] = ws[i].Intent
	}
	built, err := bw.builder.Build(ctx, intents, rate)
	if err != nil {
		d.notYet(strings.Join(ids(ws), ","), "wallet", bw.w.Name, "withdrawals", ids(ws), "err", err)
		d.o.Metrics.buildFailed("btc")
		return nil
	}
	id := requestID()
	out, _, err := request(id, "btc", bw.w.Network, bw.w.Name, built.PSBT, ws, d.o.Clock.Now())
	if err != nil {
		bw.builder.Abandon(built.TxID)
		return fmt.Errorf("dispatch: encode a request: %w", err)
	}
	out.Topic = d.o.SignRequests
	tx := gate.Tx{Request: id, Wallet: bw.w.Name, Unsigned: hashHex(built.PSBT), TxID: built.TxID}
	for _, u := range built.Inputs {
		tx.Inputs = append(tx.Inputs, u.TxHash+":"+strconv.FormatUint(uint64(u.Vout), 10))
	}
	if err := d.o.Gate.Dispatch(ctx, ids(ws), tx, out); err != nil {
		bw.builder.Abandon(built.TxID)
		return raced(err, ids(ws), d.log)
	}
	tx.Batch = ids(ws)
	d.flights[id] = &flight{ids: ids(ws), chain: "btc", network: bw.w.Network, status: gate.StatusSigning, tx: tx}
	d.byTx[strings.ToLower(built.TxID)] = id
	d.count(func(s *Stats) { s.Requested++ })
	d.o.Metrics.requestedTx("btc", len(ws))
	d.log.Info("dispatch: signing requested", "request", id, "wallet", bw.w.Name, "withdrawals", ids(ws), "txid", built.TxID,
		"fee", built.Fee, "inputs", len(built.Inputs))
	return nil
}

// dispatchETH builds w's transaction and hands it on.
func (d *Dispatcher) dispatchETH(ctx context.Context, w gate.Withdrawal) error {
	ew := d.eth[w.Intent.Network]
	call, err := ew.w.Call(w.Intent)
	if err != nil {
		d.log.Error("dispatch: a withdrawal the wallet cannot make", "withdrawal", w.Intent.ID, "err", err)
		return nil
	}
	pending, err := ew.node.PendingNonce(ctx, ew.addr)
	if err != nil {
		d.notYet(w.Intent.ID, "withdrawal", w.Intent.ID, "err", err)
		return nil
	}
	id := requestID()
	nonce, err := ew.ledger.Assign(ew.addr, id, pending)
	if err != nil {
		return fmt.Errorf("dispatch: nonce of %s: %w", w.Intent.ID, err)
	}
	release := func() { _ = ew.ledger.Release(ew.addr, nonce) } //nolint:errcheck // just assigned
	est, err := ew.node.EstimateGas(ctx, ethereum.CallMsg{From: call.From, To: &call.To, Value: call.Value, Data: call.Data})
	if err != nil {
		release()
		d.notYet(w.Intent.ID, "withdrawal", w.Intent.ID, "err", fmt.Errorf("gas estimate: %w", err))
		d.o.Metrics.buildFailed("eth")
		return nil
	}
	base, tip, err := ew.node.Fees(ctx)
	if err == nil {
		var built *wallet.ETHBuild
		built, err = wallet.BuildETH(ew.w, w.Intent, nonce, est, base, tip)
		if err == nil {
			var out gate.Outgoing
			out, _, err = request(id, "eth", ew.w.Network, ew.w.Name, built.Payload, []gate.Withdrawal{w}, d.o.Clock.Now())
			if err == nil {
				out.Topic = d.o.SignRequests
				n := nonce
				tx := gate.Tx{Request: id, Wallet: ew.w.Name, Unsigned: hashHex(built.Payload), Nonce: &n, Sighash: hex.EncodeToString(built.SigningHash[:])}
				if err = d.o.Gate.Dispatch(ctx, []string{w.Intent.ID}, tx, out); err != nil {
					release()
					return raced(err, []string{w.Intent.ID}, d.log)
				}
				{
					tx.Batch = []string{w.Intent.ID}
					d.flights[id] = &flight{ids: tx.Batch, chain: "eth", network: ew.w.Network, status: gate.StatusSigning, tx: tx}
					d.count(func(s *Stats) { s.Requested++ })
					d.o.Metrics.requestedTx("eth", 1)
					d.log.Info("dispatch: signing requested", "request", id, "wallet", ew.w.Name, "withdrawal", w.Intent.ID, "nonce", nonce,
						"gas", built.Tx.Gas(), "max_fee", built.Tx.GasFeeCap())
					return nil
				}
			}
		}
	}
	release()
	d.o.Metrics.buildFailed("eth")
	d.notYet(w.Intent.ID, "withdrawal", w.Intent.ID, "err", err)
	return nil
}

// notYet logs that the transaction of key cannot be built yet, once a
// minute per key (the step tries again every interval).
func (d *Dispatcher) notYet(key string, args ...any) {
	now := d.o.Clock.Now()
	if t, ok := d.warned[key]; ok && now.Sub(t) < time.Minute {
		return
	}
	if len(d.warned) > 10_000 {
		clear(d.warned)
	}
	d.warned[key] = now
	d.log.Warn("dispatch: cannot build yet; tried again at every step", args...)
}

// raced tells a refusal of the gate's that a withdrawal changed since it
// was listed (the breaker, its expiry: nothing to do) from a failure of
// the gate (the dispatcher stops; the next term takes over).
func raced(err error, ids []string, log *slog.Logger) error {
	var r *gate.Refusal
	if errors.As(err, &r) && (r.Code == "not_approved" || r.Code == "expired" || r.Code == "paused") {
		log.Info("dispatch: the gate no longer releases the withdrawals", "withdrawals", ids, "why", r.Reason)
		return nil
	}
	return fmt.Errorf("dispatch: hand %v to signing: %w", ids, err)
}

// result takes the signer's answer to one of our requests.
func (d *Dispatcher) result(ctx context.Context, r vault.Result) error {
	f, ok := d.flights[r.ID]
	if !ok || f.status != gate.StatusSigning {
		return nil // another term's, or seen already
	}
	switch r.Status {
	case vault.StatusSigned:
		raw, txid, err := d.verify(f, r)
		if err != nil {
			// The signer's result is not the transaction we asked for:
			// nothing is broadcast; people look at it.
			d.log.Error("dispatch: the signed transaction is not the one requested", "request", r.ID, "err", err)
			d.o.Metrics.mismatch()
			if err := d.advance(ctx, f, gate.StatusFailed, "the signer's transaction is not the one requested: "+err.Error(), nil); err != nil {
				return err
			}
			d.count(func(s *Stats) { s.Failed++ })
			d.releaseFlight(f) // what we build next with its nonce or inputs replaces what the signer made
			// A signer that signs what was not asked is compromised or
			// broken: the chain's withdrawals stop until a quorum of
			// approvers resets the breaker.
			t, err := d.o.Gate.Trip(ctx, gate.Trip{Scope: gate.ScopeChain, Chain: f.chain, Network: f.network, By: "dispatcher",
				Reason: "the signer returned a transaction other than the one requested (request " + r.ID + ")"})
			if err != nil {
				d.log.Error("dispatch: the breaker could not be tripped", "request", r.ID, "err", err)
			} else {
				d.log.Error("dispatch: breaker tripped", "trip", t.ID, "chain", f.chain, "network", f.network)
			}
			return nil
		}
		if err := d.advance(ctx, f, gate.StatusSigned, "signed by the signer", func(t *gate.Tx) { t.TxID, t.Raw = txid, raw }); err != nil {
			return err
		}
		d.byTx[strings.ToLower(txid)] = r.ID
		d.count(func(s *Stats) { s.Signed++ })
		return d.broadcast(ctx, f, "")
	case vault.StatusRefused, vault.StatusFailed:
		reason := fmt.Sprintf("the signer %s it: %s: %s", r.Status, r.Code, r.Reason)
		if err := d.advance(ctx, f, gate.StatusFailed, reason, nil); err != nil {
			return err
		}
		d.count(func(s *Stats) { s.Failed++ })
		d.releaseFlight(f)
	}
	return nil
}

// releaseFlight frees what a failed transaction held.
func (d *Dispatcher) releaseFlight(f *flight) {
	switch f.chain {
	case "btc":
		if bw := d.btc[f.network]; bw != nil {
			bw.builder.Abandon(f.tx.TxID)
		}
	case "eth":
		if ew := d.eth[f.network]; ew != nil && f.tx.Nonce != nil {
			_ = ew.ledger.Release(ew.addr, *f.tx.Nonce) //nolint:errcheck // a nonce already mined stays
		}
	}
	delete(d.flights, f.tx.Request)
}

// verify checks that r's transaction is the one f asked for: the same
// Bitcoin txid (which covers every input and output), or an Ethereum
// transaction whose signing hash is the one requested and whose sender
// go-ethereum recovers is the wallet.
func (d *Dispatcher) verify(f *flight, r vault.Result) ([]byte, string, error) {
	if len(r.Raw) == 0 {
		return nil, "", errors.New("no transaction")
	}
	switch f.chain {
	case "btc":
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(r.Raw)); err != nil {
			return nil, "", fmt.Errorf("decode: %w", err)
		}
		if got := tx.TxHash().String(); got != f.tx.TxID {
			return nil, "", fmt.Errorf("txid %s, requested %s", got, f.tx.TxID)
		}
		return r.Raw, f.tx.TxID, nil
	default:
		ew := d.eth[f.network]
		var tx types.Transaction
		if err := tx.UnmarshalBinary(r.Raw); err != nil {
			return nil, "", fmt.Errorf("decode: %w", err)
		}
		signer := types.LatestSignerForChainID(tx.ChainId())
		if tx.ChainId().Uint64() != ew.w.ChainID {
			return nil, "", fmt.Errorf("chain id %s, the wallet's is %d", tx.ChainId(), ew.w.ChainID)
		}
		if h := signer.Hash(&tx); hex.EncodeToString(h[:]) != f.tx.Sighash {
			return nil, "", fmt.Errorf("signing hash %x, requested %s", h, f.tx.Sighash)
		}
		from, err := types.Sender(signer, &tx)
		if err != nil || from != ew.addr {
			return nil, "", fmt.Errorf("sender %s, the wallet is %s: %w", from.Hex(), ew.addr.Hex(), errors.Join(err, errors.New("not the wallet")))
		}
		return r.Raw, tx.Hash().Hex(), nil
	}
}

// advance moves f's withdrawals on at the gate; f follows only once the
// gate committed it.
func (d *Dispatcher) advance(ctx context.Context, f *flight, status, reason string, update func(*gate.Tx)) error {
	if err := d.o.Gate.Advance(ctx, f.ids, f.tx.Request, status, reason, update); err != nil {
		return fmt.Errorf("dispatch: request %s to %s: %w", f.tx.Request, status, err)
	}
	if update != nil {
		update(&f.tx)
	}
	f.status = status
	d.o.Metrics.moved(f.chain, status, len(f.ids))
	return nil
}

// send sends f's signed transaction to the chain's nodes.
func (d *Dispatcher) send(ctx context.Context, f *flight) error {
	var err error
	switch f.chain {
	case "btc":
		var tx wire.MsgTx
		if err = tx.Deserialize(bytes.NewReader(f.tx.Raw)); err == nil {
			err = d.btc[f.network].node.Broadcast(ctx, &tx)
		}
	default:
		var tx types.Transaction
		if err = tx.UnmarshalBinary(f.tx.Raw); err == nil {
			err = d.eth[f.network].node.Broadcast(ctx, &tx)
		}
	}
	f.sent = d.o.Clock.Now()
	if err != nil {
		d.o.Metrics.broadcastFailed(f.chain)
		d.log.Warn("dispatch: broadcast failed; it is tried again", "request", f.tx.Request, "txid", f.tx.TxID, "err", err)
	}
	return err
}

// broadcast sends f's signed transaction and records it at the gate;
// again is why it is sent again ("" the first time). A node that does
// not take it is not an error: it is tried again.
func (d *Dispatcher) broadcast(ctx context.Context, f *flight, again string) error {
	if err := d.send(ctx, f); err != nil {
		return nil //nolint:nilerr // logged by send; tried again at the next step
	}
	reason := "broadcast to the network's nodes"
	if again != "" {
		reason = "broadcast again: " + again
	}
	if err := d.advance(ctx, f, gate.StatusBroadcast, reason, func(t *gate.Tx) { t.Broadcasts++ }); err != nil {
		return err
	}
	if again != "" {
		d.count(func(s *Stats) { s.Rebroadcast++ })
		d.log.Warn("dispatch: transaction broadcast again", "request", f.tx.Request, "txid", f.tx.TxID, "why", again)
	} else {
		d.count(func(s *Stats) { s.Broadcast++ })
		d.log.Info("dispatch: broadcast", "request", f.tx.Request, "txid", f.tx.TxID, "withdrawals", f.ids)
	}
	return nil
}

// block applies one block of the stream: the wallets' outputs and
// nonces, and the transactions in flight it mines, reorganizes out or
// confirms.
func (d *Dispatcher) block(ctx context.Context, u chain.Update) error {
	ev := u.Event
	stream := chain.StreamKey(ev.Chain, ev.Network)
	d.log.Debug("dispatch: block", "stream", stream, "type", ev.Type, "height", ev.Height, "hash", ev.Hash)
	var err error
	switch {
	case ev.Chain == chain.BTC && d.btc[ev.Network] != nil:
		v := d.btc[ev.Network].view
		if ev.Type == chain.BlockAdded {
			err = v.AddBlock(ev, u.Block.Outputs, u.Block.Spends)
		} else {
			err = v.RemoveBlock(ev)
		}
	case ev.Chain == chain.ETH && d.eth[ev.Network] != nil:
		l := d.eth[ev.Network].ledger
		if ev.Type == chain.BlockAdded {
			err = l.AddBlock(ev, u.Block.Transactions)
		} else {
			err = l.RemoveBlock(ev)
		}
	default:
		return nil
	}
	if err != nil {
		// The stream and the view disagree: building on it could spend
		// what is gone. Stop; a restart reads the stream again.
		return fmt.Errorf("dispatch: %s block %d %s: %w", stream, ev.Height, ev.Hash, err)
	}
	if ev.Type == chain.BlockAdded {
		d.tips[stream] = ev.Height
	} else if ev.Height > 0 {
		d.tips[stream] = ev.Height - 1
	}
	if ev.Type == chain.BlockRemoved {
		for _, id := range d.flightIDs() {
			f := d.flights[id]
			if f.status != gate.StatusMined || f.tx.Block != ev.Hash {
				continue
			}
			// The same transaction goes out again (the gate alerts).
			if err := d.advance(ctx, f, gate.StatusBroadcast, fmt.Sprintf("its block %d %s left the chain; broadcast again", ev.Height, ev.Hash),
				func(t *gate.Tx) { t.Block, t.Height = "", 0 }); err != nil {
				return err
			}
			d.count(func(s *Stats) { s.Rebroadcast++ })
			d.log.Warn("dispatch: a mined transaction was reorganized out; broadcast again", "request", id, "txid", f.tx.TxID, "block", ev.Hash)
			_ = d.send(ctx, f) //nolint:errcheck // logged; sent again at the next step
		}
		return nil
	}
	for _, t := range u.Block.Transactions {
		id, ok := d.byTx[strings.ToLower(t.Hash)]
		if !ok {
			continue
		}
		f := d.flights[id]
		if f == nil || (f.status != gate.StatusSigned && f.status != gate.StatusBroadcast) {
			continue
		}
		if err := d.advance(ctx, f, gate.StatusMined, fmt.Sprintf("mined in block %d", ev.Height),
			func(t *gate.Tx) { t.Block, t.Height = ev.Hash, ev.Height }); err != nil {
			return err
		}
		d.count(func(s *Stats) { s.Mined++ })
	}
	depth := d.o.Config.Confirmations[stream]
	for _, id := range d.flightIDs() {
		f := d.flights[id]
		if f.status != gate.StatusMined || chain.StreamKey(chain.Chain(f.chain), f.network) != stream {
			continue
		}
		if ev.Height+1 >= f.tx.Height+uint64(depth) {
			if err := d.advance(ctx, f, gate.StatusConfirmed, fmt.Sprintf("%d confirmations", ev.Height+1-f.tx.Height), nil); err != nil {
				return err
			}
			d.count(func(s *Stats) { s.Confirmed++ })
			delete(d.flights, id)
			delete(d.byTx, strings.ToLower(f.tx.TxID))
		}
	}
	return nil
}
