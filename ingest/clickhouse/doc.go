// Package clickhouse is cordon's ClickHouse store: the connection
// (clickhouse-go/v2 over the native protocol, which works with Debian's
// ClickHouse 18.16 and current releases), and the schema cordon creates
// and migrates itself. Every statement names its columns and uses only
// types 18.16 has (no DateTime64, UInt256 or Map).
package clickhouse
