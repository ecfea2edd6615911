package party

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"
)

func TestKeygen(t *testing.T) {
	f := shares(t)
	t.Logf("keygen from the committed pre-parameters took %v", f.dur)
	for i, s := range f.shares {
		require.Equal(t, DefaultIDs[i], s.ID)
		require.Equal(t, i, s.Index)
		require.Equal(t, f.shares[0].GroupKey, s.GroupKey, "one group key")
		require.Equal(t, DefaultKeyID(s.GroupKey), s.KeyID)
		_, err := btcec.ParsePubKey(s.GroupKey)
		require.NoError(t, err)
		require.NoError(t, s.validate())
	}
	// Every message of the ceremony went through the envelopes and the
	// boundary: keygen's four types were all sent.
	for _, typ := range []string{typeKGR1, typeKGR2M2, "binance.tsslib.ecdsa.keygen.KGRound2Message1", "binance.tsslib.ecdsa.keygen.KGRound3Message"} {
		require.NotEmpty(t, f.keygen[typ], typ)
	}
}

func TestKeygenRefuses(t *testing.T) {
	f := shares(t)
	_, err := Keygen(context.Background(), [Parties]*keygen.LocalPreParams{f.preparams[0], f.preparams[1], nil}, nil)
	require.ErrorContains(t, err, "pre-parameters 2 are incomplete")
	_, err = Keygen(context.Background(), f.preparams, []string{"p0", "p0", "p1"})
	require.ErrorContains(t, err, "twice")
	_, err = Keygen(context.Background(), f.preparams, []string{"p0", "P1", "p2"})
	require.ErrorContains(t, err, "party id")
}

func TestWriteAndLoadShares(t *testing.T) {
	f := shares(t)
	dir := t.TempDir()
	paths, err := WriteShares(dir, "hot-1", f.shares[:])
	require.NoError(t, err)
	require.Len(t, paths, Parties)
	for i, p := range paths {
		require.Equal(t, filepath.Join(dir, ShareFileName(DefaultIDs[i])), p)
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		s, err := Load(p)
		require.NoError(t, err)
		require.Equal(t, "hot-1", s.KeyID)
		require.Equal(t, f.shares[i].ID, s.ID)
		require.Equal(t, f.shares[i].GroupKey, s.GroupKey)
		require.Equal(t, f.shares[i].AuthKeys, s.AuthKeys)
		require.Equal(t, 0, f.shares[i].Data.Xi.Cmp(s.Data.Xi))
	}
	_, err = WriteShares(dir, "hot-1", f.shares[:])
	require.ErrorIs(t, err, os.ErrExist, "never over an existing file")
}

func TestLoadRefuses(t *testing.T) {
	f := shares(t)
	b, err := f.shares[1].Marshal()
	require.NoError(t, err)
	other := newEnvKeys(t, "x")
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"version 2", func(m map[string]any) { m["version"] = 2 }, "version 2, want 1"},
		{"an unknown field", func(m map[string]any) { m["pin"] = "1234" }, `unknown field "pin"`},
		{"threshold 2", func(m map[string]any) { m["threshold"] = 2 }, "threshold 2"},
		{"a short group key", func(m map[string]any) { m["group_public_key"] = "02abcd" }, "group_public_key must be 33 bytes"},
		{"another group key", func(m map[string]any) {
			k, _ := btcec.NewPrivateKey()
			m["group_public_key"] = hex.EncodeToString(k.PubKey().SerializeCompressed())
		}, "does not match save_data's ECDSAPub"},
		{"a short auth key", func(m map[string]any) { m["auth_private_key"] = "abcd" }, "auth_private_key must be 32 bytes"},
		{"another auth key", func(m map[string]any) {
			m["auth_private_key"] = hex.EncodeToString(other.priv["x"].Seed())
		}, "does not match auth_public_keys[party_index]"},
		{"two auth keys", func(m map[string]any) { m["auth_public_keys"] = m["auth_public_keys"].([]any)[:2] }, "auth_public_keys: 2 keys, want 3"},
		{"party index out of range", func(m map[string]any) { m["party_index"] = 3 }, "party_index 3 out of range"},
		{"party id not at its index", func(m map[string]any) { m["party_index"] = 0 }, `party_id "p1" is not parties[0]`},
		{"two parties", func(m map[string]any) { m["parties"] = []string{"p0", "p1"} }, "2 party ids, want 3"},
		{"no key id", func(m map[string]any) { m["key_id"] = "" }, "key_id"},
		{"no save data", func(m map[string]any) { delete(m, "save_data") }, "save_data is missing"},
		{"no secret share", func(m map[string]any) { delete(m["save_data"].(map[string]any), "Xi") }, "no secret share"},
		{"another secret share", func(m map[string]any) { m["save_data"].(map[string]any)["Xi"] = 12345 }, "Xi does not match BigXj"},
		{"another public share", func(m map[string]any) {
			bx := m["save_data"].(map[string]any)["BigXj"].([]any)
			bx[2] = bx[1]
		}, "BigXj[0] and BigXj[2] do not interpolate to ECDSAPub"},
		{"a missing Paillier key", func(m map[string]any) {
			m["save_data"].(map[string]any)["PaillierPKs"].([]any)[2] = nil
		}, "PaillierPKs[2] missing"},
		{"unknown curve point", func(m map[string]any) {
			m["save_data"].(map[string]any)["ECDSAPub"] = map[string]any{"Curve": "secp256k1", "Coords": []int{1, 2}}
		}, "not on the elliptic curve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // big integers stay exact
			require.NoError(t, dec.Decode(&m))
			tc.edit(m)
			eb, err := json.Marshal(m)
			require.NoError(t, err)
			_, err = Parse(eb)
			require.ErrorIs(t, err, ErrShare)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err = Parse([]byte("{"))
	require.ErrorIs(t, err, ErrShare)
}

func TestKeygenRefusesMaliciousModulusProof(t *testing.T) {
	// p1 plays a malicious dealer in a whole ceremony: its modulus proof's
	// W shares the factor P with its Paillier modulus (upstream's attack
	// on v2.0.2). Its envelopes are properly signed; the other parties'
	// boundary refuses the proof and the ceremony fails.
	f := shares(t)
	p := f.preparams[1].PaillierSK.P
	hook := func(from string, _ []string, _ bool, wire []byte) []byte {
		if from != "p1" || wireType(wire) != typeKGR2M2 {
			return wire
		}
		return tamper(t, wire, func(m *keygen.KGRound2Message2) { m.ModProof[0] = p.Bytes() })
	}
	_, err := keygenWith(context.Background(), f.preparams, nil, hook)
	var be *BoundaryError
	require.ErrorAs(t, err, &be)
	require.Equal(t, CheckModProof, be.Check)
	require.Equal(t, "p1", be.From)
	require.ErrorContains(t, err, "gcd(W, N) != 1")
}
