package party

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/btcsuite/btcd/btcec/v2"
)

// Parameters of the group.
const (
	// Parties is the number of shares of a key.
	Parties = 3
	// Threshold is tss-lib's t: t+1 = 2 parties sign.
	Threshold = 1
	// ShareVersion is the share file's version.
	ShareVersion = 1
)

// ErrShare is wrapped by every error Load returns for a share file that
// is not valid.
var ErrShare = errors.New("threshold: invalid share")

var partyIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Share is one party's share of a group key: the tss-lib save data, the
// group's public key and the ed25519 keys that authenticate the
// parties' messages to each other.
type Share struct {
	// KeyID is the name the plugin gives the group key.
	KeyID string
	// ID is this party's id, Index its position in Parties.
	ID    string
	Index int
	// Threshold is tss-lib's t (Threshold: 2-of-3).
	Threshold int
	// Parties are the ids of all the parties, in keygen order.
	Parties []string
	// Data is tss-lib's save data (the secret share among it).
	Data keygen.LocalPartySaveData
	// GroupKey is the 33-byte compressed group public key.
	GroupKey []byte
	// AuthKeys are the parties' ed25519 public keys, as Parties.
	AuthKeys []ed25519.PublicKey

	authKey ed25519.PrivateKey
}

// shareFile is a Share as its JSON file holds it.
type shareFile struct {
	Version        int                        `json:"version"`
	KeyID          string                     `json:"key_id"`
	PartyID        string                     `json:"party_id"`
	PartyIndex     int                        `json:"party_index"`
	Threshold      int                        `json:"threshold"`
	Parties        []string                   `json:"parties"`
	SaveData       *keygen.LocalPartySaveData `json:"save_data"`
	GroupPublicKey string                     `json:"group_public_key"`
	// AuthPrivateKey is the hex RFC 8032 private key (its 32-byte seed).
	AuthPrivateKey string   `json:"auth_private_key"`
	AuthPublicKeys []string `json:"auth_public_keys"`
}

// DefaultKeyID names a group key by its public key: "tss-" and the first
// 8 bytes of its SHA-256, hex.
func DefaultKeyID(groupKey []byte) string {
	h := sha256.Sum256(groupKey)
	return "tss-" + hex.EncodeToString(h[:8])
}

// Load reads and validates a share file.
func Load(path string) (*Share, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the configured share file
	if err != nil {
		return nil, fmt.Errorf("load share: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("load share %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a share file's bytes.
func Parse(b []byte) (*Share, error) {
	var f shareFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrShare, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the share", ErrShare)
	}
	s, err := f.share()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrShare, err)
	}
	return s, nil
}

