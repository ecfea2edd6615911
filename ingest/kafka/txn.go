package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// HeaderPartition places a record written by a TxWriter on the partition
// its value names (the restore markers go to every partition this way).
const HeaderPartition = "cordon-partition"

// TxWriter writes records in Kafka transactions: each Commit is visible to
// read_committed readers whole or not at all. Its transactional id fences
// every older writer with the same id: once a newer one has begun, the
// older one's commits fail.
type TxWriter struct {
	cl           *kgo.Client
	cfg          Config
	defaultTopic string
}

// NewTxWriter connects a transactional writer; records without a Topic go
// to defaultTopic. Records are partitioned by key (or by HeaderPartition).
// timeout is how long the brokers keep a transaction of a writer that
// died open (read_committed readers wait behind it) before aborting it;
// 0 is franz-go's default (40s). It must not exceed the cluster's
// transaction.max.timeout.ms (15 minutes by default).
func NewTxWriter(cfg Config, transactionalID, defaultTopic string, timeout time.Duration) (*TxWriter, error) {
	if timeout <= 0 {
		timeout = 40 * time.Second
	}
	cl, err := newFranz(cfg, "-tx", kgo.TransactionalID(transactionalID), kgo.DefaultProduceTopic(defaultTopic),
		kgo.TransactionTimeout(timeout), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(headerPartitioner{kgo.StickyKeyPartitioner(nil)}))
	if err != nil {
		return nil, err
	}
	cfg.Topics.Fill()
	return &TxWriter{cl: cl, cfg: cfg, defaultTopic: defaultTopic}, nil
}

// Close closes the connection (an open transaction is aborted by the
// broker, or by the next writer with the same id).
func (w *TxWriter) Close() { w.cl.Close() }

// Commit writes recs in one transaction and commits it. On any error the
// transaction is aborted and nothing of it is visible.
func (w *TxWriter) Commit(ctx context.Context, recs []Record) error {
	signed := make([]Record, len(recs))
	for i := range recs {
		signed[i] = recs[i]
		if signed[i].Topic == "" {
			signed[i].Topic = w.defaultTopic
		}
	}
	if err := w.cfg.signBatch(signed, func(r *Record) string { return r.Topic }); err != nil {
		return err
	}
	krs := make([]*kgo.Record, len(signed))
	for i := range signed {
		krs[i] = toFranz(&signed[i])
	}
	if err := w.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := w.cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		abortErr := w.cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return fmt.Errorf("write (transaction aborted, nothing written): %w", errors.Join(err, abortErr))
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// Fence is where a topic's committed history ended when a writer took
// over: a marker record carrying Nonce on each of its Partitions.
type Fence struct {
	Key, Nonce string
	Partitions int
}

// Fence commits a transaction that writes a marker (key, a fresh nonce)
// to every partition of topic. Committing it aborts whatever an earlier
// writer with the same transactional id left open, and marks where the
// committed history ends: ReadToFence stops exactly there, however slow
// the brokers are.
func (w *TxWriter) Fence(ctx context.Context, topic, key string, headers []Header) (Fence, error) {
	parts, err := partitionsOf(ctx, w.cl, topic)
	if err != nil {
		return Fence{}, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	f := Fence{Key: key, Nonce: hex.EncodeToString(b[:]), Partitions: len(parts)}
	recs := make([]Record, len(parts))
	for i, p := range parts {
		recs[i] = Record{Topic: topic, Key: []byte(key), Value: []byte(f.Nonce),
			Headers: append(append([]Header{}, headers...), Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(p)))})}
	}
	if err := w.Commit(ctx, recs); err != nil {
		return Fence{}, fmt.Errorf("fence %s (a newer instance fenced this one?): %w", topic, err)
	}
	return f, nil
}

// ReadToFence hands each of topic's committed records, from its start up
// to the markers of f, to fn, in partition order.
func ReadToFence(ctx context.Context, cfg Config, topic string, f Fence, fn func(*Record)) error {
	rd, err := newFranz(cfg, "-restore", kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer rd.Close()
	done := map[int32]bool{}
	seen := newReplays()
	for len(done) < f.Partitions {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fetchErr(fetches, false); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if done[r.Partition] {
				return
			}
			rec := fromFranz(r)
			g := seen
			if string(r.Key) == f.Key {
				// The markers share one key across partitions, read in no
				// set order; the current fence's nonce is what counts.
				g = nil
			}
			if !cfg.admit(topic, rec, g) {
				return
			}
			if string(r.Key) == f.Key && string(r.Value) == f.Nonce {
				done[r.Partition] = true
				return
			}
			fn(rec)
		})
	}
	return nil
}

