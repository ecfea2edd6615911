package party

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/cordonhq/cordon/plugins/sdk"
)

// recorded is one honest wire message a party sent.
type recorded struct {
	from      string
	to        []string
	broadcast bool
	wire      []byte
}

type fixture struct {
	preparams [Parties]*keygen.LocalPreParams
	shares    [Parties]Share
	keygenMu  sync.Mutex
	keygen    map[string][]recorded // by tss message type
	dur       time.Duration
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// shares runs the key ceremony once per test binary, from the committed
// pre-parameters, recording every message sent.
func shares(tb testing.TB) *fixture {
	tb.Helper()
	fixOnce.Do(func() {
		f := &fixture{keygen: map[string][]recorded{}}
		f.preparams, fixErr = LoadPreParamsDir("testdata")
		if fixErr != nil {
			return
		}
		start := time.Now()
		f.shares, fixErr = keygenWith(context.Background(), f.preparams, nil, f.recordKeygen)
		f.dur = time.Since(start)
		fix = f
	})
	require.NoError(tb, fixErr)
	return fix
}

func (f *fixture) recordKeygen(from string, to []string, broadcast bool, wire []byte) []byte {
	f.keygenMu.Lock()
	defer f.keygenMu.Unlock()
	typ := wireType(wire)
	f.keygen[typ] = append(f.keygen[typ], recorded{from: from, to: to, broadcast: broadcast, wire: wire})
	return wire
}

// find is the first recorded message of type typ from from (to to, when
// not empty).
func find(tb testing.TB, msgs map[string][]recorded, typ, from, to string) recorded {
	tb.Helper()
	for _, r := range msgs[typ] {
		if r.from == from && (to == "" || (len(r.to) == 1 && r.to[0] == to)) {
			return r
		}
	}
	tb.Fatalf("no %s from %s to %q recorded", typ, from, to)
	return recorded{}
}

// wireType is the tss message type of wire.
func wireType(wire []byte) string {
	var a anypb.Any
	if err := proto.Unmarshal(wire, &a); err != nil {
		return "?"
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return "?"
	}
	return string(proto.MessageName(m))
}

// tamper decodes wire's content as T, lets f change it, and encodes it
// again.
func tamper[T proto.Message](tb testing.TB, wire []byte, f func(T)) []byte {
	tb.Helper()
	var a anypb.Any
	require.NoError(tb, proto.Unmarshal(wire, &a))
	m, err := a.UnmarshalNew()
	require.NoError(tb, err)
	c, ok := m.(T)
	require.True(tb, ok, "wire message is a %T", m)
	f(c)
	b, err := anypb.New(c)
	require.NoError(tb, err)
	out, err := proto.Marshal(b)
	require.NoError(tb, err)
	return out
}

// parsed is wire as tss-lib parses it, from party from of pids.
func parsed(tb testing.TB, r recorded, pids tss.SortedPartyIDs) tss.ParsedMessage {
	tb.Helper()
	m, err := tss.ParseWireMessage(r.wire, byID(pids)[r.from], r.broadcast)
	require.NoError(tb, err)
	return m
}

func newSessionID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return hex.EncodeToString(b)
}

// cosignResult is one party's end of a session.
type cosignResult struct {
	sig sdk.Signature
	err error
}

// testParty changes one party of runSession.
type testParty struct {
	opts    cosignOptions
	session string                        // another session id than the others'
	wrap    func(sdk.Channel) sdk.Channel // around the party's channel
}

// runSession runs one signing session among the given shares over a
// memRouter and returns each party's result by id.
func runSession(tb testing.TB, ss []*Share, parties []string, digest [32]byte, tp map[string]testParty) map[string]cosignResult {
	tb.Helper()
	sid := newSessionID(tb)
	router := newMemRouter(parties)
	var mu sync.Mutex
	out := map[string]cosignResult{}
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := tp[s.ID]
			if p.opts.timeout == 0 {
				p.opts.timeout = 30 * time.Second
			}
			req := sdk.CosignRequest{Session: sid, KeyID: s.KeyID, Digest: digest, Parties: parties}
			if p.session != "" {
				req.Session = p.session
			}
			ch := router.channel(s.ID)
			if p.wrap != nil {
				ch = p.wrap(ch)
			}
			sig, err := s.cosign(context.Background(), req, ch, p.opts)
			mu.Lock()
			out[s.ID] = cosignResult{sig: sig, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// tss message types the tests tamper with.
type signingR1M1 = signing.SignRound1Message1

const (
	typeSignR1M1 = "binance.tsslib.ecdsa.signing.SignRound1Message1"
	typeSignR2   = "binance.tsslib.ecdsa.signing.SignRound2Message"
	typeKGR1     = "binance.tsslib.ecdsa.keygen.KGRound1Message"
	typeKGR2M2   = "binance.tsslib.ecdsa.keygen.KGRound2Message2"
)
