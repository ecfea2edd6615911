// Package apiauth checks the bearer tokens of cordon's API.
package apiauth
