package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// defaultDataDir is where `cordon dev` keeps its state and endpoints.json.
const defaultDataDir = ".cordon/dev"

// endpoints is endpoints.json: every address a client of a running
// `cordon dev` needs.
type endpoints struct {
	// Kafka is the bootstrap broker list, comma separated (kcat -b).
	Kafka string `json:"kafka"`
	// ETHRPC and ETHWS are the devnet's JSON-RPC endpoints.
	ETHRPC     string `json:"eth_rpc"`
	ETHWS      string `json:"eth_ws"`
	ETHNetwork string `json:"eth_network"`
	ETHChainID uint64 `json:"eth_chain_id"`
	// BTCRPC is the dev btcd node's JSON-RPC endpoint; nil when the dev
	// system runs without Bitcoin.
	BTCRPC *btcRPC `json:"btc_rpc,omitempty"`
	// HotWallets are the dev hot wallets' addresses by "chain/network".
	HotWallets map[string]string `json:"hot_wallets,omitempty"`
	// ClickHouse is the dev ClickHouse server's native-protocol address
	// (empty without one).
	ClickHouse string `json:"clickhouse,omitempty"`
	// HTTP is cordon's own health, readiness and metrics address.
	HTTP string `json:"http"`
	// API is the screening API and its bearer token.
	API *apiEndpoint `json:"api,omitempty"`
	// Topics are the Kafka topic names.
	Topics map[string]string `json:"topics"`
	// RecordKeys are the public record keys by role (the ledger verifies
	// deposits with record_keys.credit); the private keys are the
	// record-key-* files beside this one.
	RecordKeys map[string]string `json:"record_keys"`
	// Approvers are the dev approvers: name, group and key file (sign
	// with cordon withdrawals approve ID --key FILE).
	Approvers []devApprover `json:"approvers,omitempty"`
	// Exchange is this instance's name in the dev alliance and TAXII its
	// TAXII API root (mutual TLS); Partners are the other exchanges
	// (cordon dev --partners N).
	Exchange string       `json:"exchange,omitempty"`
	TAXII    string       `json:"taxii,omitempty"`
	Partners []devPartner `json:"partners,omitempty"`
	PID      int          `json:"pid"`
}

// devPartner is another exchange of the dev alliance: cordon share
// commands take its data directory (--data-dir).
type devPartner struct {
	Name    string `json:"name"`
	DataDir string `json:"data_dir"`
	API     string `json:"api"`
	TAXII   string `json:"taxii"`
}

func writeEndpoints(dir string, e endpoints) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "endpoints.json.tmp")
	// It holds tokens and the node's RPC password: the owner's only.
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "endpoints.json"))
}

// readEndpoints reads the endpoints.json of a dev data directory, with an
// error that says what to do when there is none.
func readEndpoints(dir string) (endpoints, error) {
	path := filepath.Join(dir, "endpoints.json")
	b, err := os.ReadFile(path) // #nosec G703 -- the user's own data directory
	if errors.Is(err, fs.ErrNotExist) {
		return endpoints{}, fmt.Errorf("no %s: start the dev system with `make run` (or `cordon dev`), or pass the service address or --config", path)
	}
	if err != nil {
		return endpoints{}, err
	}
	var e endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return endpoints{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// devApprover is one dev approver in endpoints.json.
type devApprover struct {
	Name    string `json:"name"`
	Group   string `json:"group"`
	KeyFile string `json:"key_file"`
}

// btcRPC is what a client needs to call the dev btcd node.
type btcRPC struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Network  string `json:"network"`
}

// apiEndpoint is where the dev system's authenticated API listens, and
// its tokens.
type apiEndpoint struct {
	URL string `json:"url"`
	// Token is the screening token (Tokens["screening"]), kept where
	// scripts read it.
	Token string `json:"token"`
	// Tokens are the integrations' tokens by role (devRoles): screening
	// (screen), registrar (register), ledger (deposits:read), withdrawals
	// (withdraw), approvals (approve).
	Tokens map[string]string `json:"tokens"`
	// Operator and OperatorToken decide on held deposits.
	Operator      string `json:"operator"`
	OperatorToken string `json:"operator_token"`
}

// devOperator is the operator cordon dev configures.
const devOperator = "dev-operator"

// devRoles are the integration tokens cordon dev configures: the token's
// name (its key in endpoints.json's api.tokens), the data directory file
// keeping it across restarts, and its scopes.
var devRoles = []struct {
	name, file string
	scopes     []string
}{
	{"screening", "api-token", []string{"screen"}},
	{"registrar", "register-token", []string{"register"}},
	{"ledger", "ledger-token", []string{"deposits:read"}},
	{"withdrawals", "withdraw-token", []string{"withdraw"}},
	{"approvals", "approve-token", []string{"approve"}},
	{"detection", "detect-token", []string{"breaker", "share"}},
}
