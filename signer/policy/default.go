package policy

import (
	_ "embed"
	"slices"

	"github.com/cordonhq/cordon/signer/intent"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the shipped default policy file: a flagged
// destination is denied; below $1,000,000 takes 2 of the security and
// finance approvers within 15 minutes; $1,000,000 to $5,000,000
// inclusive takes 3 and a 2-hour cooling period; above $5,000,000, or of
// unknown value, takes 4 with at least one from each group and the same
// cooling period; approvals are void 2 hours after they were signed.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Default compiles the default policy for approvers, who must include
// members of the groups security and finance enough to meet its quorums.
func Default(approvers *intent.Approvers) (*Policy, error) {
	return Parse(defaultYAML, approvers)
}
