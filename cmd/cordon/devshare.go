package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	iconfig "github.com/cordonhq/cordon/internal/config"
	"github.com/cordonhq/cordon/internal/proc"
	"github.com/cordonhq/cordon/internal/uuid"
	"github.com/cordonhq/cordon/sharing/alliance"
	"github.com/cordonhq/cordon/sharing/partner"
)

// The dev alliance (cordon dev --partners N): the main instance is
// exchange-a; exchange-b and exchange-c run in the same process on
// loopback, each with its own data directory, Kafka broker, keys, API
// and TAXII listener, their mutual-TLS certificates issued by a dev CA.
// exchange-c is trusted with TLP:GREEN only, so AMBER listings never
// reach it.

var devExchanges = []string{"exchange-a", "exchange-b", "exchange-c"}

// devMember is one exchange of the dev alliance.
type devMember struct {
	name, dir         string
	identity, seed    string
	pub               ed25519.PublicKey
	port              int
	certFile, keyFile string
	sys               *system
	apiURL, opToken   string
	cluster           *kafka.Embedded
	greenOnly         bool
	allianceKey       string
}

// devAlliance prepares the members: the main one in dataDir, the others
// under dataDir/partners/NAME; a new dev CA each start.
func devAlliance(dataDir string, partners int) ([]*devMember, error) {
	if partners < 0 || partners > len(devExchanges)-1 {
		return nil, fmt.Errorf("--partners %d: want 0 to %d", partners, len(devExchanges)-1)
	}
	ca, err := partner.NewDevCA()
	if err != nil {
		return nil, err
	}
	// The privacy mode's alliance key, the same for every member.
	allianceKey, err := devToken(dataDir, "alliance-key")
	if err != nil {
		return nil, err
	}
	caDir := filepath.Join(dataDir, "dev-ca")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		return nil, err
	}
	ms := make([]*devMember, 0, partners+1)
	for i, name := range devExchanges[:partners+1] {
		m := &devMember{name: name, dir: dataDir, greenOnly: name == "exchange-c", allianceKey: allianceKey}
		if i > 0 {
			m.dir = filepath.Join(dataDir, "partners", name)
		}
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return nil, err
		}
		if m.seed, m.identity, err = devSharingKey(m.dir); err != nil {
			return nil, err
		}
		seed, _ := base64.StdEncoding.DecodeString(m.seed)
		m.pub = ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if m.port, err = proc.FreePort(); err != nil {
			return nil, err
		}
		if err := ca.WriteFiles(caDir, name); err != nil {
			return nil, err
		}
		m.certFile, m.keyFile = filepath.Join(caDir, name+".pem"), filepath.Join(caDir, name+"-key.pem")
		ms = append(ms, m)
	}
	return ms, nil
}

