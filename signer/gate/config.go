package gate

import (
	"fmt"
	"time"

	"github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/signer/audit"
	"github.com/cordonhq/cordon/signer/intent"
	"github.com/cordonhq/cordon/signer/policy"
	"github.com/cordonhq/cordon/signer/risk"
)

// Config is the gate section of the config file.
type Config struct {
	// Approvers are the people who approve: name, groups, Ed25519 public
	// key (cordon approver keygen).
	Approvers []intent.Approver `yaml:"approvers"`
	// Assets are the tokens withdrawals may move (each followed network's
	// coin is always accepted).
	Assets  []Asset       `yaml:"assets"`
	Policy  policy.Config `yaml:"policy"`
	Risk    risk.Config   `yaml:"risk"`
	Breaker BreakerConfig `yaml:"breaker"`
	// AddressBook is who approves whitelisted destinations, and the time
	// lock before they count.
	AddressBook AddressBookConfig `yaml:"address_book"`
	Audit       audit.Config      `yaml:"audit"`
	// RetainFinished is how long a finished withdrawal (denied, rejected,
	// expired) stays whole in the gate's state after its last change
	// (default 720h): then it is archived, only its id, body hash and
	// status kept (a repeated request id is still recognized), so the
	// state and a restore do not grow with every withdrawal ever made.
	// Its events stay on cordon.withdrawals, its history in the audit
	// log. 0 keeps them whole forever.
	RetainFinished time.Duration `yaml:"retain_finished"`
}

// DefaultConfig is the gate's defaults: the risk layer's, a reset of the
// breaker by 2 approvers of security, and address-book additions by 2
// approvers of security, counting 48 hours after.
func DefaultConfig() Config {
	return Config{Risk: risk.Defaults(), Breaker: BreakerConfig{ResetQuorum: 2, ResetGroups: []string{"security"}},
		AddressBook: AddressBookConfig{Quorum: 2, Groups: []string{"security"}, TimeLock: 48 * time.Hour}, RetainFinished: 720 * time.Hour}
}

// Validate checks the section (key is "gate"), naming each bad key, and
// returns the approvers.
func (c *Config) Validate(p *config.Problems, key string) *intent.Approvers {
	if len(c.Approvers) == 0 {
		p.Add(key+".approvers", "empty: the gate needs the approvers who approve withdrawals (cordon approver keygen)")
		return nil
	}
	approvers, err := intent.NewApprovers(key+".approvers", c.Approvers)
	if err != nil {
		p.Add(key+".approvers", "%v", err)
		return nil
	}
	c.Policy.Validate(p, key+".policy", approvers)
	c.Risk.Validate(p, key+".risk")
	c.Audit.Validate(p, key+".audit")
	b := c.Breaker
	switch eligible := enabledIn(approvers, b.ResetGroups); {
	case b.ResetQuorum < 1:
		p.Add(key+".breaker.reset_quorum", "%d: a reset needs at least one approver", b.ResetQuorum)
	case b.ResetQuorum > eligible:
		p.Add(key+".breaker.reset_quorum", "%d: only %d enabled approvers are in %v: the breaker could never be reset", b.ResetQuorum, eligible, b.ResetGroups)
	}
	c.AddressBook.validate(p, key+".address_book", approvers)
	if c.RetainFinished != 0 && c.RetainFinished < time.Hour {
		p.Add(key+".retain_finished", "%s: want at least 1h, or 0 to keep finished withdrawals whole forever", c.RetainFinished)
	}
	for i, t := range c.Assets {
		if t.Symbol == "" {
			p.Add(fmt.Sprintf("%s.assets[%d].symbol", key, i), "empty: name the token")
		}
	}
	return approvers
}
