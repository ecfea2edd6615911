package alliance

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// The state on cordon.sharing, one compacted partition, every key
// written in the service's transactions:
//
//	o/<collection>/<object id>/<version>  a record of a collection served (taxii.Record)
//	h/<sequence>                          the versions taken of partners' objects in one intake (heldBatch)
//	c/<partner>/<collection>              how far a partner's collection was pulled (cursor)
//	s/<sighting id>                       a sighting of a partner's indicator, and whether it was posted (sent)
//
// Record kinds (the cordon-type header) are the key's first letter's
// name: "object", "held", "cursor".

// held is what the service keeps of the newest version it took of a
// partner's object: enough to refuse an older version, tell a duplicate
// from a conflict and an owner from another partner.
type held struct {
	ID        string    `json:"id"`
	Modified  time.Time `json:"modified"`
	CreatedBy string    `json:"created_by_ref"`
	// Hash is the version's content hash (stix.VerifyHash), hex.
	Hash string `json:"hash"`
	// From is the partner who sent it, Signer the partner who signed it.
	From   string    `json:"from"`
	Signer string    `json:"signer"`
	Taken  time.Time `json:"taken"`
	// TLP is an indicator's marking (a sighting of it is marked so).
	TLP intel.TLP `json:"tlp,omitempty"`
	// First is when we took the object's first version: a match from
	// before is not sighted (zero in records written before it: Taken
	// stands in).
	First time.Time `json:"first,omitzero"`
	// Values are the indicators the version produced (one per value of
	// its pattern), so that a later version that drops one revokes it.
	Values []heldValue `json:"values,omitempty"`
}

// since is when we first took a version of the object.
func (h *held) since() time.Time {
	if h.First.IsZero() {
		return h.Taken
	}
	return h.First
}

// heldValue is one indicator a held version produced.
type heldValue struct {
	ID      string      `json:"id"`
	Kind    intel.Kind  `json:"kind"`
	Chain   chain.Chain `json:"chain"`
	Network string      `json:"network"`
	Value   string      `json:"value"`
}

// heldBatch is the versions one intake took: one record per intake, not
// per object, so that a sync of a million objects signs a thousand
// state records rather than a million. Keys never repeat (a sequence
// number), so compaction keeps them all; the newest version of an
// object wins on restore.
type heldBatch struct {
	Seq  uint64  `json:"seq"`
	Held []*held `json:"held"`
}

func heldKey(seq uint64) string { return fmt.Sprintf("h/%020d", seq) }

// cursor is how far a partner's collection was pulled: every object
// added up to After was taken (or refused, with its reason logged).
type cursor struct {
	Partner    string    `json:"partner"`
	Collection string    `json:"collection"`
	After      time.Time `json:"after"`
}

const (
	kindObject = "object"
	kindHeld   = "held"
	kindCursor = "cursor"
)

func objectKey(col string, r *taxii.Record) string {
	return "o/" + col + "/" + r.ID + "/" + r.Version.UTC().Format(time.RFC3339Nano)
}

func cursorKey(partner, col string) string { return "c/" + partner + "/" + col }

func record(topic, kind, key string, v any) (kafka.Record, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return kafka.Record{}, fmt.Errorf("sharing: encode %s: %w", key, err)
	}
	return kafka.Record{Topic: topic, Key: []byte(key), Value: b, Headers: []kafka.Header{{Key: kafka.HeaderType, Value: []byte(kind)}}}, nil
}

// restored is the state read back from the topic.
type restored struct {
	objects map[string][]taxii.Record // by collection, in log order
	held    map[string]*held
	cursors map[string]time.Time
	seq     uint64 // the last held batch's
	sent    map[string]sent
}

// apply reads one record of the state topic; a record it cannot read
// is an error naming it (the topic is written only by this service,
// and its records are verified as the intel role's).
func (st *restored) apply(r *kafka.Record) error {
	k := string(r.Key)
	switch {
	case strings.HasPrefix(k, "o/"):
		parts := strings.SplitN(k, "/", 3)
		if len(parts) != 3 {
			return fmt.Errorf("record %q: want o/<collection>/<id>/<version>", k)
		}
		var rec taxii.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if objectKey(parts[1], &rec) != k {
			return fmt.Errorf("record %q holds %s version %s", k, rec.ID, rec.Version)
		}
		st.objects[parts[1]] = append(st.objects[parts[1]], rec)
	case strings.HasPrefix(k, "h/"):
		var b heldBatch
		if err := json.Unmarshal(r.Value, &b); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if heldKey(b.Seq) != k {
			return fmt.Errorf("record %q holds batch %d", k, b.Seq)
		}
		for _, h := range b.Held {
			if _, err := hex.DecodeString(h.Hash); err != nil || len(h.Hash) != 64 || !stix.ValidID(h.ID) {
				return fmt.Errorf("record %q: object %q, hash %q", k, h.ID, h.Hash)
			}
			if prev := st.held[h.key()]; prev == nil || h.Modified.After(prev.Modified) {
				st.held[h.key()] = h
			}
		}
		st.seq = max(st.seq, b.Seq)
	case strings.HasPrefix(k, "c/"):
		var c cursor
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if cursorKey(c.Partner, c.Collection) != k {
			return fmt.Errorf("record %q holds the cursor of %s/%s", k, c.Partner, c.Collection)
		}
		st.cursors[k] = c.After
	case strings.HasPrefix(k, "s/"):
		var v sent
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if "s/"+v.ID != k {
			return fmt.Errorf("record %q holds sighting %s", k, v.ID)
		}
		st.sent[v.ID] = v
	default:
		return fmt.Errorf("record %q: unknown key", k)
	}
	return nil
}
