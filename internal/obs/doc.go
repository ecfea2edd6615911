// Package obs is cordon's observability plumbing: the slog logger, the
// Prometheus registry, and the HTTP server with /healthz, /readyz and
// /metrics.
package obs
