package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrTampered is wrapped by Verify's error when the log is not the one
// the gate wrote: a record altered, removed or reordered, or a
// checkpoint that does not verify.
var ErrTampered = errors.New("audit log tampered with")

// The reasons of a Problem.
const (
	// Altered: a record's bytes are not what the gate wrote (they do not
	// decode, their key disagrees with their seq, or their hash is not
	// what the next record's prev says).
	Altered = "altered"
	// Removed: records are missing (a gap in seq).
	Removed = "removed"
	// Reordered: records are out of order.
	Reordered = "reordered"
	// BadSignature: a checkpoint's signature does not verify.
	BadSignature = "bad_signature"
	// UntrustedKey: a checkpoint is signed by a key not trusted.
	UntrustedKey = "untrusted_key"
	// CheckpointMismatch: a checkpoint covers a seq or hash other than
	// the record before it.
	CheckpointMismatch = "checkpoint_mismatch"
	// Truncated: the log ends before a record it was expected to hold
	// (Verifier.Expect).
	Truncated = "truncated"
)

// Entry is one record of the log as read: its Kafka offset, key and
// value.
type Entry struct {
	Offset int64
	Key    []byte
	Value  []byte
}

// Ref names a record: its offset in the log, its seq and kind (as far as
// they could be read).
type Ref struct {
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq,omitempty"`
	Kind   string `json:"kind,omitempty"`
}

// Range is an inclusive range of seqs.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Problem is the first thing wrong with a log.
type Problem struct {
	Reason string `json:"reason"`
	// Ref is the record the problem is about.
	Ref
	// Other is the second record of a pair (the record swapped with
	// Ref, or the one whose prev disagrees with Ref).
	Other *Ref `json:"other,omitempty"`
	// Missing are the seqs that are not there (Removed, Truncated).
	Missing *Range `json:"missing,omitempty"`
	// Detail says it in a sentence.
	Detail string `json:"detail"`
}

func (p *Problem) String() string { return p.Reason + ": " + p.Detail }

// TamperError is Verify's error: the problem, wrapping ErrTampered.
type TamperError struct{ Problem Problem }

func (e *TamperError) Error() string { return ErrTampered.Error() + ": " + e.Problem.String() }

// Unwrap is ErrTampered.
func (e *TamperError) Unwrap() error { return ErrTampered }

// CheckpointRef is a checkpoint that verified.
type CheckpointRef struct {
	Ref
	// Covers is the seq of the record it signs (every record up to it is
	// proven), Hash that record's hash and Key the signing key's id.
	Covers uint64 `json:"covers"`
	Hash   string `json:"hash"`
	Key    string `json:"key"`
}

// Report is what Verify found.
type Report struct {
	// OK: no problem (warnings may remain).
	OK bool `json:"ok"`
	// Records is how many records verified, in order (repeats not
	// counted); HeadSeq and HeadHash are the last of them.
	Records  int    `json:"records"`
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// Head is the last record that verified: what a new leader restores
	// the chain from (when OK).
	Head *Record `json:"-"`
	// LastCheckpoint is the last checkpoint that verified; nil when none.
	LastCheckpoint *CheckpointRef `json:"last_checkpoint,omitempty"`
	// Unsigned are the records after the last checkpoint: no signature
	// covers them yet (a warning: the tail could have been cut off or
	// rewritten unnoticed). Only in a report without a problem.
	Unsigned *Range `json:"unsigned,omitempty"`
	// Warnings are the findings that are no tampering: the unsigned
	// tail, a record written twice in a row by a retried write.
	Warnings []string `json:"warnings,omitempty"`
	// Problem is the first problem; nil when OK.
	Problem *Problem `json:"problem,omitempty"`
}

// Verify checks a whole log, given in offset order. The error wraps
// ErrTampered (as a *TamperError) when the report has a problem.
func Verify(entries []Entry, keys *Keys) (Report, error) {
	v := NewVerifier(keys)
	for _, e := range entries {
		if !v.Add(e) {
			break
		}
	}
	return v.Finish()
}

// lookahead is how many records after an anomaly Verify reads before
// deciding what it was (a swap within that distance is named as one).
const lookahead = 32

// item is a read entry, decoded as far as it goes.
type item struct {
	e    Entry
	rec  Record
	hash string
	err  error
}

