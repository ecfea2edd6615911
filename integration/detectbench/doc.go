// Package detectbench holds detection's benchmarks (issue 17), which need
// what detection itself may not import: the address registry as its
// Registry and the indicator index as its Screener, wired as cmd wires
// them. Tests only.
package detectbench
