package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordonhq/cordon/ingest/kafka"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/recordauth"
	"github.com/cordonhq/cordon/signer/pluginhost"
	"github.com/cordonhq/cordon/signer/vault"
)

// SignerFile is the whole configuration of `cordon signer run`: the
// second risk layer runs apart from everything else, from a file of its
// own. It holds its own copies of the approvers, the policy, the
// wallets, its limits and blocklist, and its plugins; it reaches Kafka
// and its local plugins only (no API; http.listen, off by default,
// serves health and metrics only).
type SignerFile struct {
	Log  Log  `yaml:"log"`
	HTTP HTTP `yaml:"http"`
	// Kafka: the signer connects as its own principal (signer).
	Kafka kafka.Config `yaml:"kafka"`
	// RecordAuth: keys.signer signs its state and results; trust.gate
	// verifies the signing requests.
	RecordAuth recordauth.Config `yaml:"record_auth"`
	Signer     vault.Config      `yaml:"signer"`
	// Plugins are the signer plugins, each a binary pinned by its
	// SHA-256; the wallets' keys name them.
	Plugins []pluginhost.Config `yaml:"plugins"`
	// Threshold are the threshold keys: each a group of cosigning plugins
	// (plugins/threshold), two of which sign together. A wallet's key
	// names a group as its plugin.
	Threshold []ThresholdGroup `yaml:"threshold"`
	// HealthInterval is how often each plugin is pinged (default 10s).
	HealthInterval time.Duration `yaml:"health_interval"`
	// Blocklist are the files of the signer's own copy of the flagged
	// addresses (it does not read the indicator topic: a forged or
	// withheld indicator there does not reach it).
	Blocklist []BlocklistFile `yaml:"blocklist"`
}

// BlocklistFile is one file of the signer's blocklist: an OFAC address
// list (format ofac, with its currency: XBT, ETH, USDT, USDC) or a CSV
// indicator file (format csv, cordon intel's columns; Chain is the
// chain of rows that name none).
type BlocklistFile struct {
	Format   string `yaml:"format"`
	Path     string `yaml:"path"`
	Currency string `yaml:"currency"`
	Chain    string `yaml:"chain"`
}

// ThresholdGroup is one threshold key: Name is what wallets' keys name
// as their plugin, KeyID the key id every party's share has, PublicKey
// the group's compressed key (hex), Parties each party id's plugin (a
// plugins entry). SessionTimeout bounds one signing (default 60s);
// Retry tries the other healthy pair once after a failed session.
type ThresholdGroup struct {
	Name           string            `yaml:"name"`
	KeyID          string            `yaml:"key_id"`
	PublicKey      string            `yaml:"public_key"`
	Parties        map[string]string `yaml:"parties"`
	SessionTimeout time.Duration     `yaml:"session_timeout"`
	Retry          bool              `yaml:"retry"`
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadSigner reads and validates a signer file, as Load does the main
// one: unknown keys refused, environment overrides (CORDON_…), secrets
// resolved, every problem named by its key.
func LoadSigner(path string, env []string) (SignerFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return SignerFile{}, fmt.Errorf("read signer config: %w", err)
	}
	var c SignerFile
	c.Log = Log{Level: "info", Format: "text"}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return SignerFile{}, fmt.Errorf("signer config: %w", err)
	}
	if err := iconfig.ApplyEnv(&c, env); err != nil {
		return SignerFile{}, err
	}
	return c, c.Fill()
}

// Fill resolves secrets, builds the record keyring and validates.
func (c *SignerFile) Fill() error {
	if err := iconfig.ResolveSecrets(c); err != nil {
		return err
	}
	var p iconfig.Problems
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Add("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		p.Add("log.format", "%q: want text or json", c.Log.Format)
	}
	if len(c.Kafka.Brokers) == 0 {
		p.Add("kafka.brokers", "empty: the signer reads its requests from Kafka")
	}
	c.Kafka.Topics.Fill()
	c.Kafka.Auth = c.RecordAuth.Keyring(&p, "record_auth")
	if !c.RecordAuth.HasKey(recordauth.Vault) {
		p.Add("record_auth.keys.signer", "empty: the signer signs its state and results (cordon keys generate --role signer)")
	}
	if len(c.RecordAuth.Trust.Gate) == 0 {
		p.Add("record_auth.trust.gate", "empty: the signer verifies that each request was written by the gate")
	}
	if len(c.RecordAuth.Trust.Signer) == 0 {
		p.Add("record_auth.trust.signer", "empty: the signer reads back its own state")
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 10 * time.Second
	}
	if c.HealthInterval < 100*time.Millisecond {
		p.Add("health_interval", "%s: want at least 100ms", c.HealthInterval)
	}
	names := map[string]bool{}
	for i, pl := range c.Plugins {
		k := fmt.Sprintf("plugins[%d]", i)
		switch {
		case pl.Name == "":
			p.Add(k+".name", "empty: the wallets' keys name their plugin")
		case names[pl.Name]:
			p.Add(k+".name", "%q twice", pl.Name)
		}
		names[pl.Name] = true
		if pl.Path == "" {
			p.Add(k+".path", "empty: the plugin's binary")
		}
		if !sha256Re.MatchString(pl.SHA256) {
			p.Add(k+".sha256", "%q: want the binary's 64 lowercase hex digits (sha256sum): a plugin runs only pinned", pl.SHA256)
		}
	}
	if len(c.Plugins) == 0 {
		p.Add("plugins", "empty: the signer signs through plugins only")
	}
	for i, g := range c.Threshold {
		k := fmt.Sprintf("threshold[%d]", i)
		switch {
		case g.Name == "":
			p.Add(k+".name", "empty: the wallets' keys name the group as their plugin")
		case names[g.Name]:
			p.Add(k+".name", "%q is also a plugin's or another group's name", g.Name)
		}
		names[g.Name] = true
		if g.KeyID == "" {
			p.Add(k+".key_id", "empty: the key id of the parties' shares")
		}
		if !regexp.MustCompile(`^0[23][0-9a-fA-F]{64}$`).MatchString(g.PublicKey) {
			p.Add(k+".public_key", "%q: want the group's 33-byte compressed key in hex", g.PublicKey)
		}
		if len(g.Parties) < 2 {
			p.Add(k+".parties", "%d parties: a 2-of-n key needs at least 2 (2-of-3: 3)", len(g.Parties))
		}
		for id, pl := range g.Parties {
			if !slices.ContainsFunc(c.Plugins, func(x pluginhost.Config) bool { return x.Name == pl }) {
				p.Add(k+".parties."+id, "%q: not a plugins entry", pl)
			}
		}
		if g.SessionTimeout < 0 {
			p.Add(k+".session_timeout", "%s: want positive", g.SessionTimeout)
		}
	}
	for i, b := range c.Blocklist {
		k := fmt.Sprintf("blocklist[%d]", i)
		switch b.Format {
		case "ofac":
			if b.Currency == "" {
				p.Add(k+".currency", "empty: an OFAC list is of one currency (XBT, ETH, USDT, USDC)")
			}
		case "csv":
			if b.Chain != "" && b.Chain != "btc" && b.Chain != "eth" {
				p.Add(k+".chain", "%q: want btc or eth", b.Chain)
			}
		default:
			p.Add(k+".format", "%q: want ofac or csv", b.Format)
		}
		if b.Path == "" {
			p.Add(k+".path", "empty")
		}
	}
	var vp iconfig.Problems
	c.Signer.Validate(&vp, "signer")
	if err := errors.Join(p.Err(), vp.Err()); err != nil {
		return fmt.Errorf("signer config: %w", err)
	}
	return nil
}
