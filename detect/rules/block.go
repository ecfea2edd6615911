package rules

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/uuid"
)

// Rules' names (an alert's Type and Rule).
const (
	RuleOutflowLarge      = "outflow_large"
	RuleDrain             = "drain"
	RuleVelocityCount     = "velocity_count"
	RuleVelocityValue     = "velocity_value"
	RuleFlaggedContact    = "flagged_contact"
	RulePoisoningDust     = "poisoning_dust"
	RulePoisoningLookalik = "poisoning_lookalike"
	RulePaidLookalike     = "paid_lookalike"
	TypeCustom            = "custom"
)

// alertNS is the namespace of alert ids.
var alertNS = [16]byte{0x6b, 0x1e, 0x2a, 0x41, 0x0c, 0x7d, 0x4f, 0x55, 0x9a, 0x3b, 0xd2, 0x08, 0x61, 0xe4, 0x13, 0xc7}

// AlertID is the id of the alert a rule raises about subject (an address,
// a transfer) in a transaction of a block: the same wherever and however
// often it is derived.
func AlertID(rule, stream, blockHash, tx, subject string) string {
	return "detect/" + rule + "/" + uuid.V5(alertNS, strings.Join([]string{rule, stream, blockHash, tx, subject}, "\x00"))
}

// blockRun evaluates one added block.
type blockRun struct {
	e      *Engine
	b      *chain.Block
	stream string
	undo   *undoRec
	alerts []chain.Alert
	ids    map[string]bool
	outs   []outflow
	txs    map[string]*chain.Transaction
}

// outflow is one movement out of a wallet in the block.
type outflow struct {
	wk      string
	asset   string
	amount  *big.Int
	tx      string
	subject string
	to      []string
}

func newBlockRun(e *Engine, b *chain.Block) *blockRun {
	r := &blockRun{e: e, b: b, stream: b.Stream(), undo: &undoRec{Hash: b.Hash, Height: b.Height}, ids: map[string]bool{},
		txs: make(map[string]*chain.Transaction, len(b.Transactions))}
	for i := range b.Transactions {
		r.txs[b.Transactions[i].Hash] = &b.Transactions[i]
	}
	return r
}

func (r *blockRun) kind(addr string) string { return r.e.kind(r.b.Chain, r.b.Network, addr) }

// delta changes a wallet's balance and records it for undo.
func (r *blockRun) delta(wk, asset string, v *big.Int) {
	w := r.e.wallets[wk]
	bal := w.balance(asset)
	bal.Add(bal, v)
	if r.undo.Deltas == nil {
		r.undo.Deltas = map[string]map[string]*big.Int{}
	}
	d := r.undo.Deltas[wk]
	if d == nil {
		d = map[string]*big.Int{}
		r.undo.Deltas[wk] = d
	}
	if d[asset] == nil {
		d[asset] = new(big.Int)
	}
	d[asset].Add(d[asset], v)
	r.touch(wk)
}

func (r *blockRun) touch(wk string) {
	if !slices.Contains(r.undo.Touched, wk) {
		r.undo.Touched = append(r.undo.Touched, wk)
	}
	r.e.dirty["wallet/"+wk] = true
}

// fact is what an alert says about the chain.
type fact struct {
	tx      string
	subject string
	asset   string
	amount  *big.Int
	addrs   []string
	details map[string]string
}

func (r *blockRun) raise(rule, typ, severity, message string, f fact) {
	id := AlertID(rule, r.stream, r.b.Hash, f.tx, f.subject)
	if r.ids[id] {
		return
	}
	r.ids[id] = true
	a := chain.Alert{V: chain.SchemaVersion, ID: id, Type: typ, Rule: rule, Severity: severity, Chain: r.b.Chain, Network: r.b.Network,
		Time: timeOf(r.b.Time), Message: message, Details: f.details, Height: r.b.Height, BlockHash: r.b.Hash, TxHash: f.tx,
		Addresses: f.addrs, Asset: f.asset}
	if f.amount != nil {
		a.Amount = f.amount.String()
	}
	r.alerts = append(r.alerts, a)
}

