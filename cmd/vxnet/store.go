package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vxnet/vxnet/agent"
	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

const storeUsage = `Usage: vxnet store export [--file FILE] [etcd flags]
       vxnet store import FILE [etcd flags]

Moves the cluster's tables between stores, and backs them up.

  export   writes every row of the tables, as JSON: from this host's agent,
           or, with --etcd-endpoints, straight from etcd (no agent needed)
  import   writes the rows of the cluster's tables (networks, services,
           subnet claims) that are not there yet: through this host's agent
           (into the store it uses), or, with --etcd-endpoints, straight into
           etcd. Rows already there are left alone, and so are the
           networks in use: a row for another creation of a network's name
           (or the name in other case), or with its VNI or a subnet
           overlapping its, is refused and named (exit 1); the other rows
           are written. A host's own rows (endpoints, address blocks) are
           not imported: each host writes them from its state file when it
           starts.

Moving a cluster from gossip to etcd:
  vxnet store export --file tables.json        # on any host, agents running
  # stop every agent
  vxnet store import tables.json --etcd-endpoints http://10.0.0.1:2379,...
  # start every agent with --store etcd --etcd-endpoints ... (the same)

And back from etcd to gossip: stop every agent and start them with --store
gossip; their state files hold the cluster's tables. If those are lost,
import a dump through one agent afterwards.
`

const storeFlagsUsage = `
Flags:
`

func cmdStore(std stdio, args []string) int {
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		fmt.Fprint(usageOut(std), storeUsage+"\nRun 'vxnet store export --help' or 'vxnet store import --help' for the flags.\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return 0
		}
		return 2
	}
	verb := args[0]
	fs := newFlags(std, "store "+verb, storeUsage+storeFlagsUsage)
	var cfg config.Config
	cfg.Store = config.StoreEtcd
	endpoints := fs.String("etcd-endpoints", "", "read or write etcd itself at these client `URLS` (comma-separated), not through the agent")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "", "the key `PATH` of the tables in etcd (default /vxnet)")
	fs.StringVar(&cfg.EtcdCA, "etcd-ca", "", "PEM `FILE` of etcd's CA")
	fs.StringVar(&cfg.EtcdCert, "etcd-cert", "", "PEM `FILE` of a client certificate for etcd")
	fs.StringVar(&cfg.EtcdKey, "etcd-key", "", "PEM `FILE` of its key")
	file := fs.String("file", "", "export: write to `FILE` (mode 0600) instead of standard output")
	pos, code, ok := parse(fs, args[1:])
	if !ok {
		return code
	}
	var ecfg *kvs.EtcdConfig
	if *endpoints != "" {
		cfg.EtcdEndpoints = strings.Split(*endpoints, ",")
		if err := cfg.CheckStore(); err != nil {
			fmt.Fprintf(std.stderr, "vxnet store %s: %v\n", verb, err)
			return 2
		}
		tc, _ := cfg.EtcdTLS()
		ecfg = &kvs.EtcdConfig{Endpoints: cfg.EtcdEndpoints, Prefix: cfg.EtcdPrefix, TLS: tc}
	} else if flagGiven(fs, "etcd-prefix", "etcd-ca", "etcd-cert", "etcd-key") {
		fmt.Fprintf(std.stderr, "vxnet store %s: the etcd flags need --etcd-endpoints\n", verb)
		return 2
	}
	if verb == "export" {
		if len(pos) > 0 {
			fmt.Fprintf(std.stderr, "vxnet store export: unexpected argument %q (write to a file with --file)\n", pos[0])
			return 2
		}
		return storeExport(std, ecfg, *file)
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.stderr, "vxnet store import: give one FILE, written by vxnet store export")
		return 2
	}
	return storeImport(std, ecfg, pos[0])
}

func flagGiven(fs *flag.FlagSet, names ...string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			given = given || f.Name == n
		}
	})
	return given
}

