package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/clickhouse/chserver"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/obs"
	"github.com/cordonhq/cordon/signer/gate"
	"github.com/cordonhq/cordon/watchers/btc"
	"github.com/cordonhq/cordon/watchers/eth"
	"github.com/cordonhq/cordon/watchers/eth/devnet"
	"github.com/cordonhq/cordon/watchers/follow"
)

const devNetwork = "devnet"

func cmdDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data-dir", envOr("CORDON_DATA_DIR", defaultDataDir), "state directory (Kafka data, devnet chain, endpoints.json); env CORDON_DATA_DIR")
	httpAddr := fs.String("http", "127.0.0.1:0", "cordon's health/metrics address")
	apiAddr := fs.String("api", "127.0.0.1:0", "the screening API's address (its token is in endpoints.json)")
	kafkaPort := fs.Int("kafka-port", 0, "embedded Kafka broker port (0: any free port)")
	ethPort := fs.Int("eth-port", 0, "devnet JSON-RPC port, HTTP and WebSocket (0: any free port)")
	blockInterval := fs.Duration("block-interval", time.Second, "time between devnet blocks")
	txPerBlock := fs.Int("tx-per-block", 20, "transactions per devnet block")
	reorgEvery := fs.Int("reorg-every", 30, "make a short reorg every N blocks on average (0: never)")
	maxReorg := fs.Int("max-reorg", 3, "deepest generated reorg")
	noBTC := fs.Bool("no-btc", false, "run without the Bitcoin node")
	noCH := fs.Bool("no-clickhouse", false, "run without the local ClickHouse server and loader")
	noDetect := fs.Bool("no-detect", false, "run without detection and its webhooks")
	attackAfter := fs.Int("attack-after", 60, "blocks before the contract-wallet attack on the dev treasury (0: never)")
	btcInterval := fs.Duration("btc-block-interval", 2*time.Second, "time between Bitcoin (simnet) blocks")
	btcTxs := fs.Int("btc-tx-per-block", 6, "wallet transactions per Bitcoin block (each pays several addresses)")
	btcReorgEvery := fs.Int("btc-reorg-every", 20, "make a 1-2 block Bitcoin reorg every N blocks on average (0: never)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	quiet := fs.Bool("quiet", false, "no live status lines")
	gateCooling := fs.Duration("gate-cooling", 30*time.Second, "the withdrawal gate's cooling period in place of the default policy's 2 hours")
	withdrawEvery := fs.Duration("withdrawal-every", 3*time.Second, "time between generated withdrawals (0: none)")
	noSigner := fs.Bool("no-signer", false, "run without the signing stage (dispatcher, signer and its plugins)")
	partners := fs.Int("partners", 0, "start N more exchanges (at most 2) on loopback sharing over TAXII with mutual TLS: the simulated theft is published by exchange-b")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := obs.NewLogger(os.Stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	// The data directory holds the API and operator tokens and the node's
	// RPC password (endpoints.json, tokens): only its owner may read it.
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(*dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDir(*dataDir)
	if err != nil {
		return err
	}
	defer unlock()

	// Embedded Kafka-protocol broker, persisted in the data directory.
	cluster, err := kafka.StartEmbedded(filepath.Join(*dataDir, "kafka"), *kafkaPort)
	if err != nil {
		return err
	}
	defer cluster.Close()
	brokers := cluster.Brokers()
	log.Info("embedded kafka broker up", "brokers", strings.Join(brokers, ","), "data", filepath.Join(*dataDir, "kafka"))

	// Ethereum devnet with real JSON-RPC on loopback.
	dev, err := devnet.Start(devnet.Config{DataDir: filepath.Join(*dataDir, "eth"), Port: *ethPort, Seed: "cordon-dev"})
	if err != nil {
		return err
	}
	defer func() {
		if err := dev.Close(); err != nil {
			log.Warn("devnet close", "err", err)
		}
	}()
	log.Info("ethereum devnet up", "rpc", dev.HTTPURL(), "ws", dev.WSURL(), "chain_id", devnet.ChainID, "height", dev.Head().Number)
	traffic, err := devnet.NewTraffic(ctx, dev, devnet.TrafficConfig{BlockInterval: *blockInterval, TxPerBlock: *txPerBlock,
		ReorgEvery: *reorgEvery, MaxReorgDepth: *maxReorg, Seed: uint64(time.Now().UnixNano())}, log.With("component", "traffic"))
	if err != nil {
		return err
	}
	log.Info("traffic generator ready", "token", traffic.Token, "nft", traffic.NFT, "accounts", len(dev.Accounts()))
	// The treasury: a contract wallet (a multisig-style proxy) the
	// detection's takeover rule watches, and the attack on it.
	var treasury *devnet.ContractWallet
	if !*noDetect {
		if treasury, err = traffic.DeployWallet(ctx, 0, devTreasuryOwners, devnet.Ether(40), big.NewInt(2_000_000_000_000)); err != nil {
			return fmt.Errorf("dev treasury: %w", err)
		}
		log.Info("dev treasury deployed (a contract wallet; attacked after a while)", "wallet", treasury.Proxy, "implementation", treasury.Logic,
			"attack_after_blocks", *attackAfter)
	}

	// Bitcoin: a real btcd on regtest, mined and paid by the dev wallet.
	var btcTraffic *btcTraffic
	if !*noBTC {
		bt, err := startBTC(ctx, filepath.Join(*dataDir, "btc"), log)
		if err != nil {
			return err
		}
		if bt != nil {
			defer bt.node.Stop()
			btcTraffic = bt
		}
	}

	// ClickHouse: a private server under the data directory, when the
	// system has clickhouse-server.
	var chSrv *chserver.Server
	if !*noCH {
		if _, _, err := chserver.Find(); err != nil {
			log.Warn("clickhouse disabled: running without the ClickHouse sink", "reason", err)
		} else {
			chSrv, err = chserver.Start(ctx, chserver.Config{Dir: filepath.Join(*dataDir, "clickhouse")})
			if err != nil {
				return err
			}
			defer chSrv.Stop()
			log.Info("clickhouse server up", "native", chSrv.Addr(), "http", chSrv.HTTPAddr(), "data", filepath.Join(*dataDir, "clickhouse"))
		}
	}

	cfg := config.Defaults()
	cfg.HTTP.Listen = *httpAddr
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Partitions = 3
	cfg.Kafka.ReplicationFactor = 1
	cfg.Chains.ETH = []config.ETH{{
		Config: eth.Config{Network: devNetwork, ChainID: devnet.ChainID, Pool: eth.PoolConfig{HealthInterval: 2 * time.Second},
			Endpoints: []eth.EndpointConfig{{Name: "devnet-ws", URL: iconfig.SecretValue(dev.WSURL())}, {Name: "devnet-http", URL: iconfig.SecretValue(dev.HTTPURL())}}},
		Follow: config.Follow{StartHeight: "0", Parallel: 4, MaxReorgDepth: 128, PollInterval: 500 * time.Millisecond}}}
	if btcTraffic != nil {
		cfg.Chains.BTC = []config.BTC{{
			Config: btc.Config{Network: devBTCNetwork, HealthInterval: 2 * time.Second,
				Endpoints: []btc.EndpointConfig{{Name: "btcd", URL: iconfig.SecretValue(btcTraffic.node.URL), User: btcTraffic.node.User(),
					Password: iconfig.SecretValue(btcTraffic.node.Password())}}},
			Follow: config.Follow{StartHeight: "0", Parallel: 4, MaxReorgDepth: 64, PollInterval: 250 * time.Millisecond}}}
	}
	if chSrv != nil {
		cfg.ClickHouse.Addrs = []string{chSrv.Addr()}
		cfg.ClickHouse.Loader.Linger = 100 * time.Millisecond
	}
	// One token per role, each with the scopes of its job only.
	devTokens := map[string]string{}
	for _, role := range devRoles {
		if devTokens[role.name], err = devToken(*dataDir, role.file); err != nil {
			return err
		}
		cfg.API.Tokens = append(cfg.API.Tokens, config.Token{Name: role.name, Token: iconfig.SecretValue(devTokens[role.name]), Scopes: role.scopes})
	}
	opToken, err := devToken(*dataDir, "operator-token")
	if err != nil {
		return err
	}
	cfg.API.Listen = *apiAddr
	cfg.API.Operators = []config.Operator{{Name: devOperator, Token: iconfig.SecretValue(opToken)}}
	cfg.Intel.RetroHunt.Interval = 5 * time.Second
	var recv *devReceiver
	if !*noDetect {
		devDetect(&cfg, treasury)
		if recv, err = devNotify(ctx, &cfg, *dataDir, log.With("component", "dev-webhooks")); err != nil {
			return fmt.Errorf("dev webhooks: %w", err)
		}
	}
	if cfg.RecordAuth, err = devRecordAuth(*dataDir); err != nil {
		return fmt.Errorf("dev record keys: %w", err)
	}
	if err := devGate(&cfg, *dataDir, *gateCooling, traffic.Token.Hex()); err != nil {
		return fmt.Errorf("dev gate: %w", err)
	}
	var devSign *devSigning
	if !*noSigner {
		if devSign, err = newDevSigning(ctx, *dataDir, &cfg, btcTraffic != nil, log.With("component", "dev-signer")); err != nil {
			return fmt.Errorf("dev signer: %w", err)
		}
	}
	var members []*devMember
	if *partners > 0 {
		if members, err = devAlliance(*dataDir, *partners); err != nil {
			return fmt.Errorf("dev alliance: %w", err)
		}
		cfg.Roles = append(cfg.Roles, config.RoleShare)
		cfg.Sharing = members[0].sharingConfig(members)
	}
	if err := cfg.Fill(); err != nil {
		return fmt.Errorf("dev config: %w", err)
	}
	logWarnings(log, &cfg)

	sys, err := newSystem(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sys.close()

	ep := endpoints{Kafka: strings.Join(brokers, ","), ETHRPC: dev.HTTPURL(), ETHWS: dev.WSURL(), ETHNetwork: devNetwork,
		ETHChainID: devnet.ChainID, HTTP: sys.srv.Addr(), PID: os.Getpid(),
		Topics: map[string]string{"blocks": cfg.Kafka.Topics.Blocks, "transactions": cfg.Kafka.Topics.Transactions,
			"transfers": cfg.Kafka.Topics.Transfers, "outputs": cfg.Kafka.Topics.Outputs, "spends": cfg.Kafka.Topics.Spends,
			"alerts": cfg.Kafka.Topics.Alerts, "intel": cfg.Kafka.Topics.Intel, "addresses": cfg.Kafka.Topics.Addresses,
			"deposits": cfg.Kafka.Topics.Deposits, "decisions": cfg.Kafka.Topics.Decisions, "withdrawals": cfg.Kafka.Topics.Withdrawals,
			"audit": cfg.Kafka.Topics.Audit, "incidents": cfg.Kafka.Topics.Incidents},
		API: &apiEndpoint{URL: "http://" + sys.api.addr(), Token: devTokens["screening"], Tokens: devTokens, Operator: devOperator, OperatorToken: opToken}}
	ep.RecordKeys = map[string]string{"api": cfg.RecordAuth.Trust.API[0], "credit": cfg.RecordAuth.Trust.Credit[0], "intel": cfg.RecordAuth.Trust.Intel[0],
		"gate": cfg.RecordAuth.Trust.Gate[0], "detect": cfg.RecordAuth.Trust.Detect[0]}
	for _, a := range devApprovers {
		ep.Approvers = append(ep.Approvers, devApprover{Name: a.name, Group: a.group, KeyFile: devApproverKey(*dataDir, a.name)})
	}
	if chSrv != nil {
		ep.ClickHouse = chSrv.Addr()
	}
	if len(members) > 0 {
		ep.Exchange, ep.TAXII = members[0].name, members[0].taxiiURL()
		for _, m := range members[1:] {
			ep.Partners = append(ep.Partners, devPartner{Name: m.name, DataDir: m.dir, TAXII: m.taxiiURL()})
		}
	}
	if btcTraffic != nil {
		ep.BTCRPC = &btcRPC{URL: btcTraffic.node.URL, User: btcTraffic.node.User(), Password: btcTraffic.node.Password(), Network: devBTCNetwork}
	}
	if devSign != nil {
		ep.HotWallets = devSign.addresses()
	}
	if err := writeEndpoints(*dataDir, ep); err != nil {
		return fmt.Errorf("write endpoints.json: %w", err)
	}
	defer os.Remove(filepath.Join(*dataDir, "endpoints.json"))
	btcLine := "  btc     not running (--no-btc, or btcd missing: make btcd)\n"
	if ep.BTCRPC != nil {
		btcLine = fmt.Sprintf("  btc rpc %s (%s; user and password in endpoints.json)\n", ep.BTCRPC.URL, devBTCNetwork)
	}
	chLine := "  clickhouse not running (--no-clickhouse, or clickhouse-server missing: apt-get install clickhouse-server)\n"
	if chSrv != nil {
		_, port, _ := net.SplitHostPort(chSrv.Addr())
		chLine = fmt.Sprintf("  clickhouse %s (try: clickhouse-client --port %s -d cordon -q 'SELECT count() FROM canonical_outputs')\n", chSrv.Addr(), port)
	}
	fmt.Fprintf(os.Stderr, "\ncordon dev is up — endpoints in %s\n  kafka   %s   (try: kcat -C -b %s -t %s -e)\n  eth rpc %s\n%s%s  http    http://%s/metrics  /healthz  /readyz\n  api     %s/v1/screen (tokens per role in endpoints.json: api.tokens.screening, .registrar, .ledger; try: bin/cordon intel check --chain eth %s)\n          /v1/decisions: release or reject held deposits with the operator token in endpoints.json (docs/credit.md)\n          /v1/withdrawals: the withdrawal gate (try: bin/cordon withdrawals list; bin/cordon withdrawals approve ID --key %s)\n\n",
		filepath.Join(*dataDir, "endpoints.json"), ep.Kafka, ep.Kafka, cfg.Kafka.Topics.Blocks, ep.ETHRPC, btcLine, chLine, ep.HTTP,
		ep.API.URL, devFlagged(dev), devApproverKey(*dataDir, "alice"))

	devContain(sys, devTokens["detection"], len(members) > 0)
	g, gctx := errgroup.WithContext(ctx)
	sys.start(gctx, g)
	if sys.detect != nil {
		g.Go(func() error {
			return devDrill(gctx, gateClient{api: ep.API.URL, token: devTokens["approvals"]}, *dataDir, 20*time.Second, log.With("component", "dev-drill"))
		})
	}
	if recv != nil {
		g.Go(func() error { return recv.Run(gctx) })
	}
	var signer *signing
	if devSign != nil {
		// The second risk layer, as cordon signer run would: its own copy
		// of the approvers, policy and wallets, its limits, its plugins.
		if signer, err = devSign.open(gctx, cfg, log.With("component", "signer")); err != nil {
			return fmt.Errorf("dev signer: %w", err)
		}
		defer signer.close()
		g.Go(func() error { return signer.run(gctx) })
		// Funded before the traffic generators start: they own the dev
		// accounts' nonces and wallet outputs from then on.
		devSign.fund(gctx, traffic, dev, log.With("component", "dev-signer"))
	}
	for _, m := range members[min(1, len(members)):] {
		defer m.close()
		if err := startPartner(gctx, g, m, members, log); err != nil {
			return err
		}
	}
	if len(members) > 1 {
		for i, m := range members[1:] {
			ep.Partners[i].API = m.apiURL
		}
		if err := writeEndpoints(*dataDir, ep); err != nil {
			return fmt.Errorf("write endpoints.json: %w", err)
		}
		a := dev.Accounts()
		g.Go(func() error {
			return devTheft(gctx, members[1], sys, devFlagged(dev), strings.ToLower(a[len(a)-4].Hex()), log.With("component", "dev-alliance"))
		})
		fmt.Fprintf(os.Stderr, "  alliance %s at %s; partners %s (try: bin/cordon share partners; bin/cordon share publish --data-dir %s --urgent --chain eth --network %s --category hack ADDRESS)\n\n",
			members[0].name, members[0].taxiiURL(), partnerNames(members[1:]), members[1].dir, devNetwork)
	}
	if treasury != nil && *attackAfter > 0 {
		devAttack(traffic, treasury, *attackAfter, log.With("component", "dev-attack"))
	}
	g.Go(func() error { return traffic.Run(gctx) })
	g.Go(func() error { return importDevFeed(gctx, sys, dev, btcTraffic, treasury, len(members) > 1, log) })
	if btcTraffic != nil {
		g.Go(func() error {
			if devSign != nil {
				devSign.fundBTC(gctx, btcTraffic, log.With("component", "dev-signer"))
			}
			return btcTraffic.run(gctx, *btcInterval, *btcTxs, *btcReorgEvery)
		})
	}
	if *withdrawEvery > 0 {
		dw := &devWithdrawals{client: gateClient{api: ep.API.URL, token: devTokens["withdrawals"]}, btc: btcTraffic,
			approver: gateClient{api: ep.API.URL, token: devTokens["approvals"]}, dir: *dataDir, flagged: devFlagged(dev),
			every: *withdrawEvery, log: log.With("component", "dev-withdrawals")}
		g.Go(func() error { return dw.Run(gctx) })
	}
	if !*quiet {
		g.Go(func() error { return showStatus(gctx, os.Stdout, sys, traffic, btcTraffic, devSign, recv) })
	}
	err = g.Wait()
	switch {
	case errors.Is(err, context.Canceled):
		log.Info("cordon dev stopped; state kept", "data_dir", *dataDir)
	case errors.Is(err, follow.ErrReorgTooDeep):
		return fmt.Errorf("%w\nthe devnet chain no longer matches the published stream (was %s/eth deleted?); delete %s to start over", err, *dataDir, *dataDir)
	}
	return err
}

// showStatus prints one compact line per watcher every two seconds.
func showStatus(ctx context.Context, w io.Writer, sys *system, tr *devnet.Traffic, bt *btcTraffic, ds *devSigning, recv *devReceiver) error {
	p := sys.p
	const every = 2 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	type snap struct{ blocks, transfers uint64 }
	last := map[string]snap{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		intelState := "loading"
		if sys.indicators.store.Ready() {
			intelState = "ok"
		}
		fmt.Fprintf(w, "%s %-14s %d indicators  %d registered addresses  api %s/v1/screen  %s\n", time.Now().Format("15:04:05"), "intel",
			sys.indicators.store.Index.Len(), sys.addresses.store.Index.Len(), "http://"+sys.api.addr(), intelState)
		if svc := sys.credit.svc.Load(); svc != nil {
			c := svc.Counts()
			fmt.Fprintf(w, "%s %-14s pending %d  credited %d  held %d  released %d  rejected %d  dropped %d  reverted %d  dust %d\n",
				time.Now().Format("15:04:05"), "deposits", c["pending"], c["credited"], c["held"], c["released"], c["rejected"], c["dropped"],
				c["reverted"], c["dust"])
		}
		if sys.detect != nil {
			fmt.Fprintf(w, "%s %-14s %s\n", time.Now().Format("15:04:05"), "detect", detectStatus(sys.detect.svc.Load()))
			if recv != nil {
				fmt.Fprintf(w, "%s %-14s %s\n", time.Now().Format("15:04:05"), "notify", recv.status())
			}
		}
		if sys.gate != nil {
			c := sys.gate.svc.Counts()
			role := "standby"
			if sys.gate.svc.Leader() {
				role = "leading"
			}
			fmt.Fprintf(w, "%s %-14s pending %d  cooling %d  approved %d  paused %d  denied %d  rejected %d  expired %d  %s\n",
				time.Now().Format("15:04:05"), "withdrawals", c[gate.StatusPending], c[gate.StatusCooling], c[gate.StatusApproved],
				c[gate.StatusPaused], c[gate.StatusDenied], c[gate.StatusRejected], c[gate.StatusExpired], role)
			if sys.dispatch != nil {
				keys := ""
				if ds != nil && len(ds.kinds) > 0 {
					keys = "  btc 2-of-3: " + strings.Join(ds.kinds, " + ")
				}
				st := "not leading"
				if d := sys.dispatch.current(); d != nil {
					s := d.Stats()
					st = fmt.Sprintf("this term: requested %d signed %d broadcast %d re-broadcast %d mined %d confirmed %d failed %d",
						s.Requested, s.Signed, s.Broadcast, s.Rebroadcast, s.Mined, s.Confirmed, s.Failed)
				}
				fmt.Fprintf(w, "%s %-14s signing %d  signed %d  broadcast %d  mined %d  confirmed %d  failed %d  (%s)%s\n",
					time.Now().Format("15:04:05"), "signing", c[gate.StatusSigning], c[gate.StatusSigned], c[gate.StatusBroadcast],
					c[gate.StatusMined], c[gate.StatusConfirmed], c[gate.StatusFailed], st, keys)
			}
		}
		if sys.sharing != nil {
			if svc := sys.sharing.svc.Load(); svc != nil {
				var b strings.Builder
				for _, st := range svc.Stats(sys.sharing.registry.Names()) {
					fmt.Fprintf(&b, "  %s: received %d refused %d lag %.3fs", st.Partner, st.Received, st.Refused, st.Lag)
				}
				fmt.Fprintf(w, "%s %-14s as %s%s\n", time.Now().Format("15:04:05"), "sharing", sys.sharing.self.Name, b.String())
			}
		}
		if p.loader != nil {
			state := "ok"
			if err := p.loader.ready(); err != nil {
				state = err.Error()
			}
			fmt.Fprintf(w, "%s %-14s %d rows loaded  %s\n", time.Now().Format("15:04:05"), "clickhouse", p.loader.metrics.Rows(), state)
		}
		for _, wt := range p.watchers {
			st := wt.follower.Status()
			prev := last[wt.name]
			last[wt.name] = snap{st.Blocks, st.Transfers}
			lag := int64(st.NodeHead) - int64(st.Height)
			state := "ok"
			if !st.Loaded {
				state = "loading"
			}
			if st.LastError != "" {
				state = "error: " + truncate(st.LastError, 60)
			}
			unit, generated := "transfers", fmt.Sprintf("generated %d tx", tr.Stats.Txs.Load())
			if wt.chain == chain.BTC && bt != nil {
				unit, generated = "outputs", fmt.Sprintf("generated %d tx", bt.txs.Load())
			}
			fmt.Fprintf(w, "%s %-14s height %-6d node %-6d lag %-3d %5.1f blk/s %7.1f %s/s  reorgs %d (-%d blocks)  %s  %s\n",
				time.Now().Format("15:04:05"), wt.name, st.Height, st.NodeHead, lag,
				float64(st.Blocks-prev.blocks)/every.Seconds(), float64(st.Transfers-prev.transfers)/every.Seconds(), unit,
				st.Reorgs, st.Removed, generated, state)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// lockDir takes an exclusive lock on dir so two `cordon dev` never share
// one data directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "dev.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s is in use by another cordon dev (stop it, or pass --data-dir)", dir)
	}
	return func() { _ = f.Close() }, nil
}
