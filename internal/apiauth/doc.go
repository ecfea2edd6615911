// Package apiauth checks the bearer tokens of cordon's API and their
// scopes: each integration token (api.tokens) holds only the scopes of its
// job, operators (api.operators) are named people holding OperatorScopes.
// Refusals are counted (cordon_api_denied_total), logged with the
// holder's name and alerted; tokens are compared in constant time and
// never logged.
package apiauth
