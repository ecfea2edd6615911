package partner

import (
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/internal/config"
)

func TestConfigYAML(t *testing.T) {
	in := `
partners:
  - name: alpha
    identity: identity--00000000-0000-4000-8000-000000000001
    signing_key: ` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `
    ca: /etc/cordon/alpha-ca.pem
    subject: alpha.example
    url: https://taxii.alpha.example/api1/
    read: [intel]
    write: [intel, sightings]
    max_tlp: amber+strict
    amber: true
    amber_strict: true
    relay: [beta]
    sightings: true
    rate: 5.5
    burst: 10
allow_http: true
`
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(in), &c))
	require.True(t, c.AllowHTTP)
	require.Equal(t, Partner{Name: "alpha", Identity: ident(1), SigningKey: base64.StdEncoding.EncodeToString(make([]byte, 32)),
		CA: "/etc/cordon/alpha-ca.pem", Subject: "alpha.example", URL: "https://taxii.alpha.example/api1/",
		Read: []string{"intel"}, Write: []string{"intel", "sightings"}, MaxTLP: "amber+strict", Amber: true, AmberStrict: true,
		Relay: []string{"beta"}, Sightings: true, Rate: 5.5, Burst: 10}, c.Partners[0])
}

// TestValidate names the key of every problem, all reported at once.
func TestValidate(t *testing.T) {
	_, _, k1 := edKey(t)
	_, _, k2 := edKey(t)
	_, _, k3 := edKey(t)
	ok := func(n int, name, key string) Partner {
		return Partner{Name: name, Identity: ident(n), SigningKey: key, Cert: "/x.pem"}
	}
	good := Config{Partners: []Partner{ok(1, "alpha", k1), ok(2, "beta-2", k2)}}
	good.Partners[0].Relay = []string{"beta-2"}
	good.Partners[1].CA, good.Partners[1].Subject, good.Partners[1].Cert = "/ca.pem", "beta", ""
	good.Partners[1].URL = "https://beta.example/taxii2/api/"
	good.Partners[1].MaxTLP, good.Partners[1].Amber = "TLP:AMBER", true
	var p config.Problems
	good.Validate(&p, "sharing")
	require.NoError(t, p.Err())
	require.Equal(t, DefaultRate, good.Partners[0].Rate, "default rate")
	require.Equal(t, DefaultBurst, good.Partners[0].Burst, "default burst")
	require.Equal(t, "green", good.Partners[0].MaxTLP, "default max_tlp")

	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	bad := []Partner{
		ok(1, "alpha", k1), // 0: fine
		ok(1, "alpha", k1), // 1: name, identity and key of 0
		{Name: "Bad_Name", Identity: "identity--not-a-uuid", SigningKey: "***", CA: "/ca.pem"}, // 2
		{Name: strings.Repeat("a", 65), Identity: "indicator--00000000-0000-4000-8000-000000000009", SigningKey: short, Subject: "x"},
		{Name: "", Identity: ident(5), SigningKey: k3, Cert: "/c.pem", CA: "/ca.pem", MaxTLP: "red", URL: "http://x.example/"},                                                        // 4
		{Name: "e", Identity: ident(6), SigningKey: k1, MaxTLP: "purple", Relay: []string{"alpha", "zeta", "e"}, Read: []string{""}, Write: []string{"", "ok"}, Rate: -1, Burst: -1},  // 5
		{Name: "f", Identity: ident(7), SigningKey: base64.StdEncoding.EncodeToString(make([]byte, 32)), Cert: "/f.pem", MaxTLP: "amber", AmberStrict: true, URL: "ftp://f.example/"}, // 6
		{Name: "g", Identity: ident(8), SigningKey: base64.StdEncoding.EncodeToString(append(make([]byte, 31), 1)), Cert: "/g.pem", MaxTLP: "green", Amber: true, URL: "https://"},    // 7
		{Name: "h", Identity: ident(9), SigningKey: base64.StdEncoding.EncodeToString(append(make([]byte, 31), 2)), Cert: "/h.pem", MaxTLP: "amber"},                                  // 8
		{Name: "i", Identity: ident(10), SigningKey: base64.StdEncoding.EncodeToString(append(make([]byte, 31), 3)), Cert: "/i.pem", MaxTLP: "amber+strict", Amber: true},             // 9
	}
	c := Config{Partners: bad}
	var q config.Problems
	c.Validate(&q, "sharing")
	require.Error(t, q.Err())
	got := strings.Split(q.Err().Error(), "\n")
	want := []string{
		`sharing.partners[1].name: "alpha" is also the name of sharing.partners[0]`,
		`sharing.partners[1].identity: identity--00000000-0000-4000-8000-000000000001 is also the identity of sharing.partners[0]`,
		`sharing.partners[1].signing_key: also the signing key of sharing.partners[0]`,
		`sharing.partners[2].name: "Bad_Name": want 1 to 64 characters of a-z, 0-9 and -`,
		`sharing.partners[2].identity: "identity--not-a-uuid": want identity--<uuid> (lowercase)`,
		`sharing.partners[2].signing_key: not standard base64: illegal base64 data at input byte 0`,
		`sharing.partners[2].subject: with ca, the CommonName the partner's certificate must carry is required`,
		`sharing.partners[3].name: "` + strings.Repeat("a", 65) + `": want 1 to 64 characters of a-z, 0-9 and -`,
		`sharing.partners[3].identity: "indicator--00000000-0000-4000-8000-000000000009": want identity--<uuid> (lowercase)`,
		`sharing.partners[3].signing_key: decodes to 31 bytes, want an Ed25519 public key of 32`,
		`sharing.partners[3].ca: subject needs the ca that issues it`,
		`sharing.partners[4].name: "": want 1 to 64 characters of a-z, 0-9 and -`,
		`sharing.partners[4].cert: set either cert (a pinned certificate) or ca and subject, not both`,
		`sharing.partners[4].max_tlp: "red": TLP:RED is never shared; want clear, green, amber or amber+strict`,
		`sharing.partners[4].url: "http://x.example/": want https://`,
		`sharing.partners[5].signing_key: also the signing key of sharing.partners[0]`,
		`sharing.partners[5].cert: set cert (a pinned certificate) or ca and subject`,
		`sharing.partners[5].max_tlp: TLP "purple": want clear, green, amber, amber+strict or red`,
		`sharing.partners[5].read[0]: empty collection alias`,
		`sharing.partners[5].write[0]: empty collection alias`,
		`sharing.partners[5].rate: -1: want more than 0 requests per second`,
		`sharing.partners[5].burst: -1: want at least 1`,
		`sharing.partners[6].amber_strict: needs max_tlp amber+strict, not amber`,
		`sharing.partners[6].url: "ftp://f.example/": want https://`,
		`sharing.partners[7].amber: needs max_tlp amber or amber+strict, not green`,
		`sharing.partners[7].url: "https://": no host`,
		`sharing.partners[8].max_tlp: amber: only partners named amber receive TLP:AMBER; set it or lower max_tlp`,
		`sharing.partners[9].max_tlp: amber+strict: only partners named amber_strict receive TLP:AMBER+STRICT; set it or lower max_tlp`,
		`sharing.partners[5].relay[1]: "zeta" is not a configured partner`,
		`sharing.partners[5].relay[2]: "e" is the partner itself`,
	}
	require.Equal(t, want, got)

	// http is allowed for tests only.
	c = Config{Partners: []Partner{ok(1, "alpha", k1)}, AllowHTTP: true}
	c.Partners[0].URL = "http://127.0.0.1:8443/api/"
	var r config.Problems
	c.Validate(&r, "sharing")
	require.NoError(t, r.Err())
}

