package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/static"
)

const statsUsage = `Usage: vxnet dataplane stats --stats-socket PATH [--format table|json]

Prints the counters of a running 'vxnet dataplane' (started with the same
--stats-socket): packets and bytes on the ports and the underlay, flooded
packets, ARP/ND replies, and drops by reason ('vxnet stats --help' says
what each reason counts).

Flags:
`

func cmdDataplaneStats(std stdio, args []string) int {
	fs := flag.NewFlagSet("dataplane stats", flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), statsUsage)
		fs.PrintDefaults()
	}
	sock := fs.String("stats-socket", "", "unix socket `PATH` the data plane serves its counters on")
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *sock == "" {
		fmt.Fprintln(std.stderr, "vxnet dataplane stats: --stats-socket PATH is required")
		return 2
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(std.stderr, "vxnet dataplane stats: --format %q: want table or json\n", *format)
		return 2
	}
	body, err := fetchStats(*sock)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane stats: %v\n", err)
		return 1
	}
	if *format == "json" {
		std.stdout.Write(body)
		return 0
	}
	var s static.Stats
	if err := json.Unmarshal(body, &s); err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane stats: bad answer from %s: %v\n", *sock, err)
		return 1
	}
	printStats(std.stdout, api.Stats(s))
	return 0
}

const agentStatsUsage = `Usage: vxnet stats [--format table|json]

Prints the counters of this host's data plane since its agent started:
packets read from and written to the containers, VXLAN datagrams on the
underlay and their bytes (UDP payload: the VXLAN header and the frame, not
the outer IP and UDP headers), flooded packets, ARP/ND replies, ICMP "too
big" messages, and every packet dropped, by reason:

%s
The same counters are Prometheus metrics on the agent's --metrics-addr
(vxnet_dataplane_*). Run it on each host: every host counts its own.

Flags:
`

// dropReasonsText lists the drop reasons with what each counts, for help.
func dropReasonsText() string {
	var b strings.Builder
	for _, h := range static.DropHelp {
		fmt.Fprintf(&b, "  %-20s %s\n", h.Reason, h.Help)
	}
	return b.String()
}

func cmdStats(std stdio, args []string) int {
	fs := newFlags(std, "stats", fmt.Sprintf(agentStatsUsage, dropReasonsText()))
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if !noArgs(std, "stats", pos) || !checkFormat(std, "stats", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	s, err := client().Stats(c)
	var e *api.Error
	if (errors.As(err, &e) && e.Code == api.CodeNotFound) || (err != nil && strings.Contains(err.Error(), "HTTP 404")) {
		err = fmt.Errorf("%w (the agent predates vxnet stats: its counters are on its --metrics-addr, or upgrade it)", err)
	}
	if err != nil {
		return fail(std, "stats", err)
	}
	if *format == "json" {
		return printJSON(std, s)
	}
	printStats(std.stdout, s)
	return 0
}

func fetchStats(sock string) ([]byte, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://vxnet/stats")
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is 'vxnet dataplane --stats-socket %s' running?)", sock, err, sock)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", sock, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func printStats(w io.Writer, s api.Stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "COUNTER\tVALUE\n")
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"port rx packets", s.PortRxPackets},
		{"port tx packets", s.PortTxPackets},
		{"underlay rx packets", s.UnderlayRxPackets},
		{"underlay rx bytes (UDP payload)", s.UnderlayRxBytes},
		{"underlay tx packets", s.UnderlayTxPackets},
		{"underlay tx bytes (UDP payload)", s.UnderlayTxBytes},
		{"flooded", s.Flooded},
		{"arp/nd sent (replies, requests)", s.NeighborReplies},
		{"coalesced rx segments", s.Coalesced},
		{"icmp too big sent", s.ICMPTooBig},
		{"arp/nd answers learnt from", s.NeighborIn},
		{"uplink rx frames", s.UplinkRxFrames},
		{"uplink tx frames", s.UplinkTxFrames},
		{"service flows", s.ServiceFlows},
		{"flows evicted", s.FlowsEvicted},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", r.name, r.v)
	}
	reasons := make([]string, 0, len(s.Drops))
	for r := range s.Drops {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(tw, "drop %s\t%d\n", r, s.Drops[r])
	}
	tw.Flush()
}
