package kafka

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/cordonhq/cordon/internal/recordauth"
)

// Records that carry authority are signed by the role allowed to write
// their topic (Topics.Signer) and verified by every reader here, in the
// wrapper, so no consumer can forget to: a record that fails never reaches
// the consumer's function. It is reported to Config.Refused instead.

// Refusal is a record a reader refused.
type Refusal struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Role      recordauth.Role
	Err       error
}

// Signer returns the role whose signature every record of topic needs,
// or "" for topics whose records are not signed (the block stream, whose
// blocks crediting confirms with the nodes; alerts).
func (t Topics) Signer(topic string) recordauth.Role {
	t.Fill()
	switch topic {
	case t.Addresses, t.Decisions, t.Prices:
		return recordauth.API
	case t.Deposits, t.CreditState:
		return recordauth.Credit
	case t.Intel, t.Sharing:
		return recordauth.Intel
	case t.Withdrawals, t.GateState, t.Audit, t.SignRequests:
		return recordauth.Gate
	case t.SignerState, t.SignResults:
		return recordauth.Vault
	case t.DetectState, t.Incidents:
		return recordauth.Detect
	}
	return ""
}

// EventLog tells whether topic is an append-only log of events that
// several writers of its role append to under one key (the incidents
// topic: detection's rounds and operators' commands both write an
// incident's events). There a record signed earlier than one of its key
// read before it is no replay: writers race and nothing orders their
// clocks, so ReadLog does not refuse it; a replayed event is known by
// its id instead (incident.Fold keeps an id's first event). Every other
// signed topic holds states, where an earlier-signed record of a key
// would roll the state back and is refused.
func (t Topics) EventLog(topic string) bool {
	t.Fill()
	return topic == t.Incidents
}

// kindOf is the cordon-type header of a record (empty without one).
func kindOf(hs []Header) string {
	for _, h := range hs {
		if h.Key == HeaderType {
			return string(h.Value)
		}
	}
	return ""
}

func sigOf(hs []Header) []byte {
	for _, h := range hs {
		if h.Key == recordauth.Header {
			return h.Value
		}
	}
	return nil
}

// sign returns headers with the signature a record of topic needs added
// (headers itself for unsigned topics). Writing a signed topic without
// the role's key is an error naming the key.
func (c *Config) sign(topic string, key, value []byte, headers []Header) ([]Header, error) {
	role := c.Topics.Signer(topic)
	if role == "" {
		return headers, nil
	}
	s, ok := c.Auth.Signer(role)
	if !ok {
		return nil, fmt.Errorf("writing %s needs the %s record key (record_auth.keys.%s)", topic, role, role)
	}
	out := make([]Header, 0, len(headers)+1)
	for _, h := range headers {
		if h.Key != recordauth.Header {
			out = append(out, h)
		}
	}
	return append(out, Header{Key: recordauth.Header, Value: s.Sign(kindOf(headers), key, value)}), nil
}

// signBatch signs the records of one write (topics resolved by topic)
// as sign does each: their signing times are stamped in order, then the
// Ed25519 signatures, the cost of a batch, are spread over the CPUs.
func (c *Config) signBatch(recs []Record, topic func(*Record) string) error {
	type job struct {
		s  *recordauth.Signer
		at int64
	}
	jobs := make([]job, len(recs))
	n := 0
	for i := range recs {
		t := topic(&recs[i])
		role := c.Topics.Signer(t)
		if role == "" {
			continue
		}
		s, ok := c.Auth.Signer(role)
		if !ok {
			return fmt.Errorf("writing %s needs the %s record key (record_auth.keys.%s)", t, role, role)
		}
		jobs[i] = job{s: s, at: s.Stamp()}
		n++
	}
	sign := func(i int) {
		j := jobs[i]
		if j.s == nil {
			return
		}
		r := &recs[i]
		out := make([]Header, 0, len(r.Headers)+1)
		for _, h := range r.Headers {
			if h.Key != recordauth.Header {
				out = append(out, h)
			}
		}
		r.Headers = append(out, Header{Key: recordauth.Header, Value: j.s.SignAt(j.at, kindOf(r.Headers), r.Key, r.Value)})
	}
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers < 2 {
		for i := range recs {
			sign(i)
		}
		return nil
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(recs); i = int(next.Add(1) - 1) {
				sign(i)
			}
		}()
	}
	wg.Wait()
	return nil
}

// signGo is sign for kafka-go messages.
func (c *Config) signGo(m *kafkago.Message) error {
	role := c.Topics.Signer(m.Topic)
	if role == "" {
		return nil
	}
	hs := make([]Header, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = Header{Key: h.Key, Value: h.Value}
	}
	hs, err := c.sign(m.Topic, m.Key, m.Value, hs)
	if err != nil {
		return err
	}
	m.Headers = make([]kafkago.Header, len(hs))
	for i, h := range hs {
		m.Headers[i] = kafkago.Header{Key: h.Key, Value: h.Value}
	}
	return nil
}

// replays remembers, for the compacted signed topics, the newest signing
// time read for each key (by a 64-bit hash of topic and key): a genuine
// record older than one already read is a copy written again (a replay)
// and is refused. A reader keeps one for as long as it reads in order.
type replays struct{ last map[uint64]int64 }

func newReplays() *replays { return &replays{last: map[uint64]int64{}} }

// admit verifies a record read from topic: true when its topic is not
// signed or its signature verifies (and, with g, it is not older than a
// record of its key already read); otherwise the refusal is reported and
// the record must be skipped.
func (c *Config) admit(topic string, r *Record, g *replays) bool {
	role := c.Topics.Signer(topic)
	if role == "" {
		return true
	}
	at, err := c.Auth.Verify(role, kindOf(r.Headers), r.Key, r.Value, sigOf(r.Headers))
	if err == nil {
		if s, ok := c.Auth.Signer(role); ok {
			s.Observe(at) // what this process signs next comes after what it read
		}
	}
	if err == nil && g != nil {
		h := fnv.New64a()
		_, _ = h.Write([]byte(topic))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(r.Key)
		k := h.Sum64()
		if at < g.last[k] {
			err = recordauth.ErrReplayed
		} else {
			g.last[k] = at
		}
	}
	if err == nil {
		return true
	}
	if c.Refused != nil {
		c.Refused(Refusal{Topic: topic, Partition: r.Partition, Offset: r.Offset, Key: bytes.Clone(r.Key), Role: role, Err: err})
	}
	return false
}
