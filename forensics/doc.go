// Package forensics holds the analysts' tools over ClickHouse:
// forensics/trace follows funds hop by hop (cordon trace), and
// forensics/reconcile checks the store against a node (cordon reconcile).
package forensics