func (f *shareFile) share() (*Share, error) {
	if f.Version != ShareVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, ShareVersion)
	}
	seed, err := hex.DecodeString(f.AuthPrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("auth_private_key must be %d bytes of hex", ed25519.SeedSize)
	}
	if len(f.AuthPublicKeys) != Parties {
		return nil, fmt.Errorf("auth_public_keys: %d keys, want %d", len(f.AuthPublicKeys), Parties)
	}
	auth := make([]ed25519.PublicKey, len(f.AuthPublicKeys))
	for i, h := range f.AuthPublicKeys {
		k, err := hex.DecodeString(h)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth_public_keys[%d] must be %d bytes of hex", i, ed25519.PublicKeySize)
		}
		auth[i] = k
	}
	gk, err := hex.DecodeString(f.GroupPublicKey)
	if err != nil || len(gk) != btcec.PubKeyBytesLenCompressed {
		return nil, fmt.Errorf("group_public_key must be %d bytes of hex", btcec.PubKeyBytesLenCompressed)
	}
	if f.SaveData == nil {
		return nil, errors.New("save_data is missing")
	}
	s := &Share{
		KeyID:     f.KeyID,
		ID:        f.PartyID,
		Index:     f.PartyIndex,
		Threshold: f.Threshold,
		Parties:   f.Parties,
		Data:      *f.SaveData,
		GroupKey:  gk,
		AuthKeys:  auth,
		authKey:   ed25519.NewKeyFromSeed(seed),
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks a share's fields against each other.
func (s *Share) validate() error {
	if !partyIDPattern.MatchString(s.KeyID) {
		return fmt.Errorf("key_id %q: want %s", s.KeyID, partyIDPattern)
	}
	if s.Threshold != Threshold {
		return fmt.Errorf("threshold %d, want %d (2-of-3)", s.Threshold, Threshold)
	}
	if err := validateIDs(s.Parties); err != nil {
		return fmt.Errorf("parties: %w", err)
	}
	if s.Index < 0 || s.Index >= len(s.Parties) {
		return fmt.Errorf("party_index %d out of range", s.Index)
	}
	if s.Parties[s.Index] != s.ID {
		return fmt.Errorf("party_id %q is not parties[%d] (%q)", s.ID, s.Index, s.Parties[s.Index])
	}
	if len(s.AuthKeys) != Parties {
		return fmt.Errorf("%d auth keys, want %d", len(s.AuthKeys), Parties)
	}
	if len(s.authKey) != ed25519.PrivateKeySize {
		return errors.New("no auth private key")
	}
	if pub, _ := s.authKey.Public().(ed25519.PublicKey); !pub.Equal(s.AuthKeys[s.Index]) {
		return errors.New("auth_private_key does not match auth_public_keys[party_index]")
	}
	for i := range s.AuthKeys {
		for j := range i {
			if s.AuthKeys[i].Equal(s.AuthKeys[j]) {
				return fmt.Errorf("auth_public_keys[%d] and [%d] are equal", j, i)
			}
		}
	}
	return s.validateSaveData()
}

func (s *Share) validateSaveData() error {
	d := &s.Data
	if !d.ValidateWithProof() {
		return errors.New("save_data: incomplete pre-parameters (Paillier key, NTilde, h1, h2, safe primes)")
	}
	if d.Xi == nil || d.Xi.Sign() <= 0 || d.ShareID == nil {
		return errors.New("save_data: no secret share (Xi, ShareID)")
	}
	n := len(s.Parties)
	if len(d.Ks) != n || len(d.NTildej) != n || len(d.H1j) != n || len(d.H2j) != n || len(d.BigXj) != n || len(d.PaillierPKs) != n {
		return fmt.Errorf("save_data: Ks, NTildej, H1j, H2j, BigXj and PaillierPKs must each have %d entries", n)
	}
	for j := range n {
		if d.Ks[j] == nil || d.Ks[j].Cmp(partyKey(j)) != 0 {
			return fmt.Errorf("save_data: Ks[%d] is not %d", j, j+1)
		}
		if d.NTildej[j] == nil || d.NTildej[j].BitLen() != 2048 || d.H1j[j] == nil || d.H2j[j] == nil {
			return fmt.Errorf("save_data: NTildej/H1j/H2j[%d] missing or not 2048 bits", j)
		}
		if d.BigXj[j] == nil || !d.BigXj[j].ValidateBasic() {
			return fmt.Errorf("save_data: BigXj[%d] missing", j)
		}
		if d.PaillierPKs[j] == nil || d.PaillierPKs[j].N == nil || d.PaillierPKs[j].N.BitLen() != 2048 {
			return fmt.Errorf("save_data: PaillierPKs[%d] missing or not 2048 bits", j)
		}
	}
	if d.ShareID.Cmp(d.Ks[s.Index]) != 0 {
		return fmt.Errorf("save_data: ShareID is not Ks[party_index]")
	}
	if d.PaillierSK.N.Cmp(d.PaillierPKs[s.Index].N) != 0 {
		return errors.New("save_data: the Paillier key is not PaillierPKs[party_index]")
	}
	if d.NTildei.Cmp(d.NTildej[s.Index]) != 0 {
		return errors.New("save_data: NTildei is not NTildej[party_index]")
	}
	if d.ECDSAPub == nil || !d.ECDSAPub.ValidateBasic() {
		return errors.New("save_data: no ECDSAPub")
	}
	pub, err := compressed(d)
	if err != nil {
		return fmt.Errorf("save_data: ECDSAPub: %w", err)
	}
	if !slices.Equal(pub, s.GroupKey) {
		return errors.New("group_public_key does not match save_data's ECDSAPub")
	}
	// Any t+1 = 2 public shares interpolate to the group key: the three
	// lie on one line (pairs 0-1 and 0-2 checked).
	for _, pair := range [][2]int{{0, 1}, {0, 2}} {
		if err := interpolatesTo(d, pair[0], pair[1]); err != nil {
			return err
		}
	}
	// Our own Xj must be g^xi: a share whose secret is not its public part
	// cannot sign.
	X := d.BigXj[s.Index]
	gx, gy := btcec.S256().ScalarBaseMult(d.Xi.Bytes())
	if gx.Cmp(X.X()) != 0 || gy.Cmp(X.Y()) != 0 {
		return errors.New("save_data: Xi does not match BigXj[party_index]")
	}
	return nil
}

// interpolatesTo checks that Lagrange interpolation at 0 of the public
// shares BigXj[a] and BigXj[b] gives ECDSAPub.
func interpolatesTo(d *keygen.LocalPartySaveData, a, b int) error {
	q := btcec.S256().Params().N
	ka, kb := d.Ks[a], d.Ks[b]
	// λa = kb / (kb - ka), λb = ka / (ka - kb), mod q.
	la := new(big.Int).Mul(kb, new(big.Int).ModInverse(new(big.Int).Mod(new(big.Int).Sub(kb, ka), q), q))
	lb := new(big.Int).Mul(ka, new(big.Int).ModInverse(new(big.Int).Mod(new(big.Int).Sub(ka, kb), q), q))
	la.Mod(la, q)
	lb.Mod(lb, q)
	curve := btcec.S256()
	ax, ay := curve.ScalarMult(d.BigXj[a].X(), d.BigXj[a].Y(), la.Bytes())
	bx, by := curve.ScalarMult(d.BigXj[b].X(), d.BigXj[b].Y(), lb.Bytes())
	x, y := curve.Add(ax, ay, bx, by)
	if x.Cmp(d.ECDSAPub.X()) != 0 || y.Cmp(d.ECDSAPub.Y()) != 0 {
		return fmt.Errorf("save_data: public shares BigXj[%d] and BigXj[%d] do not interpolate to ECDSAPub", a, b)
	}
	return nil
}

// compressed is the save data's group public key, compressed.
func compressed(d *keygen.LocalPartySaveData) ([]byte, error) {
	var x, y btcec.FieldVal
	if x.SetByteSlice(d.ECDSAPub.X().Bytes()) || y.SetByteSlice(d.ECDSAPub.Y().Bytes()) {
		return nil, errors.New("coordinate out of range")
	}
	pk := btcec.NewPublicKey(&x, &y)
	if !pk.IsOnCurve() {
		return nil, errors.New("not on secp256k1")
	}
	return pk.SerializeCompressed(), nil
}

func validateIDs(ids []string) error {
	if len(ids) != Parties {
		return fmt.Errorf("%d party ids, want %d", len(ids), Parties)
	}
	for i, id := range ids {
		if !partyIDPattern.MatchString(id) {
			return fmt.Errorf("party id %q: want %s", id, partyIDPattern)
		}
		if slices.Index(ids, id) != i {
			return fmt.Errorf("party id %q twice", id)
		}
	}
	return nil
}

// partyKey is tss-lib's key of the party at index i: i+1 (never 0).
func partyKey(i int) *big.Int { return big.NewInt(int64(i) + 1) }

// Marshal is the share file's bytes.
func (s *Share) Marshal() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrShare, err)
	}
	f := shareFile{
		Version:        ShareVersion,
		KeyID:          s.KeyID,
		PartyID:        s.ID,
		PartyIndex:     s.Index,
		Threshold:      s.Threshold,
		Parties:        s.Parties,
		SaveData:       &s.Data,
		GroupPublicKey: hex.EncodeToString(s.GroupKey),
		AuthPrivateKey: hex.EncodeToString(s.authKey.Seed()),
	}
	for _, k := range s.AuthKeys {
		f.AuthPublicKeys = append(f.AuthPublicKeys, hex.EncodeToString(k))
	}
	return json.MarshalIndent(f, "", "  ")
}

// ShareFileName is the name WriteShares gives a party's file.
func ShareFileName(partyID string) string { return "share-" + partyID + ".json" }

// WriteShares writes each share to dir/share-<party id>.json (0600,
// never over an existing file), naming the key keyID (empty: keep the
// shares' KeyID). It returns the paths written.
func WriteShares(dir, keyID string, shares []Share) ([]string, error) {
	paths := make([]string, 0, len(shares))
	for i := range shares {
		s := shares[i]
		if keyID != "" {
			s.KeyID = keyID
		}
		b, err := s.Marshal()
		if err != nil {
			return paths, err
		}
		p := filepath.Join(dir, ShareFileName(s.ID))
		if err := writeNew(p, b); err != nil {
			return paths, fmt.Errorf("write share %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the operator's output directory
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
