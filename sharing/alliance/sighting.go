package alliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/uuid"
	"github.com/cordonhq/cordon/sharing/stix"
	"github.com/cordonhq/cordon/sharing/taxii"
)

// Sightings back: when a partner's indicator matches one of our
// deposits, we tell the partner ("your thief's address just tried to
// deposit here") with a signed STIX sighting posted to its inbox, if the
// partner is configured for it (sightings: true). Each sighting is
// recorded on cordon.sharing before it is posted and marked sent after,
// so a restart posts the unsent ones again and never makes a second
// sighting of the same match (its id derives from the match).

// sent is the record of one sighting (s/<sighting id>).
type sent struct {
	ID      string `json:"id"`
	Partner string `json:"partner"`
	// Of is what matched: "deposit" or "withdrawal".
	Of     string          `json:"of,omitempty"`
	Object json.RawMessage `json:"object"`
	Sent   bool            `json:"sent"`
}

const kindSighting = "sighting"

// ErrNoSighting is returned by Sight for a match it does not report: not
// a partner's indicator, a partner not configured for sightings, or a
// TLP:RED indicator.
var ErrNoSighting = errors.New("no sighting sent")

var sightingNS = [16]byte{0x51, 0x6e, 0x3c, 0x7a, 0x0b, 0x92, 0x4d, 0x18, 0xa3, 0x4f, 0x2e, 0x61, 0x9d, 0x08, 0xc5, 0x77}

func sightingID(self, what, indicator string) string {
	return "sighting--" + uuid.V5(sightingNS, self+"\x00"+what+"\x00"+indicator)
}

// Sight reports a match of the partner indicator key (an intel key,
// partner:<name>/<indicator id>) by what (of, "deposit" or "withdrawal",
// and its id: one sighting per deposit or withdrawal and indicator),
// seen at seen (when the deposit or withdrawal was made: one from before
// we took the indicator is not reported), described by where (no customer's data: the chain, the
// transaction). peers are the partners we post to; only one with
// Sightings set gets it.
func (s *Service) Sight(ctx context.Context, peers []Peer, key, of, what, where string, seen time.Time) error {
	feed, id, ok := strings.Cut(key, "/")
	name, isPartner := strings.CutPrefix(feed, "partner:")
	if !ok || !isPartner {
		return fmt.Errorf("%w: %s is not a partner's indicator", ErrNoSighting, key)
	}
	var peer *Peer
	for i := range peers {
		if peers[i].Name == name {
			peer = &peers[i]
		}
	}
	if peer == nil || !peer.Sightings {
		return fmt.Errorf("%w: partner %s takes no sightings", ErrNoSighting, name)
	}
	ident, _ := s.cfg.Partners.IdentityOf(name)
	s.mu.Lock()
	h := s.held[ident+"|"+id]
	// The indicator is named by its creator and id: another partner's
	// object under the same id is another indicator, with its own
	// sighting.
	sid := sightingID(s.cfg.Self.Name, of+" "+what, ident+"|"+id)
	_, done := s.sightings[sid]
	s.mu.Unlock()
	if h == nil || h.Signer != name {
		return fmt.Errorf("%w: %s holds no indicator %s of %s", ErrNoSighting, s.cfg.Self.Name, id, name)
	}
	if done {
		return nil
	}
	if seen.Before(h.since()) {
		// A match from before we took the indicator (a withdrawal
		// screened again with today's index): the partner's listing did
		// not make it, and reporting it would tell the partner of our
		// customers' past transactions to any address it lists now.
		return fmt.Errorf("%w: %s %s was made before we took %s", ErrNoSighting, of, what, id)
	}
	// A held version without a TLP (recorded before sightings were)
	// may be of a RED indicator: no sighting.
	tlp := h.TLP
	if tlp == "" {
		return fmt.Errorf("%w: %s: its TLP is not recorded", ErrNoSighting, id)
	}
	if tlp == intel.TLPRed {
		return fmt.Errorf("%w: %s is TLP:RED", ErrNoSighting, id)
	}
	if tlp == intel.TLPClear || tlp == intel.TLPGreen {
		// Our sighting is about our own business, whatever the
		// indicator's marking: for the partner only, not to be relayed.
		tlp = intel.TLPAmber
	}
	raw, err := stix.Sighting(id, s.cfg.Self.Identity, seen.UTC().Truncate(time.Millisecond), 1, where, tlp, sid)
	if err != nil {
		return fmt.Errorf("sharing: sighting of %s: %w", id, err)
	}
	signed, err := stix.Sign(raw, stix.SigningKey{Identity: s.cfg.Self.Identity, Key: s.cfg.Self.Key})
	if err != nil {
		return fmt.Errorf("sharing: sighting of %s: %w", id, err)
	}
	rec := sent{ID: sid, Partner: name, Of: of, Object: signed}
	if err := s.markSighting(ctx, rec); err != nil {
		return err
	}
	return s.postSighting(ctx, *peer, rec)
}

