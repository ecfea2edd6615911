package alliance

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/sharing/partner"
	"github.com/cordonhq/cordon/sharing/stix"
)

// Config is the sharing section of cordon's configuration: who we are
// to the alliance, our TAXII listener and the partners
// (docs/sharing/README.md).
type Config struct {
	// Name is our name among the partners (as they name us in theirs).
	Name string `yaml:"name"`
	// Identity is our STIX identity (identity--<uuid>): the
	// created_by_ref of everything we publish.
	Identity string `yaml:"identity"`
	// SigningKey is our Ed25519 key, the standard base64 of its 32-byte
	// seed (a secret: env:NAME or file:PATH); partners hold its public
	// half (cordon share key prints it).
	SigningKey config.Secret `yaml:"signing_key"`
	// Listen is the TAXII server's address; partners connect with their
	// client certificates (mutual TLS, TLS 1.3).
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are our certificate, served to partners and
	// presented to theirs as a client.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// APIRoot is the path of our API root (default "alliance").
	APIRoot string `yaml:"api_root"`
	// CursorKey keys the HMAC of our paging cursors (a secret of at
	// least 32 bytes; default: derived from the signing key).
	CursorKey config.Secret `yaml:"cursor_key"`
	// PullWait is how long a pull asks a partner's server to hold a
	// request that finds nothing new (default 25s): the long-poll that
	// brings a partner's listing within a second of its publication.
	PullWait time.Duration `yaml:"pull_wait"`
	// PullPage is the page size of a pull (default 1000).
	PullPage int `yaml:"pull_page"`
	// AllianceKey is the privacy mode's key, shared by the alliance's
	// members (a secret of at least 32 bytes): private listings are
	// published as keyed hashes of their addresses to the hashed
	// collection, and every instance screening with this config matches
	// partners' hashed listings. Empty: no privacy mode.
	AllianceKey config.Secret `yaml:"alliance_key"`
	// Partners are the alliance's members, and who may do what.
	partner.Config `yaml:",inline"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// Fill sets the defaults.
func (c *Config) Fill() {
	if c.APIRoot == "" {
		c.APIRoot = "alliance"
	}
	if c.PullWait == 0 {
		c.PullWait = 25 * time.Second
	}
	if c.PullPage == 0 {
		c.PullPage = 1000
	}
}

// Validate checks the section, naming each problem's key under key.
func (c *Config) Validate(p *config.Problems, key string) {
	c.Fill()
	if !nameRE.MatchString(c.Name) {
		p.Add(key+".name", "%q: want 1 to 64 characters of a-z, 0-9 and -", c.Name)
	}
	if !stix.ValidID(c.Identity) || !strings.HasPrefix(c.Identity, "identity--") {
		p.Add(key+".identity", "%q: want identity--<uuid> (lowercase)", c.Identity)
	}
	if _, err := c.Key(); err != nil {
		p.Add(key+".signing_key", "%v", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.Add(key+".listen", "%q: want host:port", c.Listen)
	}
	if c.CertFile == "" || c.KeyFile == "" {
		p.Add(key+".cert_file", "the TAXII server and client need our certificate and key (cert_file, key_file)")
	}
	if !nameRE.MatchString(c.APIRoot) {
		p.Add(key+".api_root", "%q: want 1 to 64 characters of a-z, 0-9 and -", c.APIRoot)
	}
	if v := c.CursorKey.Value(); v != "" && len(v) < 32 {
		p.Add(key+".cursor_key", "shorter than 32 bytes")
	}
	if v := c.AllianceKey.Value(); v != "" && len(v) < stix.MinAllianceKey {
		p.Add(key+".alliance_key", "shorter than %d bytes", stix.MinAllianceKey)
	}
	if c.PullWait < 0 || c.PullWait > 5*time.Minute {
		p.Add(key+".pull_wait", "%s: want 0 to 5m", c.PullWait)
	}
	if c.PullPage < 1 || c.PullPage > 10000 {
		p.Add(key+".pull_page", "%d: want 1 to 10000", c.PullPage)
	}
	c.Config.Validate(p, key)
	for i, pt := range c.Partners {
		if pt.Name == c.Name {
			p.Add(fmt.Sprintf("%s.partners[%d].name", key, i), "%q is our own name (sharing.name)", pt.Name)
		}
		if pt.Identity == c.Identity {
			p.Add(fmt.Sprintf("%s.partners[%d].identity", key, i), "%s is our own identity (sharing.identity)", pt.Identity)
		}
	}
}

// Key is our signing key.
func (c *Config) Key() (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(c.SigningKey.Value())
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("want the standard base64 of a 32-byte Ed25519 seed (cordon share keygen)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// AllianceKeyBytes is the alliance key (nil when not set).
func (c *Config) AllianceKeyBytes() []byte {
	if v := c.AllianceKey.Value(); v != "" {
		return []byte(v)
	}
	return nil
}