func (it *item) ref() Ref {
	r := Ref{Offset: it.e.Offset, Seq: it.rec.Seq, Kind: it.rec.Kind}
	if it.err != nil && r.Seq == 0 {
		r.Seq, _ = strconv.ParseUint(string(it.e.Key), 10, 64) //nolint:errcheck // the key's seq, when it has one, names a record that does not decode
	}
	return r
}

// Verifier checks a log record by record, in offset order, keeping only
// the last verified record (and, after an anomaly, the few records read
// to tell what it was): Add each entry, then Finish.
type Verifier struct {
	keys   *Keys
	rep    Report
	last   *item
	window []*item
	done   bool
	expect map[uint64]string
}

// NewVerifier starts verifying a log from its first record, trusting
// the checkpoints of keys.
func NewVerifier(keys *Keys) *Verifier {
	return &Verifier{keys: keys, rep: Report{HeadHash: ZeroHash}}
}

// Expect requires the log to hold record seq with hash (an anchor kept
// from an earlier verification, or published elsewhere): a log that
// ends before it was truncated, one that holds another record there was
// rewritten. It catches what no checkpoint can: the tail cut back past
// a point someone wrote down.
func (v *Verifier) Expect(seq uint64, hash string) {
	if v.expect == nil {
		v.expect = map[uint64]string{}
	}
	v.expect[seq] = hash
}

// Add checks the next entry; false once a problem is found (the rest of
// the log need not be read).
func (v *Verifier) Add(e Entry) bool {
	if v.done {
		return false
	}
	it := decode(e)
	if len(v.window) > 0 {
		v.window = append(v.window, it)
		if v.diagnose(false) {
			v.done = true
		}
		return !v.done
	}
	if it.err != nil {
		v.fail(Problem{Reason: Altered, Ref: it.ref(), Detail: fmt.Sprintf("the record at offset %d (key %q) is not a record of the log: %v", e.Offset, trunc(string(e.Key)), it.err)})
		return false
	}
	if v.links(it) {
		v.accept(it)
		return !v.done
	}
	if v.last != nil && it.rec.Seq == v.last.rec.Seq && it.hash == v.last.hash {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("record %d is written again at offset %d (first at offset %d): a retried write; it counts once",
			it.rec.Seq, e.Offset, v.last.e.Offset))
		return true
	}
	if it.rec.Seq == 1 && v.last == nil {
		// A first record whose prev is not zero does not decode; nothing
		// else breaks the link to the start.
		v.fail(Problem{Reason: Altered, Ref: it.ref(), Detail: "the first record does not start the chain"})
		return false
	}
	v.window = []*item{it}
	return true
}

// links tells whether it is the record after v.last.
func (v *Verifier) links(it *item) bool {
	if v.last == nil {
		return it.rec.Seq == 1 && it.rec.Prev == ZeroHash
	}
	return it.rec.Seq == v.last.rec.Seq+1 && it.rec.Prev == v.last.hash
}

func decode(e Entry) *item {
	it := &item{e: e}
	it.rec, it.err = DecodeRecord(e.Value)
	if it.err != nil {
		return it
	}
	if !bytes.Equal(e.Key, SeqKey(it.rec.Seq)) {
		it.err = fmt.Errorf("its key %q is not its seq %d", trunc(string(e.Key)), it.rec.Seq)
		return it
	}
	it.hash = HashBytes(e.Value)
	return it
}

// accept takes it as the next record of the chain, checking it when it
// is a checkpoint or an expected record.
func (v *Verifier) accept(it *item) {
	if it.rec.Kind == KindCheckpoint {
		if p := v.checkpoint(it); p != nil {
			v.fail(*p)
			return
		}
	}
	if want, ok := v.expect[it.rec.Seq]; ok && want != it.hash {
		v.fail(Problem{Reason: Altered, Ref: it.ref(), Detail: fmt.Sprintf("record %d at offset %d hashes to %s, not to the expected %s: the log was rewritten from here or earlier",
			it.rec.Seq, it.e.Offset, it.hash, want)})
		return
	}
	v.last = it
	v.rep.Records++
	v.rep.HeadSeq, v.rep.HeadHash = it.rec.Seq, it.hash
}

