package btc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/cordonhq/cordon/internal/chain"
)

// MaxBlockBytes bounds a raw block: Bitcoin's weight limit allows at most
// 4,000,000 serialized bytes.
const MaxBlockBytes = wire.MaxBlockPayload

// ErrBadBlock is wrapped by every error about a raw block that is not a
// valid block: truncated, corrupted, trailing bytes, a hash or merkle
// root that does not match.
var ErrBadBlock = errors.New("invalid block")

func badBlock(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadBlock, fmt.Sprintf(format, args...))
}

// DecodeBlock decodes a raw serialized block with btcd's wire and checks
// it: no bytes after the last transaction, one coinbase and only as the
// first transaction, output values within the money supply, and a merkle
// root over the transaction ids that matches the header (not malleated by
// duplicated transactions). It returns the block, each transaction's
// location in raw and its id.
func DecodeBlock(raw []byte) (*wire.MsgBlock, []wire.TxLoc, []chainhash.Hash, error) {
	if len(raw) > MaxBlockBytes {
		return nil, nil, nil, badBlock("%d bytes, more than the %d a block can have", len(raw), MaxBlockBytes)
	}
	if len(raw) < wire.MaxBlockHeaderPayload+1 {
		return nil, nil, nil, badBlock("%d bytes: truncated (a block has an 80-byte header and at least one transaction)", len(raw))
	}
	var blk wire.MsgBlock
	buf := bytes.NewBuffer(raw)
	locs, err := blk.DeserializeTxLoc(buf)
	if err != nil {
		return nil, nil, nil, badBlock("decode: %v", err)
	}
	if buf.Len() != 0 {
		return nil, nil, nil, badBlock("%d bytes after the last transaction", buf.Len())
	}
	if len(blk.Transactions) == 0 {
		return nil, nil, nil, badBlock("no transactions")
	}
	ids := make([]chainhash.Hash, len(blk.Transactions))
	var scratch []byte
	for i, tx := range blk.Transactions {
		if isCoinbase(tx) != (i == 0) {
			if i == 0 {
				return nil, nil, nil, badBlock("first transaction is not a coinbase")
			}
			return nil, nil, nil, badBlock("transaction %d is a second coinbase", i)
		}
		for v, out := range tx.TxOut {
			if out.Value < 0 || out.Value > btcutil.MaxSatoshi {
				return nil, nil, nil, badBlock("transaction %d output %d: value %d outside 0..%d", i, v, out.Value, int64(btcutil.MaxSatoshi))
			}
		}
		ids[i], scratch = txid(raw[locs[i].TxStart:locs[i].TxStart+locs[i].TxLen], tx, scratch)
	}
	root, mutated := merkleRoot(ids)
	if mutated {
		return nil, nil, nil, badBlock("merkle tree has duplicated transactions (CVE-2012-2459 mutation)")
	}
	if root != blk.Header.MerkleRoot {
		return nil, nil, nil, badBlock("merkle root %s does not match the transactions (computed %s)", blk.Header.MerkleRoot, root)
	}
	return &blk, locs, ids, nil
}

func isCoinbase(tx *wire.MsgTx) bool {
	if len(tx.TxIn) != 1 {
		return false
	}
	prev := tx.TxIn[0].PreviousOutPoint
	return prev.Index == math.MaxUint32 && prev.Hash == (chainhash.Hash{})
}

// txid hashes a transaction's serialization without witness data straight
// from its raw bytes: version ‖ inputs and outputs ‖ lock time, skipping
// the segwit marker, flag and witnesses.
// scratch is reused between calls for the stripped serialization.
func txid(raw []byte, tx *wire.MsgTx, scratch []byte) (chainhash.Hash, []byte) {
	stripped := raw
	if tx.HasWitness() {
		body := tx.SerializeSizeStripped() - 8
		scratch = append(scratch[:0], raw[:4]...)
		scratch = append(scratch, raw[6:6+body]...)
		scratch = append(scratch, raw[len(raw)-4:]...)
		stripped = scratch
	}
	first := sha256.Sum256(stripped)
	return chainhash.Hash(sha256.Sum256(first[:])), scratch
}

// merkleRoot computes the merkle root of ids and reports whether the tree
// is mutated: two identical hashes side by side at some level, which lets
// an attacker add duplicate transactions without changing the root.
func merkleRoot(ids []chainhash.Hash) (chainhash.Hash, bool) {
	level := make([]chainhash.Hash, len(ids))
	copy(level, ids)
	mutated := false
	var pair [64]byte
	for len(level) > 1 {
		for i := 0; i+1 < len(level); i += 2 {
			if level[i] == level[i+1] {
				mutated = true
			}
		}
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:len(level)/2]
		for i := range next {
			copy(pair[:32], level[2*i][:])
			copy(pair[32:], level[2*i+1][:])
			first := sha256.Sum256(pair[:])
			next[i] = sha256.Sum256(first[:])
		}
		level = next
	}
	return level[0], mutated
}

// HashHex is the conventional (byte-reversed) hex form of a block or
// transaction hash.
func HashHex(h *chainhash.Hash) string {
	var out [64]byte
	putHashHex(out[:], h)
	return string(out[:])
}

func putHashHex(out []byte, h *chainhash.Hash) {
	const digits = "0123456789abcdef"
	for i := 0; i < 32; i++ {
		b := h[31-i]
		out[2*i] = digits[b>>4]
		out[2*i+1] = digits[b&15]
	}
}

// arena hands out strings carved from large byte chunks, so the tens of
// thousands of hashes and addresses of a block cost a few allocations.
// A string's bytes are written once, before the string is made, and never
// again; a chunk lives as long as any of its strings.
type arena struct{ buf []byte }

