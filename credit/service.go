package credit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/registry"
)

// The crediting service turns the block stream into deposit events. It
// reads cordon.blocks and the record parts without a consumer group, and
// writes its deposit events together with a checkpoint — how far it has
// read each input partition and applied each stream — in one Kafka
// transaction per round. After a crash it restores the engine and the
// checkpoint from cordon.deposits (read committed) and reads on from the
// checkpoint: a round either happened whole or not at all, and the engine
// is deterministic, so no deposit event is lost or doubled. One
// transactional id fences a second instance: only one credits at a time.

// ServiceConfig configures the service.
type ServiceConfig struct {
	// Kafka's Topics name the inputs, the deposits topic (compacted,
	// written) and the decisions topic (read).
	Kafka           kafka.Config
	TransactionalID string
	Policy          func(chain.Chain, string) Policy
	Tokens          Tokens
	Registry        *registry.Index
	Screen          Screener
	Resolver        SenderResolver
	Log             *slog.Logger
	Metrics         *Metrics
	// Retain is the engine's Retain (0: remember every deposit).
	Retain uint64
	// Operators are the names of the operators who may decide (the
	// config's api.operators); a decision naming anyone else is refused.
	Operators []string
	// Nodes, when set, confirms each deposit with the chain's endpoints
	// before it is credited (quorum.go); without it the block stream
	// alone decides. A deposit waiting for them longer than
	// UnconfirmedAlert (default 10 minutes) raises a deposit_unconfirmed
	// alert.
	Nodes            Nodes
	UnconfirmedAlert time.Duration
	// AskBudget (default askBudget, 5s) bounds the time a round spends
	// asking Nodes.
	AskBudget time.Duration
	// Committed, when set, sees each round's events once Kafka has
	// committed them; Restored how many records a restore read, and how
	// long it took.
	Committed func([]DepositEvent)
	Restored  func(records int, took time.Duration)
}

// checkpointKey is the key of checkpoint records in the deposits topic.
const checkpointKey = "checkpoint"

// checkpoint is how far a committed round got.
type checkpoint struct {
	// Offsets are where to read on, by "topic/partition".
	Offsets map[string]int64 `json:"offsets"`
	// Next is the next block event seq to apply, by stream; Tips the
	// stream tips.
	Next map[string]uint64 `json:"next"`
	Tips map[string]uint64 `json:"tips"`
	// Finalized are the streams' finalized heights.
	Finalized map[string]uint64 `json:"finalized,omitempty"`
	// Applied are the hashes of the blocks applied last (at most
	// maxApplied): their parts, read again after a restart, are dropped.
	Applied []string `json:"applied"`
}

const maxApplied = 4096

// Service runs the crediting engine on the block stream.
type Service struct {
	cfg ServiceConfig
	e   *Engine
	cp  checkpoint
	// asm reassembles blocks from the block stream and knows the read
	// positions (where a restart must read on).
	asm *kafka.Assembler
	// recent are the outputs of the newest Bitcoin blocks applied, by
	// stream (senders resolved without ClickHouse).
	recent map[string]*recentOutputs
	// decisions read and not yet applied, in order.
	decisions []Decision
	// alerts are the round's alerts, written in its transaction.
	alerts []chain.Alert
	// pruned are deposits the engine forgot, to remove from the state.
	pruned []string
	// applied is cp.Applied as a set.
	applied map[string]bool
	// ctx is the running round's (the engine's Confirm asks the nodes
	// within it); asked, blocks and tips cache the nodes' answers of the
	// round.
	ctx     context.Context
	asked   map[string]askedNodes
	blocks  map[string]*chain.Block
	derived map[string][]Candidate // the deposits of blocks, derived from the nodes'
	tips    map[string][2]uint64   // the nodes' head and finalized height by stream, asked once a round
	// asking is how long the round's questions to the nodes took so far,
	// deferred how many deposits it left for a later round once that
	// passed askBudget.
	asking      time.Duration
	deferred    int
	retry       bool             // the last round deferred deposits: this one ripens them first
	unconfirmed map[string]stall // deposits waiting for the nodes, since when
	// stalledStreams are the streams a deposit_unconfirmed alert was
	// raised for, until their nodes confirm a deposit again.
	stalledStreams map[string]bool
	nodesWarned    time.Time
	behind         bool // a stream waits for ClickHouse
	behindWarned   time.Time
	lastCommit     time.Time

	mu     sync.Mutex
	counts map[string]int // deposits by status, as of the last commit
}

