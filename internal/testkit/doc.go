// Package testkit holds helpers shared by cordon's integration tests: an
// embedded Kafka cluster and readers that apply a published stream the way
// a consumer would.
package testkit
