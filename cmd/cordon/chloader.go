package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cordonhq/cordon/detect/retrohunt"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/config"
)

// chLoader runs the ClickHouse loader: it connects and migrates (retrying
// while ClickHouse is unreachable), then loads from Kafka.
type chLoader struct {
	cfg     config.Config
	alerts  retrohunt.Sink
	metrics *clickhouse.LoaderMetrics
	log     *slog.Logger
	up      atomic.Bool
}

func newCHLoader(cfg config.Config, alerts retrohunt.Sink, metrics *clickhouse.LoaderMetrics, log *slog.Logger) *chLoader {
	return &chLoader{cfg: cfg, alerts: alerts, metrics: metrics, log: log}
}

func (l *chLoader) ready() error {
	if !l.up.Load() {
		return errors.New("not connected and migrated yet")
	}
	return nil
}

func (l *chLoader) run(ctx context.Context) error {
	c := l.cfg.ClickHouse
	var store *clickhouse.Store
	for attempt := 0; ; attempt++ {
		s, err := clickhouse.Open(ctx, clickhouse.Config{Addrs: c.Addrs, Database: c.Database, Username: c.Username, Password: c.Password.Value()})
		if err == nil {
			if err = s.Migrate(ctx, clickhouse.Schema); err == nil {
				store = s
				break
			}
			_ = s.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := min(time.Duration(attempt+1)*time.Second, 15*time.Second)
		l.log.Warn("clickhouse not ready; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	defer func() { _ = store.Close() }()
	kc := kafkaConfig(l.cfg.Kafka)
	t := kc.Topics
	consumer, err := kafka.NewConsumer(kc, c.GroupID, []string{t.Blocks, t.Transactions, t.Transfers, t.Outputs, t.Spends, t.Addresses})
	if err != nil {
		return fmt.Errorf("clickhouse loader: %w", err)
	}
	defer func() { _ = consumer.Close() }()
	v, _ := store.ServerVersion(ctx)
	l.log.Info("clickhouse loader running", "database", store.Database(), "server_version", v, "group", c.GroupID)
	l.up.Store(true)
	loader := clickhouse.NewLoader(clickhouse.LoaderConfig{Topics: t, BatchRecords: c.BatchRecords, Linger: c.Linger}, store, consumer, l.metrics, l.log)
	hunter := retrohunt.New(retrohunt.Config{Window: l.cfg.Intel.RetroHuntWindow, Interval: l.cfg.Intel.RetroHuntInterval}, store, l.alerts,
		l.log.With("component", "retro-hunt"))
	hctx, stopHunt := context.WithCancel(ctx)
	defer stopHunt()
	go func() { _ = hunter.Run(hctx) }()
	// The indicator topic is transactional: franz-go reads it (kafka-go
	// would deliver aborted records and transaction markers).
	it, err := intel.OpenTopic(kc)
	if err != nil {
		return fmt.Errorf("clickhouse loader: %w", err)
	}
	defer it.Close()
	go func() {
		if err := it.Ensure(hctx); err != nil {
			l.log.Warn("indicators: cannot create the intel topic", "err", err)
		}
		err := it.Consume(hctx, c.GroupID+"-intel", func(batch []intel.Indicator) error {
			if err := store.InsertIndicators(hctx, indicatorRows(batch)); err != nil {
				l.log.Warn("indicators: insert into clickhouse failed; retrying", "err", err)
				return err
			}
			return nil
		})
		if err != nil {
			l.log.Error("indicators: copying the intel topic into clickhouse stopped", "err", err)
		}
	}()
	err = loader.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func indicatorRows(batch []intel.Indicator) []clickhouse.IndicatorRow {
	out := make([]clickhouse.IndicatorRow, len(batch))
	for i, in := range batch {
		refs, _ := json.Marshal(in.Refs)
		out[i] = clickhouse.IndicatorRow{ID: in.ID, Kind: string(in.Kind), Chain: string(in.Chain), Network: in.Network, Value: in.Value,
			Category: in.Category, Source: in.Source, Confidence: in.Confidence, TLP: string(in.TLP), ValidFrom: in.ValidFrom,
			ValidUntil: in.ValidUntil, Revoked: in.Revoked, Created: in.Created, Modified: in.Modified, Feed: in.Feed,
			FeedVersion: in.FeedVersion, Description: in.Description, Refs: refs}
	}
	return out
}
