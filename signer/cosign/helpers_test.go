package cosign

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/plugins/sdk"
	"github.com/cordonhq/cordon/plugins/threshold/party"
)

var (
	sharesOnce sync.Once
	testShares [party.Parties]party.Share
	sharesErr  error
)

// shares runs the key ceremony once per test binary from the threshold
// plugin's committed test pre-parameters.
func shares(tb testing.TB) *[party.Parties]party.Share {
	tb.Helper()
	sharesOnce.Do(func() {
		pps, err := party.LoadPreParamsDir(preParamsDir)
		if err != nil {
			sharesErr = err
			return
		}
		testShares, sharesErr = party.Keygen(context.Background(), pps, nil)
	})
	require.NoError(tb, sharesErr)
	return &testShares
}

const preParamsDir = "../../plugins/threshold/party/testdata"

// inProcess is a Group over the three shares, each possibly wrapped.
func inProcess(tb testing.TB, wrap map[string]func(sdk.Cosigner) sdk.Cosigner, opts ...Option) *Group {
	tb.Helper()
	ss := shares(tb)
	parties := map[string]sdk.Cosigner{}
	for i := range ss {
		var c sdk.Cosigner = &ss[i]
		if w := wrap[ss[i].ID]; w != nil {
			c = w(c)
		}
		parties[ss[i].ID] = c
	}
	g, err := New(ss[0].KeyID, ss[0].GroupKey, parties, nil, opts...)
	require.NoError(tb, err)
	return g
}

func randomDigest(tb testing.TB) [32]byte {
	tb.Helper()
	var d [32]byte
	_, err := rand.Read(d[:])
	require.NoError(tb, err)
	return d
}

// unhealthy is a cosigner whose plugin is down.
type unhealthy struct{ sdk.Cosigner }

func (unhealthy) Healthy() bool { return false }

// failing fails every Cosign, and counts them and their sessions.
type failing struct {
	calls    atomic.Int32
	mu       sync.Mutex
	sessions []string
}

var errBroken = errors.New("test: broken party")

func (f *failing) Cosign(_ context.Context, req sdk.CosignRequest, _ sdk.Channel) (sdk.Signature, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.sessions = append(f.sessions, req.Session)
	f.mu.Unlock()
	return sdk.Signature{}, errBroken
}

// recording remembers the sessions it took part in.
type recording struct {
	sdk.Cosigner
	mu       sync.Mutex
	sessions []string
}

func (r *recording) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	r.mu.Lock()
	r.sessions = append(r.sessions, req.Session)
	r.mu.Unlock()
	return r.Cosigner.Cosign(ctx, req, ch)
}

// editing changes the signature its cosigner returns.
type editing struct {
	sdk.Cosigner
	edit func(*sdk.Signature)
}

func (e editing) Cosign(ctx context.Context, req sdk.CosignRequest, ch sdk.Channel) (sdk.Signature, error) {
	sig, err := e.Cosigner.Cosign(ctx, req, ch)
	if err == nil {
		e.edit(&sig)
	}
	return sig, err
}

// fixed returns sig without taking part in any session.
type fixed struct{ sig sdk.Signature }

func (f fixed) Cosign(context.Context, sdk.CosignRequest, sdk.Channel) (sdk.Signature, error) {
	return f.sig, nil
}