func (r *blockRun) finish() []chain.Alert {
	r.undo.Alerts = r.alerts
	return r.alerts
}

// account evaluates an account-model block (Ethereum): its fees and
// transfers.
func (r *blockRun) account() {
	for i := range r.b.Transactions {
		t := &r.b.Transactions[i]
		if t.Fee == nil || t.Fee.IsZero() || !isWallet(r.kind(t.From)) {
			continue
		}
		r.e.walletOf(r.stream, t.From)
		r.delta(walletKey(r.stream, t.From), chain.AssetNative, new(big.Int).Neg(t.Fee.Big()))
	}
	for i := range r.b.Transfers {
		t := &r.b.Transfers[i]
		fk, tk := r.kind(t.From), r.kind(t.To)
		var sender string
		if tx := r.txs[t.TxHash]; tx != nil {
			sender = tx.From
		}
		sub := t.TxHash + "/native"
		if t.LogIndex != nil {
			sub = t.TxHash + "/" + u32(*t.LogIndex)
		}
		value := t.Standard != chain.StandardERC721
		amt := t.Amount.Big()
		if fk != "" || tk != "" {
			r.flagged(t.TxHash, sub, t.Asset, amt, t.From, fk, t.To, tk)
			if value {
				r.poisoning(t, sub, amt, fk, tk, sender)
			}
		}
		if value && isWallet(fk) {
			wk := walletKey(r.stream, t.From)
			r.e.walletOf(r.stream, t.From)
			r.delta(wk, t.Asset, new(big.Int).Neg(amt))
			r.outs = append(r.outs, outflow{wk: wk, asset: t.Asset, amount: amt, tx: t.TxHash, subject: sub, to: []string{t.To}})
		}
		if value && isWallet(tk) {
			r.e.walletOf(r.stream, t.To)
			r.delta(walletKey(r.stream, t.To), t.Asset, amt)
		}
		if isWallet(fk) && sender == t.From {
			r.remember(walletKey(r.stream, t.From), t.To)
		}
		r.customs(transferFacts{t: t, sender: sender, fk: fk, tk: tk, sub: sub, amount: amt})
	}
}

// bitcoin evaluates a Bitcoin block: the wallets' outputs and the
// spends of them, transaction by transaction.
func (r *blockRun) bitcoin() {
	outs := map[uint32][]*chain.Output{}
	spends := map[uint32][]*chain.Spend{}
	var order []uint32
	for i := range r.b.Outputs {
		o := &r.b.Outputs[i]
		if _, ok := outs[o.TxIndex]; !ok {
			if _, ok := spends[o.TxIndex]; !ok {
				order = append(order, o.TxIndex)
			}
		}
		outs[o.TxIndex] = append(outs[o.TxIndex], o)
	}
	for i := range r.b.Spends {
		s := &r.b.Spends[i]
		if _, ok := spends[s.TxIndex]; !ok {
			if _, ok := outs[s.TxIndex]; !ok {
				order = append(order, s.TxIndex)
			}
		}
		spends[s.TxIndex] = append(spends[s.TxIndex], s)
	}
	slices.Sort(order)
	for _, ti := range order {
		r.bitcoinTx(outs[ti], spends[ti])
	}
}

