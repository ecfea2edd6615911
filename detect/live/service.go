package live

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/detect/contain"
	"github.com/cordonhq/cordon/detect/incident"
	"github.com/cordonhq/cordon/detect/notify"
	"github.com/cordonhq/cordon/detect/rules"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
)

// Config is detection's config section (key `detect`); detection runs in
// the instances whose roles name it (role detect).
type Config struct {
	Rules rules.Config `yaml:"rules"`
	// Notify is where the alerts go (webhooks, silences).
	Notify notify.Config `yaml:"notify"`
	// Contain is what alerts set off (the breaker, urgent listings).
	Contain contain.Config `yaml:"contain"`
	// Incidents is how alerts are grouped into incidents.
	Incidents incident.Config `yaml:"incidents"`
}

// Validate adds every bad key under prefix to p.
func (c Config) Validate(p *iconfig.Problems, prefix string) {
	c.Rules.Check(p, prefix+".rules")
	c.Notify.Validate(p, prefix+".notify")
	c.Contain.Validate(p, prefix+".contain")
	c.Incidents.Validate(p, prefix+".incidents")
}

// ServiceConfig is what a Service runs with.
type ServiceConfig struct {
	Kafka    kafka.Config
	Rules    rules.Config
	Registry rules.Registry
	Screener rules.Screener
	// Contracts reads the contract wallets' state (rules'
	// contract_wallets); without it, their rule is off.
	Contracts rules.ContractReader
	// TransactionalID defaults to kafka.TxDetect.
	TransactionalID string
	Log             *slog.Logger
	Metrics         *Metrics
	// Committed is called after each commit with the alerts it wrote
	// (new ones and retractions), in order.
	Committed func([]chain.Alert)
	// Contain, when set, carries out the containment tasks the alerts
	// set off (its Config's actions); the tasks are committed with the
	// alerts and their outcomes, as containment records, with a later
	// round.
	Contain *contain.Runner
	// Incidents groups the alerts into incidents, whose events are
	// committed with them to the incidents topic.
	Incidents incident.Config
}

// checkpointKey is the key of the checkpoint record in the state topic.
const checkpointKey = "checkpoint"

// markerKey is the key of the restore markers in the state topic.
const markerKey = "restore-marker"

// taskPrefix keys the containment tasks not yet carried out.
const taskPrefix = "task/"

// checkpoint is how far a committed round got.
type checkpoint struct {
	// Offsets are where to read on, by "topic/partition".
	Offsets map[string]int64 `json:"offsets"`
	// Next is the next block event seq to apply by stream, Tips the
	// stream tips.
	Next map[string]uint64 `json:"next"`
	Tips map[string]uint64 `json:"tips"`
	// Applied are the hashes of the blocks applied last: their parts,
	// read again after a restart, are dropped.
	Applied []string `json:"applied"`
}

// maxApplied bounds Applied. The checkpoint is written with every round,
// so it is kept short: a block leaves Applied once the resume positions
// are past all its parts (none can be read again), and blocks restored
// into it leave after maxApplied more blocks. A part read again of a block
// no longer in it is only held until the assembler's GC drops it: it
// raises nothing (the block's event is behind Next, never applied twice).
const maxApplied = 256

// maxRound and maxRoundBlocks bound a round while detection catches up:
// its alerts wait at most this long for their commit.
const (
	maxRound       = time.Second
	maxRoundBlocks = 1000
)