// devSharingKey keeps an exchange's signing key and identity across
// restarts (sharing-key, sharing-identity in its data directory).
func devSharingKey(dir string) (seed, identity string, err error) {
	kp, ip := filepath.Join(dir, "sharing-key"), filepath.Join(dir, "sharing-identity")
	kb, err1 := os.ReadFile(kp)
	ib, err2 := os.ReadFile(ip)
	if err1 == nil && err2 == nil {
		return strings.TrimSpace(string(kb)), strings.TrimSpace(string(ib)), nil
	}
	if (err1 != nil && !errors.Is(err1, fs.ErrNotExist)) || (err2 != nil && !errors.Is(err2, fs.ErrNotExist)) {
		return "", "", errors.Join(err1, err2)
	}
	var s [32]byte
	if _, err := rand.Read(s[:]); err != nil {
		return "", "", err
	}
	u, err := uuid.V4()
	if err != nil {
		return "", "", err
	}
	identity = "identity--" + u
	seed = base64.StdEncoding.EncodeToString(s[:])
	if err := os.WriteFile(kp, []byte(seed+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return seed, identity, os.WriteFile(ip, []byte(identity+"\n"), 0o600)
}

func (m *devMember) taxiiURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(m.port) + "/alliance/"
}

// sharingConfig is m's sharing section: every other member a partner
// reading our indicators, posting to our inbox, pulled and pushed to;
// exchange-c receives TLP:GREEN at most.
func (m *devMember) sharingConfig(all []*devMember) alliance.Config {
	c := alliance.Config{Name: m.name, Identity: m.identity, SigningKey: iconfig.SecretValue(m.seed), AllianceKey: iconfig.SecretValue(m.allianceKey),
		Listen: "127.0.0.1:" + strconv.Itoa(m.port), CertFile: m.certFile, KeyFile: m.keyFile, PullWait: 20 * time.Second}
	for _, o := range all {
		if o == m {
			continue
		}
		p := partner.Partner{Name: o.name, Identity: o.identity, SigningKey: base64.StdEncoding.EncodeToString(o.pub),
			CA: filepath.Join(filepath.Dir(m.certFile), "ca.pem"), Subject: o.name, URL: o.taxiiURL(),
			Read: []string{alliance.Collection, alliance.Hashed}, Write: []string{alliance.Inbox}, Pull: []string{alliance.Collection, alliance.Hashed},
			Push: true, MaxTLP: "amber", Amber: true, Sightings: true,
			// Loopback partners publishing in bursts (the benchmarks):
			// budgets above the production default of 20/s.
			Rate: 500, Burst: 1000}
		if o.greenOnly {
			p.MaxTLP, p.Amber = "green", false
		}
		c.Partners = append(c.Partners, p)
	}
	return c
}

// startPartner starts another exchange of the alliance: its own broker
// and a system of the api and share roles.
func startPartner(ctx context.Context, g *errgroup.Group, m *devMember, all []*devMember, log *slog.Logger) error {
	var err error
	if m.cluster, err = kafka.StartEmbedded(filepath.Join(m.dir, "kafka"), 0); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	cfg := config.Defaults()
	cfg.Roles = []string{config.RoleAPI, config.RoleShare}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Kafka.Brokers = m.cluster.Brokers()
	cfg.Kafka.Partitions = 1
	cfg.Kafka.ReplicationFactor = 1
	if m.opToken, err = devToken(m.dir, "operator-token"); err != nil {
		return err
	}
	cfg.API.Operators = []config.Operator{{Name: devOperator, Token: iconfig.SecretValue(m.opToken)}}
	if cfg.RecordAuth, err = devRecordAuth(m.dir); err != nil {
		return fmt.Errorf("%s record keys: %w", m.name, err)
	}
	cfg.Sharing = m.sharingConfig(all)
	if err := cfg.Fill(); err != nil {
		return fmt.Errorf("%s config: %w", m.name, err)
	}
	if m.sys, err = newSystem(ctx, cfg, log.With("exchange", m.name)); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	m.apiURL = "http://" + m.sys.api.addr()
	ep := endpoints{Kafka: strings.Join(cfg.Kafka.Brokers, ","), HTTP: m.sys.srv.Addr(), PID: os.Getpid(),
		Topics: map[string]string{"intel": cfg.Kafka.Topics.Intel, "sharing": cfg.Kafka.Topics.Sharing},
		API:    &apiEndpoint{URL: m.apiURL, Tokens: map[string]string{}, Operator: devOperator, OperatorToken: m.opToken},
		TAXII:  m.taxiiURL(), Exchange: m.name}
	if err := writeEndpoints(m.dir, ep); err != nil {
		return err
	}
	m.sys.start(ctx, g)
	return nil
}

func (m *devMember) close() {
	if m.sys != nil {
		m.sys.close()
	}
	if m.cluster != nil {
		m.cluster.Close()
	}
	_ = os.Remove(filepath.Join(m.dir, "endpoints.json"))
}

// devTheft has exchange-b publish the dev traffic's simulated theft as
// an urgent TLP:GREEN listing, and an AMBER one (a phishing wallet)
// that exchange-c never receives; then it logs when the main instance's
// screening flags the theft.
func devTheft(ctx context.Context, from *devMember, main *system, theft, phishing string, log *slog.Logger) error {
	c := gateClient{api: from.apiURL, token: from.opToken}
	listings := []alliance.Listing{
		{Chain: chain.ETH, Network: devNetwork, Values: []string{theft}, Category: intel.CategoryHack, Confidence: 95, TLP: intel.TLPGreen,
			Urgent: true, Description: "dev: simulated exchange theft, published by " + from.name},
		{Chain: chain.ETH, Network: devNetwork, Values: []string{phishing}, Category: intel.CategoryPhishing, Confidence: 70, TLP: intel.TLPAmber,
			Description: "dev: simulated phishing wallet (TLP:AMBER: exchange-c never receives it)"},
	}
	var at time.Time
	for i := 0; i < len(listings); {
		var a alliance.ListingAnswer
		err := c.call(ctx, "POST", alliance.ListingsEndpoint, listings[i], &a)
		if err == nil {
			if i == 0 {
				at = time.Now()
				log.Info("dev: "+from.name+" published the simulated theft (urgent)", "address", theft)
			}
			i++
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		if v := intel.Screen(main.indicators.store.Index, chain.ETH, devNetwork, theft, time.Now()); v.Verdict == "flagged" {
			for _, mt := range v.Matches {
				if mt.Source == from.name {
					log.Info("dev: the theft "+from.name+" published is flagged here", "address", theft, "after", time.Since(at).Round(time.Millisecond))
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func partnerNames(ms []*devMember) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return strings.Join(names, ", ")
}
