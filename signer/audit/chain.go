package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cordonhq/cordon/internal/clock"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/internal/recordauth"
)

// Signer signs checkpoints: the gate leader's Ed25519 key (Key), or one
// held elsewhere (an HSM). KeyID names the public key the way Keys does:
// the first 8 bytes of its SHA-256, in hex.
type Signer interface {
	Sign(msg []byte) []byte
	KeyID() string
}

// Key is an Ed25519 private key as a Signer.
type Key struct {
	priv ed25519.PrivateKey
	id   string
}

// NewKey reads a private key given as the base64 of its 32-byte seed
// (what cordon keys generate prints).
func NewKey(seed string) (*Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(seed))
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit key: want the base64 of a %d-byte Ed25519 seed", ed25519.SeedSize)
	}
	return KeyOf(ed25519.NewKeyFromSeed(b)), nil
}

// KeyOf wraps an Ed25519 private key.
func KeyOf(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, id: recordauth.KeyID(priv.Public().(ed25519.PublicKey))}
}

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// KeyID names the key.
func (k *Key) KeyID() string { return k.id }

// Public is the public key in the form Keys and audit.trust take (base64).
func (k *Key) Public() string {
	return base64.StdEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

// CheckpointVersion is the v member of what a checkpoint signs.
const CheckpointVersion = "cordon-audit-checkpoint/v1"

// Checkpoint is a checkpoint record's body: the leader's signature over
// the seq and hash of the record just before the checkpoint, which
// (through the chain) covers every record up to it.
type Checkpoint struct {
	// Seq and Hash are the covered record's.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// Key is the signing key's id; Signature the base64 Ed25519
	// signature of SignedBytes.
	Key       string `json:"key"`
	Signature string `json:"signature"`
}

// CheckpointMessage is what a checkpoint signs: the RFC 8785 JSON
// {"hash":…,"seq":N,"v":"cordon-audit-checkpoint/v1"}.
func CheckpointMessage(seq uint64, hash string) []byte {
	b, _ := jcs.Marshal(map[string]any{"v": CheckpointVersion, "seq": seq, "hash": hash}) //nolint:errcheck // a string and an integer below 2^53 always canonicalize
	return b
}

// Config sets when the chain checkpoints, and whose checkpoints verify
// trusts: the gate.audit section.
type Config struct {
	// CheckpointEvery is how many records at most go unsigned: a
	// checkpoint is due after this many (default 1000).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval is how long at most records go unsigned: a
	// checkpoint is due this long after the last one once a record
	// follows it (default 1m).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Trust are the public keys (base64 Ed25519) of the gate leaders whose
	// checkpoints verify accepts; several during a key rotation.
	Trust []string `yaml:"trust"`
}

// Defaults of Config.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
)

// Fill gives unset keys their defaults.
func (c *Config) Fill() {
	iconfig.OrDefault(&c.CheckpointEvery, DefaultCheckpointEvery)
	iconfig.OrDefault(&c.CheckpointInterval, DefaultCheckpointInterval)
}

// Validate reports every bad key under base (the section's key,
// "gate.audit").
func (c *Config) Validate(p *iconfig.Problems, base string) {
	if c.CheckpointEvery < 0 {
		p.Add(base+".checkpoint_every", "%d: want a positive count of records", c.CheckpointEvery)
	}
	if c.CheckpointInterval < 0 {
		p.Add(base+".checkpoint_interval", "%s: want a positive duration", c.CheckpointInterval)
	}
	for i, k := range c.Trust {
		if _, err := parsePublic(k); err != nil {
			p.Add(fmt.Sprintf("%s.trust[%d]", base, i), "%v", err)
		}
	}
}

// Errors of the chain.
var (
	// ErrReserved: Append was asked for a checkpoint, which only
	// Checkpoint makes.
	ErrReserved = errors.New("audit: kind checkpoint is the chain's own")
	// ErrNothingToSign: Checkpoint with no record to cover.
	ErrNothingToSign = errors.New("audit: no record to checkpoint")
)

// head is where the chain ends.
type head struct {
	seq  uint64
	hash string
	at   time.Time
	kind string
	// unsigned counts the records since the last checkpoint; lastCP is
	// that checkpoint's time (zero when unknown).
	unsigned int
	lastCP   time.Time
}

// Chain appends to the audit log: it hands out the next records, in
// order, each carrying the hash of the one before. It keeps two heads:
// the committed one (what the topic holds) and the current one (with
// the records handed out since). The gate writes the records Append and
// Checkpoint return in its transaction and then calls Commit; when the
// transaction aborted it calls Rollback, and the next records reuse the
// same sequence numbers, so an aborted write leaves neither a gap nor a
// fork. When a commit's outcome is unknown (the broker did not answer)
// the gate must not guess: it re-reads the topic and calls Restore.
// Safe for concurrent use, though the gate appends from one goroutine.
type Chain struct {
	cfg    Config
	signer Signer
	clk    clock.Clock

	mu        sync.Mutex
	committed head
	cur       head
}

