package stix

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/stretchr/testify/require"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
)

// crossCheck is the independent reader: Python's json (duplicate members
// refused), its canonical form — for objects of ASCII member names,
// strings, booleans and small integers, json.dumps with sorted keys,
// compact separators and ensure_ascii=False is RFC 8785 — and an
// Ed25519 verification by PyNaCl, or by cryptography where PyNaCl is
// missing. It reports for each object the canonical bytes without the
// signature, whether the object as given is canonical, which library
// verified and whether the signature verified.
const crossCheck = `
import base64, json, sys

def pairs(ps):
    names = [k for k, _ in ps]
    if len(names) != len(set(names)):
        raise ValueError("duplicate member")
    return dict(ps)

def numbers(v, allowed, name=None):
    if isinstance(v, bool):
        return
    if isinstance(v, (int, float)):
        if name not in allowed or not isinstance(v, int):
            raise ValueError("number %r in %s" % (v, name))
    elif isinstance(v, dict):
        for k, x in v.items():
            numbers(x, allowed, k)
    elif isinstance(v, list):
        for x in v:
            numbers(x, allowed, name)

def canon(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

try:
    import nacl.signing, nacl.exceptions
    def verify(pub, sig, msg):
        try:
            nacl.signing.VerifyKey(pub).verify(msg, sig)
            return True
        except nacl.exceptions.BadSignatureError:
            return False
    verifier = "nacl"
except ImportError:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.exceptions import InvalidSignature
        def verify(pub, sig, msg):
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
                return True
            except InvalidSignature:
                return False
        verifier = "cryptography"
    except ImportError:
        verifier = ""

out = []
for c in json.load(sys.stdin):
    raw = c["signed"].encode("utf-8")
    o = json.loads(raw, object_pairs_hook=pairs)
    numbers(o, c["numbers"])
    full = canon(o) == raw
    s = o.pop("x_cordon_signature")
    msg = canon(o)
    ok = None
    if verifier:
        sig = base64.urlsafe_b64decode(s["sig"] + "=" * (-len(s["sig"]) % 4))
        ok = verify(bytes.fromhex(c["pub"]), sig, msg)
    out.append({"canonical": base64.b64encode(msg).decode(), "full": full, "verifier": verifier, "ok": ok})
json.dump(out, sys.stdout)
`

type pyCase struct {
	Signed  string   `json:"signed"`
	Pub     string   `json:"pub"`
	Numbers []string `json:"numbers"`
}

type pyResult struct {
	Canonical []byte `json:"canonical"`
	Full      bool   `json:"full"`
	Verifier  string `json:"verifier"`
	OK        *bool  `json:"ok"`
}

func TestPythonCrossCheck(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	k := generatedKey(t)
	pub := hex.EncodeToString(k.Key.Public().(ed25519.PublicKey))
	var cases []pyCase
	add := func(signed []byte, numbers ...string) {
		cases = append(cases, pyCase{Signed: string(signed), Pub: pub, Numbers: numbers})
	}
	in := baseIndicator()
	in.Refs = []intel.Ref{{SourceName: "ofac", URL: "https://sanctionssearch.ofac.treas.gov/?a=1&b=<2>"}}
	in.ValidUntil = in.ValidFrom.Add(time.Hour)
	add(publish(t, &in, k, Options{Urgent: true}), "confidence")
	for _, tlp := range []intel.TLP{intel.TLPClear, intel.TLPGreen, intel.TLPAmberStrict, intel.TLPRed} {
		in := baseIndicator()
		in.Chain, in.Network, in.Value, in.TLP, in.Revoked = chain.BTC, "regtest", btcAddr(t, &chaincfg.RegressionNetParams, true), tlp, true
		in.Description = "control \x01\x1f\t tab, DEL \x7f, U+2028 \u2028, astral 𝄞, quote \" backslash \\"
		add(publish(t, &in, k, Options{}), "confidence")
	}
	s, err := Sighting(convID, publisher, t0, 3, "withdrawal gate, hot wallet 2", intel.TLPAmber, "sighting--0f1e2d3c-4b5a-4968-8776-655443322110")
	require.NoError(t, err)
	signed, err := Sign(s, k)
	require.NoError(t, err)
	add(signed, "count")
	// Another key's signature under this key's id: Python must refuse it.
	other, err := Sign(s, generatedKey(t))
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(signed, &m))
	sig := signatureOf(t, signed)
	sig.Sig = signatureOf(t, other).Sig
	m[SignatureProperty], err = json.Marshal(sig)
	require.NoError(t, err)
	forgedRaw, err := json.Marshal(m)
	require.NoError(t, err)
	_, err = Verify(forgedRaw, ring(k))
	require.ErrorIs(t, err, ErrBadSignature)
	add(forgedRaw, "count")

	input, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", crossCheck)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var res []pyResult
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res, len(cases))
	for i, c := range cases {
		msg, err := unsigned([]byte(c.Signed))
		require.NoError(t, err)
		require.Equal(t, string(msg), string(res[i].Canonical), "case %d: the bytes Go signs are Python's canonical form", i)
		if i < len(cases)-1 {
			require.True(t, res[i].Full, "case %d: Sign's output is canonical", i)
		}
	}
	if res[0].Verifier == "" {
		t.Skip("neither PyNaCl (import nacl.signing) nor cryptography installed: the signatures were not checked in Python")
	}
	if res[0].Verifier != "nacl" {
		t.Logf("PyNaCl missing: signatures checked with Python's cryptography instead")
	}
	for i := range cases {
		require.NotNil(t, res[i].OK)
		require.Equal(t, i < len(cases)-1, *res[i].OK, "case %d: Python's verification (%s)", i, res[i].Verifier)
	}
}

func signatureOf(t testing.TB, signed []byte) Signature {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(signed, &m))
	var s Signature
	require.NoError(t, json.Unmarshal(m[SignatureProperty], &s))
	return s
}
