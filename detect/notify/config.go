package notify

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	iconfig "github.com/cordonhq/cordon/internal/config"
)

// Formats of a webhook's payload.
const (
	FormatCordon = "cordon"
	FormatChat   = "chat"
)

// Config is where alerts go (key `detect.notify`).
type Config struct {
	Webhooks []Webhook `yaml:"webhooks"`
	// Silences hold back the alerts they match until they expire.
	Silences []Silence `yaml:"silences"`
}

// Webhook is one receiver of alerts.
type Webhook struct {
	// Name names the webhook in its consumer group, its metrics and its
	// dead letters (lowercase letters, digits, _ and -).
	Name string `yaml:"name"`
	// URL must be https, or http to a loopback address.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key of the X-Cordon-Signature header
	// (at least 16 bytes; env:NAME or file:PATH).
	Secret iconfig.Secret `yaml:"secret"`
	// Format is "cordon" (default) or "chat".
	Format string `yaml:"format"`
	// MinSeverity drops alerts below it (default low: all).
	MinSeverity string `yaml:"min_severity"`
	// Rules, when set, delivers only the alerts of these rules (the
	// alert's rule, or its type for alerts not raised by a rule).
	Rules []string `yaml:"rules"`
	// Timeout bounds one attempt (default 10s); Attempts is how many
	// tries before the dead letter (default 8), the first retry after
	// Backoff (default 1s), doubling up to MaxBackoff (default 1m).
	Timeout    time.Duration `yaml:"timeout"`
	Attempts   int           `yaml:"attempts"`
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Silence holds back the alerts matching all of its set fields until
// Until. A silence without an expiry is refused: silences are for a known
// cause being worked on, not for turning a rule off (rules have their own
// disabled keys).
type Silence struct {
	// Rule matches the alert's rule (or type).
	Rule string `yaml:"rule"`
	// Address matches an alert naming it (case-insensitive).
	Address string `yaml:"address"`
	// Chain matches the alert's chain.
	Chain string `yaml:"chain"`
	// MaxSeverity silences only alerts up to it (default: high; a
	// critical alert is silenced only by a silence naming critical).
	MaxSeverity string    `yaml:"max_severity"`
	Until       time.Time `yaml:"until"`
	// Reason says why (required): it is logged with every alert held
	// back.
	Reason string `yaml:"reason"`
}

// Fill sets the defaults.
func (c *Config) Fill() {
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		iconfig.OrDefault(&w.Format, FormatCordon)
		iconfig.OrDefault(&w.MinSeverity, "low")
		iconfig.OrDefault(&w.Timeout, 10*time.Second)
		iconfig.OrDefault(&w.Attempts, 8)
		iconfig.OrDefault(&w.Backoff, time.Second)
		iconfig.OrDefault(&w.MaxBackoff, time.Minute)
	}
	for i := range c.Silences {
		iconfig.OrDefault(&c.Silences[i].MaxSeverity, "high")
	}
}

// Validate adds every bad key under prefix to p (on a filled config).
func (c Config) Validate(p *iconfig.Problems, prefix string) {
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		k := fmt.Sprintf("%s.webhooks[%d]", prefix, i)
		if err := iconfig.Name(w.Name); err != nil {
			p.Add(k+".name", "%v", err)
		} else if names[w.Name] {
			p.Add(k+".name", "%q: named twice", w.Name)
		}
		names[w.Name] = true
		if err := checkURL(w.URL); err != nil {
			p.Add(k+".url", "%v", err)
		}
		if len(w.Secret.Value()) < 16 {
			p.Add(k+".secret", "want at least 16 bytes (the HMAC key receivers verify with)")
		}
		if !slices.Contains([]string{FormatCordon, FormatChat}, w.Format) {
			p.Add(k+".format", "%q: want cordon or chat", w.Format)
		}
		if !known(w.MinSeverity) {
			p.Add(k+".min_severity", "%q: want low, medium, high or critical", w.MinSeverity)
		}
		if w.Timeout < 0 || w.Backoff < 0 || w.MaxBackoff < w.Backoff {
			p.Add(k, "want timeout, backoff ≥ 0 and max_backoff ≥ backoff")
		}
		if w.Attempts < 1 || w.Attempts > 100 {
			p.Add(k+".attempts", "%d: want 1 to 100", w.Attempts)
		}
	}
	for i, s := range c.Silences {
		k := fmt.Sprintf("%s.silences[%d]", prefix, i)
		if s.Rule == "" && s.Address == "" && s.Chain == "" {
			p.Add(k, "matches every alert: name a rule, an address or a chain")
		}
		if s.Until.IsZero() {
			p.Add(k+".until", "required: a silence expires (RFC 3339 time)")
		}
		if strings.TrimSpace(s.Reason) == "" {
			p.Add(k+".reason", "required: say why the alerts are held back")
		}
		if !known(s.MaxSeverity) {
			p.Add(k+".max_severity", "%q: want low, medium, high or critical", s.MaxSeverity)
		}
	}
}

// checkURL wants https, or http to a loopback host (a receiver on the
// same machine): alerts name our wallets and must not cross a network in
// clear.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: http only to a loopback address; use https", s)
	}
	return fmt.Errorf("%q: want an https URL", s)
}

func known(s string) bool { return slices.Contains([]string{"low", "medium", "high", "critical"}, s) }

// Rank orders severities: 1 low, 2 medium, 3 high, 4 critical. The other
// components' words count as their like ("info" low, "warning" medium,
// "urgent" high); an unknown severity ranks as critical, so a filter
// never drops what it cannot place; "" ranks 0.
func Rank(s string) int {
	switch strings.ToLower(s) {
	case "":
		return 0
	case "low", "info":
		return 1
	case "medium", "warning":
		return 2
	case "high", "urgent":
		return 3
	}
	return 4
}