// Counts are the deposits by status as of the last committed round.
func (s *Service) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

type askedNodes struct {
	reports []NodeReport
	quorum  int
}

// nodesDown notes that the chain's nodes could not be asked about c.
func (s *Service) nodesDown(c Candidate, err error) {
	if time.Since(s.nodesWarned) > time.Minute {
		s.nodesWarned = time.Now()
		s.cfg.Log.Error("credit: cannot ask the chain's nodes: deposits at confirmation depth wait", "chain", c.Chain, "network", c.Network,
			"height", c.Height, "err", err)
	}
	s.cfg.Metrics.confirmation(Unconfirmed)
}

// holds reads the block the endpoints confirmed (once per height a
// round) and checks that it pays the deposit as its record says: a block
// record whose hash is real but whose transfers or outputs were forged
// confirms nothing.
func (s *Service) holds(c Candidate, v Verdict, key string) Verdict {
	b, ok := s.blocks[key]
	if !ok {
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		var err error
		start := time.Now()
		b, err = s.cfg.Nodes.BlockAt(ctx, c.Chain, c.Network, c.Height)
		s.asking += time.Since(start)
		cancel()
		if err != nil {
			s.cfg.Log.Warn("credit: cannot read a confirmed deposit's block from the nodes: it waits", "deposit", c.ID, "height", c.Height, "err", err)
			return Verdict{Outcome: Unconfirmed, Agree: v.Agree, Quorum: v.Quorum}
		}
		s.blocks[key] = b
	}
	switch {
	case !strings.EqualFold(b.Hash, c.BlockHash):
		// The chain moved between the two questions: ask again next block.
		return Verdict{Outcome: Unconfirmed, Agree: v.Agree, Quorum: v.Quorum}
	case !paid(b, &c):
		v.Outcome = Disputed
		v.Note = fmt.Sprintf("the nodes' block %s at height %d does not pay %s %s %s in %s (index %s): the deposit's block record was forged",
			c.BlockHash, c.Height, c.Address, c.Amount, c.Asset, c.TxHash, c.Index)
		return v
	}
	// Who paid, and what screening says of them, from the nodes' block:
	// a record that pays as the chain does but names other senders (or
	// leaves a Bitcoin transaction's inputs out) was forged to dodge
	// screening.
	mine, err := s.rederive(key, b, c)
	if err != nil {
		s.cfg.Log.Warn("credit: cannot screen a confirmed deposit on the nodes' block: it waits", "deposit", c.ID, "err", err)
		return Verdict{Outcome: Unconfirmed, Agree: v.Agree, Quorum: v.Quorum}
	}
	if why := differs(&c, mine); why != "" {
		v.Outcome = Disputed
		v.Note = fmt.Sprintf("the nodes' block %s at height %d pays %s as the record says, but %s: the deposit's block record was forged",
			c.BlockHash, c.Height, c.ID, why)
	}
	return v
}

// rederive is the deposit's candidate as the nodes' block gives it (nil
// when the block does not give one); the block's candidates are derived
// once a round (key: stream and height).
func (s *Service) rederive(key string, b *chain.Block, c Candidate) (*Candidate, error) {
	cands, ok := s.derived[key]
	if !ok {
		var err error
		if c.Chain == chain.BTC {
			rec := s.recent[chain.StreamKey(c.Chain, c.Network)]
			if rec == nil {
				rec = newRecentOutputs(recentBlocks)
			}
			if cands, err = BTCCandidates(s.ctx, b, s.cfg.Registry, chained{rec, s.cfg.Resolver}, s.cfg.Screen); err != nil {
				return nil, err
			}
		} else {
			cands = ETHCandidates(b, s.cfg.Registry, s.cfg.Tokens, s.cfg.Screen)
		}
		s.derived[key] = cands
	}
	for i := range cands {
		if cands[i].ID == c.ID {
			return &cands[i], nil
		}
	}
	return nil, nil
}

// differs says how the stream's candidate c and the nodes' differ in
// who paid it and why it is held ("" when they do not).
func differs(c, nodes *Candidate) string {
	if nodes == nil {
		return "the nodes' block gives no such deposit"
	}
	norm := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = strings.ToLower(x)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	switch {
	case !slices.Equal(norm(c.Senders), norm(nodes.Senders)):
		return fmt.Sprintf("its senders are %v on the chain, %v in the record", nodes.Senders, c.Senders)
	}
	hits := func(hs []Hit) []string {
		out := make([]string, len(hs))
		for i, h := range hs {
			out[i] = h.Indicator + " " + h.Address
		}
		return norm(out)
	}
	if !slices.Equal(hits(c.Hits), hits(nodes.Hits)) {
		return fmt.Sprintf("screened on the chain's senders it matches %v, the record's %v", hits(nodes.Hits), hits(c.Hits))
	}
	return ""
}

