package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/cordonhq/cordon/internal/chain"
)

// Record kinds of the block-content topics.
const (
	KindTransaction = "transaction"
	KindTransfer    = "transfer"
	KindOutput      = "output"
	KindSpend       = "spend"
)

// DefaultPartBytes is the default largest value of one part record: well
// under Kafka's default 1 MiB message limit.
const DefaultPartBytes = 256 << 10

// Part is one record of the transactions, transfers, outputs and spends
// topics: consecutive records of one kind from one block, in block order.
// A block's records of a kind are split into parts of at most PartBytes;
// Parts says how many there are. Items are the records; the frame's v,
// chain, network, block_number, block_hash and block_time belong to every
// item (Bitcoin outputs and spends omit them from the item, the others may
// repeat them). Decode items with Items, which puts those fields back;
// each record then has its own deterministic Key, by which consumers apply
// items idempotently.
type Part struct {
	V           int               `json:"v"`
	Kind        string            `json:"kind"`
	Chain       chain.Chain       `json:"chain"`
	Network     string            `json:"network"`
	BlockHeight uint64            `json:"block_number"`
	BlockHash   string            `json:"block_hash"`
	BlockTime   int64             `json:"block_time"`
	Part        int               `json:"part"`
	Parts       int               `json:"parts"`
	Items       []json.RawMessage `json:"items"`
}

// Key is the part's deterministic Kafka key.
func (p *Part) Key() string {
	return chain.StreamKey(p.Chain, p.Network) + "/" + p.BlockHash + "/" + strconv.Itoa(p.Part)
}

// PartKey is the key of part i of a block's records.
func PartKey(h chain.Header, i int) string {
	return h.Stream() + "/" + h.Hash + "/" + strconv.Itoa(i)
}

// DecodePart decodes a part record and checks its frame. The items are
// checked when Items decodes them.
func DecodePart(value []byte) (Part, error) {
	p, ok := decodePartFast(value)
	if !ok {
		p = Part{}
		if err := json.Unmarshal(value, &p); err != nil {
			return p, fmt.Errorf("decode part: %w", err)
		}
	}
	if p.Parts < 1 || p.Part < 0 || p.Part >= p.Parts {
		return p, fmt.Errorf("decode part: part %d of %d", p.Part, p.Parts)
	}
	if len(p.Items) == 0 {
		return p, errors.New("decode part: no items")
	}
	return p, nil
}

// sizeHint is the usual encoded size of an item, to size buffers once.
var sizeHint = map[string]int{KindTransaction: 512, KindTransfer: 400, KindOutput: 200, KindSpend: 200}

// Ref is the block reference every item of the part shares.
func (p *Part) Ref() chain.BlockRef {
	return chain.BlockRef{V: p.V, Chain: p.Chain, Network: p.Network, Height: p.BlockHeight, Hash: p.BlockHash, Time: p.BlockTime}
}

// Items decodes the items of a part into records of type T (chain.Output,
// chain.Spend, chain.Transaction or chain.Transfer) with their block fields
// set from the frame.
func Items[T any, PT interface {
	*T
	SetBlock(chain.BlockRef)
}](p Part) ([]T, error) {
	return AppendItems[T, PT](make([]T, 0, len(p.Items)), p)
}

// AppendItems decodes the items of a part onto dst (see Items). On error
// dst is returned as it was.
func AppendItems[T any, PT interface {
	*T
	SetBlock(chain.BlockRef)
}](dst []T, p Part) ([]T, error) {
	n := len(dst)
	dst = slices.Grow(dst, len(p.Items))[:n+len(p.Items)]
	clear(dst[n:]) // decode into zero values, as encoding/json into fresh ones
	ref := p.Ref()
	for i, raw := range p.Items {
		item := PT(&dst[n+i])
		var err error
		if d, ok := any(item).(interface{ DecodeJSON([]byte) error }); ok {
			err = d.DecodeJSON(raw) // encoding/json's result, faster
		} else {
			err = json.Unmarshal(raw, item)
		}
		if err != nil {
			clear(dst[n:])
			return dst[:n], fmt.Errorf("%s part %d of block %s: item %d: %w", p.Kind, p.Part, p.BlockHash, i, err)
		}
		item.SetBlock(ref)
	}
	return dst, nil
}

