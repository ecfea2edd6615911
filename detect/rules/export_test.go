package rules

// Nth is nth, for the tests.
var Nth = nth
