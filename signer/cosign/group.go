package cosign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// Signers is the number of parties in a session (2-of-n).
const Signers = 2

// DefaultSessionTimeout bounds one session.
const DefaultSessionTimeout = 60 * time.Second

// routeBuffer is the messages a party's inbox holds before a sender
// waits.
const routeBuffer = 64

// Errors of a signing.
var (
	// ErrNoQuorum: fewer than two healthy parties.
	ErrNoQuorum = errors.New("cosign: fewer than two healthy parties")
	// ErrDisagree: the two parties returned different signatures.
	ErrDisagree = errors.New("cosign: the parties returned different signatures")
	// ErrBadSignature: the session's signature does not verify against
	// the group key (or its V does not recover it).
	ErrBadSignature = errors.New("cosign: the signature does not verify against the group key")
	// ErrRoute: a party sent a message the router does not carry.
	ErrRoute = errors.New("cosign: message refused by the router")
)

// healthReporter is a cosigner that knows whether it is up
// (pluginhost.Plugin).
type healthReporter interface {
	Healthy() bool
}

// Group signs with one threshold key over its parties' cosigners.
type Group struct {
	keyID    string
	groupKey []byte
	pub      *btcec.PublicKey
	ids      []string
	parties  map[string]sdk.Cosigner
	log      *slog.Logger
	timeout  time.Duration
	retry    bool
}

// Option changes a Group.
type Option func(*Group)

// WithSessionTimeout bounds each session (DefaultSessionTimeout).
func WithSessionTimeout(d time.Duration) Option { return func(g *Group) { g.timeout = d } }

// WithRetry makes a failed session be followed by one more, with the
// next healthy pair and a fresh session id.
func WithRetry() Option { return func(g *Group) { g.retry = true } }

var _ sdk.Signer = (*Group)(nil)

// New is a Group for keyID, whose compressed public key is groupKey,
// over parties (party id -> its cosigner). A nil log discards.
func New(keyID string, groupKey []byte, parties map[string]sdk.Cosigner, log *slog.Logger, opts ...Option) (*Group, error) {
	if keyID == "" {
		return nil, errors.New("cosign: no key id")
	}
	pub, err := btcec.ParsePubKey(groupKey)
	if err != nil || len(groupKey) != btcec.PubKeyBytesLenCompressed {
		return nil, fmt.Errorf("cosign: key %q: group key must be a 33-byte compressed secp256k1 key", keyID)
	}
	if len(parties) < Signers {
		return nil, fmt.Errorf("cosign: key %q: %d parties, need at least %d", keyID, len(parties), Signers)
	}
	ids := make([]string, 0, len(parties))
	for id, c := range parties {
		if id == "" || c == nil {
			return nil, fmt.Errorf("cosign: key %q: a party with no id or no cosigner", keyID)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Group{
		keyID: keyID, groupKey: slices.Clone(groupKey), pub: pub, ids: ids,
		parties: make(map[string]sdk.Cosigner, len(parties)),
		log:     log.With("key_id", keyID), timeout: DefaultSessionTimeout,
	}
	for id, c := range parties {
		g.parties[id] = c
	}
	for _, o := range opts {
		o(g)
	}
	if g.timeout <= 0 {
		g.timeout = DefaultSessionTimeout
	}
	return g, nil
}

// Describe implements sdk.Signer: one key, the group's.
func (g *Group) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:         "cosign",
		Capabilities: []string{sdk.CapSign},
		Keys:         []sdk.KeyInfo{{ID: g.keyID, Curve: sdk.CurveSecp256k1, PublicKey: slices.Clone(g.groupKey)}},
	}, nil
}

// PublicKey implements sdk.Signer.
func (g *Group) PublicKey(_ context.Context, keyID string) ([]byte, error) {
	if keyID != g.keyID {
		return nil, fmt.Errorf("%w: cosign: %q", sdk.ErrUnknownKey, keyID)
	}
	return slices.Clone(g.groupKey), nil
}

// Check asks every party that describes itself (a plugin) for its keys
// and fails unless each holds a share of this key: same id, same group
// key.
func (g *Group) Check(ctx context.Context) error {
	var errs []error
	for _, id := range g.ids {
		d, ok := g.parties[id].(interface {
			Describe(context.Context) (sdk.Description, error)
		})
		if !ok {
			continue
		}
		desc, err := d.Describe(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("party %s: %w", id, err))
			continue
		}
		if !slices.Contains(desc.Capabilities, sdk.CapCosign) {
			errs = append(errs, fmt.Errorf("party %s: not a cosigner (capabilities %q)", id, desc.Capabilities))
			continue
		}
		i := slices.IndexFunc(desc.Keys, func(k sdk.KeyInfo) bool { return k.ID == g.keyID })
		if i < 0 || !slices.Equal(desc.Keys[i].PublicKey, g.groupKey) {
			errs = append(errs, fmt.Errorf("party %s: holds no share of key %q with group key %x", id, g.keyID, g.groupKey))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cosign: key %q: %w", g.keyID, errors.Join(errs...))
	}
	return nil
}

// pairs are the healthy parties' pairs, in order: by the first id, then
// the second.
func (g *Group) pairs() [][Signers]string {
	healthy := make([]string, 0, len(g.ids))
	for _, id := range g.ids {
		if h, ok := g.parties[id].(healthReporter); ok && !h.Healthy() {
			continue
		}
		healthy = append(healthy, id)
	}
	out := make([][Signers]string, 0, len(healthy)*(len(healthy)-1)/2)
	for i := range healthy {
		for j := i + 1; j < len(healthy); j++ {
			out = append(out, [Signers]string{healthy[i], healthy[j]})
		}
	}
	return out
}

