// Package alliance is partner sharing's service: an exchange's part in
// an alliance of exchanges that share signed STIX indicators over TAXII
// 2.1 (docs/sharing/README.md).
//
// Service keeps the state on cordon.sharing and is the TAXII server's
// intake (taxii.Intake). Every object a partner posts or a pull brings
// is checked on its own: dates, type, signature, the signer's identity
// and relay rights, the TLP of relayed objects, values per chain and
// network, then version order against what is held of its creator's
// object. What is taken commits in one Kafka transaction with its
// indicators on cordon.intel (feed partner:<name>) and, for a pull, the
// new position, so that a restart neither loses nor repeats anything.
//
// Publish and Revoke sign our listings (Listing; private ones as keyed
// hashes in the hashed collection) and commit them with our own
// indicators; Push posts urgent ones to partners' inboxes, Pull follows
// a partner's collection with long-polls, Sight reports a match of a
// partner's indicator back to it. API is the operators' /v1/share
// endpoints; Config the sharing section of cordon's configuration.
package alliance
