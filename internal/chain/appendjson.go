package chain

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the output's JSON form, byte for byte what
// encoding/json produces, without reflection: Bitcoin blocks yield
// thousands of outputs each.
func (o *Output) AppendJSON(b []byte) []byte {
	b = appendRefHead(b, o.V, o.Chain, o.Network)
	b = o.appendFields(b)
	return appendBlockRef(b, o.BlockHeight, o.BlockHash, o.BlockTime)
}

// AppendJSON appends the spend's JSON form (see Output.AppendJSON).
func (s *Spend) AppendJSON(b []byte) []byte {
	b = appendRefHead(b, s.V, s.Chain, s.Network)
	b = s.appendFields(b)
	return appendBlockRef(b, s.BlockHeight, s.BlockHash, s.BlockTime)
}

// AppendItemJSON appends the output without the fields it shares with its
// block (v, chain, network, block_number, block_hash, block_time): the
// form of an item in a Kafka part record, whose frame carries those.
func (o *Output) AppendItemJSON(b []byte) []byte {
	return append(o.appendFields(append(b, '{')), '}')
}

// AppendItemJSON appends the spend without the fields it shares with its
// block (see Output.AppendItemJSON).
func (s *Spend) AppendItemJSON(b []byte) []byte {
	return append(s.appendFields(append(b, '{')), '}')
}

// appendFields appends the output's own fields, comma separated.
func (o *Output) appendFields(b []byte) []byte {
	b = appendStringField(b, `"tx_hash":`, o.TxHash)
	b = appendUintField(b, `,"tx_index":`, uint64(o.TxIndex))
	b = appendUintField(b, `,"vout":`, uint64(o.Vout))
	if o.Address == nil {
		b = append(b, `,"address":null`...)
	} else {
		b = appendStringField(b, `,"address":`, *o.Address)
	}
	b = appendStringField(b, `,"script_type":`, o.ScriptType)
	if o.Script != "" {
		b = appendStringField(b, `,"script":`, o.Script)
	}
	b = appendAmountField(b, `,"amount":`, o.Amount)
	b = append(b, `,"coinbase":`...)
	return strconv.AppendBool(b, o.Coinbase)
}

// appendFields appends the spend's own fields, comma separated.
func (s *Spend) appendFields(b []byte) []byte {
	b = appendStringField(b, `"tx_hash":`, s.TxHash)
	b = appendUintField(b, `,"tx_index":`, uint64(s.TxIndex))
	b = appendUintField(b, `,"vin":`, uint64(s.Vin))
	b = appendStringField(b, `,"prev_tx_hash":`, s.PrevTxHash)
	b = appendUintField(b, `,"prev_vout":`, uint64(s.PrevVout))
	return appendUintField(b, `,"sequence":`, uint64(s.Sequence))
}

// appendRefHead opens a record with the fields every record of a block
// starts with, ready for its own fields.
func appendRefHead(b []byte, v int, c Chain, network string) []byte {
	b = strconv.AppendInt(append(b, `{"v":`...), int64(v), 10)
	b = appendStringField(b, `,"chain":`, string(c))
	b = appendStringField(b, `,"network":`, network)
	return append(b, ',')
}

func appendBlockRef(b []byte, height uint64, hash string, t int64) []byte {
	b = append(b, `,"block_number":`...)
	b = strconv.AppendUint(b, height, 10)
	b = appendStringField(b, `,"block_hash":`, hash)
	b = append(b, `,"block_time":`...)
	b = strconv.AppendInt(b, t, 10)
	return append(b, '}')
}