func (r *blockRun) bitcoinTx(outs []*chain.Output, spends []*chain.Spend) {
	inputs := map[string]*big.Int{}
	var txHash string
	for _, s := range spends {
		txHash = s.TxHash
		op := s.PrevTxHash + ":" + u32(s.PrevVout)
		wk, ok := r.e.owner[op]
		if !ok {
			continue
		}
		w := r.e.wallets[wk]
		u := w.UTXOs[op]
		delete(w.UTXOs, op)
		delete(r.e.owner, op)
		if r.undo.Spent == nil {
			r.undo.Spent = map[string]map[string]utxo{}
		}
		if r.undo.Spent[wk] == nil {
			r.undo.Spent[wk] = map[string]utxo{}
		}
		r.undo.Spent[wk][op] = u
		if inputs[wk] == nil {
			inputs[wk] = new(big.Int)
		}
		inputs[wk].Add(inputs[wk], u.Amount)
		r.delta(wk, chain.AssetNative, new(big.Int).Neg(u.Amount))
	}
	spenders := make([]string, 0, len(inputs))
	for wk := range inputs {
		spenders = append(spenders, wk)
	}
	slices.Sort(spenders)
	from := ""
	if len(spenders) > 0 {
		from = r.e.wallets[spenders[0]].Address
	}
	for _, o := range outs {
		txHash = o.TxHash
		if o.Address == nil {
			continue
		}
		addr := *o.Address
		amt := o.Amount.Big()
		k := r.kind(addr)
		sub := o.TxHash + "/" + u32(o.Vout)
		if isWallet(k) {
			wk := walletKey(r.stream, addr)
			w := r.e.walletOf(r.stream, addr)
			if w.UTXOs == nil {
				w.UTXOs = map[string]utxo{}
			}
			op := o.TxHash + ":" + u32(o.Vout)
			w.UTXOs[op] = utxo{Amount: amt, Block: r.b.Hash}
			r.e.owner[op] = wk
			r.delta(wk, chain.AssetNative, amt)
		}
		if k != "" && len(spenders) == 0 && !r.e.cfg.Poisoning.Disabled && r.isDust(chain.AssetNative, amt) {
			r.raise(RulePoisoningDust, RulePoisoningDust, SeverityMedium,
				fmt.Sprintf("dust of %s sat paid to our %s address %s", amt, k, addr),
				fact{tx: o.TxHash, subject: sub, asset: chain.AssetNative, amount: amt, addrs: []string{addr}})
		}
		if len(spenders) > 0 {
			r.flagged(o.TxHash, sub, chain.AssetNative, amt, from, r.kind(from), addr, k)
		}
		r.customs(transferFacts{t: &chain.Transfer{Chain: r.b.Chain, Network: r.b.Network, Asset: chain.AssetNative,
			Standard: chain.StandardNative, TxHash: o.TxHash, TxIndex: o.TxIndex, From: from, To: addr, Amount: o.Amount,
			BlockHeight: r.b.Height, BlockHash: r.b.Hash, BlockTime: r.b.Time}, sender: from, fk: r.kind(from), tk: k, sub: sub, amount: amt})
	}
	for _, wk := range spenders {
		w := r.e.wallets[wk]
		sum := new(big.Int)
		var to []string
		for _, o := range outs {
			if o.Address == nil || *o.Address == w.Address {
				continue
			}
			sum.Add(sum, o.Amount.Big())
			to = append(to, *o.Address)
		}
		for _, a := range to {
			r.lookalike(wk, a, txHash, txHash+"/"+a, sum, true, true)
		}
		if sum.Sign() > 0 {
			r.outs = append(r.outs, outflow{wk: wk, asset: chain.AssetNative, amount: sum, tx: txHash, subject: txHash, to: to})
		}
		for _, a := range to {
			r.remember(wk, a)
		}
	}
}

