// Package detect holds the detectors that read the chain stream and the
// store for attacks on the exchange, and what they set off:
// detect/rules evaluates rules on every block (docs/detect.md),
// detect/live runs them on Kafka exactly once across restarts,
// detect/notify delivers the alerts to webhooks, detect/contain trips
// the withdrawal gate's breaker and publishes thieves' addresses to
// partners, and detect/retrohunt looks back through ClickHouse when new
// indicators arrive.
package detect