func appendStringField(b []byte, name, s string) []byte {
	return appendJSONString(append(b, name...), s)
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json writes unescaped.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString quotes s as encoding/json does: control characters,
// quote and backslash escaped, <, > and & as \u003c \u003e \u0026, invalid
// UTF-8 as \ufffd, and U+2028, U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// BlockRef is what every record of a block shares: the schema version,
// chain, network and block.
type BlockRef struct {
	V       int
	Chain   Chain
	Network string
	Height  uint64
	Hash    string
	Time    int64
}

// SetBlock sets the fields the output shares with its block.
func (o *Output) SetBlock(r BlockRef) {
	o.V, o.Chain, o.Network, o.BlockHeight, o.BlockHash, o.BlockTime = r.V, r.Chain, r.Network, r.Height, r.Hash, r.Time
}

// SetBlock sets the fields the spend shares with its block.
func (s *Spend) SetBlock(r BlockRef) {
	s.V, s.Chain, s.Network, s.BlockHeight, s.BlockHash, s.BlockTime = r.V, r.Chain, r.Network, r.Height, r.Hash, r.Time
}

// SetBlock sets the fields the transaction shares with its block.
func (t *Transaction) SetBlock(r BlockRef) {
	t.V, t.Chain, t.Network, t.BlockHeight, t.BlockHash, t.BlockTime = r.V, r.Chain, r.Network, r.Height, r.Hash, r.Time
}

// SetBlock sets the fields the transfer shares with its block.
func (t *Transfer) SetBlock(r BlockRef) {
	t.V, t.Chain, t.Network, t.BlockHeight, t.BlockHash, t.BlockTime = r.V, r.Chain, r.Network, r.Height, r.Hash, r.Time
}

func appendAmountField(b []byte, name string, a Amount) []byte {
	b = append(append(b, name...), '"')
	return append(append(b, a.String()...), '"')
}

func appendUintField(b []byte, name string, v uint64) []byte {
	return strconv.AppendUint(append(b, name...), v, 10)
}

// AppendItemJSON appends the transaction without the fields it shares with
// its block (see Output.AppendItemJSON); zero chain-specific fields are
// left out as in its JSON form.
func (t *Transaction) AppendItemJSON(b []byte) []byte {
	b = appendStringField(append(b, '{'), `"hash":`, t.Hash)
	b = appendUintField(b, `,"index":`, uint64(t.Index))
	if t.From != "" {
		b = appendStringField(b, `,"from":`, t.From)
	}
	if t.To != "" {
		b = appendStringField(b, `,"to":`, t.To)
	}
	b = appendAmountField(b, `,"value":`, t.Value)
	if t.Fee == nil {
		b = append(b, `,"fee":null`...)
	} else {
		b = appendAmountField(b, `,"fee":`, *t.Fee)
	}
	if t.Nonce != 0 {
		b = appendUintField(b, `,"nonce":`, t.Nonce)
	}
	if t.Gas != 0 {
		b = appendUintField(b, `,"gas":`, t.Gas)
	}
	if t.GasUsed != 0 {
		b = appendUintField(b, `,"gas_used":`, t.GasUsed)
	}
	if !t.GasPrice.IsZero() {
		b = appendAmountField(b, `,"gas_price":`, t.GasPrice)
	}
	if t.Type != 0 {
		b = appendUintField(b, `,"tx_type":`, uint64(t.Type))
	}
	if t.Status == nil {
		b = append(b, `,"status":null`...)
	} else {
		b = appendUintField(b, `,"status":`, uint64(*t.Status))
	}
	if t.ContractAddress != "" {
		b = appendStringField(b, `,"contract_address":`, t.ContractAddress)
	}
	if t.MethodID != "" {
		b = appendStringField(b, `,"method_id":`, t.MethodID)
	}
	for _, f := range [...]struct {
		name string
		v    int
	}{{`,"input_size":`, t.InputSize}, {`,"log_count":`, t.LogCount}, {`,"size":`, t.Size}, {`,"vsize":`, t.VSize}, {`,"weight":`, t.Weight}} {
		if f.v != 0 {
			b = strconv.AppendInt(append(b, f.name...), int64(f.v), 10)
		}
	}
	if t.Version != 0 {
		b = strconv.AppendInt(append(b, `,"version":`...), int64(t.Version), 10)
	}
	if t.LockTime != 0 {
		b = appendUintField(b, `,"locktime":`, uint64(t.LockTime))
	}
	if t.InputCount != 0 {
		b = strconv.AppendInt(append(b, `,"input_count":`...), int64(t.InputCount), 10)
	}
	if t.OutputCount != 0 {
		b = strconv.AppendInt(append(b, `,"output_count":`...), int64(t.OutputCount), 10)
	}
	if t.Coinbase {
		b = append(b, `,"coinbase":true`...)
	}
	return append(b, '}')
}

// AppendItemJSON appends the transfer without the fields it shares with
// its block (see Output.AppendItemJSON).
func (t *Transfer) AppendItemJSON(b []byte) []byte {
	b = appendStringField(append(b, '{'), `"asset":`, t.Asset)
	b = appendStringField(b, `,"standard":`, t.Standard)
	b = appendStringField(b, `,"tx_hash":`, t.TxHash)
	b = appendUintField(b, `,"tx_index":`, uint64(t.TxIndex))
	if t.LogIndex == nil {
		b = append(b, `,"log_index":null`...)
	} else {
		b = appendUintField(b, `,"log_index":`, uint64(*t.LogIndex))
	}
	b = appendStringField(b, `,"from":`, t.From)
	b = appendStringField(b, `,"to":`, t.To)
	b = appendAmountField(b, `,"amount":`, t.Amount)
	if t.TokenID != "" {
		b = appendStringField(b, `,"token_id":`, t.TokenID)
	}
	return append(b, '}')
}
