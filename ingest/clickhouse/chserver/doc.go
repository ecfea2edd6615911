// Package chserver runs a private clickhouse-server for `cordon dev` and
// the tests: the system's binary and default configuration, with its own
// loopback ports, data directory and logs, so it never touches a server
// the machine already runs.
package chserver
