package kafka

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cordonhq/cordon/internal/chain"
)

// Assembler puts whole blocks back together from the block stream: the
// block events of cordon.blocks and the part records of the
// transactions, transfers, outputs and spends topics, read from any mix of
// partitions in any order. Ready hands each stream's events in sequence
// order, an added block's only once every part its event counts is in.
// It also knows, for every partition, the earliest record a restart must
// read again (Resume), so a consumer that commits its read positions with
// its output loses nothing that was read but not yet applied.
//
// An Assembler is not safe for concurrent use.
type Assembler struct {
	topics Topics
	// queue holds block events by stream and seq, with their position.
	queue map[string]map[uint64]queuedEvent
	// contents holds the parts that arrived, by block hash.
	contents map[string]*blockContents
	// pos is the next offset by "topic/partition".
	pos map[string]int64
	// skip tells which blocks' parts to drop (already applied).
	skip func(hash string) bool
	// Transactions makes a block complete only once its transactions
	// are in too (for consumers that read the transactions topic).
	Transactions bool
}

type queuedEvent struct {
	ev  chain.BlockEvent
	pos string
	off int64
}

type blockContents struct {
	seen  time.Time
	block chain.Block
	offs  map[string]int64 // earliest part offset by topic/partition
	ends  map[string]int64 // past the last part offset by topic/partition
	// counts are the items of each kind, parts the parts taken by kind and
	// number: a part stored twice (a retried write) counts once, so a
	// block is never complete with another part missing.
	counts map[string]int
	parts  map[string]map[int]bool
}

// NewAssembler returns an empty assembler of the stream in topics. skip,
// when set, drops the parts of blocks it names (blocks a consumer already
// applied, read again after a restart).
func NewAssembler(topics Topics, skip func(hash string) bool) *Assembler {
	topics.Fill()
	if skip == nil {
		skip = func(string) bool { return false }
	}
	return &Assembler{topics: topics, queue: map[string]map[uint64]queuedEvent{}, contents: map[string]*blockContents{},
		pos: map[string]int64{}, skip: skip}
}

// Position is a partition's read position key, "topic/partition".
func Position(topic string, partition int) string { return fmt.Sprintf("%s/%d", topic, partition) }

// Add files a record of the block topics. It returns an error (and keeps
// nothing of it) for a record that is not a valid block event or part;
// the read position moves past it either way. applied is the next seq a
// stream has already applied past, so its earlier events are dropped.
func (a *Assembler) Add(r *Record, applied func(stream string) (next uint64, ok bool)) error {
	key := Position(r.Topic, r.Partition)
	a.pos[key] = r.Offset + 1
	if r.Topic == a.topics.Blocks {
		var ev chain.BlockEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return fmt.Errorf("block event at %s@%d: %w", key, r.Offset, err)
		}
		if ev.Type != chain.BlockAdded && ev.Type != chain.BlockRemoved {
			return fmt.Errorf("block event at %s@%d: unknown type %q", key, r.Offset, ev.Type)
		}
		st := ev.Stream()
		if next, ok := applied(st); ok && ev.Seq < next {
			return nil
		}
		if a.queue[st] == nil {
			a.queue[st] = map[uint64]queuedEvent{}
		}
		a.queue[st][ev.Seq] = queuedEvent{ev: ev, pos: key, off: r.Offset}
		return nil
	}
	part, err := DecodePart(r.Value)
	if err != nil {
		return fmt.Errorf("part at %s@%d: %w", key, r.Offset, err)
	}
	if a.skip(part.BlockHash) {
		return nil
	}
	c := a.contents[part.BlockHash]
	if c == nil {
		c = &blockContents{seen: time.Now(), offs: map[string]int64{}, ends: map[string]int64{}, counts: map[string]int{}, parts: map[string]map[int]bool{}}
		a.contents[part.BlockHash] = c
	}
	if o, ok := c.offs[key]; !ok || r.Offset < o {
		c.offs[key] = r.Offset
	}
	c.ends[key] = max(c.ends[key], r.Offset+1)
	if c.parts[part.Kind][part.Part] {
		return nil // a copy of a part already taken
	}
	switch part.Kind {
	case KindTransaction:
		c.block.Transactions, err = AppendItems(c.block.Transactions, part)
	case KindTransfer:
		c.block.Transfers, err = AppendItems(c.block.Transfers, part)
	case KindOutput:
		c.block.Outputs, err = AppendItems(c.block.Outputs, part)
	case KindSpend:
		c.block.Spends, err = AppendItems(c.block.Spends, part)
	default:
		return fmt.Errorf("part at %s@%d: unknown kind %q", key, r.Offset, part.Kind)
	}
	if err != nil {
		return fmt.Errorf("part at %s@%d: %w", key, r.Offset, err)
	}
	c.counts[part.Kind] += len(part.Items)
	if c.parts[part.Kind] == nil {
		c.parts[part.Kind] = map[int]bool{}
	}
	c.parts[part.Kind][part.Part] = true
	return nil
}