func storeExport(std stdio, ecfg *kvs.EtcdConfig, file string) int {
	c, cancel := ctx()
	defer cancel()
	var d api.StoreDump
	if ecfg == nil {
		var err error
		if d, err = client().ExportStore(c); err != nil {
			return fail(std, "store export", err)
		}
	} else {
		rows, skipped, err := kvs.ExportEtcd(c, *ecfg, kvs.Config{})
		if err != nil {
			fmt.Fprintf(std.stderr, "vxnet store export: %v\n", err)
			return 1
		}
		if skipped > 0 {
			fmt.Fprintf(std.stderr, "vxnet store export: %d keys under the prefix are not rows of vxnet's tables: left out\n", skipped)
		}
		if len(rows) == 0 {
			fmt.Fprintf(std.stderr, "vxnet store export: no vxnet rows under the prefix %q: is it the one the agents use (--etcd-prefix, %q unless set)?\n", kvs.EtcdPrefix(ecfg.Prefix), kvs.DefaultEtcdPrefix)
		}
		d = api.StoreDump{Format: api.StoreDumpFormat, Store: config.StoreEtcd, Exported: time.Now().UTC(), Rows: []api.StoreRow{}}
		for _, e := range rows {
			d.Rows = append(d.Rows, api.NewStoreRow(e.Table, e.Key, e.Owner, e.Value))
		}
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	b = append(b, '\n')
	if file == "" {
		std.stdout.Write(b)
		return 0
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		fmt.Fprintf(std.stderr, "vxnet store export: --file: %v\n", err)
		return 1
	}
	fmt.Fprintf(std.stderr, "%s written to %s\n", rowCount(len(d.Rows)), file)
	return 0
}

func storeImport(std stdio, ecfg *kvs.EtcdConfig, file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet store import: %v\n", err)
		return 1
	}
	var d api.StoreDump
	if err := json.Unmarshal(b, &d); err != nil {
		fmt.Fprintf(std.stderr, "vxnet store import: %s: not a dump of vxnet store export (a JSON object with \"format\" and \"rows\"): %s\n", file, jsonProblem(err))
		return 1
	}
	c, cancel := ctx()
	defer cancel()
	var res api.StoreImport
	if ecfg == nil {
		if res, err = client().ImportStore(c, d); err != nil {
			return fail(std, "store import", err)
		}
	} else {
		if d.Format != api.StoreDumpFormat {
			fmt.Fprintf(std.stderr, "vxnet store import: %s: format %q: want %q\n", file, d.Format, api.StoreDumpFormat)
			return 1
		}
		// What the store holds already: rows left alone, and networks an
		// imported row may not shadow or move.
		there, _, err := kvs.ExportEtcd(c, *ecfg, kvs.Config{})
		if err != nil {
			fmt.Fprintf(std.stderr, "vxnet store import: %v\n", err)
			return 1
		}
		held := map[[2]string]bool{}
		var nets []tables.Network
		for _, e := range there {
			held[[2]string{e.Table, e.Key}] = true
			if n, err := tables.DecodeNetwork(e.Key, e.Value); e.Table == tables.Networks && err == nil {
				nets = append(nets, n)
			}
		}
		all := agent.WithBlockClaims(d.Rows)
		write, planned := agent.PlanImport(all, func(table, key string) bool { return held[[2]string{table, key}] }, nets, true)
		res = planned
		var rows []kvs.Entry
		for _, i := range write {
			r := all[i]
			rows = append(rows, kvs.Entry{Table: r.Table, Key: r.Key, Owner: r.Owner, Value: r.Bytes()})
		}
		var present int
		if res.Written, present, err = kvs.ImportEtcd(c, *ecfg, rows); err != nil {
			fmt.Fprintf(std.stderr, "vxnet store import: %v (%s written before)\n", err, rowCount(res.Written))
			return 1
		}
		res.Present += present // written meanwhile by another
	}
	fmt.Fprintf(std.stdout, "%s written, %d already there, %s of single hosts left to their hosts\n", rowCount(res.Written), res.Present, rowCount(res.HostRows))
	for _, r := range res.Refused {
		fmt.Fprintf(std.stdout, "refused: %s\n", r)
	}
	if len(res.Refused) > 0 {
		return 1
	}
	return 0
}

// jsonProblem says what is wrong with a JSON document in a person's
// words: where a value of the wrong kind is, not which Go type wanted it.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("the file holds a JSON %s", te.Value)
		}
		return fmt.Sprintf("field %q: a JSON %s, not what belongs there", te.Field, te.Value)
	}
	return err.Error()
}

// rowCount is "1 row" or "N rows".
func rowCount(n int) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}