// askBudget bounds the time a round spends asking the nodes: past it,
// the deposits still to confirm wait for the stream's next block (their
// next ripening), so slow endpoints or a backlog of deposits at depth
// never hold back the round's other work — operators' decisions and the
// checkpoint — for longer than this (and one question's timeout).
const askBudget = 5 * time.Second

// spent tells whether the round's budget for asking the nodes is used
// up, counting the deposit deferred if so. It is checked before a
// deposit's first question, never between its questions.
func (s *Service) spent() bool {
	if s.asking < s.cfg.AskBudget {
		return false
	}
	s.deferred++
	s.cfg.Metrics.deferredConfirmation()
	return true
}

// confirm is the engine's Confirm (see verdict); a deposit that stays
// unconfirmed for UnconfirmedAlertAfter raises an alert, once.
func (s *Service) confirm(c Candidate, p Policy) Verdict {
	v := s.verdict(c, p)
	stream := chain.StreamKey(c.Chain, c.Network)
	if v.Outcome != Unconfirmed {
		delete(s.unconfirmed, c.ID)
		if v.Outcome == Confirmed {
			delete(s.stalledStreams, stream) // the nodes answer again
		}
		return v
	}
	w, ok := s.unconfirmed[c.ID]
	switch {
	case !ok:
		s.unconfirmed[c.ID] = stall{since: time.Now()}
	case !w.alerted && time.Since(w.since) > s.cfg.UnconfirmedAlert:
		s.unconfirmed[c.ID] = stall{since: w.since, alerted: true}
		if !s.stalledStreams[stream] {
			// One alert a stream until its nodes confirm again, not one
			// a deposit when they are down.
			s.stalledStreams[stream] = true
			s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion, ID: "deposit_unconfirmed/" + c.ID + "/" + c.BlockHash,
				Type: "deposit_unconfirmed", Severity: "warning", Chain: c.Chain, Network: c.Network, Time: time.Now().UTC(),
				Message: fmt.Sprintf("a deposit deep enough on the block stream has waited over %s for the chain's endpoints to confirm its block: they are down, behind, or the stream is ahead of the chain", s.cfg.UnconfirmedAlert),
				Details: map[string]string{"deposit": c.ID, "account": c.Account, "amount": c.Amount.String(), "block_hash": c.BlockHash,
					"height": strconv.FormatUint(c.Height, 10)}})
		}
	}
	return v
}

type stall struct {
	since   time.Time
	alerted bool
}