// complete tells whether a block's parts are all in (for the kinds the
// assembler reads: transactions are counted only when their topic is).
func (c *blockContents) complete(ev *chain.BlockEvent, withTx bool) bool {
	if c == nil {
		return ev.TransferCount == 0 && ev.OutputCount == 0 && ev.SpendCount == 0 && (!withTx || ev.TxCount == 0)
	}
	return c.counts[KindTransfer] == ev.TransferCount && c.counts[KindOutput] == ev.OutputCount &&
		c.counts[KindSpend] == ev.SpendCount && (!withTx || c.counts[KindTransaction] == ev.TxCount)
}

// Streams are the streams with queued events, sorted.
func (a *Assembler) Streams() []string {
	out := make([]string, 0, len(a.queue))
	for st := range a.queue {
		out = append(out, st)
	}
	slices.Sort(out)
	return out
}

// First is the lowest queued seq of a stream (where a stream nothing was
// applied of starts).
func (a *Assembler) First(stream string) (uint64, bool) {
	q := a.queue[stream]
	if len(q) == 0 {
		return 0, false
	}
	first := ^uint64(0)
	for seq := range q {
		first = min(first, seq)
	}
	return first, true
}

// Peek returns event seq of stream once it is queued, whether or not its
// block's parts are all in.
func (a *Assembler) Peek(stream string, seq uint64) (chain.BlockEvent, bool) {
	item, ok := a.queue[stream][seq]
	return item.ev, ok
}

// Ready returns event seq of stream and, for an added block, the block
// with its contents, once the event and all its parts are in.
func (a *Assembler) Ready(stream string, seq uint64) (chain.BlockEvent, *chain.Block, bool) {
	item, ok := a.queue[stream][seq]
	if !ok {
		return chain.BlockEvent{}, nil, false
	}
	ev := item.ev
	if ev.Type == chain.BlockRemoved {
		return ev, nil, true
	}
	c := a.contents[ev.Hash]
	if !c.complete(&ev, a.Transactions) {
		return chain.BlockEvent{}, nil, false
	}
	var blk chain.Block
	if c != nil {
		blk = c.block
	}
	blk.Header = ev.Header
	return ev, &blk, true
}

// PartsEnd returns, for a block not yet Done, the offset past its last
// part on each partition holding its parts: once a consumer's resume
// positions are at or past all of them, none of its parts can be read
// again.
func (a *Assembler) PartsEnd(hash string) map[string]int64 {
	c := a.contents[hash]
	if c == nil {
		return nil
	}
	out := make(map[string]int64, len(c.ends))
	for k, v := range c.ends {
		out[k] = v
	}
	return out
}

// Done forgets event seq of stream (applied) and its block's parts.
func (a *Assembler) Done(stream string, seq uint64) {
	if item, ok := a.queue[stream][seq]; ok {
		if item.ev.Type == chain.BlockAdded {
			delete(a.contents, item.ev.Hash)
		}
		delete(a.queue[stream], seq)
	}
}

// Resume is where a restart must read on: for every partition read, the
// earliest record still needed (a queued event, or a part of a block not
// yet done), else the next offset.
func (a *Assembler) Resume() map[string]int64 {
	r := map[string]int64{}
	for k, v := range a.pos {
		r[k] = v
	}
	for _, q := range a.queue {
		for _, it := range q {
			r[it.pos] = min(r[it.pos], it.off)
		}
	}
	for _, c := range a.contents {
		for k, o := range c.offs {
			r[k] = min(r[k], o)
		}
	}
	return r
}

// Advance records that the reader is at off in a partition (records the
// assembler is not given, such as another topic's, move it too).
func (a *Assembler) Advance(topic string, partition int, next int64) {
	a.pos[Position(topic, partition)] = next
}

// Restore sets the read positions a consumer resumed from.
func (a *Assembler) Restore(pos map[string]int64) {
	for k, v := range pos {
		a.pos[k] = v
	}
}

// GC drops the parts of blocks no queued event names that arrived more
// than maxAge ago (a watcher that crashed between a block's parts and its
// event publishes the block again, under the same hash, with its event),
// and returns their hashes.
func (a *Assembler) GC(maxAge time.Duration) []string {
	wanted := map[string]bool{}
	for _, q := range a.queue {
		for _, it := range q {
			wanted[it.ev.Hash] = true
		}
	}
	var dropped []string
	for h, c := range a.contents {
		if !wanted[h] && time.Since(c.seen) > maxAge {
			delete(a.contents, h)
			dropped = append(dropped, h)
		}
	}
	return dropped
}
