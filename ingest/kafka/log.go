package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LogOptions tune ReadLog.
type LogOptions struct {
	// Follow keeps reading after catching up, until ctx ends; without it
	// ReadLog returns once caught up.
	Follow bool
	// Caught is called after every poll once the reader has caught up:
	// it has read what the topic held when ReadLog started (the first
	// time), and each later time nothing more was waiting.
	Caught func()
	// ClientID is the suffix of the client id (which reader this is).
	ClientID string
	// Unverified hands fn the records of a signed topic without checking
	// their record signatures (Config.Auth is not needed then). Only for a
	// reader that proves the records another way and must see a forged
	// one to name it: the audit log's verifier, which checks the hash
	// chain and its signed checkpoints.
	Unverified bool
	// Settle, when set, waits up to that long for the transactions open
	// when the read began to end, so that the read holds every record
	// written before it began: what an operator wrote with one command
	// is in what the next command reads, even while a transactional
	// writer (detection's rounds) holds the topic's committed end back.
	Settle time.Duration
}

// ReadLog reads a compacted or transactional topic — the indicator
// topic, the deposits topic — from its start with isolation
// read_committed, and hands fn every record in partition order.
//
// Caught up means exactly: every partition delivered its record just
// before the end offset listed when the read began. The reader keeps
// Kafka's control records (transaction markers, which it never hands to
// fn), so that last record always arrives, whether it is data or the
// marker after it; aborted records are left out by read_committed. No
// timer decides it: a slow first fetch never makes a partial read look
// complete (screening on a partial indicator index would let a flagged
// deposit through).
func ReadLog(ctx context.Context, cfg Config, topic string, o LogOptions, fn func(*Record) error) error {
	admin, err := newFranz(cfg, "-"+o.ClientID+"-admin")
	if err != nil {
		return err
	}
	adm := kadm.NewClient(admin)
	ends, err := settled(ctx, adm, topic, o.Settle)
	var starts kadm.ListedOffsets
	if err == nil {
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
	}
	admin.Close()
	if err != nil {
		return fmt.Errorf("read %s: list offsets: %w", topic, err)
	}
	behind := map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) {
		start, ok := starts.Lookup(topic, l.Partition)
		if l.Err == nil && l.Offset > 0 && (!ok || start.Offset < l.Offset) {
			behind[l.Partition] = l.Offset
		}
	})
	cl, err := newFranz(cfg, "-"+o.ClientID, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := newReplays()
	if cfg.Topics.EventLog(topic) {
		seen = nil
	}
	for {
		if len(behind) == 0 {
			if o.Caught != nil {
				o.Caught()
			}
			if !o.Follow {
				return nil
			}
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			if o.Follow {
				return nil
			}
			return ctx.Err()
		}
		if err := fetchErr(fetches, true); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fetches.EachRecord(func(kr *kgo.Record) {
			if ferr != nil {
				return
			}
			if end, ok := behind[kr.Partition]; ok && kr.Offset+1 >= end {
				delete(behind, kr.Partition)
			}
			if kr.Attrs.IsControl() {
				return
			}
			if rec := fromFranz(kr); o.Unverified || cfg.admit(topic, rec, seen) {
				ferr = fn(rec)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
}

// ConsumeGroup reads topic with isolation read_committed as a member of
// group, in batches: fn gets each batch, and the batch's offsets are
// committed only once fn returned nil; fn is called again with the same
// batch until it does (backing off up to 30s), or ctx ends. For copies of
// a topic elsewhere (the ClickHouse indicators table).
func ConsumeGroup(ctx context.Context, cfg Config, topic, group string, fn func([]*Record) error) error {
	cl, err := newFranz(cfg, "-"+group, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollRecords(ctx, 10_000)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetchErr(fetches, false); err != nil {
			return fmt.Errorf("consume %s: %w", topic, err)
		}
		krs := fetches.Records()
		if len(krs) == 0 {
			continue
		}
		batch := make([]*Record, 0, len(krs))
		for _, kr := range krs {
			if rec := fromFranz(kr); cfg.admit(topic, rec, nil) {
				batch = append(batch, rec)
			}
		}
		for attempt := 0; ; attempt++ {
			if fn(batch) == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 30*time.Second)):
			}
		}
		if err := cl.CommitRecords(ctx, krs...); err != nil && ctx.Err() == nil {
			return fmt.Errorf("commit %s: %w", topic, err)
		}
	}
}

// settled lists topic's committed end offsets; with wait, it first lists
// the high watermarks and lists the committed ends again until they
// reach them, or wait has passed.
func settled(ctx context.Context, adm *kadm.Client, topic string, wait time.Duration) (kadm.ListedOffsets, error) {
	var high kadm.ListedOffsets
	if wait > 0 {
		var err error
		if high, err = adm.ListEndOffsets(ctx, topic); err == nil {
			err = high.Error()
		}
		if err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(wait)
	for {
		ends, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil || wait <= 0 {
			return ends, err
		}
		caught := true
		high.Each(func(h kadm.ListedOffset) {
			if e, ok := ends.Lookup(topic, h.Partition); !ok || e.Offset < h.Offset {
				caught = false
			}
		})
		if caught || time.Now().After(deadline) {
			return ends, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
