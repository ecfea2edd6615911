package party

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"
)

// KeygenTimeout bounds Keygen when ctx has no earlier deadline.
const KeygenTimeout = 5 * time.Minute

// DefaultIDs are the party ids Keygen gives when none are asked for.
var DefaultIDs = []string{"p0", "p1", "p2"}

// Keygen runs tss-lib's 2-of-3 key generation among three parties in
// this process, one per pre-parameter set, with the given party ids (nil:
// DefaultIDs). Their messages go through the same envelopes and boundary
// checks as a signing session's. The shares' KeyID is DefaultKeyID of
// the group key. Pre-parameters are secret: each party's Paillier key.
func Keygen(ctx context.Context, preparams [Parties]*keygen.LocalPreParams, ids []string) ([Parties]Share, error) {
	return keygenWith(ctx, preparams, ids, nil)
}

func keygenWith(ctx context.Context, preparams [Parties]*keygen.LocalPreParams, ids []string, hook wireHook) ([Parties]Share, error) {
	var shares [Parties]Share
	if ids == nil {
		ids = DefaultIDs
	}
	if err := validateIDs(ids); err != nil {
		return shares, fmt.Errorf("keygen: %w", err)
	}
	ids = slices.Clone(ids)
	for i, pp := range preparams {
		if pp == nil || !pp.ValidateWithProof() {
			return shares, fmt.Errorf("keygen: pre-parameters %d are incomplete (Paillier key, NTilde, h1, h2, safe primes)", i)
		}
	}
	// Fresh ed25519 keys authenticate the parties to each other, in this
	// ceremony and in every signing after it.
	auth := make([]ed25519.PrivateKey, Parties)
	pubs := make([]ed25519.PublicKey, Parties)
	for i := range auth {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return shares, fmt.Errorf("keygen: %w", err)
		}
		auth[i], pubs[i] = priv, pub
	}
	sid := make([]byte, 32)
	if _, err := rand.Read(sid); err != nil {
		return shares, fmt.Errorf("keygen: %w", err)
	}
	sessionID := "keygen-" + hex.EncodeToString(sid)

	ctx, cancel := context.WithTimeoutCause(ctx, KeygenTimeout, ErrTimeout)
	defer cancel()
	pids := sortedPartyIDs(ids, []int{0, 1, 2})
	binding := bind("cordon/threshold/keygen/v1", []byte(ids[0]), []byte(ids[1]), []byte(ids[2]))
	router := newMemRouter(ids)
	type result struct {
		i    int
		data *keygen.LocalPartySaveData
		err  error
	}
	results := make(chan result, Parties)
	for i := range Parties {
		go func() {
			peers := map[string]ed25519.PublicKey{}
			for j, id := range ids {
				if j != i {
					peers[id] = pubs[j]
				}
			}
			params := tss.NewParameters(tss.S256(), tss.NewPeerContext(pids), pids[i], Parties, Threshold)
			out := make(chan tss.Message, outBuffer)
			end := make(chan *keygen.LocalPartySaveData, 1)
			p := keygen.NewLocalParty(params, out, end, *preparams[i])
			t := &transport{
				ch:       router.channel(ids[i]),
				sess:     newSession(sessionID, binding, ids[i], auth[i], peers),
				boundary: newBoundary(protoKeygen, ids[i], nil),
				ids:      byID(pids),
				hook:     hook,
			}
			data, err := runParty(ctx, p, out, end, t)
			if err != nil {
				cancel() // the others cannot finish without this one
			}
			results <- result{i: i, data: data, err: err}
		}()
	}
	var errs []error
	for range Parties {
		r := <-results
		if r.err != nil {
			errs = append(errs, fmt.Errorf("party %s: %w", ids[r.i], r.err))
			continue
		}
		shares[r.i] = Share{
			ID:        ids[r.i],
			Index:     r.i,
			Threshold: Threshold,
			Parties:   ids,
			Data:      *r.data,
			AuthKeys:  pubs,
			authKey:   auth[r.i],
		}
	}
	if len(errs) > 0 {
		return [Parties]Share{}, fmt.Errorf("keygen: %w", errors.Join(errs...))
	}
	gk, err := compressed(&shares[0].Data)
	if err != nil {
		return [Parties]Share{}, fmt.Errorf("keygen: group key: %w", err)
	}
	for i := range shares {
		shares[i].GroupKey = gk
		shares[i].KeyID = DefaultKeyID(gk)
		if err := shares[i].validate(); err != nil {
			return [Parties]Share{}, fmt.Errorf("keygen: share %s: %w", ids[i], err)
		}
	}
	return shares, nil
}

// sortedPartyIDs are tss-lib's ids of the parties at the given indices
// of ids (key index+1), sorted as tss-lib sorts them (by key).
func sortedPartyIDs(ids []string, indices []int) tss.SortedPartyIDs {
	u := make(tss.UnSortedPartyIDs, 0, len(indices))
	for _, i := range indices {
		u = append(u, tss.NewPartyID(ids[i], ids[i], partyKey(i)))
	}
	return tss.SortPartyIDs(u)
}

func byID(pids tss.SortedPartyIDs) map[string]*tss.PartyID {
	m := make(map[string]*tss.PartyID, len(pids))
	for _, p := range pids {
		m[p.Id] = p
	}
	return m
}

// LoadPreParams reads one set of pre-parameters (keygen.LocalPreParams
// as encoding/json writes it).
func LoadPreParams(path string) (*keygen.LocalPreParams, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator's pre-parameter file
	if err != nil {
		return nil, fmt.Errorf("load pre-parameters: %w", err)
	}
	var pp keygen.LocalPreParams
	if err := json.Unmarshal(b, &pp); err != nil {
		return nil, fmt.Errorf("load pre-parameters %s: %w", path, err)
	}
	if !pp.ValidateWithProof() {
		return nil, fmt.Errorf("load pre-parameters %s: incomplete (Paillier key, NTilde, h1, h2, safe primes)", path)
	}
	if pp.PaillierSK.N.BitLen() != 2048 || pp.NTildei.BitLen() != 2048 {
		return nil, fmt.Errorf("load pre-parameters %s: Paillier modulus or NTilde not 2048 bits", path)
	}
	return &pp, nil
}

// LoadPreParamsDir reads dir/preparams-{0,1,2}.json.
func LoadPreParamsDir(dir string) ([Parties]*keygen.LocalPreParams, error) {
	var pps [Parties]*keygen.LocalPreParams
	for i := range pps {
		pp, err := LoadPreParams(filepath.Join(dir, fmt.Sprintf("preparams-%d.json", i)))
		if err != nil {
			return pps, err
		}
		pps[i] = pp
	}
	for i, a := range pps {
		for j, b := range pps[:i] {
			if a.PaillierSK.N.Cmp(b.PaillierSK.N) == 0 {
				return pps, fmt.Errorf("load pre-parameters: sets %d and %d are the same", j, i)
			}
		}
	}
	return pps, nil
}

// WritePreParams writes pp to path (0600, never over an existing file).
func WritePreParams(path string, pp *keygen.LocalPreParams) error {
	b, err := json.Marshal(pp)
	if err != nil {
		return err
	}
	return writeNew(path, b)
}
