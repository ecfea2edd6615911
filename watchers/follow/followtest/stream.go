package followtest

import (
	"fmt"

	"github.com/cordonhq/cordon/internal/chain"
)

// Replay applies a stream's stored events in order, as a consumer does,
// and checks the stream contract on the way: sequence numbers from 1
// without gaps; a repeated sequence number only as an identical repeat of
// the event stored under it (a retried write), never a different event;
// every block_added extending the tip, every block_removed removing it. It
// returns the canonical chain the events leave and the number of repeats.
func Replay(events []chain.BlockEvent) (canonical []chain.Header, repeats int, err error) {
	bySeq := map[uint64]chain.BlockEvent{}
	var st chain.StreamState
	var last uint64
	for i, ev := range events {
		if prev, ok := bySeq[ev.Seq]; ok {
			if !sameEvent(prev, ev) {
				return nil, 0, fmt.Errorf("event %d: seq %d holds two different events: %s and %s", i, ev.Seq, describe(prev), describe(ev))
			}
			repeats++
			continue
		}
		if ev.Seq != last+1 {
			return nil, 0, fmt.Errorf("event %d: seq %d follows %d: gap", i, ev.Seq, last)
		}
		bySeq[ev.Seq], last = ev, ev.Seq
		n := len(st.Chain)
		switch ev.Type {
		case chain.BlockAdded:
			if n > 0 && (ev.Height != st.Chain[n-1].Height+1 || ev.ParentHash != st.Chain[n-1].Hash) {
				return nil, 0, fmt.Errorf("seq %d: %s does not extend the tip %d %s", ev.Seq, describe(ev), st.Chain[n-1].Height, st.Chain[n-1].Hash)
			}
		case chain.BlockRemoved:
			if n == 0 || st.Chain[n-1].Hash != ev.Hash {
				return nil, 0, fmt.Errorf("seq %d: %s removes a block that is not the tip", ev.Seq, describe(ev))
			}
		default:
			return nil, 0, fmt.Errorf("seq %d: unknown event type %q", ev.Seq, ev.Type)
		}
		st.Apply(ev)
	}
	return st.Chain, repeats, nil
}

// sameEvent compares what identifies an event; fields a sink's encoding
// may normalize (zero amounts, counts) are not part of it.
func sameEvent(a, b chain.BlockEvent) bool {
	return a.Type == b.Type && a.Seq == b.Seq && a.Header == b.Header
}

func describe(ev chain.BlockEvent) string {
	return fmt.Sprintf("%s of %d %s", ev.Type, ev.Height, ev.Hash)
}
