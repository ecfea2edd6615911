// Package chtest starts private ClickHouse servers for tests.
package chtest