// verdict asks the chain's endpoints which block is at the deposit's
// height (once per height a round), after checking it is deep enough on
// their chain.
func (s *Service) verdict(c Candidate, p Policy) Verdict {
	stream := chain.StreamKey(c.Chain, c.Network)
	key := stream + "/" + strconv.FormatUint(c.Height, 10)
	_, tipped := s.tips[stream]
	_, askedAt := s.asked[key]
	if (!tipped || !askedAt) && s.spent() {
		// A deposit is confirmed whole or not started: each round moves
		// at least one on.
		return Verdict{Outcome: Unconfirmed}
	}
	tip, ok := s.tips[stream]
	if !ok {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		start := time.Now()
		head, final, err := s.cfg.Nodes.Tip(ctx, c.Chain, c.Network)
		s.asking += time.Since(start)
		cancel()
		if err != nil {
			s.nodesDown(c, err)
			return Verdict{Outcome: Unconfirmed}
		}
		tip = [2]uint64{head, final}
		s.tips[stream] = tip
	}
	if need := c.Height + p.Required(c.Amount) - 1; tip[0] < need || (p.Finalized && tip[1] < c.Height) {
		// Deep enough on the block stream, not yet on the nodes' chain.
		s.cfg.Metrics.confirmation(Unconfirmed)
		return Verdict{Outcome: Unconfirmed}
	}
	a, ok := s.asked[key]
	if !ok {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		start := time.Now()
		reports, q, err := s.cfg.Nodes.HashesAt(ctx, c.Chain, c.Network, c.Height)
		cancel()
		s.asking += time.Since(start)
		s.cfg.Metrics.asked(time.Since(start))
		if err != nil {
			s.nodesDown(c, err)
			return Verdict{Outcome: Unconfirmed}
		}
		a = askedNodes{reports, q}
		s.asked[key] = a
	}
	q := a.quorum
	if p.Quorum > 0 {
		q = p.Quorum
	}
	v := Judge(a.reports, c.BlockHash, q)
	if v.Outcome == Confirmed {
		v = s.holds(c, v, key)
	}
	s.cfg.Metrics.confirmation(v.Outcome)
	switch {
	case v.Outcome == Disputed:
		s.cfg.Log.Error("credit: the chain's nodes dispute a deposit's block: held", "deposit", c.ID, "reason", v.Reason(c.Height, c.BlockHash))
		var eps []string
		for _, r := range v.Dissent {
			eps = append(eps, r.Endpoint+"="+r.Hash)
		}
		s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion, ID: "deposit_disputed/" + c.ID + "/" + c.BlockHash, Type: "deposit_disputed",
			Severity: "critical", Chain: c.Chain, Network: c.Network, Time: time.Now().UTC(),
			Message: "the chain's nodes do not confirm a deposit's block: it is held (a lying endpoint, a forged block record, or a reorg deeper than the policy)",
			Details: map[string]string{"deposit": c.ID, "account": c.Account, "amount": c.Amount.String(), "block_hash": c.BlockHash,
				"height": strconv.FormatUint(c.Height, 10), "dissenting": strings.Join(eps, ","), "reason": v.Reason(c.Height, c.BlockHash)}})
	case v.Outcome == Unconfirmed:
		s.cfg.Log.Warn("credit: too few of the chain's nodes confirm a deposit's block yet: it waits", "deposit", c.ID,
			"reason", v.Reason(c.Height, c.BlockHash))
	case len(v.Dissent) > 0:
		s.cfg.Log.Warn("credit: confirmed by a quorum, but an endpoint reports another block", "deposit", c.ID,
			"reason", v.Reason(c.Height, c.BlockHash))
	}
	return v
}

// NewService returns a service; Run it.
func NewService(cfg ServiceConfig) (*Service, error) {
	cfg.Kafka.Topics.Fill()
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = kafka.TxCredit
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AskBudget <= 0 {
		cfg.AskBudget = askBudget
	}
	if cfg.UnconfirmedAlert <= 0 {
		cfg.UnconfirmedAlert = 10 * time.Minute
	}
	return &Service{cfg: cfg}, nil
}

// Run credits until ctx ends or the round fails (another instance fenced
// this one, or Kafka failed: restart it, and it goes on from the last
// committed round).
func (s *Service) Run(ctx context.Context) error {
	err := s.run(ctx)
	if ctx.Err() != nil {
		return nil //nolint:nilerr // stopped: whatever was under way is aborted, and redone by the next run
	}
	return err
}

func (s *Service) run(ctx context.Context) error {
	tp := s.cfg.Kafka.Topics
	inputs := []string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends, tp.Decisions}
	if err := kafka.Ensure(ctx, s.cfg.Kafka, append([]string{tp.Deposits, tp.CreditState, tp.Alerts}, inputs...)...); err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	// A round is one short transaction: the default timeout, so a crashed
	// leader's open round holds the ledger's read_committed reads back for
	// at most 40s (a new leader aborts it at once by fencing).
	out, err := kafka.NewTxWriter(s.cfg.Kafka, s.cfg.TransactionalID, tp.CreditState, 0)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	defer out.Close()
	if err := s.restore(ctx, out); err != nil {
		return err
	}
	parts, err := kafka.Partitions(ctx, s.cfg.Kafka, inputs...)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	start := map[string]map[int32]int64{}
	for t, ps := range parts {
		start[t] = map[int32]int64{}
		for _, p := range ps {
			start[t][p] = -1
			if v, ok := s.cp.Offsets[fmt.Sprintf("%s/%d", t, p)]; ok {
				start[t][p] = v
			}
		}
	}
	in, err := kafka.NewReader(s.cfg.Kafka, start)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	defer in.Close()
	for {
		// A round also runs without new input now and then: a stream
		// waiting for ClickHouse tries again, and the checkpoint moves.
		wait := time.Second
		if s.behind {
			wait = 200 * time.Millisecond
		}
		recs, err := in.Poll(ctx, wait)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("credit: %w", err)
		}
		for _, r := range recs {
			s.take(r)
		}
		events, err := s.apply(ctx)
		if err != nil {
			return err
		}
		s.gc()
		if len(events) == 0 && len(s.alerts) == 0 && (!s.moved() || time.Since(s.lastCommit) < time.Second) {
			continue
		}
		if err := s.commit(ctx, out, events); err != nil {
			return err
		}
	}
}

