// Package proc runs the helper servers that `cordon dev` and the tests
// start (btcd, clickhouse-server): free loopback ports, a child process
// that dies with cordon, and stopping it gracefully or abruptly.
package proc
