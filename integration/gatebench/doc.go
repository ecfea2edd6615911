// Package gatebench holds the withdrawal gate's end-to-end benchmarks
// (issue 14), which need what the gate itself may not import: the real
// indicator index (intel) as the risk layer's Screener and the address
// registry as its Registry, wired as cmd wires them. Tests only.
package gatebench