// flagged raises flagged_contact for a transfer between one of our
// addresses and a flagged one.
func (r *blockRun) flagged(tx, sub, asset string, amt *big.Int, from, fk, to, tk string) {
	if r.e.cfg.Flagged.Disabled {
		return
	}
	if fk != "" && tk == "" {
		if hs := r.e.hits(r.b.Chain, r.b.Network, to); len(hs) > 0 {
			sev := SeverityHigh
			if isWallet(fk) {
				sev = SeverityCritical
			}
			r.raise(RuleFlaggedContact, RuleFlaggedContact, sev,
				fmt.Sprintf("our %s address %s paid %s of %s to %s, flagged %s", fk, from, amt, assetName(asset), to, describe(hs)),
				fact{tx: tx, subject: sub, asset: asset, amount: amt, addrs: []string{from, to}, details: hitDetails("to", hs)})
		}
	}
	if tk != "" && fk == "" {
		if hs := r.e.hits(r.b.Chain, r.b.Network, from); len(hs) > 0 {
			r.raise(RuleFlaggedContact, RuleFlaggedContact, SeverityHigh,
				fmt.Sprintf("our %s address %s received %s of %s from %s, flagged %s", tk, to, amt, assetName(asset), from, describe(hs)),
				fact{tx: tx, subject: sub, asset: asset, amount: amt, addrs: []string{to, from}, details: hitDetails("from", hs)})
		}
	}
}

// poisoning raises the dust and lookalike alerts of an account-model
// transfer touching our addresses.
func (r *blockRun) poisoning(t *chain.Transfer, sub string, amt *big.Int, fk, tk, sender string) {
	if r.e.cfg.Poisoning.Disabled {
		return
	}
	dust := r.isDust(t.Asset, amt)
	// Dust to us from outside, or "from" us in a transaction we did not
	// send (a zero-value transferFrom writes our address as the sender).
	switch {
	case dust && tk != "" && fk == "":
		r.raise(RulePoisoningDust, RulePoisoningDust, SeverityMedium,
			fmt.Sprintf("%s of %s sent to our %s address %s by %s", amt, assetName(t.Asset), tk, t.To, t.From),
			fact{tx: t.TxHash, subject: sub, asset: t.Asset, amount: amt, addrs: []string{t.To, t.From}})
	case dust && fk != "" && tk == "" && sender != "" && sender != t.From:
		r.raise(RulePoisoningDust, RulePoisoningDust, SeverityMedium,
			fmt.Sprintf("a transfer of %s of %s from our %s address %s to %s that we did not send (sent by %s)", amt,
				assetName(t.Asset), fk, t.From, t.To, sender),
			fact{tx: t.TxHash, subject: sub, asset: t.Asset, amount: amt, addrs: []string{t.From, t.To, sender}})
	}
	if isWallet(tk) && fk == "" {
		r.lookalike(walletKey(r.stream, t.To), t.From, t.TxHash, sub, amt, false, false)
	}
	if isWallet(fk) && tk == "" {
		r.lookalike(walletKey(r.stream, t.From), t.To, t.TxHash, sub, amt, true, sender == t.From)
	}
}

// lookalike raises an alert when other looks like, but is not, a
// counterparty the wallet paid before. paid marks a payment the wallet
// itself made to it (the poisoning worked).
func (r *blockRun) lookalike(wk, other, tx, sub string, amt *big.Int, out, paid bool) {
	w := r.e.wallets[wk]
	if w == nil || r.e.cfg.Poisoning.Disabled || r.kind(other) != "" {
		return
	}
	pc := &r.e.cfg.Poisoning
	idx := w.index(pc.Prefix, pc.Suffix)
	if idx.set[other] {
		return
	}
	k, ok := lookKey(other, pc.Prefix, pc.Suffix)
	if !ok {
		return
	}
	var like string
	cands := idx.by[k]
	for i := len(cands) - 1; i >= 0; i-- {
		if Lookalike(cands[i], other, pc.Prefix, pc.Suffix) {
			like = cands[i]
			break
		}
	}
	if like == "" {
		return
	}
	if paid {
		r.raise(RulePaidLookalike, RulePaidLookalike, SeverityCritical,
			fmt.Sprintf("wallet %s paid %s, which looks like its earlier counterparty %s: address poisoning succeeded", w.Address, other, like),
			fact{tx: tx, subject: sub, amount: amt, addrs: []string{w.Address, other, like}, details: map[string]string{"looks_like": like}})
		return
	}
	dir := "received from"
	if out {
		dir = "shows a transfer to"
	}
	r.raise(RulePoisoningLookalik, RulePoisoningLookalik, SeverityHigh,
		fmt.Sprintf("wallet %s %s %s, which looks like its counterparty %s", w.Address, dir, other, like),
		fact{tx: tx, subject: sub, amount: amt, addrs: []string{w.Address, other, like}, details: map[string]string{"looks_like": like}})
}