// checkpoint verifies a checkpoint record that follows v.last.
func (v *Verifier) checkpoint(it *item) *Problem {
	bad := func(reason, f string, args ...any) *Problem {
		return &Problem{Reason: reason, Ref: it.ref(), Detail: fmt.Sprintf("checkpoint %d at offset %d: ", it.rec.Seq, it.e.Offset) + fmt.Sprintf(f, args...)}
	}
	cp, err := decodeCheckpoint(it.rec.Body)
	if err != nil {
		return bad(Altered, "%v", err)
	}
	switch {
	case v.last == nil:
		return bad(CheckpointMismatch, "it is the first record: there is nothing for it to cover")
	case cp.Seq != v.last.rec.Seq || cp.Hash != v.last.hash:
		return bad(CheckpointMismatch, "it covers record %d with hash %s, and the record before it is %d with hash %s",
			cp.Seq, cp.Hash, v.last.rec.Seq, v.last.hash)
	}
	pub, ok := v.keys.get(cp.Key)
	if !ok {
		return bad(UntrustedKey, "signed by key %s, which is not trusted (audit.trust)", trunc(cp.Key))
	}
	sig, _ := base64.StdEncoding.DecodeString(cp.Signature) //nolint:errcheck // decodeCheckpoint checked it
	if !ed25519.Verify(pub, CheckpointMessage(cp.Seq, cp.Hash), sig) {
		return bad(BadSignature, "key %s did not sign it", cp.Key)
	}
	v.rep.LastCheckpoint = &CheckpointRef{Ref: it.ref(), Covers: cp.Seq, Hash: cp.Hash, Key: cp.Key}
	return nil
}

func decodeCheckpoint(body []byte) (Checkpoint, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var cp Checkpoint
	if err := d.Decode(&cp); err != nil {
		return Checkpoint{}, fmt.Errorf("its body is not a checkpoint: %w", err)
	}
	if d.More() {
		return Checkpoint{}, errors.New("its body is not a checkpoint: data after it")
	}
	if !hexRe.MatchString(cp.Hash) {
		return Checkpoint{}, errors.New("its hash is not 64 lowercase hex digits")
	}
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Checkpoint{}, fmt.Errorf("its signature is not the base64 of a %d-byte Ed25519 signature", ed25519.SignatureSize)
	}
	return cp, nil
}

// diagnose tells what the anomaly at v.window[0] is, once the records
// read after it tell (or, with end, at the end of the log); true when it
// has decided.
func (v *Verifier) diagnose(end bool) bool {
	w0 := v.window[0]
	var exp uint64 = 1
	prevHash := ZeroHash
	var lastRef *Ref
	if v.last != nil {
		exp, prevHash = v.last.rec.Seq+1, v.last.hash
		r := v.last.ref()
		lastRef = &r
	}
	next := func() *item { // the first decodable record after w0
		for _, it := range v.window[1:] {
			if it.err == nil {
				return it
			}
		}
		return nil
	}
	seq := w0.rec.Seq
	switch {
	case seq == exp && v.last != nil:
		// The link from v.last to w0 is broken: v.last's content changed
		// (w0's successor still links to w0) or w0 did.
		w1 := next()
		if w1 == nil && !end && len(v.window) <= lookahead {
			return false
		}
		if w1 != nil && w1.rec.Seq == seq+1 && w1.rec.Prev == w0.hash {
			v.fail(Problem{Reason: Altered, Ref: *lastRef, Other: refOf(w0),
				Detail: fmt.Sprintf("record %d at offset %d no longer hashes to what record %d's prev says: its content was altered", v.last.rec.Seq, v.last.e.Offset, seq)})
		} else {
			v.fail(Problem{Reason: Altered, Ref: w0.ref(), Other: lastRef,
				Detail: fmt.Sprintf("record %d at offset %d does not link to record %d (its prev is not that record's hash) and nothing links to it: it was altered", seq, w0.e.Offset, exp-1)})
		}
		return true
	case w0.rec.Prev == prevHash:
		// It follows v.last directly, under another seq: its seq changed.
		v.fail(Problem{Reason: Altered, Ref: w0.ref(), Other: lastRef,
			Detail: fmt.Sprintf("the record at offset %d follows record %d (its prev is that record's hash) but says it is record %d: it was altered", w0.e.Offset, exp-1, seq)})
		return true
	case seq > exp:
		// A gap: removed, unless the missing records come later (moved).
		// The record w0 was swapped with is the one expected where it is;
		// failing that, any of the missing ones.
		var moved *item
		for _, it := range v.window[1:] {
			if it.err == nil && it.rec.Seq >= exp && it.rec.Seq < seq && (moved == nil || it.rec.Seq == exp) {
				moved = it
			}
		}
		if moved != nil && (moved.rec.Seq == exp || end || len(v.window) > lookahead) {
			v.fail(Problem{Reason: Reordered, Ref: w0.ref(), Other: refOf(moved),
				Detail: fmt.Sprintf("record %d at offset %d comes before record %d at offset %d: they were swapped or moved", seq, w0.e.Offset, moved.rec.Seq, moved.e.Offset)})
			return true
		}
		if !end && len(v.window) <= lookahead {
			return false
		}
		after := "after the start of the log"
		if v.last != nil {
			after = fmt.Sprintf("after record %d at offset %d", v.last.rec.Seq, v.last.e.Offset)
		}
		missing := "record " + strconv.FormatUint(exp, 10) + " is"
		if seq-1 > exp {
			missing = fmt.Sprintf("records %d to %d are", exp, seq-1)
		}
		v.fail(Problem{Reason: Removed, Ref: w0.ref(), Other: lastRef, Missing: &Range{From: exp, To: seq - 1},
			Detail: fmt.Sprintf("%s missing %s: the record after the gap is record %d at offset %d", missing, after, seq, w0.e.Offset)})
		return true
	default:
		v.fail(Problem{Reason: Reordered, Ref: w0.ref(), Other: lastRef,
			Detail: fmt.Sprintf("record %d at offset %d comes after record %d at offset %d: out of order", seq, w0.e.Offset, exp-1, v.last.e.Offset)})
		return true
	}
}

