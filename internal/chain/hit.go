package chain

// Hit is an active indicator that an address matches, as screening
// reports it to the stages that hold or refuse money (crediting, and the
// withdrawal gate): which address, which indicator, and what the
// indicator says of it.
type Hit struct {
	Address    string `json:"address"`
	Indicator  string `json:"indicator"`
	Category   string `json:"category"`
	Source     string `json:"source"`
	Confidence int    `json:"confidence"`
}

// NodeReport is one chain endpoint's answer to which block is at a
// height: the watchers' sources give it, crediting weighs it.
type NodeReport struct {
	Endpoint string
	Hash     string
	Err      error
}