// Sign implements sdk.Signer (and the vault's Signer): one session with
// the first healthy pair; WithRetry, one more with the next.
func (g *Group) Sign(ctx context.Context, req sdk.SignRequest) (sdk.Signature, error) {
	if req.KeyID != g.keyID {
		return sdk.Signature{}, fmt.Errorf("%w: cosign: %q", sdk.ErrUnknownKey, req.KeyID)
	}
	pairs := g.pairs()
	if len(pairs) == 0 {
		return sdk.Signature{}, fmt.Errorf("%w (key %q)", ErrNoQuorum, g.keyID)
	}
	attempts := 1
	if g.retry && len(pairs) > 1 {
		attempts = 2
	}
	var errs []error
	for a := range attempts {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		sig, err := g.session(ctx, req, pairs[a])
		if err == nil {
			return sig, nil
		}
		errs = append(errs, err)
	}
	return sdk.Signature{}, errors.Join(errs...)
}

// session runs one signing session between the two parties of pair.
func (g *Group) session(ctx context.Context, req sdk.SignRequest, pair [Signers]string) (sdk.Signature, error) {
	sid, err := newSessionID()
	if err != nil {
		return sdk.Signature{}, err
	}
	log := g.log.With("session", sid, "parties", pair[:])
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	r := newRouter(sid, pair[:])
	var sigs [Signers]sdk.Signature
	for i, id := range pair {
		creq := sdk.CosignRequest{Session: sid, KeyID: g.keyID, Digest: req.Digest, Context: req.Context, Parties: pair[:]}
		eg.Go(func() error {
			sig, err := g.parties[id].Cosign(ctx, creq, r.channel(id))
			if err != nil {
				return fmt.Errorf("party %s: %w", id, err)
			}
			sigs[i] = sig
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		log.Warn("cosign session failed", "err", err, "took", time.Since(start).String())
		return sdk.Signature{}, fmt.Errorf("cosign: key %q, session %s: %w", g.keyID, sid, err)
	}
	if sigs[0] != sigs[1] {
		log.Error("cosign parties disagree")
		return sdk.Signature{}, fmt.Errorf("%w: key %q, session %s", ErrDisagree, g.keyID, sid)
	}
	if err := verify(g.pub, req.Digest, sigs[0]); err != nil {
		log.Error("cosign signature does not verify", "err", err)
		return sdk.Signature{}, fmt.Errorf("key %q, session %s: %w", g.keyID, sid, err)
	}
	log.Info("cosign session done", "took", time.Since(start).String())
	return sigs[0], nil
}

func newSessionID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cosign: session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// verify checks sig: low S, a valid ECDSA signature of digest by pub,
// and V in {0, 1} recovering pub.
func verify(pub *btcec.PublicKey, digest [32]byte, sig sdk.Signature) error {
	var r, s btcec.ModNScalar
	if r.SetBytes(&sig.R) != 0 || s.SetBytes(&sig.S) != 0 || r.IsZero() || s.IsZero() {
		return fmt.Errorf("%w: r or s out of range", ErrBadSignature)
	}
	if s.IsOverHalfOrder() {
		return fmt.Errorf("%w: high S", ErrBadSignature)
	}
	if !ecdsa.NewSignature(&r, &s).Verify(digest[:], pub) {
		return ErrBadSignature
	}
	if sig.V > 1 {
		return fmt.Errorf("%w: V = %d", ErrBadSignature, sig.V)
	}
	compact := make([]byte, 0, 65)
	compact = append(compact, 27+4+sig.V)
	compact = append(compact, sig.R[:]...)
	compact = append(compact, sig.S[:]...)
	got, _, err := ecdsa.RecoverCompact(compact, digest[:])
	if err != nil || !got.IsEqual(pub) {
		return fmt.Errorf("%w: V = %d does not recover the group key", ErrBadSignature, sig.V)
	}
	return nil
}

// router carries one session's messages between its parties.
type router struct {
	session string
	parties []string
	inboxes map[string]chan sdk.PartyMessage
}

func newRouter(session string, parties []string) *router {
	r := &router{session: session, parties: parties, inboxes: map[string]chan sdk.PartyMessage{}}
	for _, p := range parties {
		r.inboxes[p] = make(chan sdk.PartyMessage, routeBuffer)
	}
	return r
}

func (r *router) channel(id string) sdk.Channel { return &channel{r: r, id: id} }

// channel is one party's side of the router.
type channel struct {
	r  *router
	id string
}

// Send routes m to its To, or to every other party of the session.
func (c *channel) Send(ctx context.Context, m sdk.PartyMessage) error {
	if m.Session != c.r.session {
		return fmt.Errorf("%w: party %s sent a message of session %q in %q", ErrRoute, c.id, m.Session, c.r.session)
	}
	if m.From != c.id {
		return fmt.Errorf("%w: party %s sent a message from %q", ErrRoute, c.id, m.From)
	}
	to := m.To
	if len(to) == 0 {
		for _, p := range c.r.parties {
			if p != c.id {
				to = append(to, p)
			}
		}
	}
	for _, t := range to {
		in, ok := c.r.inboxes[t]
		if !ok || t == c.id {
			return fmt.Errorf("%w: party %s sent a message to %q, not another party of the session", ErrRoute, c.id, t)
		}
		msg := m
		msg.To = slices.Clone(m.To)
		select {
		case in <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Recv yields the next message addressed to the party.
func (c *channel) Recv(ctx context.Context) (sdk.PartyMessage, error) {
	select {
	case m := <-c.r.inboxes[c.id]:
		return m, nil
	case <-ctx.Done():
		return sdk.PartyMessage{}, ctx.Err()
	}
}
