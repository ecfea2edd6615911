package partner

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/sharing/stix"
)

// Defaults of a partner's rate budget.
const (
	DefaultRate  = 20.0 // requests per second
	DefaultBurst = 100
)

// Config is the partner part of the sharing section.
type Config struct {
	Partners []Partner `yaml:"partners"`
	// AllowHTTP lets a partner's url be http:// (tests only; the TLS
	// configurations of the registry do not depend on it).
	AllowHTTP bool `yaml:"allow_http"`
}

// Partner is one alliance member as the operator configured it.
type Partner struct {
	// Name names the partner in logs, metrics and relay lists: 1 to 64
	// characters of [a-z0-9-].
	Name string `yaml:"name"`
	// Identity is its STIX identity id (identity--<uuid>): the
	// created_by_ref of the objects it signs.
	Identity string `yaml:"identity"`
	// SigningKey is its Ed25519 public key, standard base64 of 32 bytes.
	SigningKey string `yaml:"signing_key"`
	// Cert is a PEM file holding the partner's certificate, pinned by the
	// SHA-256 of its DER. Exactly one of Cert and CA is set.
	Cert string `yaml:"cert"`
	// CA is a PEM file of the CA (one or more certificates) that issues
	// the partner's certificates; Subject is then the CommonName its
	// certificate must carry.
	CA      string `yaml:"ca"`
	Subject string `yaml:"subject"`
	// URL is its TAXII API root, for our client (optional).
	URL string `yaml:"url"`
	// Read and Write are the collection aliases it may read from us and
	// post to.
	Read  []string `yaml:"read"`
	Write []string `yaml:"write"`
	// MaxTLP is the most restricted TLP it may receive: clear, green
	// (the default), amber or amber+strict. Red never leaves.
	MaxTLP string `yaml:"max_tlp"`
	// Amber and AmberStrict name the partner as a recipient of TLP:AMBER
	// and TLP:AMBER+STRICT: only partners so named receive those (an
	// amber_strict partner receives AMBER as well).
	Amber       bool `yaml:"amber"`
	AmberStrict bool `yaml:"amber_strict"`
	// Relay names the partners whose signed objects this partner may
	// pass on to us.
	Relay []string `yaml:"relay"`
	// Sightings: we send our sightings of its indicators back to it.
	Sightings bool `yaml:"sightings"`
	// Pull are the aliases of its collections we pull from URL
	// (default: indicators, the collection every cordon publishes to).
	Pull []string `yaml:"pull"`
	// Push: it takes our urgent listings and revocations posted to its
	// inbox collection, so they arrive without waiting for its pull.
	Push bool `yaml:"push"`
	// Rate (requests per second, default 20) and Burst (default 100)
	// bound the requests it makes of our server.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Validate checks the partners, naming each problem's key under key
// ("sharing"): partners[i].field. It sets the defaults of rate, burst
// and max_tlp.
func (c *Config) Validate(p *config.Problems, key string) {
	validate(p, key+".partners", c.Partners, c.AllowHTTP)
}

// validate checks ps as Config.Validate does, keys under base.
func validate(p *config.Problems, base string, ps []Partner, allowHTTP bool) {
	names := map[string]int{}
	idents := map[string]int{}
	keys := map[string]int{}
	for i := range ps {
		pt := &ps[i]
		k := fmt.Sprintf("%s[%d]", base, i)
		pt.defaults()
		if !validName(pt.Name) {
			p.Add(k+".name", "%q: want 1 to 64 characters of a-z, 0-9 and -", pt.Name)
		} else if j, dup := names[pt.Name]; dup {
			p.Add(k+".name", "%q is also the name of %s[%d]", pt.Name, base, j)
		} else {
			names[pt.Name] = i
		}
		if !stix.ValidID(pt.Identity) || !strings.HasPrefix(pt.Identity, "identity--") {
			p.Add(k+".identity", "%q: want identity--<uuid> (lowercase)", pt.Identity)
		} else if j, dup := idents[pt.Identity]; dup {
			p.Add(k+".identity", "%s is also the identity of %s[%d]", pt.Identity, base, j)
		} else {
			idents[pt.Identity] = i
		}
		if pub, err := pt.publicKey(); err != nil {
			p.Add(k+".signing_key", "%v", err)
		} else if j, dup := keys[string(pub)]; dup {
			p.Add(k+".signing_key", "also the signing key of %s[%d]", base, j)
		} else {
			keys[string(pub)] = i
		}
		switch {
		case pt.Cert != "" && (pt.CA != "" || pt.Subject != ""):
			p.Add(k+".cert", "set either cert (a pinned certificate) or ca and subject, not both")
		case pt.Cert == "" && pt.CA == "" && pt.Subject == "":
			p.Add(k+".cert", "set cert (a pinned certificate) or ca and subject")
		case pt.Cert == "" && pt.CA == "":
			p.Add(k+".ca", "subject needs the ca that issues it")
		case pt.Cert == "" && pt.Subject == "":
			p.Add(k+".subject", "with ca, the CommonName the partner's certificate must carry is required")
		}
		top, err := pt.maxTLP()
		if err != nil {
			p.Add(k+".max_tlp", "%v", err)
		} else {
			if pt.AmberStrict && top != intel.TLPAmberStrict {
				p.Add(k+".amber_strict", "needs max_tlp amber+strict, not %s", top)
			}
			if pt.Amber && rank(top) < rank(intel.TLPAmber) {
				p.Add(k+".amber", "needs max_tlp amber or amber+strict, not %s", top)
			}
			switch {
			case top == intel.TLPAmberStrict && !pt.AmberStrict:
				p.Add(k+".max_tlp", "amber+strict: only partners named amber_strict receive TLP:AMBER+STRICT; set it or lower max_tlp")
			case top == intel.TLPAmber && !pt.Amber && !pt.AmberStrict:
				p.Add(k+".max_tlp", "amber: only partners named amber receive TLP:AMBER; set it or lower max_tlp")
			}
		}
		if pt.URL != "" {
			u, err := url.Parse(pt.URL)
			switch {
			case err != nil:
				p.Add(k+".url", "%v", err)
			case u.Host == "":
				p.Add(k+".url", "%q: no host", pt.URL)
			case u.Scheme == "https":
			case u.Scheme == "http" && allowHTTP:
			default:
				p.Add(k+".url", "%q: want https://", pt.URL)
			}
		}
		if (len(pt.Pull) > 0 || pt.Push) && pt.URL == "" {
			p.Add(k+".url", "pull and push need the partner's TAXII API root URL")
		}
		if pt.URL != "" && len(pt.Pull) == 0 {
			ps[i].Pull = []string{"indicators"}
		}
		for j, a := range pt.Pull {
			if a == "" {
				p.Add(fmt.Sprintf("%s.pull[%d]", k, j), "empty collection alias")
			}
		}
		for j, a := range pt.Read {
			if a == "" {
				p.Add(fmt.Sprintf("%s.read[%d]", k, j), "empty collection alias")
			}
		}
		for j, a := range pt.Write {
			if a == "" {
				p.Add(fmt.Sprintf("%s.write[%d]", k, j), "empty collection alias")
			}
		}
		if pt.Rate <= 0 {
			p.Add(k+".rate", "%v: want more than 0 requests per second", pt.Rate)
		}
		if pt.Burst < 1 {
			p.Add(k+".burst", "%d: want at least 1", pt.Burst)
		}
	}
	for i := range ps {
		for j, r := range ps[i].Relay {
			k := fmt.Sprintf("%s[%d].relay[%d]", base, i, j)
			if _, ok := names[r]; !ok {
				p.Add(k, "%q is not a configured partner", r)
			} else if r == ps[i].Name {
				p.Add(k, "%q is the partner itself", r)
			}
		}
	}
}

// defaults sets rate, burst and max_tlp when unset.
func (pt *Partner) defaults() {
	config.OrDefault(&pt.Rate, DefaultRate)
	config.OrDefault(&pt.Burst, DefaultBurst)
	config.OrDefault(&pt.MaxTLP, string(intel.TLPGreen))
}

// maxTLP reads MaxTLP, refusing red.
func (pt *Partner) maxTLP() (intel.TLP, error) {
	if strings.TrimSpace(pt.MaxTLP) == "" {
		return intel.TLPGreen, nil
	}
	t, err := intel.ParseTLP(pt.MaxTLP)
	if err != nil {
		return "", err
	}
	if t == intel.TLPRed {
		return "", fmt.Errorf("%q: TLP:RED is never shared; want clear, green, amber or amber+strict", pt.MaxTLP)
	}
	return t, nil
}

// publicKey decodes SigningKey.
func (pt *Partner) publicKey() (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(pt.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("not standard base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("decodes to %d bytes, want an Ed25519 public key of %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