// restore reads the deposits topic: the engine's state and the checkpoint.
// It first fences: a transaction of this instance's id writes a marker to
// every partition, which aborts whatever an earlier instance left open and
// marks where the committed history ends, so the read below stops exactly
// there however slow the brokers are.
func (s *Service) restore(ctx context.Context, out *kafka.TxWriter) error {
	s.e = NewEngine(s.cfg.Policy)
	s.e.Retain = s.cfg.Retain
	if s.cfg.Nodes != nil {
		s.e.Confirm = s.confirm
	}
	s.alerts, s.unconfirmed, s.stalledStreams = nil, map[string]stall{}, map[string]bool{}
	s.cp = checkpoint{Offsets: map[string]int64{}, Next: map[string]uint64{}, Tips: map[string]uint64{}, Finalized: map[string]uint64{}}
	s.asm, s.decisions = kafka.NewAssembler(s.cfg.Kafka.Topics, func(hash string) bool { return s.applied[hash] }), nil
	s.asm.Transactions = true // token deposits are screened on the transaction's sender and recipient too
	s.recent, s.pruned = map[string]*recentOutputs{}, nil
	fence, err := out.Fence(ctx, s.cfg.Kafka.Topics.CreditState, markerKey, typeHeader(markerKey))
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	start := time.Now()
	// Deposit events are decoded by workers, each owning the deposits
	// whose key hashes to it (so one deposit's events stay in order).
	workers := max(1, runtime.GOMAXPROCS(0))
	shards := make([]map[string]DepositEvent, workers)
	feeds := make([]chan *kafka.Record, workers)
	var wg sync.WaitGroup
	for i := range workers {
		shards[i], feeds[i] = map[string]DepositEvent{}, make(chan *kafka.Record, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range feeds[i] {
				if r.Value == nil { // a forgotten deposit's tombstone
					delete(shards[i], string(r.Key))
					continue
				}
				var ev DepositEvent
				if json.Unmarshal(r.Value, &ev) == nil && ev.ID == string(r.Key) {
					shards[i][ev.ID] = ev
				}
			}
		}()
	}
	records := 0
	err = kafka.ReadToFence(ctx, s.cfg.Kafka, s.cfg.Kafka.Topics.CreditState, fence, func(r *kafka.Record) {
		records++
		switch string(r.Key) {
		case markerKey:
		case checkpointKey:
			var cp checkpoint
			if json.Unmarshal(r.Value, &cp) == nil {
				if cp.Finalized == nil {
					cp.Finalized = map[string]uint64{}
				}
				s.cp = cp
			}
		default:
			feeds[fnv32(r.Key)%uint32(workers)] <- r
		}
	})
	for _, f := range feeds {
		close(f)
	}
	wg.Wait()
	if err != nil {
		return err
	}
	latest := shards[0]
	for _, sh := range shards[1:] {
		maps.Copy(latest, sh)
	}
	evs := make([]DepositEvent, 0, len(latest))
	for _, ev := range latest {
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b DepositEvent) int { return cmpStr(a.ID, b.ID) })
	s.e.Restore(evs, s.cp.Tips, s.cp.Finalized)
	s.asm.Restore(s.cp.Offsets)
	s.applied = map[string]bool{}
	for _, h := range s.cp.Applied {
		s.applied[h] = true
	}
	took := time.Since(start)
	kept := 0
	for _, n := range s.e.Counts() {
		kept += n
	}
	s.pruned = append(s.pruned, s.e.TakePruned()...)
	s.publishCounts()
	s.cfg.Log.Info("credit: restored", "topic", s.cfg.Kafka.Topics.CreditState, "records", records, "deposits", len(latest), "kept", kept,
		"took", took)
	s.cfg.Metrics.restored(took)
	if s.cfg.Restored != nil {
		s.cfg.Restored(records, took)
	}
	return nil
}

