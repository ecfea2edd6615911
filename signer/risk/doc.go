// Package risk is the withdrawal gate's online risk layer: the first of
// two independent layers (the signing stage has its own). For one
// withdrawal it reports findings, each with a code from signer/intent
// (or CounterpartiesUnknown), a sentence and details as strings, and the
// accumulations of the velocity windows, this withdrawal included, that
// the policy reads.
//
// It remembers the accepted withdrawals in memory: sliding windows per
// account, per asset and over all, and each account's compact history
// (destinations with first and last use, per asset the count and the
// largest amount). The gate owns persistence: it calls Add when it
// accepts a withdrawal and Remove when one leaves the accumulation, and
// keeps each account's AccountState (JSON) to restore with
// RestoreAccount. The state is deterministic: the same calls give the
// same answers.
//
// Screening, the address registry and the destination's earlier
// counterparties come through interfaces declared here (Screener,
// Registry, Counterparties); ClickHouse implements Counterparties over
// the loaded chain. A lookup that fails is a finding, never a clean
// answer. See docs/gate/risk.md.
package risk
