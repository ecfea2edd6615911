package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/cordonhq/cordon/internal/chain"
)

// Record is one record written to or read back from a topic. Topic empty
// means the writer's default topic; Partition and Offset are set on
// records read.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// partitions returns the partition ids of topic.
func (p *Producer) partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := p.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafkago.UnknownTopicOrPartition) {
				return nil, nil
			}
			return nil, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		ids := make([]int, len(t.Partitions))
		for i, pt := range t.Partitions {
			ids[i] = pt.ID
		}
		return ids, nil
	}
	return nil, nil
}

// Offsets returns the first and end (next to be written) offsets of a
// partition.
func (p *Producer) Offsets(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	resp, err := p.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		topic: {kafkago.FirstOffsetOf(partition), kafkago.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", topic, partition, err)
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition == partition {
			if po.Error != nil {
				return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", topic, partition, po.Error)
			}
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("list offsets of %s/%d: partition missing from reply", topic, partition)
}

// ReadRange calls fn for each record of topic/partition in [from, to).
func (p *Producer) ReadRange(ctx context.Context, topic string, partition int, from, to int64, fn func(Record) error) error {
	return p.readRange(ctx, topic, partition, from, to, nil, fn)
}

// readRange is ReadRange refusing, with seen, replayed records of the
// signed compacted topics.
func (p *Producer) readRange(ctx context.Context, topic string, partition int, from, to int64, seen *replays, fn func(Record) error) error {
	off := from
	for off < to {
		resp, err := p.client.Fetch(ctx, &kafkago.FetchRequest{Topic: topic, Partition: partition, Offset: off,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 500 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, off, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, off, resp.Error)
		}
		progressed := false
		for {
			r, err := resp.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s/%d at %d: %w", topic, partition, off, err)
			}
			if r.Offset < off {
				continue // a batch may start before the requested offset
			}
			if r.Offset >= to {
				return nil
			}
			rec := Record{Partition: partition, Offset: r.Offset}
			if r.Key != nil {
				if rec.Key, err = io.ReadAll(r.Key); err != nil {
					return fmt.Errorf("read %s/%d@%d key: %w", topic, partition, r.Offset, err)
				}
			}
			if r.Value != nil {
				if rec.Value, err = io.ReadAll(r.Value); err != nil {
					return fmt.Errorf("read %s/%d@%d value: %w", topic, partition, r.Offset, err)
				}
			}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
			}
			off = r.Offset + 1
			progressed = true
			if !p.cfg.admit(topic, &rec, seen) {
				continue
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if !progressed {
			if resp.HighWatermark <= off {
				return nil // compacted or truncated: nothing more to read
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// BlocksPartition returns the partition of the blocks topic that holds the
// stream of chain/network, and whether the topic exists.
func (p *Producer) BlocksPartition(ctx context.Context, c chain.Chain, network string) (int, bool, error) {
	parts, err := p.partitions(ctx, p.cfg.Topics.Blocks)
	if err != nil || len(parts) == 0 {
		return 0, false, err
	}
	return streamPartition([]byte(chain.StreamKey(c, network)+"/0"), parts), true, nil
}

// Checkpoint reads the tail of the blocks topic and replays the stream's
// events to find the newest canonical headers (up to window of them) and
// the next sequence number. It implements follow.Sink.
func (p *Producer) Checkpoint(ctx context.Context, c chain.Chain, network string, window int) (chain.Checkpoint, error) {
	part, ok, err := p.BlocksPartition(ctx, c, network)
	if err != nil || !ok {
		return chain.Checkpoint{NextSeq: 1}, err
	}
	first, end, err := p.Offsets(ctx, p.cfg.Topics.Blocks, part)
	if err != nil {
		return chain.Checkpoint{}, err
	}
	stream := chain.StreamKey(c, network)
	chunk := int64(4*window + 64)
	for from := max(first, end-chunk); ; from = max(first, from-chunk) {
		var st chain.StreamState
		var lastSeq uint64
		err := p.ReadRange(ctx, p.cfg.Topics.Blocks, part, from, end, func(r Record) error {
			var ev chain.BlockEvent
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				return fmt.Errorf("decode block event at offset %d: %w", r.Offset, err)
			}
			if ev.Stream() != stream {
				return nil
			}
			if ev.Seq <= lastSeq {
				return nil // a duplicate left by a retried write
			}
			lastSeq = ev.Seq
			st.Apply(ev)
			return nil
		})
		if err != nil {
			return chain.Checkpoint{}, fmt.Errorf("read tail of %s: %w", p.cfg.Topics.Blocks, err)
		}
		if len(st.Chain) >= window || from == first {
			tail := st.Chain
			if len(tail) > window {
				tail = tail[len(tail)-window:]
			}
			return chain.Checkpoint{NextSeq: lastSeq + 1, Tail: tail}, nil
		}
	}
}

// ReadAll calls fn for every record currently in topic, partition by
// partition, each in offset order.
func (p *Producer) ReadAll(ctx context.Context, topic string, fn func(Record) error) error {
	parts, err := p.partitions(ctx, topic)
	if err != nil {
		return err
	}
	for _, part := range parts {
		first, end, err := p.Offsets(ctx, topic, part)
		if err != nil {
			return err
		}
		if err := p.ReadRange(ctx, topic, part, first, end, fn); err != nil {
			return err
		}
	}
	return nil
}

// EndOffsets returns the sum of the end offsets of topic's partitions: the
// number of records ever written to it.
func (p *Producer) EndOffsets(ctx context.Context, topic string) (int64, error) {
	parts, err := p.partitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, part := range parts {
		_, end, err := p.Offsets(ctx, topic, part)
		if err != nil {
			return 0, err
		}
		sum += end
	}
	return sum, nil
}

// ReadParts calls fn for every part record currently in topic (see
// ReadAll for the order), checking each record's frame and key.
func (p *Producer) ReadParts(ctx context.Context, topic string, fn func(Part) error) error {
	return p.ReadAll(ctx, topic, func(r Record) error {
		part, err := DecodePart(r.Value)
		if err != nil {
			return fmt.Errorf("%s offset %d: %w", topic, r.Offset, err)
		}
		if string(r.Key) != part.Key() {
			return fmt.Errorf("%s offset %d: key %q is not the part's key %q", topic, r.Offset, r.Key, part.Key())
		}
		return fn(part)
	})
}

// StreamStats counts what ReadStream applied.
type StreamStats struct {
	Events     int // events applied
	Removed    int // block_removed events among them
	Duplicates int // events skipped as repeats of a retried write
}

// ReadStream applies every event of one chain stream currently in the
// blocks topic, as a consumer does, and checks the stream's contract on
// the way: sequence numbers without gaps (repeats are skipped), every
// block_added extending the tip, every block_removed removing the tip. It
// returns the canonical chain the events leave.
func (p *Producer) ReadStream(ctx context.Context, c chain.Chain, network string) (chain.StreamState, StreamStats, error) {
	var st chain.StreamState
	var stats StreamStats
	part, ok, err := p.BlocksPartition(ctx, c, network)
	if err != nil || !ok {
		return st, stats, err
	}
	first, end, err := p.Offsets(ctx, p.cfg.Topics.Blocks, part)
	if err != nil {
		return st, stats, err
	}
	stream := chain.StreamKey(c, network)
	var lastSeq uint64
	err = p.ReadRange(ctx, p.cfg.Topics.Blocks, part, first, end, func(r Record) error {
		var ev chain.BlockEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return fmt.Errorf("offset %d: %w", r.Offset, err)
		}
		if ev.Stream() != stream {
			return nil
		}
		if string(r.Key) != ev.Key() {
			return fmt.Errorf("offset %d: key %q is not the event's key %q", r.Offset, r.Key, ev.Key())
		}
		if ev.Seq <= lastSeq {
			stats.Duplicates++
			return nil
		}
		if ev.Seq != lastSeq+1 {
			return fmt.Errorf("offset %d: seq %d follows %d: gap", r.Offset, ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
		tip, hasTip := chain.Checkpoint{Tail: st.Chain}.Tip()
		switch ev.Type {
		case chain.BlockAdded:
			if hasTip && (ev.Height != tip.Height+1 || ev.ParentHash != tip.Hash) {
				return fmt.Errorf("seq %d: block %d %s does not extend the tip %d %s", ev.Seq, ev.Height, ev.Hash, tip.Height, tip.Hash)
			}
		case chain.BlockRemoved:
			stats.Removed++
			if !hasTip || ev.Hash != tip.Hash {
				return fmt.Errorf("seq %d: removes block %s, which is not the tip", ev.Seq, ev.Hash)
			}
		default:
			return fmt.Errorf("seq %d: unknown event type %q", ev.Seq, ev.Type)
		}
		st.Apply(ev)
		stats.Events++
		return nil
	})
	return st, stats, err
}