// itemAppender encodes one item.
type itemAppender func(dst []byte, i int) ([]byte, error)

// itemJSONAppender is implemented by records with a compact item form.
type itemJSONAppender interface {
	AppendItemJSON(dst []byte) []byte
}

func marshalItem[T any](items []T) itemAppender {
	return func(dst []byte, i int) ([]byte, error) {
		v := any(&items[i])
		if a, ok := v.(itemJSONAppender); ok {
			return a.AppendItemJSON(dst), nil
		}
		if a, ok := v.(jsonAppender); ok {
			return a.AppendJSON(dst), nil
		}
		b, err := marshalJSON(v)
		return append(dst, b...), err
	}
}

// parts encodes n items of one kind of block b into part messages on topic.
func (p *Producer) parts(topic, kind string, h chain.Header, n int, enc itemAppender) ([]kafkago.Message, error) {
	if n == 0 {
		return nil, nil
	}
	// Encode every item into one buffer, remembering where each ends.
	items := make([]byte, 0, n*sizeHint[kind])
	ends := make([]int, n)
	var err error
	for i := range n {
		if items, err = enc(items, i); err != nil {
			return nil, fmt.Errorf("encode %s %d of block %s: %w", kind, i, h.Hash, err)
		}
		ends[i] = len(items)
	}
	// Split where a part would pass the size limit (an item larger than
	// the limit gets a part of its own).
	// The limit covers the whole value: the frame (at most ~200 bytes
	// plus the chain, network and hash) and the commas between items.
	limit := p.cfg.PartBytes - (256 + len(h.Chain) + len(h.Network) + len(h.Hash))
	var cuts []int // item index where each part starts
	start := 0
	for i := range n {
		if i > start && ends[i]-itemStart(ends, start)+(i-start) > limit {
			cuts = append(cuts, start)
			start = i
		}
	}
	cuts = append(cuts, start)
	msgs := make([]kafkago.Message, len(cuts))
	headers := recordHeaders[kind+"_part"]
	for pi, first := range cuts {
		last := n
		if pi+1 < len(cuts) {
			last = cuts[pi+1]
		}
		body := items[itemStart(ends, first):ends[last-1]]
		var buf bytes.Buffer
		buf.Grow(len(body) + 256 + (last - first))
		buf.WriteString(`{"v":`)
		buf.WriteString(strconv.Itoa(chain.SchemaVersion))
		buf.WriteString(`,"kind":"`)
		buf.WriteString(kind)
		buf.WriteString(`","chain":`)
		buf.Write(quote(string(h.Chain)))
		buf.WriteString(`,"network":`)
		buf.Write(quote(h.Network))
		buf.WriteString(`,"block_number":`)
		buf.WriteString(strconv.FormatUint(h.Height, 10))
		buf.WriteString(`,"block_hash":`)
		buf.Write(quote(h.Hash))
		buf.WriteString(`,"block_time":`)
		buf.WriteString(strconv.FormatInt(h.Time, 10))
		buf.WriteString(`,"part":`)
		buf.WriteString(strconv.Itoa(pi))
		buf.WriteString(`,"parts":`)
		buf.WriteString(strconv.Itoa(len(cuts)))
		buf.WriteString(`,"items":[`)
		prev := itemStart(ends, first)
		for i := first; i < last; i++ {
			if i > first {
				buf.WriteByte(',')
			}
			buf.Write(items[prev:ends[i]])
			prev = ends[i]
		}
		buf.WriteString(`]}`)
		msgs[pi] = kafkago.Message{Topic: topic, Key: []byte(PartKey(h, pi)), Value: buf.Bytes(), Headers: headers}
	}
	return msgs, nil
}

func itemStart(ends []int, i int) int {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}

func quote(s string) []byte {
	b, _ := marshalJSON(s)
	return b
}
