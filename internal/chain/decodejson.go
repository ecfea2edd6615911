package chain

import (
	"encoding/json"
	"math"
)

// Fast decoding of the records the watchers write. The consumers' hot path
// (the ClickHouse loader, crediting) spends most of its CPU in
// encoding/json; these decoders handle the plain form cordon itself writes
// — known keys, ASCII strings without escapes, non-negative integers —
// and hand anything else to encoding/json, so the result (and every
// error) is always exactly encoding/json's.

// lexer reads the plain JSON subset.
type lexer struct {
	b []byte
	i int
}

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// byte1 consumes c (after whitespace).
func (l *lexer) byte1(c byte) bool {
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// rawStr returns the bytes of a string of printable ASCII without escapes.
func (l *lexer) rawStr() ([]byte, bool) {
	if !l.byte1('"') {
		return nil, false
	}
	start := l.i
	for l.i < len(l.b) {
		c := l.b[l.i]
		switch {
		case c == '"':
			l.i++
			return l.b[start : l.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		l.i++
	}
	return nil, false
}

func (l *lexer) str() (string, bool) {
	b, ok := l.rawStr()
	return string(b), ok
}

// uint reads a non-negative integer of at most 19 digits.
func (l *lexer) uint() (uint64, bool) {
	l.ws()
	start := l.i
	var v uint64
	for l.i < len(l.b) && l.b[l.i] >= '0' && l.b[l.i] <= '9' {
		v = v*10 + uint64(l.b[l.i]-'0')
		l.i++
	}
	n := l.i - start
	if n == 0 || n > 19 || (n > 1 && l.b[start] == '0') {
		return 0, false
	}
	if l.i < len(l.b) {
		switch l.b[l.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return v, true
}

func (l *lexer) u32() (uint32, bool) {
	v, ok := l.uint()
	return uint32(v), ok && v <= math.MaxUint32
}

func (l *lexer) i64() (int64, bool) {
	v, ok := l.uint()
	return int64(v), ok && v <= math.MaxInt64
}

func (l *lexer) int() (int, bool) {
	v, ok := l.uint()
	return int(v), ok && v <= math.MaxInt32
}

// lit consumes the literal s (null, true, false).
func (l *lexer) lit(s string) bool {
	l.ws()
	if len(l.b)-l.i >= len(s) && string(l.b[l.i:l.i+len(s)]) == s {
		l.i += len(s)
		return true
	}
	return false
}

func (l *lexer) boolean() (bool, bool) {
	if l.lit("true") {
		return true, true
	}
	return false, l.lit("false")
}

func (l *lexer) amount() (Amount, bool) {
	s, ok := l.str()
	if !ok {
		return Amount{}, false
	}
	a, err := ParseAmount(s)
	return a, err == nil
}

// object reads an object whose every key field knows; field reports
// false for a key it does not know or a value it declines.
func (l *lexer) object(field func(key []byte) bool) bool {
	if !l.byte1('{') {
		return false
	}
	if l.byte1('}') {
		return l.end()
	}
	for {
		key, ok := l.rawStr()
		if !ok || !l.byte1(':') || !field(key) {
			return false
		}
		if l.byte1(',') {
			continue
		}
		return l.byte1('}') && l.end()
	}
}

func (l *lexer) end() bool {
	l.ws()
	return l.i == len(l.b)
}

// decodeFast decodes b with fast, or with encoding/json when fast
// declines.
func decodeFast(b []byte, v any, fast func(l *lexer) bool) error {
	if fast(&lexer{b: b}) {
		return nil
	}
	return json.Unmarshal(b, v)
}

// DecodeJSON decodes a transfer record (full or item form) exactly as
// encoding/json does, faster for the form cordon writes.
func (t *Transfer) DecodeJSON(b []byte) error {
	return decodeFast(b, t, func(l *lexer) bool {
		var v Transfer
		ok := l.object(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "v":
				v.V, ok = l.int()
			case "chain":
				var s string
				s, ok = l.str()
				v.Chain = Chain(s)
			case "network":
				v.Network, ok = l.str()
			case "asset":
				v.Asset, ok = l.str()
			case "standard":
				v.Standard, ok = l.str()
			case "tx_hash":
				v.TxHash, ok = l.str()
			case "tx_index":
				v.TxIndex, ok = l.u32()
			case "log_index":
				if l.lit("null") {
					v.LogIndex, ok = nil, true
					break
				}
				var x uint32
				x, ok = l.u32()
				v.LogIndex = &x
			case "from":
				v.From, ok = l.str()
			case "to":
				v.To, ok = l.str()
			case "amount":
				v.Amount, ok = l.amount()
			case "token_id":
				v.TokenID, ok = l.str()
			case "block_number":
				v.BlockHeight, ok = l.uint()
			case "block_hash":
				v.BlockHash, ok = l.str()
			case "block_time":
				v.BlockTime, ok = l.i64()
			}
			return ok
		})
		if ok {
			*t = v
		}
		return ok
	})
}

// DecodeJSON decodes an output record (full or item form) exactly as
// encoding/json does, faster for the form cordon writes.
func (o *Output) DecodeJSON(b []byte) error {
	return decodeFast(b, o, func(l *lexer) bool {
		var v Output
		ok := l.object(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "v":
				v.V, ok = l.int()
			case "chain":
				var s string
				s, ok = l.str()
				v.Chain = Chain(s)
			case "network":
				v.Network, ok = l.str()
			case "tx_hash":
				v.TxHash, ok = l.str()
			case "tx_index":
				v.TxIndex, ok = l.u32()
			case "vout":
				v.Vout, ok = l.u32()
			case "address":
				if l.lit("null") {
					v.Address, ok = nil, true
					break
				}
				var s string
				s, ok = l.str()
				v.Address = &s
			case "script_type":
				v.ScriptType, ok = l.str()
			case "script":
				v.Script, ok = l.str()
			case "amount":
				v.Amount, ok = l.amount()
			case "coinbase":
				v.Coinbase, ok = l.boolean()
			case "block_number":
				v.BlockHeight, ok = l.uint()
			case "block_hash":
				v.BlockHash, ok = l.str()
			case "block_time":
				v.BlockTime, ok = l.i64()
			}
			return ok
		})
		if ok {
			*o = v
		}
		return ok
	})
}

// DecodeJSON decodes a spend record (full or item form) exactly as
// encoding/json does, faster for the form cordon writes.
func (s *Spend) DecodeJSON(b []byte) error {
	return decodeFast(b, s, func(l *lexer) bool {
		var v Spend
		ok := l.object(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "v":
				v.V, ok = l.int()
			case "chain":
				var c string
				c, ok = l.str()
				v.Chain = Chain(c)
			case "network":
				v.Network, ok = l.str()
			case "tx_hash":
				v.TxHash, ok = l.str()
			case "tx_index":
				v.TxIndex, ok = l.u32()
			case "vin":
				v.Vin, ok = l.u32()
			case "prev_tx_hash":
				v.PrevTxHash, ok = l.str()
			case "prev_vout":
				v.PrevVout, ok = l.u32()
			case "sequence":
				v.Sequence, ok = l.u32()
			case "block_number":
				v.BlockHeight, ok = l.uint()
			case "block_hash":
				v.BlockHash, ok = l.str()
			case "block_time":
				v.BlockTime, ok = l.i64()
			}
			return ok
		})
		if ok {
			*s = v
		}
		return ok
	})
}