// Partitions returns the partition ids of each topic.
func Partitions(ctx context.Context, cfg Config, topics ...string) (map[string][]int32, error) {
	cl, err := newFranz(cfg, "-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[string][]int32{}
	for _, t := range topics {
		if out[t], err = partitionsOf(ctx, cl, t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Ends returns each partition's committed end offset (the next offset a
// read_committed reader would get) of each topic: where a reader that
// started before it has caught up.
func Ends(ctx context.Context, cfg Config, topics ...string) (map[string]map[int32]int64, error) {
	cl, err := newFranz(cfg, "-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %v: %w", topics, err)
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) {
		if out[l.Topic] == nil {
			out[l.Topic] = map[int32]int64{}
		}
		out[l.Topic][l.Partition] = l.Offset
	})
	return out, nil
}

func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Err != nil || len(t.Partitions) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions: %w", topic, errors.Join(ErrTopicMissing, t.Err))
	}
	return t.Partitions.Numbers(), nil
}

// Reader reads topics with isolation read_committed from given positions
// (the consume side of a consume-transform-produce loop whose positions
// are committed with its output, as the crediting service does).
type Reader struct {
	cl  *kgo.Client
	cfg Config
	// behind: the last poll left records to read (a backfill).
	behind bool
}

// lagMargin is how many offsets past a poll's last record a partition
// must hold for Behind: transaction markers alone leave a few.
const lagMargin = 64

// Behind tells whether the last Poll left records unread in a partition
// it returned records of: the reader is catching up, and its caller may
// gather more before it acts (a consumer committing once per round).
func (r *Reader) Behind() bool { return r.behind }

// NewReader starts reading each topic/partition of parts at its offset
// (-1: the partition's start).
func NewReader(cfg Config, parts map[string]map[int32]int64) (*Reader, error) {
	at := map[string]map[int32]kgo.Offset{}
	for t, ps := range parts {
		at[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			at[t][p] = kgo.NewOffset().AtStart()
			if o >= 0 {
				at[t][p] = kgo.NewOffset().At(o)
			}
		}
	}
	cl, err := newFranz(cfg, "-reader", kgo.ConsumePartitions(at), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	cfg.Topics.Fill()
	return &Reader{cl: cl, cfg: cfg}, nil
}

// Poll returns the records that arrive within wait (none when nothing
// did).
func (r *Reader) Poll(ctx context.Context, wait time.Duration) ([]*Record, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	fetches := r.cl.PollFetches(pctx)
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := fetchErr(fetches, true); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	out := make([]*Record, 0, fetches.NumRecords())
	fetches.EachRecord(func(kr *kgo.Record) {
		if rec := fromFranz(kr); r.cfg.admit(kr.Topic, rec, nil) {
			out = append(out, rec)
		}
	})
	r.behind = false
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		end := p.LastStableOffset
		if end <= 0 {
			end = p.HighWatermark
		}
		if end-(p.Records[len(p.Records)-1].Offset+1) > lagMargin {
			r.behind = true
		}
	})
	return out, nil
}

// Close closes the connection.
func (r *Reader) Close() { r.cl.Close() }

// fetchErr is the first error of fetches, leaving out the end of the
// poll's own deadline when timeoutOK.
func fetchErr(fetches kgo.Fetches, timeoutOK bool) error {
	var ferr error
	fetches.EachError(func(_ string, _ int32, err error) {
		if ferr != nil || errors.Is(err, context.Canceled) || (timeoutOK && errors.Is(err, context.DeadlineExceeded)) {
			return
		}
		ferr = err
	})
	return ferr
}

func toFranz(r *Record) *kgo.Record {
	kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return kr
}

func fromFranz(kr *kgo.Record) *Record {
	r := &Record{Topic: kr.Topic, Partition: int(kr.Partition), Offset: kr.Offset, Key: kr.Key, Value: kr.Value}
	if len(kr.Headers) > 0 {
		r.Headers = make([]Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

// headerPartitioner places records carrying HeaderPartition on the
// partition it names, and everything else as base does (by key).
type headerPartitioner struct{ base kgo.Partitioner }

func (p headerPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return headerTopic{p.base.ForTopic(t)}
}

type headerTopic struct{ base kgo.TopicPartitioner }

func (p headerTopic) RequiresConsistency(*kgo.Record) bool { return true }

func (p headerTopic) Partition(r *kgo.Record, n int) int {
	for _, h := range r.Headers {
		if h.Key == HeaderPartition {
			if v, err := strconv.Atoi(string(h.Value)); err == nil && v >= 0 && v < n {
				return v
			}
		}
	}
	return p.base.Partition(r, n)
}