// gc drops the parts of blocks no event asked for in ten minutes (a
// watcher that crashed between a block's parts and its event publishes
// the block again, under the same hash, with its event).
func (s *Service) gc() {
	for _, h := range s.asm.GC(10 * time.Minute) {
		s.cfg.Log.Warn("credit: dropping the parts of a block no event named", "block_hash", h)
	}
}

func fnv32(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// take files one input record.
func (s *Service) take(r *kafka.Record) {
	if r.Topic != s.cfg.Kafka.Topics.Decisions {
		// Records cordon does not write are skipped; the position moves on.
		_ = s.asm.Add(r, func(st string) (uint64, bool) { next, ok := s.cp.Next[st]; return next, ok })
		return
	}
	s.asm.Advance(r.Topic, r.Partition, r.Offset+1)
	var d Decision
	err := json.Unmarshal(r.Value, &d)
	if err == nil {
		err = d.Validate()
	}
	if err != nil {
		s.cfg.Log.Warn("credit: skipping an invalid decision", "offset", r.Offset, "err", err)
		s.cfg.Metrics.decision("unreadable")
		return
	}
	s.decisions = append(s.decisions, d)
}

// apply runs the queued events that can run, in seq order per stream.
func (s *Service) apply(ctx context.Context) ([]DepositEvent, error) {
	s.ctx, s.asked, s.blocks, s.derived, s.tips = ctx, map[string]askedNodes{}, map[string]*chain.Block{}, map[string][]Candidate{}, map[string][2]uint64{}
	s.asking, s.deferred = 0, 0
	defer func() {
		if s.deferred > 0 {
			s.cfg.Log.Info("credit: the round's time for asking the nodes ran out: deposits at depth wait for their stream's next block",
				"deferred", s.deferred, "asked_for", s.asking.Round(time.Millisecond))
		}
	}()
	var out []DepositEvent
	s.behind = false
	for _, d := range s.decisions {
		var evs []DepositEvent
		var err error
		if !slices.Contains(s.cfg.Operators, d.Operator) {
			err = fmt.Errorf("operator %q is not one of the configured operators (api.operators)", trunc(d.Operator))
		} else {
			evs, err = s.e.Decide(d)
		}
		if err != nil {
			// Refused (the deposit is not held, or unknown): written down
			// as an alert in the same round, so operators see it.
			s.cfg.Log.Warn("credit: decision refused", "decision", d.ID, "deposit", d.Deposit, "operator", d.Operator, "err", err)
			s.cfg.Metrics.decision("refused")
			s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion, ID: "deposit_decision_refused/" + d.ID, Type: "deposit_decision_refused",
				Severity: "warning", Time: time.Now().UTC(), Message: "an operator's decision on a deposit was refused: " + err.Error(),
				Details: map[string]string{"deposit": d.Deposit, "decision": d.ID, "action": d.Action, "operator": d.Operator}})
			continue
		}
		if len(evs) > 0 {
			s.cfg.Metrics.decision(d.Action)
		}
		out = append(out, evs...)
	}
	s.decisions = nil
	if s.retry {
		out = append(out, s.e.Ripen()...)
	}
	defer func() { s.retry = s.deferred > 0 }()
	for _, st := range s.asm.Streams() {
		next, ok := s.cp.Next[st]
		if !ok { // a new stream starts at its first event
			if next, ok = s.asm.First(st); !ok {
				continue
			}
		}
		for {
			if ev, ok := s.asm.Peek(st, next); ok && ev.Type == chain.BlockAdded {
				if tip, known := s.cp.Tips[st]; known && ev.Height != tip+1 {
					// Not the successor of the stream's tip: the watcher
					// removes blocks down to the fork before it adds any, so
					// this is a forged or replayed block record (an old real
					// block again would credit its forgotten deposits anew,
					// or, its parts dropped as applied, stall the stream).
					s.cfg.Log.Error("credit: a block record that does not follow the stream's tip: skipped", "stream", st, "seq", ev.Seq,
						"height", ev.Height, "tip", tip, "hash", ev.Hash)
					s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion, ID: fmt.Sprintf("block_out_of_order/%s/%d/%s", ev.Stream(), ev.Seq, ev.Hash),
						Type: "block_out_of_order", Severity: "critical", Chain: ev.Chain, Network: ev.Network, Time: time.Now().UTC(),
						Message: "a block record on the stream does not follow its tip (a forged or replayed record: the watcher never adds a block out of order); crediting skipped it",
						Details: map[string]string{"seq": strconv.FormatUint(ev.Seq, 10), "height": strconv.FormatUint(ev.Height, 10), "block_hash": ev.Hash}})
					s.asm.Done(st, next)
					next++
					s.cp.Next[st] = next
					continue
				}
			}
			ev, blk, ok := s.asm.Ready(st, next)
			if !ok {
				break
			}
			if ev.Type == chain.BlockRemoved {
				out = append(out, s.e.Removed(ev)...)
				s.cp.Tips[st] = ev.Height - min(ev.Height, 1)
				// The block may come back (a reorg back to its branch):
				// its parts, published again then, must be taken.
				if s.applied[ev.Hash] {
					delete(s.applied, ev.Hash)
					s.cp.Applied = slices.DeleteFunc(s.cp.Applied, func(h string) bool { return h == ev.Hash })
				}
			} else {
				cands, err := s.candidates(ctx, blk, ev.Seq)
				if errors.Is(err, errBehind) {
					s.behind = true
					// The sender data is not in ClickHouse yet: this stream
					// waits (the event stays queued), the others go on.
					if time.Since(s.behindWarned) > time.Minute {
						s.behindWarned = time.Now()
						s.cfg.Log.Warn("credit: waiting for ClickHouse to load the blocks before this one (is the loader running?)",
							"stream", st, "seq", ev.Seq)
					}
					break
				}
				if err != nil {
					return nil, err
				}
				out = append(out, s.e.Added(ev, cands)...)
				s.cp.Tips[st] = ev.Height
				s.cp.Finalized[st] = max(s.cp.Finalized[st], ev.Finalized)
				s.applied[ev.Hash] = true
				s.cp.Applied = append(s.cp.Applied, ev.Hash)
				if len(s.cp.Applied) > maxApplied {
					delete(s.applied, s.cp.Applied[0])
					s.cp.Applied = s.cp.Applied[1:]
				}
			}
			s.asm.Done(st, next)
			next++
			s.cp.Next[st] = next
		}
	}
	return out, nil
}