// remember adds a counterparty the wallet paid.
func (r *blockRun) remember(wk, addr string) {
	w := r.e.wallets[wk]
	if w == nil || addr == "" || r.kind(addr) != "" {
		return
	}
	pc := &r.e.cfg.Poisoning
	idx := w.index(pc.Prefix, pc.Suffix)
	if idx.set[addr] {
		return
	}
	w.Parties = append(w.Parties, party{Address: addr, Block: r.b.Hash})
	idx.add(addr, pc.Prefix, pc.Suffix)
	if n := len(w.Parties) - pc.Remember; n > 0 {
		for _, p := range w.Parties[:n] {
			idx.remove(p.Address, pc.Prefix, pc.Suffix)
		}
		w.Parties = slices.Clone(w.Parties[n:])
	}
	r.touch(wk)
}

func (r *blockRun) isDust(asset string, amt *big.Int) bool {
	if amt.Sign() == 0 {
		return true
	}
	d := r.e.cfg.Poisoning.Dust.amountOf(r.b.Chain, asset)
	return d != nil && amt.Cmp(d) <= 0
}

// windows evaluates the block's outflows against their wallets' recent
// history (large outflow, velocity, drain) and adds them to it.
func (r *blockRun) windows() {
	if len(r.outs) == 0 {
		return
	}
	bt := r.b.Time
	oc, vc := r.e.cfg.Outflow, r.e.cfg.Velocity
	type key struct{ wk, asset string }
	var keys []key
	block := map[key][]outflow{}
	for _, o := range r.outs {
		k := key{o.wk, o.asset}
		if _, ok := block[k]; !ok {
			keys = append(keys, k)
		}
		block[k] = append(block[k], o)
	}
	for _, k := range keys {
		w := r.e.wallets[k.wk]
		min := oc.Min.amountOf(r.b.Chain, k.asset)
		// Large outflows, each against the baseline before the block.
		if !oc.Disabled {
			var base []*big.Int
			for _, f := range w.Flows {
				if f.Asset == k.asset && f.Time > bt-int64(oc.Window.Seconds()) {
					base = append(base, f.Amount)
				}
			}
			med := median(base)
			large := oc.Large.amountOf(r.b.Chain, k.asset)
			for _, o := range block[k] {
				if min != nil && o.amount.Cmp(min) < 0 {
					continue
				}
				why := ""
				switch {
				case large != nil && o.amount.Cmp(large) >= 0:
					why = "at least the configured " + large.String()
				case len(base) >= oc.MinSamples && med.Sign() > 0 && times(med, oc.Factor).Cmp(o.amount) < 0:
					why = fmt.Sprintf("over %g× the median %s of its last %d outflows", oc.Factor, med, len(base))
				}
				if why != "" {
					r.raise(RuleOutflowLarge, RuleOutflowLarge, oc.Severity,
						fmt.Sprintf("wallet %s sent %s of %s to %s: %s", w.Address, o.amount, assetName(k.asset), strings.Join(o.to, ", "), why),
						fact{tx: o.tx, subject: o.subject, asset: k.asset, amount: o.amount, addrs: append([]string{w.Address}, o.to...),
							details: map[string]string{"median": med.String(), "samples": fmt.Sprint(len(base))}})
				}
			}
		}
		if !vc.Disabled {
			from := bt - int64(vc.Window.Seconds())
			prevN, prevSum := 0, new(big.Int)
			for _, f := range w.Flows {
				if f.Asset == k.asset && f.Time > from {
					prevN++
					prevSum.Add(prevSum, f.Amount)
				}
			}
			blockSum := new(big.Int)
			for _, o := range block[k] {
				blockSum.Add(blockSum, o.amount)
			}
			n, sum := prevN+len(block[k]), new(big.Int).Add(prevSum, blockSum)
			addrs := []string{w.Address}
			last := block[k][len(block[k])-1]
			if vc.MaxCount > 0 && prevN <= vc.MaxCount && n > vc.MaxCount {
				r.raise(RuleVelocityCount, RuleVelocityCount, vc.Severity,
					fmt.Sprintf("wallet %s made %d outflows of %s within %s (more than %d)", w.Address, n, assetName(k.asset), vc.Window, vc.MaxCount),
					fact{tx: last.tx, subject: w.Address + "/" + k.asset, asset: k.asset, amount: sum, addrs: addrs,
						details: map[string]string{"count": fmt.Sprint(n), "window": vc.Window.String()}})
			}
			if mv := vc.MaxValue.amountOf(r.b.Chain, k.asset); mv != nil && prevSum.Cmp(mv) <= 0 && sum.Cmp(mv) > 0 {
				r.raise(RuleVelocityValue, RuleVelocityValue, vc.Severity,
					fmt.Sprintf("wallet %s sent %s of %s within %s (more than %s)", w.Address, sum, assetName(k.asset), vc.Window, mv),
					fact{tx: last.tx, subject: w.Address + "/" + k.asset, asset: k.asset, amount: sum, addrs: addrs,
						details: map[string]string{"count": fmt.Sprint(n), "window": vc.Window.String()}})
			}
			if vc.DrainShare > 0 && (min == nil || sum.Cmp(min) >= 0) {
				after := w.balance(k.asset)
				var blockDelta *big.Int
				if d := r.undo.Deltas[k.wk]; d != nil {
					blockDelta = d[k.asset]
				}
				before := new(big.Int).Set(after)
				if blockDelta != nil {
					before.Sub(before, blockDelta)
				}
				shareNew := share(sum, after)
				shareOld := share(prevSum, before)
				if after.Sign() >= 0 && shareNew >= vc.DrainShare && shareOld < vc.DrainShare {
					r.raise(RuleDrain, RuleDrain, SeverityCritical,
						fmt.Sprintf("wallet %s: %.0f%% of its %s left within %s (%s sent, %s left)", w.Address, shareNew*100,
							assetName(k.asset), vc.Window, sum, after),
						fact{tx: last.tx, subject: w.Address + "/" + k.asset, asset: k.asset, amount: sum, addrs: addrs,
							details: map[string]string{"share": fmt.Sprintf("%.4f", shareNew), "balance": after.String()}})
				}
			}
		}
	}
	keep := bt - int64(max(oc.Window, vc.Window).Seconds())
	for _, k := range keys {
		w := r.e.wallets[k.wk]
		for _, o := range block[k] {
			w.appendFlow(flow{Block: r.b.Hash, Time: bt, Asset: o.asset, Amount: o.amount})
		}
		old := 0
		for old < len(w.Flows) && w.Flows[old].Time <= keep {
			old++
		}
		w.dropFront(old)
		w.dropWhere(func(f flow) bool { return f.Time <= keep }) // none, unless block times went back
		w.dropFront(len(w.Flows) - maxFlows)
		r.touch(k.wk)
	}
}

