// Package vault is the second risk layer: the `cordon signer` role's
// decisions. It trusts nothing the gate or the builder says. A signing
// request carries the unsigned transaction, the intents it carries out
// and their signed approvals; before any signer plugin is asked, the
// vault
//
//   - checks every approval itself against its own copy of the approver
//     registry and its own copy of the policy (the intent's policy hash
//     must be that copy's, the rule's quorum met, cooling over, the
//     approvals not void);
//   - decodes the unsigned transaction itself, strictly (txcheck), and
//     checks it against the intents and its own copy of the wallet: the
//     change scripts re-derived from the wallet's keys, the fee caps its
//     own;
//   - applies its own limits (per transaction, per day, per destination
//     per day), its own blocklist and its own breaker;
//   - claims the withdrawals: a withdrawal is signed in one transaction
//     only, ever.
//
// Admit makes these decisions and returns the entry that must be
// recorded durably before Sign asks any plugin: the caller (Service)
// commits it to the signer's own state topic first, so that after a
// crash the same transaction, and only it, is signed again. A refused
// request trips the vault's breaker when the refusal means that someone
// upstream lied (a tampered transaction, a forged or replayed approval,
// a withdrawal asked for twice): nothing more is signed on that chain
// until approvers reset it.
//
// The Vault is not safe for concurrent use: Service owns it.
package vault