func refOf(it *item) *Ref {
	r := it.ref()
	return &r
}

func (v *Verifier) fail(p Problem) {
	v.rep.Problem = &p
	v.done = true
}

// Finish ends the log and returns the report; the error wraps
// ErrTampered when the log has a problem.
func (v *Verifier) Finish() (Report, error) {
	if len(v.window) > 0 && v.rep.Problem == nil {
		v.diagnose(true)
	}
	v.window = nil
	rep := v.rep
	if rep.Problem == nil {
		var far uint64
		for seq := range v.expect {
			far = max(far, seq)
		}
		if far > rep.HeadSeq {
			rep.Problem = &Problem{Reason: Truncated, Ref: Ref{Seq: far}, Missing: &Range{From: rep.HeadSeq + 1, To: far},
				Detail: fmt.Sprintf("the log ends at record %d, and record %d (hash %s) was expected: its tail was cut off", rep.HeadSeq, far, v.expect[far])}
		}
	}
	if v.last != nil {
		rec := v.last.rec
		rep.Head = &rec
		from := uint64(1)
		if rep.LastCheckpoint != nil {
			from = rep.LastCheckpoint.Seq + 1
		}
		if rep.HeadSeq >= from && rep.Problem == nil {
			rep.Unsigned = &Range{From: from, To: rep.HeadSeq}
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("records %d..%d after the last checkpoint are not yet signed", from, rep.HeadSeq))
		}
	}
	if rep.Problem != nil {
		return rep, &TamperError{Problem: *rep.Problem}
	}
	rep.OK = true
	return rep, nil
}

// Text is the report for people: a line per finding.
func (r *Report) Text() string {
	var b strings.Builder
	if r.OK {
		fmt.Fprintf(&b, "audit log verified: %d records, head %d %s\n", r.Records, r.HeadSeq, r.HeadHash)
	} else {
		fmt.Fprintf(&b, "AUDIT LOG TAMPERED WITH: %s\n", r.Problem)
		fmt.Fprintf(&b, "  verified before it: %d records, up to %d %s\n", r.Records, r.HeadSeq, r.HeadHash)
	}
	if cp := r.LastCheckpoint; cp != nil {
		fmt.Fprintf(&b, "last checkpoint: record %d at offset %d, signed by key %s, covers records 1..%d (hash %s)\n", cp.Seq, cp.Offset, cp.Key, cp.Covers, cp.Hash)
	} else if r.Records > 0 {
		b.WriteString("no checkpoint verified\n")
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}
