package kvs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Moving tables in and out of etcd without an agent: what `vxnet store
// export` and `vxnet store import` do when given etcd's endpoints.

func etcdClient(ecfg EtcdConfig) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: ecfg.Endpoints, TLS: ecfg.TLS, DialTimeout: ecfg.RequestTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("kvs: etcd client for %s: %w", strings.Join(ecfg.Endpoints, ","), err)
	}
	return cli, nil
}

// ExportEtcd reads every slot of every row under the prefix (one
// revision), and how many keys under it were not rows (skipped).
func ExportEtcd(ctx context.Context, ecfg EtcdConfig, cfg Config) (rows []Entry, skipped int, err error) {
	ecfg.setDefaults()
	if err := ecfg.validate(); err != nil {
		return nil, 0, err
	}
	cli, err := etcdClient(ecfg)
	if err != nil {
		return nil, 0, err
	}
	defer cli.Close()
	e := &Etcd{ecfg: ecfg, rows: ecfg.Prefix + "/rows/", st: newStore("", timings{}, 0, 0)}
	e.st.firstClaim = setOf(cfg.FirstClaim)
	rctx, cancel := context.WithTimeout(ctx, ecfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, e.rows, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("kvs: etcd store (%s): reading %s: %w", strings.Join(ecfg.Endpoints, ","), e.rows, err)
	}
	for _, kv := range resp.Kvs {
		if en, ok := e.entryOf(kv); ok {
			rows = append(rows, en)
		} else {
			skipped++
		}
	}
	return rows, skipped, nil
}

// ImportEtcd writes rows into etcd under the prefix, each in its owner's
// slot with no lease (for the cluster tables: networks, subnet claims,
// services, which outlive their writers), unless etcd already holds that
// row (any slot of it): those are counted as present and left alone. The
// prefix is marked as vxnet's if it is new.
func ImportEtcd(ctx context.Context, ecfg EtcdConfig, rows []Entry) (written, present int, err error) {
	ecfg.setDefaults()
	if err := ecfg.validate(); err != nil {
		return 0, 0, err
	}
	cli, err := etcdClient(ecfg)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	e := &Etcd{ecfg: ecfg, cli: cli, rows: ecfg.Prefix + "/rows/", log: discardLogger()}
	if err := e.checkMeta(ctx); err != nil {
		return 0, 0, fmt.Errorf("kvs: etcd store (%s): %w", strings.Join(ecfg.Endpoints, ","), err)
	}
	// Every row checked before any is written: a bad file writes nothing.
	for i, r := range rows {
		if err := checkRow(r.Table, r.Key, r.Value); err != nil {
			return 0, 0, fmt.Errorf("kvs: import: row %d: %w", i, err)
		}
		if r.Owner == "" || len(r.Owner) > MaxNameLen {
			return 0, 0, fmt.Errorf("kvs: import: row %d (%s/%s): owner %q: want the name of the host that wrote it, 1-%d bytes", i, r.Table, r.Key, r.Owner, MaxNameLen)
		}
	}
	for _, r := range rows {
		// Written only if no slot of the row exists: a row already there
		// (an import run twice, or a live cluster's) is never replaced.
		prefix := e.rowPrefix(r.Table, r.Key)
		tctx, cancel := context.WithTimeout(ctx, ecfg.RequestTimeout)
		resp, err := cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision(prefix).WithPrefix(), "=", 0)).
			Then(clientv3.OpPut(e.slotPath(r.Table, r.Key, r.Owner), string(r.Value))).Commit()
		cancel()
		if err != nil {
			return written, present, fmt.Errorf("kvs: etcd store (%s): writing %s/%s: %w", strings.Join(ecfg.Endpoints, ","), r.Table, r.Key, err)
		}
		if resp.Succeeded {
			written++
		} else {
			present++
		}
	}
	return written, present, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
