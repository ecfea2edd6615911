// Package clock is the one source of time for the parts of cordon whose
// behaviour depends on it (the withdrawal gate's windows, expiries,
// breaker cool-downs and audit checkpoints): production code takes a
// Clock, Real reads the system clock, and tests hand in a Manual clock
// they move themselves, so no test sleeps to make time pass.
package clock