// errBehind: the sender resolver's data does not reach the block yet.
var errBehind = errors.New("sender data not loaded yet")

// recentBlocks is how many Bitcoin blocks' outputs the service keeps to
// resolve senders itself (a day of mainnet blocks).
const recentBlocks = 144

func (s *Service) candidates(ctx context.Context, b *chain.Block, seq uint64) ([]Candidate, error) {
	if b.Chain != chain.BTC {
		return ETHCandidates(b, s.cfg.Registry, s.cfg.Tokens, s.cfg.Screen), nil
	}
	st := chain.StreamKey(b.Chain, b.Network)
	rec := s.recent[st]
	if rec == nil {
		rec = newRecentOutputs(recentBlocks)
		s.recent[st] = rec
	}
	if lt, ok := s.cfg.Resolver.(LoadTracker); ok && len(rec.blocks) < recentBlocks && seq > 1 {
		// Right after a start the recent outputs are few: the spent
		// outputs of this block may be in the blocks just before it, so
		// ClickHouse must hold those before it can answer.
		loaded, err := lt.Loaded(ctx, b.Chain, b.Network)
		if err != nil {
			return nil, err
		}
		if loaded < seq-1 {
			return nil, errBehind
		}
	}
	rec.add(b) // a deposit may spend an output of its own block
	cands, err := BTCCandidates(ctx, b, s.cfg.Registry, chained{rec, s.cfg.Resolver}, s.cfg.Screen)
	for _, c := range cands {
		if len(c.Conflicts) > 0 {
			s.cfg.Log.Error("credit: ClickHouse holds conflicting copies of an output a deposit spends: held", "deposit", c.ID, "conflicts", c.Conflicts)
			s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion, ID: "clickhouse_conflict/" + c.ID + "/" + c.BlockHash, Type: "clickhouse_conflict",
				Severity: "critical", Chain: c.Chain, Network: c.Network, Time: time.Now().UTC(),
				Message: "ClickHouse holds copies of an output a deposit spends that disagree (a tampered or corrupted store): the deposit is held; run cordon reconcile",
				Details: map[string]string{"deposit": c.ID, "account": c.Account, "block_hash": c.BlockHash, "conflicts": strings.Join(c.Conflicts, "; ")}})
		}
	}
	return cands, err
}

// moved tells whether the read positions passed the checkpoint.
func (s *Service) moved() bool {
	for k, v := range s.resume() {
		if s.cp.Offsets[k] != v {
			return true
		}
	}
	return false
}

