package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordonhq/cordon/config"
	"github.com/cordonhq/cordon/detect/retrohunt"
	"github.com/cordonhq/cordon/ingest/clickhouse"
	"github.com/cordonhq/cordon/ingest/kafka"
	"github.com/cordonhq/cordon/intel"
	"github.com/cordonhq/cordon/internal/chain"
	"github.com/cordonhq/cordon/internal/retry"
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

// restartPolicy is how cordon waits before it reconnects or restarts a
// component that failed.
var restartPolicy = retry.Policy{Initial: time.Second, Max: 15 * time.Second}

// run connects and migrates, then runs the loader, the retro-hunt and the
// copy of the indicator topic into ClickHouse until ctx ends or the loader
// fails. The retro-hunt and the indicator copy are restarted when they
// stop (logged): they never stop the loader.
func (l *chLoader) run(ctx context.Context) error {
	c := l.cfg.ClickHouse
	var store *clickhouse.Store
	err := retry.Do(ctx, restartPolicy, l.log, "clickhouse not ready", func(ctx context.Context) error {
		s, err := clickhouse.Open(ctx, c.Config)
		if err != nil {
			return err
		}
		if err := s.Migrate(ctx, clickhouse.Schema); err != nil {
			_ = s.Close()
			return err
		}
		store = s
		return nil
	})
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	kc := l.cfg.Kafka
	t := kc.Topics
	consumer, err := kafka.NewConsumer(kc, c.GroupID, []string{t.Blocks, t.Transactions, t.Transfers, t.Outputs, t.Spends, t.Addresses})
	if err != nil {
		return fmt.Errorf("clickhouse loader: %w", err)
	}
	defer func() { _ = consumer.Close() }()
	// The indicator topic is transactional: franz-go reads it (kafka-go
	// would deliver aborted records and transaction markers).
	it, err := intel.OpenTopic(kc)
	if err != nil {
		return fmt.Errorf("clickhouse loader: %w", err)
	}
	defer it.Close()
	if err := it.Instrument(l.log.With("component", "intel"), nil); err != nil {
		return fmt.Errorf("clickhouse loader: %w", err)
	}
	v, _ := store.ServerVersion(ctx)
	l.log.Info("clickhouse loader running", "database", store.Database(), "server_version", v, "group", c.GroupID)
	l.up.Store(true)
	lc := c.Loader
	lc.Topics = t
	loader := clickhouse.NewLoader(lc, store, consumer, l.metrics, l.log)
	hlog := l.log.With("component", "retro-hunt")
	hunter := retrohunt.New(l.cfg.Intel.RetroHunt, store, l.alerts, hlog)

	// The loader's end (an error, or ctx) ends the other two.
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(lctx)
	g.Go(func() error {
		return retry.Forever(gctx, restartPolicy, hlog, "retro-hunt stopped", hunter.Run)
	})
	g.Go(func() error {
		return retry.Forever(gctx, restartPolicy, l.log, "indicators: copying the intel topic into clickhouse stopped",
			func(ctx context.Context) error {
				return copyIndicators(ctx, it, store, c.GroupID+indicatorCopyGroup, l.log)
			})
	})
	g.Go(func() error {
		return retry.Forever(gctx, restartPolicy, l.log, "alerts: copying the alerts topic into clickhouse stopped",
			func(ctx context.Context) error {
				return copyAlerts(ctx, kc, store, c.GroupID+kafka.GroupAlertCopySuffix, l.log)
			})
	})
	g.Go(func() error {
		defer stop()
		err := loader.Run(gctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	return g.Wait()
}

// indicatorCopyGroup suffixes the loader's group id for the copy of the
// indicator topic. It changed when indicators were keyed by feed
// (ClickHouse migration 6): a loader of the earlier version skipped the
// feed/id records as invalid and committed past them, so the copy reads
// the topic again from the start.
const indicatorCopyGroup = kafka.GroupIndicatorCopySuffix

// copyIndicators copies the indicator topic into ClickHouse until ctx
// ends or the copy fails.
func copyIndicators(ctx context.Context, it *intel.Topic, store *clickhouse.Store, group string, log *slog.Logger) error {
	if err := it.Ensure(ctx); err != nil {
		log.Warn("indicators: cannot create the intel topic", "err", err)
	}
	return it.Consume(ctx, group, func(batch []intel.Indicator) error {
		if err := store.InsertIndicators(ctx, indicatorRows(batch)); err != nil {
			log.Warn("indicators: insert into clickhouse failed; retrying", "err", err)
			return err
		}
		return nil
	})
}

// copyAlerts copies the alerts topic into ClickHouse until ctx ends or
// the copy fails. The topic is read committed: detection's rounds that
// were aborted (a crash, a fenced leader) are not copied. A record that
// is not an alert keyed by its id is skipped with a warning.
func copyAlerts(ctx context.Context, kc kafka.Config, store *clickhouse.Store, group string, log *slog.Logger) error {
	return kafka.ConsumeGroup(ctx, kc, kc.Topics.Alerts, group, func(recs []*kafka.Record) error {
		rows := make([]clickhouse.AlertRow, 0, len(recs))
		for _, r := range recs {
			var a chain.Alert
			if err := json.Unmarshal(r.Value, &a); err != nil || a.ID == "" || string(r.Key) != a.ID {
				log.Warn("alerts: skipped a record that is not an alert keyed by its id", "partition", r.Partition, "offset", r.Offset, "err", err)
				continue
			}
			rows = append(rows, clickhouse.AlertRow{Alert: a, Version: uint64(r.Offset) + 1})
		}
		if err := store.InsertAlerts(ctx, rows); err != nil {
			log.Warn("alerts: insert into clickhouse failed; retrying", "err", err)
			return err
		}
		return nil
	})
}

func indicatorRows(batch []intel.Indicator) []clickhouse.IndicatorRow {
	out := make([]clickhouse.IndicatorRow, len(batch))
	for i, in := range batch {
		refs, _ := json.Marshal(in.Refs)
		// The row's id is the indicator's key (feed/id): ids are per
		// feed, and the table keeps the newest row of each (chain,
		// value, id).
		out[i] = clickhouse.IndicatorRow{ID: intel.KeyOf(&in).String(), Kind: string(in.Kind), Chain: string(in.Chain), Network: in.Network, Value: in.Value,
			Category: in.Category, Source: in.Source, Confidence: in.Confidence, TLP: string(in.TLP), ValidFrom: in.ValidFrom,
			ValidUntil: in.ValidUntil, Revoked: in.Revoked, Created: in.Created, Modified: in.Modified, Feed: in.Feed,
			FeedVersion: in.FeedVersion, Description: in.Description, Refs: refs}
	}
	return out
}
