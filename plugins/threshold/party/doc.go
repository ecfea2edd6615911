// Package party is one party of cordon's 2-of-3 threshold ECDSA key
// (secp256k1, GG18 as github.com/bnb-chain/tss-lib/v2 v2.0.2 implements
// it): its share file (Share, Load, WriteShares), the in-process key
// ceremony that makes the three shares (Keygen), and its side of a
// signing session (Share.Cosign).
//
// Every message between parties travels in an Envelope signed with the
// sender's ed25519 key and bound to one session; a party refuses an
// envelope of another session, from a party not in the session, from
// itself, replayed or out of order, badly signed, or not addressed to
// it. The tss message inside is then checked at the boundary before
// tss-lib sees it: the checks that upstream tss-lib added after v2.0.2
// (the Feldman commitment's length, gcd(W, N) = 1 in the modulus proof,
// the MtA range proof's bounds) and a few of ours (a message type at
// most once per sender, the broadcast flag its type requires, the
// Paillier ciphertexts in Z*_{N^2}). See ../README.md.
//
// EXPERIMENTAL. A refused message ends the session: the signing fails
// closed and is not retried by the party.
package party
