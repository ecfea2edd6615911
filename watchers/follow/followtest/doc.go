// Package followtest is the conformance suite of the follow contracts: every
// follow.Source and every follow.Sink runs the same properties, so a new
// chain or a new store is done when its suite is green.
//
// Source runs against a Source connected to a real node, with a small
// control surface (SourceUnderTest) to mine blocks and reorganize that
// node. Sink runs against a fresh, empty Sink (SinkUnderTest), optionally
// able to fail a Publish part-way. MemorySink is an in-memory Sink that
// passes the suite, for tests that need a sink and no Kafka.
//
// The package imports only watchers/follow and internal/; the
// implementations' packages import it from their tests.
package followtest
