// Command ledger is an example of an exchange ledger applying cordon's
// deposit events (the cordon.deposits topic) idempotently.
//
// It shows the two rules a ledger needs (docs/credit.md):
//
//  1. Order each deposit's credited and reverted events by their credits
//     count (a revert after the credit it takes back), apply only events
//     newer than the last applied, and make the booking match the event.
//     Replays, duplicates, compaction and a reset of the read position
//     then change nothing.
//  2. Keep the read position in the same atomic write as the balances, so
//     a crash between the two cannot lose or double an event either.
//
// The ledger here is a JSON file replaced atomically (write, fsync,
// rename); a real exchange does the same in its database transaction.
//
//	go run ./examples/ledger --brokers 127.0.0.1:9092 --state ledger.json
package main