func (a *arena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, 64<<10))
	}
	start := len(a.buf)
	a.buf = a.buf[:start+n]
	return a.buf[start : start+n : start+n]
}

func (a *arena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b)) //nolint:gosec // b is written once, before this, and never again
}

func (a *arena) hashHex(h *chainhash.Hash) string {
	b := a.alloc(64)
	putHashHex(b, h)
	return a.string(b)
}

func (a *arena) hex(src []byte) string {
	b := a.alloc(hex.EncodedLen(len(src)))
	hex.Encode(b, src)
	return a.string(b)
}

// address classifies script and stores its address in the arena.
func (a *arena) address(script []byte, net *Network) (typ, addr string) {
	var buf [90]byte
	typ, enc := appendClassify(buf[:0], script, net)
	if len(enc) == 0 {
		return typ, ""
	}
	b := a.alloc(len(enc))
	copy(b, enc)
	return typ, a.string(b)
}

// BlockHash is the double SHA-256 of the 80-byte header of a raw block.
func BlockHash(raw []byte) (chainhash.Hash, error) {
	if len(raw) < wire.MaxBlockHeaderPayload {
		return chainhash.Hash{}, badBlock("%d bytes: shorter than a block header", len(raw))
	}
	return chainhash.DoubleHashH(raw[:wire.MaxBlockHeaderPayload]), nil
}

// Normalize decodes and checks a raw block (see DecodeBlock), checks that
// its hash is want (when want is not nil), and turns it into cordon's
// records for the block at height on net.
func Normalize(net *Network, height uint64, raw []byte, want *chainhash.Hash) (*chain.Block, error) {
	hash, err := BlockHash(raw)
	if err != nil {
		return nil, err
	}
	if want != nil && hash != *want {
		return nil, badBlock("header hashes to %s, asked for block %s", hash, want)
	}
	blk, locs, ids, err := DecodeBlock(raw)
	if err != nil {
		return nil, err
	}
	ar := &arena{buf: make([]byte, 0, 64*(2*len(locs)+2)+1024)}
	bh := ar.hashHex(&hash)
	hdr := chain.Header{Chain: chain.BTC, Network: net.Name, Height: height, Hash: bh,
		ParentHash: ar.hashHex(&blk.Header.PrevBlock), Time: blk.Header.Timestamp.Unix()}
	out := &chain.Block{Header: hdr, Size: len(raw), Version: blk.Header.Version, Bits: blk.Header.Bits,
		Transactions: make([]chain.Transaction, len(blk.Transactions))}
	nOut, nIn := 0, 0
	for _, tx := range blk.Transactions {
		nOut += len(tx.TxOut)
		nIn += len(tx.TxIn)
	}
	out.Outputs = make([]chain.Output, 0, nOut)
	addrs := make([]string, nOut)              // Output.Address points into it
	out.Spends = make([]chain.Spend, 0, nIn-1) // the coinbase input spends nothing
	strippedSize := wire.MaxBlockHeaderPayload + wire.VarIntSerializeSize(uint64(len(blk.Transactions)))
	for i, tx := range blk.Transactions {
		id := ar.hashHex(&ids[i])
		coinbase := i == 0
		size := locs[i].TxLen
		stripped := size
		if tx.HasWitness() {
			stripped = tx.SerializeSizeStripped()
		}
		strippedSize += stripped
		weight := stripped*3 + size
		var value uint64
		for v, o := range tx.TxOut {
			value += uint64(o.Value)
			typ, addr := ar.address(o.PkScript, net)
			rec := chain.Output{V: chain.SchemaVersion, Chain: chain.BTC, Network: net.Name, TxHash: id, TxIndex: uint32(i),
				Vout: uint32(v), ScriptType: typ, Amount: chain.AmountFromUint64In(uint64(o.Value), ar.alloc), Coinbase: coinbase,
				BlockHeight: height, BlockHash: bh, BlockTime: hdr.Time}
			if addr != "" {
				k := len(out.Outputs)
				addrs[k] = addr
				rec.Address = &addrs[k]
			} else if len(o.PkScript) <= chain.MaxRecordedScript {
				rec.Script = ar.hex(o.PkScript)
			}
			out.Outputs = append(out.Outputs, rec)
		}
		if value > btcutil.MaxSatoshi {
			return nil, badBlock("transaction %s outputs %d satoshi, more than the money supply", id, value)
		}
		if !coinbase {
			for v, in := range tx.TxIn {
				out.Spends = append(out.Spends, chain.Spend{V: chain.SchemaVersion, Chain: chain.BTC, Network: net.Name,
					TxHash: id, TxIndex: uint32(i), Vin: uint32(v), PrevTxHash: ar.hashHex(&in.PreviousOutPoint.Hash),
					PrevVout: in.PreviousOutPoint.Index, Sequence: in.Sequence, BlockHeight: height, BlockHash: bh, BlockTime: hdr.Time})
			}
		}
		out.Transactions[i] = chain.Transaction{V: chain.SchemaVersion, Chain: chain.BTC, Network: net.Name, Hash: id, Index: uint32(i),
			Value: chain.AmountFromUint64In(value, ar.alloc), Size: size, Weight: weight, VSize: (weight + 3) / 4, Version: tx.Version,
			LockTime: tx.LockTime, InputCount: len(tx.TxIn), OutputCount: len(tx.TxOut), Coinbase: coinbase,
			BlockHeight: height, BlockHash: bh, BlockTime: hdr.Time}
	}
	out.Weight = strippedSize*3 + len(raw)
	return out, nil
}