// share is sent / (left + sent): the part of what the wallet held that
// left (0 when it held nothing known).
func share(sent, left *big.Int) float64 {
	if left.Sign() < 0 {
		return 0
	}
	total := new(big.Int).Add(sent, left)
	if total.Sign() <= 0 {
		return 0
	}
	f, _ := new(big.Rat).SetFrac(sent, total).Float64()
	return f
}

func median(vs []*big.Int) *big.Int {
	if len(vs) == 0 {
		return new(big.Int)
	}
	s := slices.Clone(vs)
	return new(big.Int).Set(nth(s, len(s)/2))
}

// nth is the k-th smallest of s (which it reorders): quickselect,
// linear on average where sorting the baseline for its median on every
// outflow was n log n. The pivot is the median of three, so already
// sorted or equal amounts (a wallet's usual outflows) stay linear.
func nth(s []*big.Int, k int) *big.Int {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s[mid].Cmp(s[lo]) < 0 {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if s[hi].Cmp(s[lo]) < 0 {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if s[hi].Cmp(s[mid]) < 0 {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		i, j := lo, hi
		for i <= j {
			for s[i].Cmp(pivot) < 0 {
				i++
			}
			for s[j].Cmp(pivot) > 0 {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k]
		}
	}
	return s[k]
}

func times(v *big.Int, f float64) *big.Int {
	out, _ := new(big.Float).Mul(new(big.Float).SetInt(v), big.NewFloat(f)).Int(nil)
	return out
}

func assetName(a string) string {
	if a == chain.AssetNative {
		return "the native coin"
	}
	return "token " + a
}

func describe(hs []chain.Hit) string {
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s by %s", h.Category, h.Source))
	}
	return strings.Join(parts, "; ")
}

func hitDetails(side string, hs []chain.Hit) map[string]string {
	d := map[string]string{"flagged": side}
	for i, h := range hs {
		if i == 3 {
			break
		}
		p := fmt.Sprintf("hit%d_", i)
		d[p+"indicator"], d[p+"category"], d[p+"source"] = h.Indicator, h.Category, h.Source
	}
	return d
}

// Lookalike reports whether b looks like a (same first prefix and last
// suffix characters after the address's 0x or bech32 prefix) without
// being it.
func Lookalike(a, b string, prefix, suffix int) bool {
	a, b = strings.ToLower(body(a)), strings.ToLower(body(b))
	if a == b || len(a) < prefix+suffix || len(b) < prefix+suffix {
		return false
	}
	return a[:prefix] == b[:prefix] && a[len(a)-suffix:] == b[len(b)-suffix:]
}

// body is an address without its 0x or bech32 human-readable prefix.
func body(a string) string {
	if strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X") {
		return a[2:]
	}
	if i := strings.LastIndexByte(a, '1'); i > 0 && i <= 5 {
		switch strings.ToLower(a[:i]) {
		case "bc", "tb", "bcrt", "sb":
			// bech32: after the separator, skip the witness version.
			if len(a) > i+2 {
				return a[i+2:]
			}
		}
	}
	return a
}

