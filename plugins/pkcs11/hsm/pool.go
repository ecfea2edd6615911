package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ErrClosed is returned by a Signer's methods once it is closed.
var ErrClosed = errors.New("pkcs11: signer closed")

// pool holds a fixed number of sessions on one token. Each entry in free
// is a session or a broken one (ok false) waiting to be reopened by its
// next user, so the pool never grows or shrinks.
type pool struct {
	ctx  *pkcs11.Ctx
	slot uint
	pin  string
	free chan *session
	done chan struct{}
	size int
}

type session struct {
	h  pkcs11.SessionHandle
	ok bool
}

func newPool(ctx *pkcs11.Ctx, slot uint, pin string, size int) (*pool, error) {
	p := &pool{ctx: ctx, slot: slot, pin: pin, free: make(chan *session, size), done: make(chan struct{}), size: size}
	for range size {
		s := &session{}
		if err := p.open(s); err != nil {
			close(p.free)
			for s := range p.free {
				_ = ctx.CloseSession(s.h)
			}
			return nil, err
		}
		p.free <- s
	}
	return p, nil
}

// open opens s's session and makes sure the user is logged in: login is
// per token, so it is done by the first session and holds for the rest
// while any stays open.
func (p *pool) open(s *session) error {
	h, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	info, err := p.ctx.GetSessionInfo(h)
	if err != nil {
		_ = p.ctx.CloseSession(h)
		return fmt.Errorf("C_GetSessionInfo: %w", err)
	}
	if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
		err := p.ctx.Login(h, pkcs11.CKU_USER, p.pin)
		switch {
		case err == nil, errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)):
		case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
			_ = p.ctx.CloseSession(h)
			return fmt.Errorf("C_Login: the PIN in -pin-file is wrong: %w", err)
		case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
			_ = p.ctx.CloseSession(h)
			return fmt.Errorf("C_Login: the token's user PIN is locked: %w", err)
		default:
			_ = p.ctx.CloseSession(h)
			return fmt.Errorf("C_Login: %w", err)
		}
	}
	s.h, s.ok = h, true
	return nil
}

// get waits for a session, or for ctx or the pool's end.
func (p *pool) get(ctx context.Context) (*session, error) {
	select {
	case <-p.done:
		return nil, ErrClosed
	default:
	}
	select {
	case s := <-p.free:
		select {
		case <-p.done:
			p.free <- s
			return nil, ErrClosed
		default:
		}
		if !s.ok {
			if err := p.open(s); err != nil {
				p.free <- s
				return nil, fmt.Errorf("reopen session: %w", err)
			}
		}
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
}

// put returns s; when err says the session is gone, s is closed and
// left for its next user to reopen.
func (p *pool) put(s *session, err error) {
	if err != nil && sessionLost(err) {
		_ = p.ctx.CloseSession(s.h)
		s.ok = false
	}
	p.free <- s
}

// sessionLost reports whether err means the session (not the request)
// is unusable.
func sessionLost(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_OPERATION_ACTIVE, pkcs11.CKR_GENERAL_ERROR:
		return true
	}
	return false
}

// closeAll ends the pool: it waits for every session to come back from
// its user and closes it. It is called once.
func (p *pool) closeAll() {
	close(p.done)
	for range p.size {
		if s := <-p.free; s.ok {
			_ = p.ctx.CloseSession(s.h)
		}
	}
}
