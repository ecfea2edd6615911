// Package retrohunt looks back through ClickHouse when indicators arrive:
// a thief listed today may have deposited into the exchange last week. For
// every newly listed address it finds, within a window, the canonical
// transfers between that address and the exchange's registered addresses
// — deposits from it, and withdrawals to it — and raises an alert for
// each.
package retrohunt