// Service runs the rules on the block stream.
type Service struct {
	cfg     ServiceConfig
	e       *rules.Engine
	cp      checkpoint
	asm     *kafka.Assembler
	applied map[string]bool
	// ends are the applied blocks' kafka.Assembler.PartsEnd (none for
	// those restored); sinceRestore counts the blocks applied since.
	ends         map[string]map[string]int64
	sinceRestore int
	// pending counts the blocks applied since the last commit.
	pending int
	alerts  []chain.Alert
	last    time.Time
	// g groups the alerts into incidents; incPos are the read positions
	// in the incidents topic (operators' events), by kafka.Position.
	g      *incident.Grouper
	incPos map[string]int64

	// tasks are the containment tasks committed and not yet done; the
	// worker takes them from work (wake tells it there is some) and puts
	// what it did in done; neither side ever blocks the other.
	tasks    map[string]contain.Task
	finished []contain.Outcome
	wmu      sync.Mutex
	work     []contain.Task
	done     []contain.Outcome
	wake     chan struct{}

	mu    sync.Mutex
	stats Stats
}

// Stats are what detection did since the start.
type Stats struct {
	Blocks    int
	Alerts    int
	Retracted int
	Wallets   int
	// BySeverity counts the alerts raised (not retractions).
	BySeverity map[string]int
	// Contained counts the containment tasks carried out, NotTaken those
	// with an action not taken (its target not configured).
	Contained, NotTaken int
	// Incidents are the open incidents.
	Incidents int
}

// NewService returns a service; its rules must have passed Validate.
func NewService(cfg ServiceConfig) (*Service, error) {
	cfg.Kafka.Topics.Fill()
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = kafka.TxDetect
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := rules.New(cfg.Rules, cfg.Registry, cfg.Screener); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, stats: Stats{BySeverity: map[string]int{}}}, nil
}

// Stats returns a copy of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.BySeverity = map[string]int{}
	for k, v := range s.stats.BySeverity {
		st.BySeverity[k] = v
	}
	return st
}

// Run detects until ctx ends or Kafka fails (another instance fenced this
// one: restart it, and it goes on from the last commit).
func (s *Service) Run(ctx context.Context) error {
	err := s.run(ctx)
	if ctx.Err() != nil {
		return nil //nolint:nilerr // stopped: the open round is aborted and redone by the next run
	}
	return err
}