// partyIndex is a wallet's counterparties by lookalike key (the leading
// and trailing characters Lookalike compares), oldest first, and as a
// set: the lookalike check costs a map lookup, not a pass over them all.
// It lives in memory only, built again from Parties when needed.
type partyIndex struct {
	set map[string]bool
	by  map[string][]string
}

// lookKey is the key Lookalike matches on (false: too short to look
// like anything).
func lookKey(a string, prefix, suffix int) (string, bool) {
	b := strings.ToLower(body(a))
	if len(b) < prefix+suffix {
		return "", false
	}
	return b[:prefix] + "\x00" + b[len(b)-suffix:], true
}

func (w *wallet) index(prefix, suffix int) *partyIndex {
	if w.idx == nil {
		w.idx = &partyIndex{set: make(map[string]bool, len(w.Parties)), by: make(map[string][]string, len(w.Parties))}
		for _, p := range w.Parties {
			w.idx.add(p.Address, prefix, suffix)
		}
	}
	return w.idx
}

func (x *partyIndex) add(a string, prefix, suffix int) {
	x.set[a] = true
	if k, ok := lookKey(a, prefix, suffix); ok {
		x.by[k] = append(x.by[k], a)
	}
}

func (x *partyIndex) remove(a string, prefix, suffix int) {
	delete(x.set, a)
	k, ok := lookKey(a, prefix, suffix)
	if !ok {
		return
	}
	l := x.by[k]
	if i := slices.Index(l, a); i >= 0 {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(x.by, k)
	} else {
		x.by[k] = l
	}
}
