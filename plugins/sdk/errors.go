package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signerpb "github.com/cordonhq/cordon/plugins/sdk/proto"
)

// Error kinds in a status's signerpb.ErrorDetail.
const (
	kindUnknownKey = "unknown_key"
	kindRefused    = "refused"
	kindBadRequest = "bad_request"
)

// toStatus is the plugin side's mapping of an error to a gRPC status:
// the sdk errors get their code (NotFound, PermissionDenied,
// InvalidArgument) and an ErrorDetail naming them; context errors their
// own codes; anything else is Internal. The message is err's text.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	var kind string
	switch {
	case errors.Is(err, ErrUnknownKey):
		code, kind = codes.NotFound, kindUnknownKey
	case errors.Is(err, ErrRefused):
		code, kind = codes.PermissionDenied, kindRefused
	case errors.Is(err, ErrBadRequest):
		code, kind = codes.InvalidArgument, kindBadRequest
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
	st, derr := status.New(code, err.Error()).WithDetails(&signerpb.ErrorDetail{Kind: kind})
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// fromStatus is the host side's mapping back: an ErrorDetail (or, from a
// plugin that sends none, the code alone) becomes the sdk error, wrapped
// with the plugin's message, so that errors.Is works; Canceled and
// DeadlineExceeded wrap the context errors. Anything else (Unavailable
// when the process died, Internal) stays a plain error: it is none of
// the sdk's, and the caller fails closed on it.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if e, ok := d.(*signerpb.ErrorDetail); ok {
			switch e.GetKind() {
			case kindUnknownKey:
				return wrapMessage(ErrUnknownKey, st.Message())
			case kindRefused:
				return wrapMessage(ErrRefused, st.Message())
			case kindBadRequest:
				return wrapMessage(ErrBadRequest, st.Message())
			}
		}
	}
	switch st.Code() {
	case codes.NotFound:
		return wrapMessage(ErrUnknownKey, st.Message())
	case codes.PermissionDenied:
		return wrapMessage(ErrRefused, st.Message())
	case codes.InvalidArgument:
		return wrapMessage(ErrBadRequest, st.Message())
	case codes.Canceled:
		return fmt.Errorf("plugin: %s: %w", st.Message(), context.Canceled)
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin: %s: %w", st.Message(), context.DeadlineExceeded)
	}
	return fmt.Errorf("plugin: %s: %s", st.Code(), st.Message())
}

// wrapMessage keeps the plugin's message (which usually starts with the
// sentinel's own text) and the sentinel for errors.Is.
func wrapMessage(sentinel error, msg string) error {
	if msg == "" || msg == sentinel.Error() {
		return sentinel
	}
	return &remoteError{sentinel: sentinel, msg: msg}
}

type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
