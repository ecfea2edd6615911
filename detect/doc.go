// Package detect holds the detectors that read the chain stream and the
// store for attacks on the exchange: detect/retrohunt looks back through
// ClickHouse when new indicators arrive. Anomaly rules on the live stream
// come next.
package detect
