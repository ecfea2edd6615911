// Package incident groups detection's alerts into incidents and keeps
// their evidence: the Grouper files each alert into the open incident it
// shares an address or a transaction with (opening one on a severe
// alert), deterministically, so detection's service commits the
// incidents' events with the alerts that caused them; Fold and Timeline
// read an incident's history back; Write and Verify are the write-once,
// signed evidence bundles (docs/detect.md).
package incident
