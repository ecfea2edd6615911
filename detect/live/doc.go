// Package live runs detection's rules (detect/rules) on the block stream
// in Kafka: it reads cordon.blocks and the part topics from its stored
// positions, puts each block back together (kafka.Assembler), applies the
// stream's events in order, and commits what a round raised — the alerts
// to cordon.alerts, the engine's changed state and its read positions to
// cordon.detect-state — in one Kafka transaction. A restart restores the
// state as of the last commit and reads on from its positions, so every
// alert is written once and none is missed: the ids of a run that
// stopped and resumed equal those of one that never stopped.
//
// One instance detects at a time (kafka.Lead in cmd); a new one fences
// the old through the transactional id.
package live
