package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Deposit is the part of a cordon.deposits record the ledger reads.
type Deposit struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Account string `json:"account"`
	Asset   string `json:"asset"`
	Amount  string `json:"amount"`
	Credits int    `json:"credits"`
}

// Entry is what the ledger knows of one deposit.
type Entry struct {
	// Version orders a deposit's credited and reverted events: 2×credits
	// for credited, 2×credits+1 for reverted. Booked says whether the
	// amount is on the account now.
	Version int  `json:"version"`
	Booked  bool `json:"booked"`
	// Status is the deposit's last status, to show users ("held", …).
	Status string `json:"status"`
}

// State is the ledger: balances, what was applied per deposit, and where
// to read on, all written together.
type State struct {
	// Balances by account, then asset, in base units (decimal strings).
	Balances map[string]map[string]string `json:"balances"`
	Deposits map[string]*Entry            `json:"deposits"`
	// Offsets are the next offsets to read, by partition.
	Offsets map[int32]int64 `json:"offsets"`
}

// NewState returns an empty ledger.
func NewState() *State {
	return &State{Balances: map[string]map[string]string{}, Deposits: map[string]*Entry{}, Offsets: map[int32]int64{}}
}

// Apply applies one deposit event; it reports whether the balances
// changed. The rule: a credited or reverted event newer (by Version) than
// the last one applied for the deposit makes the booking match it —
// booked after credited, unbooked after reverted; anything older or equal
// is a replay and changes nothing. It needs no event but the newest, so
// it also holds after compaction dropped a deposit's older events.
func (s *State) Apply(d Deposit) (bool, error) {
	e := s.Deposits[d.ID]
	if e == nil {
		e = &Entry{}
		s.Deposits[d.ID] = e
	}
	var v int
	switch d.Status {
	case "credited":
		v = 2 * d.Credits
	case "reverted":
		v = 2*d.Credits + 1
	default:
		// pending, held, released, rejected, dropped, dust, unknown_token:
		// nothing to book; shown to the user.
		e.Status = d.Status
		return false, nil
	}
	if d.Credits < 1 || v <= e.Version {
		return false, nil // a replay, or older than what was applied
	}
	e.Version, e.Status = v, d.Status
	book := d.Status == "credited"
	if book == e.Booked {
		return false, nil // a revert and a new credit were compacted away in between
	}
	sign := 1
	if !book {
		sign = -1
	}
	if err := s.add(d, sign); err != nil {
		return false, err
	}
	e.Booked = book
	return true, nil
}

func (s *State) add(d Deposit, sign int) error {
	amt, ok := new(big.Int).SetString(d.Amount, 10)
	if !ok || amt.Sign() < 0 {
		return fmt.Errorf("deposit %s: amount %q is not a non-negative integer", d.ID, d.Amount)
	}
	if s.Balances[d.Account] == nil {
		s.Balances[d.Account] = map[string]string{}
	}
	bal, _ := new(big.Int).SetString(s.Balances[d.Account][d.Asset], 10)
	if bal == nil {
		bal = new(big.Int)
	}
	if sign < 0 {
		amt.Neg(amt)
	}
	s.Balances[d.Account][d.Asset] = bal.Add(bal, amt).String()
	return nil
}

// Load reads the state file (a new ledger when there is none).
func Load(path string) (*State, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, err
	}
	s := NewState()
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("ledger state %s: %w", path, err)
	}
	return s, nil
}

// Save replaces the state file atomically.
func (s *State) Save(path string) error {
	raw, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ledger-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// isDeposit tells deposit records from the crediting service's own
// (checkpoints and restore markers) by their cordon-type header.
func isDeposit(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == "cordon-type" {
			return string(h.Value) == "deposit"
		}
	}
	return false
}

