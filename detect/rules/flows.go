package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A wallet's outflows are its largest state (up to maxFlows), and a busy
// wallet adds to them with every block: written whole with each round,
// encoding and signing them was a fifth of detection's time in a
// backfill. They are kept in chunk records of flowChunk flows by
// absolute position instead (key flows/<wallet>/<chunk>); a round writes
// only the chunks it changed and deletes those left behind.

// flowChunk is the number of flows a chunk record holds.
const flowChunk = 256

// chunkRec is a chunk record's value: the flows from absolute position
// Start.
type chunkRec struct {
	Start uint64 `json:"start"`
	Flows []flow `json:"flows"`
}

func flowKey(wk string, c uint64) string { return "flows/" + wk + "/" + strconv.FormatUint(c, 10) }

func splitFlowKey(k string) (wk string, c uint64, ok bool) {
	k = strings.TrimPrefix(k, "flows/")
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return "", 0, false
	}
	c, err := strconv.ParseUint(k[i+1:], 10, 64)
	return k[:i], c, err == nil
}

// changed records that the flows from absolute position at on changed.
func (w *wallet) changed(at uint64) {
	if !w.dirtySet || at < w.dirtyFrom {
		w.dirtyFrom, w.dirtySet = at, true
	}
}

// appendFlow adds an outflow.
func (w *wallet) appendFlow(f flow) {
	w.changed(w.FlowBase + uint64(len(w.Flows)))
	w.Flows = append(w.Flows, f)
}

// dropFront forgets the n oldest flows.
func (w *wallet) dropFront(n int) {
	if n <= 0 {
		return
	}
	n = min(n, len(w.Flows))
	w.Flows = slices.Clone(w.Flows[n:])
	w.FlowBase += uint64(n)
	w.changed(w.FlowBase)
}

// dropWhere forgets the flows f matches (wherever they are): the
// positions from the first one on change.
func (w *wallet) dropWhere(f func(flow) bool) {
	i := slices.IndexFunc(w.Flows, f)
	if i < 0 {
		return
	}
	w.changed(w.FlowBase + uint64(i))
	w.Flows = slices.DeleteFunc(w.Flows, f)
}

// flowRecords are the chunk records a wallet's changed flows need: the
// chunks from the first change to the end, and deletions of the chunks
// no flow is in any more.
func (w *wallet) flowRecords(wk string) ([]Record, error) {
	if !w.dirtySet {
		return nil, nil
	}
	end := w.FlowBase + uint64(len(w.Flows))
	var out []Record
	lo, hi := w.FlowBase/flowChunk, (end+flowChunk-1)/flowChunk // chunks [lo, hi) hold flows
	if len(w.Flows) == 0 {
		lo, hi = 0, 0
	}
	from := max(w.dirtyFrom, w.FlowBase) / flowChunk
	for c := max(from, lo); c < hi; c++ {
		s, e := max(c*flowChunk, w.FlowBase), min((c+1)*flowChunk, end)
		v, err := json.Marshal(chunkRec{Start: s, Flows: w.Flows[s-w.FlowBase : e-w.FlowBase]})
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Key: flowKey(wk, c), Value: v})
	}
	if w.storedSet {
		for c := w.storedLo; c < w.storedHi; c++ {
			if c < lo || c >= hi {
				out = append(out, Record{Key: flowKey(wk, c)})
			}
		}
	}
	w.storedLo, w.storedHi, w.storedSet = lo, hi, hi > lo
	w.dirtySet = false
	return out, nil
}

// restoreFlows puts a wallet's flows back from its chunk records.
func (w *wallet) restoreFlows(wk string, chunks map[uint64]chunkRec) error {
	order := make([]uint64, 0, len(chunks))
	for c := range chunks {
		order = append(order, c)
	}
	slices.Sort(order)
	if len(order) > 0 {
		w.storedLo, w.storedHi, w.storedSet = order[0], order[len(order)-1]+1, true
	}
	if len(w.Flows) > 0 {
		// A record from before the chunks, its flows inline: written as
		// chunks with the next round.
		w.FlowBase, w.FlowCount = 0, len(w.Flows)
		w.changed(0)
		return nil
	}
	end := w.FlowBase + uint64(w.FlowCount)
	for _, c := range order {
		ch := chunks[c]
		for i, f := range ch.Flows {
			at, next := ch.Start+uint64(i), w.FlowBase+uint64(len(w.Flows))
			switch {
			case at < next || at >= end:
			case at > next:
				return fmt.Errorf("detect: state of wallet %s: flow %d missing from its chunks", wk, next)
			default:
				w.Flows = append(w.Flows, f)
			}
		}
	}
	if len(w.Flows) != w.FlowCount {
		return fmt.Errorf("detect: state of wallet %s: %d flows in its chunks, its record says %d", wk, len(w.Flows), w.FlowCount)
	}
	return nil
}
