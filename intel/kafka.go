package intel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// The indicator topic is written in Kafka transactions (an import is
// visible whole or not at all) and read with isolation read_committed.
// kafka-go has neither, so this topic uses franz-go.

// Topic is the indicator topic of a Kafka cluster.
type Topic struct {
	bad   atomic.Int64
	cfg   kafka.Config
	name  string
	opts  []kgo.Opt
	admin *kadm.Client
	cl    *kgo.Client
}

// OpenTopic connects to the brokers of cfg for the topic cfg.Topics.Intel.
func OpenTopic(cfg kafka.Config) (*Topic, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("intel: no Kafka brokers configured")
	}
	name := cfg.Topics.Intel
	if name == "" {
		name = kafka.DefaultTopics().Intel
	}
	opts, err := kafka.FranzOpts(cfg, "-intel")
	if err != nil {
		return nil, fmt.Errorf("intel: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("intel: kafka: %w", err)
	}
	return &Topic{cfg: cfg, name: name, opts: opts, cl: cl, admin: kadm.NewClient(cl)}, nil
}

// Close closes the connection.
func (t *Topic) Close() { t.cl.Close() }

// Bad counts the records Read skipped because they are not valid
// indicators keyed by their id.
func (t *Topic) Bad() int64 { return t.bad.Load() }

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Ensure creates the topic, compacted, when it is missing.
func (t *Topic) Ensure(ctx context.Context) error {
	partitions := int32(max(t.cfg.Partitions, 1))
	rf := int16(max(t.cfg.ReplicationFactor, 1))
	compact := "compact"
	res, err := t.admin.CreateTopic(ctx, partitions, rf, map[string]*string{"cleanup.policy": &compact}, t.name)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("intel: create topic %s: %w", t.name, err)
	}
	return nil
}

// Publish writes the indicators in one transaction: readers see all of
// them or none. transactionalID names the writer; a newer writer with the
// same id fences an older one that is still running.
func (t *Topic) Publish(ctx context.Context, transactionalID string, inds []Indicator) error {
	if len(inds) == 0 {
		return nil
	}
	opts := append(append([]kgo.Opt{}, t.opts...), kgo.TransactionalID(transactionalID), kgo.DefaultProduceTopic(t.name),
		kgo.TransactionTimeout(5*time.Minute), kgo.ProducerBatchMaxBytes(1<<20))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("intel: kafka: %w", err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("intel: begin transaction: %w", err)
	}
	var produceErr error
	for i := range inds {
		v, err := json.Marshal(&inds[i])
		if err != nil {
			produceErr = err
			break
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(inds[i].ID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && produceErr == nil {
				produceErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil && produceErr == nil {
		produceErr = err
	}
	commit := kgo.TryCommit
	if produceErr != nil {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("intel: end transaction: %w", errors.Join(produceErr, err))
	}
	if produceErr != nil {
		return fmt.Errorf("intel: publish (transaction aborted, nothing written): %w", produceErr)
	}
	return nil
}

// Read reads the topic's committed records from the start: fn gets each
// indicator, or a tombstone (nil with its id). With follow it keeps
// reading after catching up (caught is called once then); without, it
// returns once caught up.
func (t *Topic) Read(ctx context.Context, follow bool, fn func(id string, in *Indicator) error, caught func()) error {
	ends, err := t.admin.ListCommittedOffsets(ctx, t.name)
	if err != nil {
		return fmt.Errorf("intel: read %s: %w", t.name, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if err := ends.Error(); err != nil {
		return fmt.Errorf("intel: read %s: %w", t.name, err)
	}
	opts := append(append([]kgo.Opt{}, t.opts...), kgo.ConsumeTopics(t.name), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("intel: kafka: %w", err)
	}
	defer cl.Close()
	signalled := false
	signal := func() {
		if !signalled && len(remaining) == 0 {
			signalled = true
			if caught != nil {
				caught()
			}
		}
	}
	signal()
	for {
		if signalled && !follow {
			return nil
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if !signalled {
			// The end offsets may be transaction markers or aborted
			// records, never delivered: a quiet second means nothing
			// committed is left before them.
			pctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		fetches := cl.PollFetches(pctx)
		quiet := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("intel: read %s: %w", t.name, ferr)
		}
		var rerr error
		fetches.EachRecord(func(r *kgo.Record) {
			if rerr != nil {
				return
			}
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if r.Value == nil {
				rerr = fn(string(r.Key), nil)
				return
			}
			var in Indicator
			if err := json.Unmarshal(r.Value, &in); err != nil || in.ID != string(r.Key) || in.Validate() != nil {
				// Not a record cordon writes: skipped and counted, never
				// fatal to the rest of the topic.
				t.bad.Add(1)
				return
			}
			rerr = fn(string(r.Key), &in)
		})
		if rerr != nil {
			return rerr
		}
		if quiet && fetches.NumRecords() == 0 {
			clear(remaining)
		}
		signal()
	}
}

// Consume reads the topic's committed records as member of group, in
// batches: fn gets each batch of valid indicators (tombstones and invalid
// records are left out), and the batch's offsets are committed only once
// fn returned nil; fn is called again with the same batch until it does
// (or ctx ends). For copies of the topic elsewhere (the ClickHouse
// indicators table).
func (t *Topic) Consume(ctx context.Context, group string, fn func([]Indicator) error) error {
	opts := append(append([]kgo.Opt{}, t.opts...), kgo.ConsumeTopics(t.name), kgo.ConsumerGroup(group),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("intel: kafka: %w", err)
	}
	defer cl.Close()
	for {
		fetches := cl.PollRecords(ctx, 10_000)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("intel: consume %s: %w", t.name, ferr)
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		batch := make([]Indicator, 0, len(recs))
		for _, r := range recs {
			var in Indicator
			if r.Value == nil {
				continue
			}
			if err := json.Unmarshal(r.Value, &in); err != nil || in.ID != string(r.Key) || in.Validate() != nil {
				t.bad.Add(1)
				continue
			}
			batch = append(batch, in)
		}
		for attempt := 0; ; attempt++ {
			err := fn(batch)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 30*time.Second)):
			}
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			return fmt.Errorf("intel: commit %s: %w", t.name, err)
		}
	}
}
