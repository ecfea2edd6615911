package hsm

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is initialized once per process: every Signer on the
// same module shares one loaded library, finalized when the last closes.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int
	// owned: this process initialized the library, so it finalizes it.
	owned bool
}

func openModule(path string) (*module, error) {
	modules.Lock()
	defer modules.Unlock()
	if m := modules.m[path]; m != nil {
		m.refs++
		return m, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("-module: %w", err)
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("-module: %s: cannot load it as a PKCS#11 library", path)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("-module: %s: C_Initialize: %w", path, err)
		}
		owned = false
	}
	m := &module{path: path, ctx: ctx, refs: 1, owned: owned}
	modules.m[path] = m
	return m, nil
}

func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules.m, m.path)
	if m.owned {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}

// findSlot returns the slot of the token cfg names.
func findSlot(ctx *pkcs11.Ctx, cfg Config) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %w", err)
	}
	if cfg.HasSlot {
		for _, s := range slots {
			if s == cfg.Slot {
				return s, nil
			}
		}
		return 0, fmt.Errorf("-slot: no token in slot %d", cfg.Slot)
	}
	var found []uint
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			return 0, fmt.Errorf("C_GetTokenInfo(slot %d): %w", s, err)
		}
		if ti.Label == cfg.TokenLabel && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("-token-label: no initialized token labelled %q", cfg.TokenLabel)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("-token-label: %d tokens labelled %q; select one with -slot", len(found), cfg.TokenLabel)
	}
}