// resume is where a restart must read on (see kafka.Assembler.Resume).
func (s *Service) resume() map[string]int64 { return s.asm.Resume() }

// commit writes a round's events and the checkpoint in one transaction.
func (s *Service) commit(ctx context.Context, out *kafka.TxWriter, events []DepositEvent) error {
	start := time.Now()
	s.cp.Offsets = s.resume()
	var recs []kafka.Record
	for i := range events {
		v, err := json.Marshal(&events[i])
		if err != nil {
			return err
		}
		// The ledger's record, and the service's own copy in its state.
		recs = append(recs, kafka.Record{Topic: s.cfg.Kafka.Topics.Deposits, Key: []byte(events[i].ID), Value: v, Headers: depositHeaders},
			kafka.Record{Key: []byte(events[i].ID), Value: v, Headers: depositHeaders})
		if events[i].Status == StatusReverted {
			a := chain.Alert{V: chain.SchemaVersion, ID: "deposit_reverted/" + events[i].ID + "/" + fmt.Sprint(events[i].Credits),
				Type: "deposit_reverted", Severity: "critical", Chain: events[i].Chain, Network: events[i].Network, Time: time.Now().UTC(),
				Message: "a credited deposit's block left the chain: the confirmation policy was too shallow",
				Details: map[string]string{"deposit": events[i].ID, "account": events[i].Account, "amount": events[i].Amount,
					"block_hash": events[i].BlockHash}}
			av, _ := json.Marshal(&a)
			recs = append(recs, kafka.Record{Topic: s.cfg.Kafka.Topics.Alerts, Key: []byte(a.ID), Value: av})
		}
	}
	for i := range s.alerts {
		av, _ := json.Marshal(&s.alerts[i])
		recs = append(recs, kafka.Record{Topic: s.cfg.Kafka.Topics.Alerts, Key: []byte(s.alerts[i].ID), Value: av})
	}
	// Forgotten deposits leave the state (compaction drops them).
	s.pruned = append(s.pruned, s.e.TakePruned()...)
	for _, id := range s.pruned {
		recs = append(recs, kafka.Record{Key: []byte(id), Headers: typeHeader("forgotten")})
	}
	cp, _ := json.Marshal(&s.cp)
	recs = append(recs, kafka.Record{Key: []byte(checkpointKey), Value: cp, Headers: typeHeader(checkpointKey)})
	if err := out.Commit(ctx, recs); err != nil {
		return fmt.Errorf("credit: commit the round: %w", err)
	}
	s.alerts, s.pruned = nil, nil
	s.cfg.Metrics.committed(events, time.Since(start))
	if s.cfg.Committed != nil {
		s.cfg.Committed(events)
	}
	s.lastCommit = time.Now()
	s.publishCounts()
	return nil
}

// publishCounts makes the engine's counts by status what Counts and the
// metrics say.
func (s *Service) publishCounts() {
	c := s.e.Counts()
	s.cfg.Metrics.setCounts(c)
	s.mu.Lock()
	s.counts = c
	s.mu.Unlock()
}

// Records of the deposits topic say what they are in the cordon-type
// header: "deposit" (the ledger's records), "checkpoint" and
// "restore-marker" (the service's own; a ledger skips them).
var depositHeaders = append(typeHeader("deposit"),
	kafka.Header{Key: kafka.HeaderSchema, Value: []byte(fmt.Sprintf("cordon.deposit.v%d", chain.SchemaVersion))})

func typeHeader(t string) []kafka.Header {
	return []kafka.Header{{Key: kafka.HeaderType, Value: []byte(t)}}
}

// markerKey is the key of the restore markers in the deposits topic.
const markerKey = "restore-marker"

// Latest reads the deposits topic's committed records (a view as of the
// call: read until every partition reached the offset that was its end
// when the read began, or nothing more arrived for a second) and returns
// the newest event of each deposit.
func Latest(ctx context.Context, kc kafka.Config) (map[string]DepositEvent, error) {
	kc.Topics.Fill()
	out := map[string]DepositEvent{}
	err := kafka.ReadLog(ctx, kc, kc.Topics.Deposits, kafka.LogOptions{ClientID: "deposits"}, func(r *kafka.Record) error {
		var ev DepositEvent
		if json.Unmarshal(r.Value, &ev) == nil && ev.ID == string(r.Key) {
			out[ev.ID] = ev
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("credit: %w", err)
	}
	return out, nil
}
