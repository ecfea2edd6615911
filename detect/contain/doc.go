// Package contain is detection's automatic containment: actions that
// alerts of chosen rules and severities set off — tripping the withdrawal
// gate's circuit breaker (over the alert's asset, its chain, or
// everything) and publishing the alert's counterparties to partner
// exchanges as urgent indicators.
//
// Plan turns a round's alerts into tasks, deterministically (a task's id
// is its action and its alert's), so the detection service commits them
// with the alerts that caused them and a restart finds the ones not yet
// done. Run carries a task out through the small interfaces Breaker and
// Publisher (wired in cmd to the gate's and sharing's APIs); a target not
// configured is an outcome too: the action is recorded as not taken. A
// breaker trip carries the task id in its reason, so a task carried out
// again after a crash finds its trip instead of pulling a second one, and
// the gate's audit log holds each trip with the alert that caused it.
package contain