// markSighting commits a sighting's record.
func (s *Service) markSighting(ctx context.Context, rec sent) error {
	r, err := record(s.topic, kindSighting, "s/"+rec.ID, rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Commit(ctx, []kafka.Record{r}); err != nil {
		return fmt.Errorf("sharing: record sighting %s: %w", rec.ID, err)
	}
	s.sightings[rec.ID] = rec.Sent
	if !rec.Sent {
		s.unsent[rec.ID] = rec
	} else {
		delete(s.unsent, rec.ID)
	}
	return nil
}

func (s *Service) postSighting(ctx context.Context, p Peer, rec sent) error {
	if err := s.post(ctx, p, []json.RawMessage{rec.Object}); err != nil {
		if !errors.Is(err, errPeerRefused) {
			s.cfg.Metrics.sightings.WithLabelValues(p.Name, rec.Of, "failed").Inc()
			return fmt.Errorf("sharing: post sighting %s to %s (posted again later): %w", rec.ID, p.Name, err)
		}
		// The partner refused it: posting it again changes nothing.
		s.cfg.Metrics.sightings.WithLabelValues(p.Name, rec.Of, "refused").Inc()
		s.cfg.Log.Warn("sharing: a partner refused our sighting; not posted again", "partner", p.Name, "sighting", rec.ID, "err", err)
	} else {
		s.cfg.Metrics.sightings.WithLabelValues(p.Name, rec.Of, "sent").Inc()
	}
	rec.Sent = true
	return s.markSighting(ctx, rec)
}

// RetrySightings posts the sightings recorded but not yet sent, every
// interval, until ctx ends.
func (s *Service) RetrySightings(ctx context.Context, peers []Peer, every time.Duration) error {
	for sleep(ctx, every) {
		s.mu.Lock()
		todo := make([]sent, 0, len(s.unsent))
		for _, r := range s.unsent {
			todo = append(todo, r)
		}
		s.mu.Unlock()
		for _, r := range todo {
			for _, p := range peers {
				if p.Name == r.Partner && p.Sightings {
					if err := s.postSighting(ctx, p, r); err != nil {
						s.cfg.Log.Warn("sharing: sighting not posted", "partner", p.Name, "sighting", r.ID, "err", err)
					}
				}
			}
		}
	}
	return ctx.Err()
}

// sightingOfOurs checks a partner's sighting, sent by from and signed by
// signer: it must be of one of our published indicators (plain or
// hashed) that both may receive. One they may not receive is refused as
// one we did not publish, so that a sighting tells nobody what we
// listed beyond what it may read.
func (s *Service) sightingOfOurs(o *stix.Object, from, signer string) error {
	var v struct {
		Of string `json:"sighting_of_ref"`
	}
	if err := json.Unmarshal(o.Raw, &v); err != nil || !stix.ValidID(v.Of) {
		return refuse(ReasonValue, "sighting %s: sighting_of_ref is not an id", o.ID)
	}
	for _, col := range []string{Collection, Hashed} {
		p, err := s.cfg.Store.Query(col, taxii.Filter{IDs: []string{v.Of}}, 1)
		if err != nil || len(p.Records) == 0 {
			continue
		}
		rec := p.Records[0]
		if s.cfg.Partners.MayReceive(taxii.Caller{Name: from}, col, rec) && s.cfg.Partners.MayReceive(taxii.Caller{Name: signer}, col, rec) {
			return nil
		}
		break
	}
	return refuse(ReasonValue, "sighting %s is of %s, which we did not publish", o.ID, v.Of)
}