// TestNewLoadsFiles: New validates as Config.Validate does and names the
// key of a file it cannot use.
func TestNewLoadsFiles(t *testing.T) {
	ca := devCA(t)
	cert := issue(t, ca, "alpha")
	_, err := New([]Partner{{Name: "Alpha"}}, Options{})
	require.ErrorContains(t, err, `partners[0].name: "Alpha"`)

	p := pinned(t, 1, "alpha", filepath.Join(t.TempDir(), "missing.pem"))
	_, err = New([]Partner{p}, Options{})
	require.ErrorContains(t, err, "partners[0].cert: read certificate: open ")

	p.Cert = writeTemp(t, "empty.pem", []byte("no PEM here"))
	_, err = New([]Partner{p}, Options{})
	require.ErrorContains(t, err, "partners[0].cert: "+p.Cert+": no PEM certificate found")

	q := pinned(t, 2, "beta", "")
	q.Cert, q.CA, q.Subject = "", cert.file, "beta" // a leaf, not a CA
	_, err = New([]Partner{q}, Options{})
	require.ErrorContains(t, err, `partners[0].ca: `+cert.file+` holds "CN=alpha", which is not a CA certificate`)

	// Two partners pinning one certificate.
	p.Cert = cert.file
	q = pinned(t, 2, "beta", cert.file)
	_, err = New([]Partner{p, q}, Options{})
	require.ErrorContains(t, err, "partners[1].cert: "+cert.file+" pins the certificate partner alpha pins")

	// A CA file with two CAs trusts both.
	ca2 := devCA(t)
	both := writeTemp(t, "cas.pem", append(ca.CertPEM(), ca2.CertPEM()...))
	q = pinned(t, 2, "beta", "")
	q.Cert, q.CA, q.Subject = "", both, "beta"
	reg, err := New([]Partner{q}, Options{})
	require.NoError(t, err)
	for _, c := range []*DevCA{ca, ca2} {
		b := issue(t, c, "beta")
		e, err := reg.identify(chainOf(b))
		require.NoError(t, err)
		require.Equal(t, "beta", e.Name)
	}
}