func (s *Service) run(ctx context.Context) error {
	tp := s.cfg.Kafka.Topics
	inputs := []string{tp.Blocks, tp.Transactions, tp.Transfers, tp.Outputs, tp.Spends}
	if err := kafka.Ensure(ctx, s.cfg.Kafka, append([]string{tp.DetectState, tp.Alerts, tp.Incidents}, inputs...)...); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	out, err := kafka.NewTxWriter(s.cfg.Kafka, s.cfg.TransactionalID, tp.DetectState, 0)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	defer out.Close()
	if err := s.restore(ctx, out); err != nil {
		return err
	}
	if s.cfg.Contain != nil {
		// The worker ends with the run: a task it was carrying out is
		// carried out again by the next run (found, not doubled).
		var wg sync.WaitGroup
		defer wg.Wait()
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		s.wmu.Lock()
		s.work, s.done, s.wake = nil, nil, make(chan struct{}, 1)
		for _, id := range slices.Sorted(maps.Keys(s.tasks)) {
			s.work = append(s.work, s.tasks[id])
		}
		s.wmu.Unlock()
		s.signal()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(wctx)
		}()
	}
	// The incidents topic is read too: operators' events (an incident
	// opened with its addresses, closed) change how alerts are grouped.
	parts, err := kafka.Partitions(ctx, s.cfg.Kafka, append(inputs, tp.Incidents)...)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	start := map[string]map[int32]int64{}
	for t, ps := range parts {
		start[t] = map[int32]int64{}
		for _, p := range ps {
			start[t][p] = -1
			if v, ok := s.cp.Offsets[kafka.Position(t, int(p))]; ok {
				start[t][p] = v
			}
		}
	}
	in, err := kafka.NewReader(s.cfg.Kafka, start)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	defer in.Close()
	for {
		recs, err := in.Poll(ctx, time.Second)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		for _, r := range recs {
			if r.Topic == tp.Incidents {
				s.incidentEvent(r)
				continue
			}
			if err := s.asm.Add(r, func(st string) (uint64, bool) { n, ok := s.cp.Next[st]; return n, ok }); err != nil {
				s.cfg.Log.Warn("detect: an unreadable block record: skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			}
		}
		s.pending += s.apply()
		for _, h := range s.asm.GC(10 * time.Minute) {
			s.cfg.Log.Warn("detect: dropping the parts of a block no event named", "block_hash", h)
		}
		if in.Behind() && s.pending < maxRoundBlocks && time.Since(s.last) < maxRound {
			// Catching up (a backfill, a restart behind): one round takes
			// more blocks, so the state is encoded and committed once for
			// them all. Live, each poll is a round of its own.
			continue
		}
		blocks := s.pending
		s.pending = 0
		s.collect()
		state := s.e.TakeState()
		if blocks == 0 && len(s.alerts) == 0 && len(state) == 0 && len(s.finished) == 0 && !s.g.Changed() && (!s.moved() || time.Since(s.last) < time.Second) {
			continue
		}
		if err := s.commit(ctx, out, state, blocks); err != nil {
			return err
		}
	}
}

// restore fences (aborting what an earlier instance left open and
// marking where the committed state ends) and reads the state topic to
// that mark.
func (s *Service) restore(ctx context.Context, out *kafka.TxWriter) error {
	e, err := rules.New(s.cfg.Rules, s.cfg.Registry, s.cfg.Screener)
	if err != nil {
		return err
	}
	if s.cfg.Contracts != nil {
		e.SetContracts(s.cfg.Contracts)
	}
	s.e, s.alerts, s.tasks, s.finished, s.pending = e, nil, map[string]contain.Task{}, nil, 0
	s.g, s.incPos = incident.NewGrouper(s.cfg.Incidents), map[string]int64{}
	incidents := map[string][]byte{}
	s.cp = checkpoint{Offsets: map[string]int64{}, Next: map[string]uint64{}, Tips: map[string]uint64{}}
	s.asm = kafka.NewAssembler(s.cfg.Kafka.Topics, func(hash string) bool { return s.applied[hash] })
	s.asm.Transactions = true
	fence, err := out.Fence(ctx, s.cfg.Kafka.Topics.DetectState, markerKey, typeHeader(markerKey))
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	began := time.Now()
	state := map[string][]byte{}
	records := 0
	var bad error
	err = kafka.ReadToFence(ctx, s.cfg.Kafka, s.cfg.Kafka.Topics.DetectState, fence, func(r *kafka.Record) {
		records++
		switch k := string(r.Key); k {
		case markerKey:
		case checkpointKey:
			var cp checkpoint
			if err := json.Unmarshal(r.Value, &cp); err != nil {
				bad = fmt.Errorf("detect: the checkpoint at %d/%d: %w", r.Partition, r.Offset, err)
				return
			}
			for _, m := range []*map[string]uint64{&cp.Next, &cp.Tips} {
				if *m == nil {
					*m = map[string]uint64{}
				}
			}
			if cp.Offsets == nil {
				cp.Offsets = map[string]int64{}
			}
			s.cp = cp
		default:
			if strings.HasPrefix(k, incident.StatePrefix) {
				if r.Value == nil {
					delete(incidents, k)
				} else {
					incidents[k] = r.Value
				}
				return
			}
			if strings.HasPrefix(k, taskPrefix) {
				if r.Value == nil {
					delete(s.tasks, k)
					return
				}
				var t contain.Task
				if err := json.Unmarshal(r.Value, &t); err != nil {
					bad = fmt.Errorf("detect: the containment task at %d/%d: %w", r.Partition, r.Offset, err)
					return
				}
				s.tasks[k] = t
				return
			}
			if r.Value == nil {
				delete(state, k)
			} else {
				state[k] = r.Value
			}
		}
	})
	if err != nil {
		return fmt.Errorf("detect: restore: %w", err)
	}
	if bad != nil {
		// Signed by detection and unreadable: starting from nothing would
		// raise every alert of the retained stream again.
		return bad
	}
	if err := s.e.Restore(state); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(incidents)) {
		if err := s.g.Restore(incidents[k]); err != nil {
			return fmt.Errorf("detect: restore %s: %w", k, err)
		}
	}
	for k, v := range s.cp.Offsets {
		if t, _, ok := strings.Cut(k, "/"); ok && t == s.cfg.Kafka.Topics.Incidents {
			s.incPos[k] = v
		}
	}
	s.asm.Restore(s.cp.Offsets)
	s.applied, s.ends, s.sinceRestore = map[string]bool{}, map[string]map[string]int64{}, 0
	for _, h := range s.cp.Applied {
		s.applied[h] = true
	}
	s.cfg.Log.Info("detect: restored", "topic", s.cfg.Kafka.Topics.DetectState, "records", records, "wallets", s.e.Wallets(),
		"containment_tasks", len(s.tasks), "took", time.Since(began))
	s.cfg.Metrics.restored(time.Since(began))
	s.mu.Lock()
	s.stats.Wallets = s.e.Wallets()
	s.stats.Incidents = len(s.g.Open())
	s.mu.Unlock()
	return nil
}