// New returns a chain at the start of an empty log; Restore moves it to
// the end of an existing one.
func New(cfg Config, signer Signer, clk clock.Clock) (*Chain, error) {
	if signer == nil {
		return nil, errors.New("audit: no checkpoint signer")
	}
	if clk == nil {
		return nil, errors.New("audit: no clock")
	}
	cfg.Fill()
	var p iconfig.Problems
	cfg.Validate(&p, "gate.audit")
	if err := p.Err(); err != nil {
		return nil, err
	}
	c := &Chain{cfg: cfg, signer: signer, clk: clk}
	c.committed = head{hash: ZeroHash}
	c.cur = c.committed
	return c, nil
}

// Restore moves the chain to the end of a log whose last record is last
// (nil: an empty log). The records handed out and not committed are
// dropped. A checkpoint is due at once unless last is one: the new
// leader signs the tail it found. An invalid record is refused and the
// chain is left as it was.
func (c *Chain) Restore(last *Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := head{hash: ZeroHash}
	if last != nil {
		hash, err := last.Hash()
		if err != nil {
			return fmt.Errorf("audit: restore: %w", err)
		}
		h = head{seq: last.Seq, hash: hash, at: last.At, kind: last.Kind}
		if last.Kind == KindCheckpoint {
			h.lastCP = last.At
		} else {
			h.unsigned = c.cfg.CheckpointEvery
		}
	}
	c.committed, c.cur = h, h
	return nil
}

// Head is the sequence number and hash of the chain's last record,
// handed out or committed (0 and ZeroHash for an empty log).
func (c *Chain) Head() (uint64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.seq, c.cur.hash
}

// Append returns the next record: kind, subject and actor as given,
// body's JSON, the clock's time (never before the previous record's).
func (c *Chain) Append(kind, subject, actor string, body any) (Record, error) {
	if kind == KindCheckpoint {
		return Record{}, ErrReserved
	}
	raw, err := encodeBody(body)
	if err != nil {
		return Record{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next(kind, subject, actor, raw)
}

// next makes the record after cur and moves cur to it; c.mu is held.
func (c *Chain) next(kind, subject, actor string, body json.RawMessage) (Record, error) {
	at := c.clk.Now().UTC().Round(0)
	if at.Before(c.cur.at) {
		at = c.cur.at // a clock stepped back, or a new leader's behind the old one's
	}
	r := Record{Seq: c.cur.seq + 1, Prev: c.cur.hash, At: at, Kind: kind, Subject: subject, Actor: actor, Body: body}
	hash, err := r.Hash()
	if err != nil {
		return Record{}, err
	}
	c.cur.seq, c.cur.hash, c.cur.at, c.cur.kind = r.Seq, hash, at, kind
	if kind == KindCheckpoint {
		c.cur.unsigned, c.cur.lastCP = 0, at
	} else {
		if c.cur.unsigned == 0 && c.cur.lastCP.IsZero() {
			c.cur.lastCP = at // the first record of a log: the interval runs from here
		}
		c.cur.unsigned++
	}
	return r, nil
}

// Due tells whether a checkpoint is due: CheckpointEvery records are
// unsigned, or CheckpointInterval passed since the last checkpoint and
// a record is unsigned. The gate checks it after each batch and on a
// timer, and appends Checkpoint's record when it is.
func (c *Chain) Due() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.unsigned == 0 {
		return false
	}
	return c.cur.unsigned >= c.cfg.CheckpointEvery || c.clk.Now().Sub(c.cur.lastCP) >= c.cfg.CheckpointInterval
}

// Checkpoint returns the next record: a checkpoint signing the seq and
// hash of the chain's last record.
func (c *Chain) Checkpoint() (Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.seq == 0 || c.cur.kind == KindCheckpoint {
		return Record{}, ErrNothingToSign
	}
	cp := Checkpoint{Seq: c.cur.seq, Hash: c.cur.hash, Key: c.signer.KeyID()}
	cp.Signature = base64.StdEncoding.EncodeToString(c.signer.Sign(CheckpointMessage(cp.Seq, cp.Hash)))
	body, err := jcs.Marshal(cp)
	if err != nil {
		return Record{}, err
	}
	return c.next(KindCheckpoint, "", "gate", body)
}

// Commit records that the records handed out since the last Commit,
// Rollback or Restore are on the topic (their transaction committed).
func (c *Chain) Commit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.committed = c.cur
}

// Rollback forgets the records handed out since the last Commit,
// Rollback or Restore (their transaction aborted): the next record
// reuses the first one's sequence number and prev.
func (c *Chain) Rollback() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = c.committed
}

// Keys are the public keys whose checkpoints verify, by key id.
type Keys struct{ byID map[string]ed25519.PublicKey }

// NewKeys reads public keys (base64 Ed25519).
func NewKeys(public ...string) (*Keys, error) {
	k := &Keys{byID: map[string]ed25519.PublicKey{}}
	var errs []error
	for i, s := range public {
		pub, err := parsePublic(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d: %w", i+1, err))
			continue
		}
		k.byID[recordauth.KeyID(pub)] = pub
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

// Len is the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byID)
}

func (k *Keys) get(id string) (ed25519.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.byID[id]
	return pub, ok
}

func parsePublic(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q: want the base64 of a %d-byte Ed25519 public key", trunc(s), ed25519.PublicKeySize)
	}
	return b, nil
}
