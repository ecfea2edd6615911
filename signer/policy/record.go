package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/signer/intent"
)

// A policy file's approval is an intent.Approval whose Withdrawal is
// "policy:" and the file's hash, and whose Intent is the hash: signed by
// an approver with their own key, it approves those bytes and no others,
// and no withdrawal (whose ids are wd_… and whose hashes are of intents).
const policyPrefix = "policy:"

// MaxRecordBytes bounds an approval record.
const MaxRecordBytes = 1 << 20

// Errors of VerifyRecord.
var (
	ErrRecord        = errors.New("policy approval record refused")
	ErrNotApproved   = errors.New("policy not approved by its quorum")
	ErrPolicyChanged = errors.New("approval of other policy bytes")
)

// ApprovePolicy returns approver's approval of the policy file src,
// signed with key at now (cordon policy approve). reason may be empty.
func ApprovePolicy(src []byte, approver, reason string, key ed25519.PrivateKey, now time.Time) (intent.Approval, error) {
	h := Hash(src)
	a := intent.Approval{Withdrawal: policyPrefix + h, Intent: h, Approver: approver, Decision: intent.Approve,
		Reason: reason, Signed: now.UTC()}
	a.Sign(key)
	if err := a.Check(); err != nil {
		return intent.Approval{}, err
	}
	return a, nil
}

// VerifyRecord checks the approval record of the policy file src (JSON
// approvals, one after another) against q: every approval must be a
// well-formed approval of exactly these bytes, signed by the key of a
// known, enabled approver; any other refuses the whole record, and so
// does a rejection by an approver of q's groups. The distinct approvers
// of q's groups must meet q. It returns them, sorted.
func VerifyRecord(src, record []byte, q Quorum, approvers *intent.Approvers) ([]string, error) {
	if len(record) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrRecord, MaxRecordBytes)
	}
	h := Hash(src)
	d := json.NewDecoder(bytes.NewReader(record))
	d.DisallowUnknownFields()
	var counted []string
	var others []string
	for n := 1; ; n++ {
		var a intent.Approval
		if err := d.Decode(&a); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w: approval %d: %w", ErrRecord, n, err)
		}
		ap, err := verifyPolicyApproval(&a, h, approvers)
		if err != nil {
			return nil, fmt.Errorf("%w: approval %d: %w", ErrRecord, n, err)
		}
		if !q.eligible(ap) {
			others = append(others, a.Approver)
			continue
		}
		if a.Decision == intent.Reject {
			return nil, fmt.Errorf("%w: %s rejected it: %s", ErrNotApproved, a.Approver, a.Reason)
		}
		if !slices.Contains(counted, a.Approver) {
			counted = append(counted, a.Approver)
		}
	}
	slices.Sort(counted)
	if m := q.missing(counted, approvers); m != "" {
		if len(others) > 0 {
			m += "; not counted, outside " + strings.Join(q.Groups, ", ") + ": " + strings.Join(others, ", ")
		}
		return nil, fmt.Errorf("%w: policy %s: %s", ErrNotApproved, h, m)
	}
	return counted, nil
}

func verifyPolicyApproval(a *intent.Approval, hash string, approvers *intent.Approvers) (*intent.Approver, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	if a.Intent != hash || a.Withdrawal != policyPrefix+hash {
		return nil, fmt.Errorf("%w: it signs %s, and the policy file is %s", ErrPolicyChanged, trunc(a.Withdrawal), hash)
	}
	ap, ok := approvers.Get(a.Approver)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %q", intent.ErrUnknownApprover, a.Approver)
	case ap.Disabled:
		return nil, fmt.Errorf("%w: %q", intent.ErrDisabled, a.Approver)
	}
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ap.Key))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s has no valid key", intent.ErrBadSignature, a.Approver)
	}
	sig, _ := base64.StdEncoding.DecodeString(a.Signature) //nolint:errcheck // Check decoded it
	if !ed25519.Verify(pub, a.SignedBytes(), sig) {
		return nil, fmt.Errorf("%w: %s's key did not sign this approval", intent.ErrBadSignature, a.Approver)
	}
	return ap, nil
}

// Load returns the policy of c: the default policy when c.File is empty,
// otherwise the policy file, only once its approval record (c.Approvals)
// verifies against c.PolicyQuorum. It returns the approvers who approved
// it, for the audit log.
func Load(c Config, approvers *intent.Approvers) (*Policy, []string, error) {
	if c.File == "" {
		p, err := Default(approvers)
		if err != nil {
			return nil, nil, fmt.Errorf("default policy: %w", err)
		}
		return p, nil, nil
	}
	src, err := readBounded(c.File, MaxFileBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("gate.policy.file: %w", err)
	}
	if c.Approvals == "" {
		return nil, nil, errors.New("gate.policy.approvals: empty: a policy file is loaded only with its approval record")
	}
	record, err := readBounded(c.Approvals, MaxRecordBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("gate.policy.approvals: %w", err)
	}
	by, err := VerifyRecord(src, record, c.PolicyQuorum, approvers)
	if err != nil {
		return nil, nil, fmt.Errorf("gate.policy.approvals %s: %w", c.Approvals, err)
	}
	p, err := Parse(src, approvers)
	if err != nil {
		return nil, nil, fmt.Errorf("gate.policy.file %s: %w", c.File, err)
	}
	return p, by, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
