// Package jcs writes JSON in the canonical form of RFC 8785 (the JSON
// Canonicalization Scheme): object members sorted by the UTF-16 code
// units of their names, no insignificant whitespace, strings with the
// minimal escapes, numbers as ECMAScript prints them. Equal JSON values
// give equal bytes, so a signature over the bytes signs the value.
//
// Transform canonicalizes JSON text; Marshal canonicalizes a Go value
// through encoding/json. Input that is not I-JSON (duplicate member
// names, invalid UTF-8, numbers outside IEEE 754 double range, or nesting
// deeper than MaxDepth) is refused, never repaired.
package jcs