// TestLookupKeyAndRelay: partners' keys sign for their identities, our
// own key is added, and relaying is allowed only as configured.
func TestLookupKeyAndRelay(t *testing.T) {
	ca := devCA(t)
	aPub, _, aKey := edKey(t)
	bPub, _, bKey := edKey(t)
	a := Partner{Name: "alpha", Identity: ident(1), SigningKey: aKey, Cert: issue(t, ca, "alpha").file, Relay: []string{"beta"}}
	b := Partner{Name: "beta", Identity: ident(2), SigningKey: bKey, Cert: issue(t, ca, "beta").file}
	c := pinned(t, 3, "gamma", issue(t, ca, "gamma").file)
	reg, err := New([]Partner{a, b, c}, Options{})
	require.NoError(t, err)

	id, pub, ok := reg.LookupKey(keyIDOf(aPub))
	require.True(t, ok)
	require.Equal(t, ident(1), id)
	require.Equal(t, aPub, pub)
	id, pub, ok = reg.LookupKey(keyIDOf(bPub))
	require.True(t, ok)
	require.Equal(t, ident(2), id)
	require.Equal(t, bPub, pub)
	pub[0] ^= 1 // a copy
	_, pub, _ = reg.LookupKey(keyIDOf(bPub))
	require.Equal(t, bPub, pub)

	self, _, _ := edKey(t)
	_, _, ok = reg.LookupKey(keyIDOf(self))
	require.False(t, ok)
	us := ident(100)
	require.NoError(t, reg.AddSelf(us, self))
	id, pub, ok = reg.LookupKey(keyIDOf(self))
	require.True(t, ok)
	require.Equal(t, us, id)
	require.Equal(t, self, pub)
	require.NoError(t, reg.AddSelf(us, self), "adding it again")
	require.ErrorContains(t, reg.AddSelf(ident(1), self), "is partner alpha's")
	require.ErrorContains(t, reg.AddSelf(us, aPub), "is the key of "+ident(1))
	require.Error(t, reg.AddSelf(us, ed25519.PublicKey{1, 2, 3}))
	id, _, _ = reg.LookupKey(keyIDOf(aPub))
	require.Equal(t, ident(1), id, "alpha's key still signs for alpha only")

	for _, tc := range []struct {
		sender, signer string
		want           bool
	}{
		{"alpha", ident(1), true},  // its own
		{"alpha", ident(2), true},  // beta's, relay: [beta]
		{"alpha", ident(3), false}, // gamma's, not in relay
		{"beta", ident(2), true},
		{"beta", ident(1), false}, // relaying is not symmetric
		{"gamma", ident(1), false},
		{"alpha", us, false},        // ours, through a partner
		{"alpha", ident(99), false}, // nobody's
		{"delta", ident(1), false},  // unknown sender
	} {
		require.Equal(t, tc.want, reg.MayRelay(tc.sender, tc.signer), "%s relaying %s", tc.sender, tc.signer)
	}

	p, ok := reg.ByIdentity(ident(2))
	require.True(t, ok)
	require.Equal(t, "beta", p.Name)
	_, ok = reg.ByIdentity(us)
	require.False(t, ok, "we are not a partner")
	p, ok = reg.Partner("alpha")
	require.True(t, ok)
	require.Equal(t, []string{"beta"}, p.Relay)
	require.Equal(t, DefaultBurst, p.Burst)
	_, ok = reg.Partner("delta")
	require.False(t, ok)
	require.Equal(t, []string{"alpha", "beta", "gamma"}, reg.Names())
}