// header returns the value of a record's header.
func header(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// Verify checks a deposit record's signature (docs/security/kafka.md: the
// cordon-sig header, "v1 credit <key id> <at> <base64 Ed25519
// signature>", over "cordon-record/v1" 0 "credit" 0 len(kind) kind at
// len(key) key len(value) value; lengths 4-byte and at 8-byte big-endian)
// against crediting's public keys. Anyone who can write to the topic can
// write a record; only crediting can sign one. (A copy of an older
// genuine record is harmless here: the credits count orders them.)
func Verify(r *kgo.Record, keys []ed25519.PublicKey) error {
	f := strings.Fields(string(header(r, "cordon-sig")))
	if len(f) != 5 || f[0] != "v1" || f[1] != "credit" {
		return errors.New("not signed by crediting")
	}
	at, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return errors.New("malformed signature")
	}
	sig, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil {
		return errors.New("malformed signature")
	}
	kind := header(r, "cordon-type")
	msg := []byte("cordon-record/v1\x00credit\x00")
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(kind)))
	msg = append(msg, kind...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(at))
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(r.Key)))
	msg = append(msg, r.Key...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(r.Value)))
	msg = append(msg, r.Value...)
	for _, k := range keys {
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	}
	return errors.New("signature does not verify with crediting's keys")
}

// ParseKeys decodes crediting's public keys (base64, comma-separated:
// record_auth.trust.credit).
func ParseKeys(s string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, k := range strings.Split(s, ",") {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("credit key %q: want the base64 of a 32-byte Ed25519 public key", k)
		}
		out = append(out, b)
	}
	return out, nil
}

// Run applies the topic's committed records from the state's offsets
// until ctx ends, saving after every fetch. Deposit records that are not
// signed by one of keys are skipped and logged: they credit nothing.
func Run(ctx context.Context, brokers []string, topic, path string, keys []ed25519.PublicKey, logf func(string, ...any)) error {
	if len(keys) == 0 {
		return errors.New("no crediting public key: the ledger would credit records anyone can write")
	}
	st, err := Load(path)
	if err != nil {
		return err
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	md, err := kadm.NewClient(admin).Metadata(ctx, topic)
	admin.Close()
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", topic, err)
	}
	parts := map[int32]kgo.Offset{}
	for _, p := range md.Topics[topic].Partitions.Numbers() {
		parts[p] = kgo.NewOffset().At(st.Offsets[p]) // 0: from the start
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions", topic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())) // never an aborted round's events
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		var aerr error
		fetches.EachRecord(func(r *kgo.Record) {
			if aerr != nil {
				return
			}
			st.Offsets[r.Partition] = r.Offset + 1
			if !isDeposit(r) {
				return
			}
			if err := Verify(r, keys); err != nil {
				logf("REFUSED partition %d offset %d (%s): %v: not applied", r.Partition, r.Offset, r.Key, err)
				return
			}
			var d Deposit
			if err := json.Unmarshal(r.Value, &d); err != nil {
				aerr = fmt.Errorf("partition %d offset %d: %w", r.Partition, r.Offset, err)
				return
			}
			changed, err := st.Apply(d)
			if err != nil {
				aerr = err
				return
			}
			if changed {
				logf("%s %s: %s %s %s (credit #%d)", d.Status, d.ID, d.Account, d.Amount, d.Asset, d.Credits)
			}
		})
		if aerr != nil {
			return aerr // nothing of this fetch is saved: it is read again after a fix
		}
		if err := st.Save(path); err != nil {
			return fmt.Errorf("save the ledger: %w", err)
		}
	}
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	topic := flag.String("topic", "cordon.deposits", "deposits topic")
	state := flag.String("state", "ledger.json", "ledger state file")
	show := flag.Bool("show", false, "print the balances in the state file and exit")
	creditKey := flag.String("credit-key", os.Getenv("CORDON_CREDIT_KEY"), "crediting's public record keys, base64, comma-separated (record_auth.trust.credit)")
	flag.Parse()
	if *show {
		st, err := Load(*state)
		if err != nil {
			log.Fatal(err)
		}
		accounts := make([]string, 0, len(st.Balances))
		for a := range st.Balances {
			accounts = append(accounts, a)
		}
		sort.Strings(accounts)
		for _, a := range accounts {
			for asset, v := range st.Balances[a] {
				fmt.Printf("%s\t%s\t%s\n", a, asset, v)
			}
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keys, err := ParseKeys(*creditKey)
	if err != nil {
		log.Fatal(err)
	}
	if err := Run(ctx, strings.Split(*brokers, ","), *topic, *state, keys, func(f string, a ...any) { log.Printf(f, a...) }); err != nil {
		log.Fatal(err)
	}
}
