package txcheck

import (
	"errors"
	"fmt"
)

// Refusal codes: why an unsigned transaction does not match the
// approved intent. Each names one check of the second risk layer.
const (
	CodeMalformed   = "malformed"    // not a strict encoding: bad lengths, trailing bytes, non-canonical integers
	CodeChain       = "chain"        // another chain, network or chain id
	CodeDestination = "destination"  // pays someone the intent does not name
	CodeAmount      = "amount"       // another amount
	CodeAsset       = "asset"        // another asset (a token contract not the intent's, value on a token call)
	CodeCall        = "call"         // calldata that is not exactly the intent's transfer (another function, trailing bytes, a contract call)
	CodeFee         = "fee"          // a fee, fee rate, gas limit or tip above its cap
	CodeChange      = "change"       // change to a script that is not the wallet's own
	CodeInput       = "input"        // an input whose amount or script the previous transaction does not confirm
	CodeExtraOutput = "extra_output" // an output no intent and no change accounts for
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("transaction refused")

// Refusal is why a transaction was refused: its code and what was found.
type Refusal struct {
	Code string
	Err  error
}

func (r *Refusal) Error() string { return fmt.Sprintf("%s: %s: %v", ErrRefused, r.Code, r.Err) }

// Unwrap lets errors.Is find ErrRefused and the cause.
func (r *Refusal) Unwrap() []error { return []error{ErrRefused, r.Err} }

func refuse(code, format string, a ...any) *Refusal {
	return &Refusal{Code: code, Err: fmt.Errorf(format, a...)}
}

// CodeOf is err's refusal code ("" when err is not a refusal).
func CodeOf(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}