// incidentEvent takes a record of the incidents topic: an operator's
// event changes the grouping (detection's own are already applied).
func (s *Service) incidentEvent(r *kafka.Record) {
	s.incPos[kafka.Position(r.Topic, r.Partition)] = r.Offset + 1
	var e incident.Event
	if err := json.Unmarshal(r.Value, &e); err != nil {
		s.cfg.Log.Warn("detect: an unreadable incident event: skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	if err := e.Check(); err != nil {
		s.cfg.Log.Warn("detect: a bad incident event: skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	s.g.Apply(e)
}

// apply runs the queued events that can run, in seq order per stream,
// and returns how many it applied.
func (s *Service) apply() int {
	n := 0
	for _, st := range s.asm.Streams() {
		next, ok := s.cp.Next[st]
		if !ok {
			if next, ok = s.asm.First(st); !ok {
				continue
			}
		}
		for {
			if ev, ok := s.asm.Peek(st, next); ok && ev.Type == chain.BlockAdded {
				if tip, known := s.cp.Tips[st]; known && ev.Height != tip+1 {
					// The watcher removes blocks down to the fork before it
					// adds any: a block that does not follow the tip is a
					// forged or replayed record.
					s.cfg.Log.Error("detect: a block record that does not follow the stream's tip: skipped", "stream", st, "seq", ev.Seq,
						"height", ev.Height, "tip", tip, "block_hash", ev.Hash)
					s.alerts = append(s.alerts, chain.Alert{V: chain.SchemaVersion,
						ID:   fmt.Sprintf("detect_block_out_of_order/%s/%d/%s", ev.Stream(), ev.Seq, ev.Hash),
						Type: "detect_block_out_of_order", Severity: rules.SeverityCritical, Chain: ev.Chain, Network: ev.Network,
						Time:    time.Unix(ev.Time, 0).UTC(),
						Message: "a block record on the stream does not follow its tip (a forged or replayed record); detection skipped it",
						Height:  ev.Height, BlockHash: ev.Hash, Details: map[string]string{"seq": strconv.FormatUint(ev.Seq, 10)}})
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
			s.alerts = append(s.alerts, s.e.Apply(chain.Update{Event: ev, Block: blk})...)
			if ev.Type == chain.BlockRemoved {
				s.cp.Tips[st] = ev.Height - min(ev.Height, 1)
				if s.applied[ev.Hash] {
					delete(s.applied, ev.Hash)
					s.cp.Applied = slices.DeleteFunc(s.cp.Applied, func(h string) bool { return h == ev.Hash })
				}
			} else {
				s.cp.Tips[st] = ev.Height
				s.applied[ev.Hash] = true
				s.cp.Applied = append(s.cp.Applied, ev.Hash)
				s.ends[ev.Hash] = s.asm.PartsEnd(ev.Hash)
				s.sinceRestore++
				s.cfg.Metrics.block(ev.Chain)
			}
			s.asm.Done(st, next)
			next++
			s.cp.Next[st] = next
			n++
		}
	}
	return n
}

func (s *Service) moved() bool {
	for k, v := range s.asm.Resume() {
		if s.cp.Offsets[k] != v {
			return true
		}
	}
	for k, v := range s.incPos {
		if s.cp.Offsets[k] != v {
			return true
		}
	}
	return false
}

// commit writes a round's alerts, the changed state and the checkpoint
// in one transaction.
func (s *Service) commit(ctx context.Context, out *kafka.TxWriter, state []rules.Record, blocks int) error {
	began := time.Now()
	s.cp.Offsets = s.asm.Resume()
	maps.Copy(s.cp.Offsets, s.incPos)
	s.pruneApplied()
	// What containment finished: its records join the round's alerts,
	// its tasks leave the state.
	finished := s.finished
	for _, o := range finished {
		s.alerts = append(s.alerts, contain.Record(o))
	}
	var planned []contain.Task
	if s.cfg.Contain != nil {
		planned = contain.Plan(s.cfg.Contain.Config, s.alerts)
	}
	events := make([]incident.Event, 0, len(s.alerts))
	for _, a := range s.alerts {
		events = append(events, s.g.Alert(a)...)
	}
	incState, err := s.g.TakeState()
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	recs := make([]kafka.Record, 0, len(s.alerts)+len(state)+len(planned)+len(finished)+len(events)+len(incState)+1)
	for i := range s.alerts {
		v, err := json.Marshal(&s.alerts[i])
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		recs = append(recs, kafka.Record{Topic: s.cfg.Kafka.Topics.Alerts, Key: []byte(s.alerts[i].ID), Value: v, Headers: alertHeaders})
	}
	for i := range events {
		v, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		recs = append(recs, kafka.Record{Topic: s.cfg.Kafka.Topics.Incidents, Key: []byte(events[i].Incident), Value: v, Headers: incidentHeaders})
	}
	for _, r := range incState {
		recs = append(recs, kafka.Record{Key: []byte(r.Key), Value: r.Value, Headers: typeHeader("state")})
	}
	for _, r := range state {
		recs = append(recs, kafka.Record{Key: []byte(r.Key), Value: r.Value, Headers: typeHeader("state")})
	}
	for _, o := range finished {
		recs = append(recs, kafka.Record{Key: []byte(taskPrefix + o.Task.ID), Headers: typeHeader("task")})
	}
	for i := range planned {
		v, err := json.Marshal(&planned[i])
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		recs = append(recs, kafka.Record{Key: []byte(taskPrefix + planned[i].ID), Value: v, Headers: typeHeader("task")})
	}
	cp, err := json.Marshal(&s.cp)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	recs = append(recs, kafka.Record{Key: []byte(checkpointKey), Value: cp, Headers: typeHeader(checkpointKey)})
	if err := out.Commit(ctx, recs); err != nil {
		return fmt.Errorf("detect: commit the round: %w", err)
	}
	alerts := s.alerts
	s.alerts, s.last, s.finished = nil, time.Now(), nil
	for _, o := range finished {
		delete(s.tasks, taskPrefix+o.Task.ID)
	}
	for _, t := range planned {
		if _, ok := s.tasks[taskPrefix+t.ID]; ok {
			continue // raised again after a restart: already queued
		}
		s.tasks[taskPrefix+t.ID] = t
		s.wmu.Lock()
		s.work = append(s.work, t)
		s.wmu.Unlock()
		s.signal()
	}
	s.cfg.Metrics.committed(alerts, time.Since(began), s.e.CustomErrors)
	s.mu.Lock()
	s.stats.Blocks += blocks
	s.stats.Wallets = s.e.Wallets()
	s.stats.Incidents = len(s.g.Open())
	for _, o := range finished {
		s.stats.Contained++
		if len(o.NotTaken) > 0 {
			s.stats.NotTaken++
		}
	}
	for _, a := range alerts {
		if a.Type == "containment" {
			continue
		}
		if a.Retracted {
			s.stats.Retracted++
		} else {
			s.stats.Alerts++
			s.stats.BySeverity[a.Severity]++
		}
	}
	s.mu.Unlock()
	for _, e := range events {
		if e.Type == incident.Opened {
			s.cfg.Log.Warn("detect: incident opened: "+e.Title, "incident", e.Incident, "severity", e.Severity, "cause", e.Text)
		}
	}
	s.cfg.Metrics.incidents(events)
	for _, a := range alerts {
		lvl := slog.LevelWarn
		if a.Retracted {
			lvl = slog.LevelInfo
		}
		s.cfg.Log.Log(ctx, lvl, "detect: "+a.Message, "alert", a.ID, "rule", a.Rule, "severity", a.Severity, "retracted", a.Retracted,
			"chain", a.Chain, "height", a.Height, "block_hash", a.BlockHash, "tx", a.TxHash)
	}
	if s.cfg.Committed != nil && len(alerts) > 0 {
		s.cfg.Committed(alerts)
	}
	return nil
}

// pruneApplied keeps in Applied the blocks whose parts may still be read
// again from the resume positions.
func (s *Service) pruneApplied() {
	keep := s.cp.Applied[:0]
	for _, h := range s.cp.Applied {
		ends, known := s.ends[h]
		again := !known && s.sinceRestore < maxApplied
		for k, end := range ends {
			if s.cp.Offsets[k] < end {
				again = true
				break
			}
		}
		if again {
			keep = append(keep, h)
		} else {
			delete(s.applied, h)
			delete(s.ends, h)
		}
	}
	if n := len(keep) - maxApplied; n > 0 {
		for _, h := range keep[:n] {
			delete(s.applied, h)
			delete(s.ends, h)
		}
		keep = keep[n:]
	}
	s.cp.Applied = keep
}

// collect takes the outcomes the worker brought back, for the next commit.
func (s *Service) collect() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.finished = append(s.finished, s.done...)
	s.done = nil
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// worker carries out the containment tasks one at a time, each until it
// has an outcome (a target that fails is tried again with backoff; one
// that refuses is an outcome, the action not taken) or ctx ends.
func (s *Service) worker(ctx context.Context) {
	for {
		s.wmu.Lock()
		var t contain.Task
		ok := len(s.work) > 0
		if ok {
			t, s.work = s.work[0], s.work[1:]
		}
		s.wmu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		for attempt := 1; ; attempt++ {
			o, err := s.cfg.Contain.Run(ctx, t)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				lvl := slog.LevelWarn
				if len(o.NotTaken) > 0 {
					lvl = slog.LevelError
				}
				s.cfg.Log.Log(ctx, lvl, "detect: containment", "task", t.ID, "alert", t.Alert.ID, "taken", o.Taken, "not_taken", o.NotTaken)
				s.wmu.Lock()
				s.done = append(s.done, o)
				s.wmu.Unlock()
				break
			}
			wait := min(time.Duration(attempt)*time.Second, 30*time.Second)
			s.cfg.Log.Error("detect: containment failed; retrying", "task", t.ID, "alert", t.Alert.ID, "attempt", attempt, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

var alertHeaders = append(typeHeader("alert"),
	kafka.Header{Key: kafka.HeaderSchema, Value: []byte(fmt.Sprintf("cordon.alert.v%d", chain.SchemaVersion))})

var incidentHeaders = append(typeHeader("incident"),
	kafka.Header{Key: kafka.HeaderSchema, Value: []byte(fmt.Sprintf("cordon.incident.v%d", chain.SchemaVersion))})

func typeHeader(t string) []kafka.Header {
	return []kafka.Header{{Key: kafka.HeaderType, Value: []byte(t)}}
}
