package agent

// The tables the agent rebuilds from the replicated ones on every change;
// the rows each leaves out are reported once (internal/leftout).
const (
	tableForwarding = "forwarding" // the switch's (dataplane.NewTable)
	tableDNS        = "dns"        // the DNS records (dns.NewTable)
	tableHNS        = "hns"        // what HNS holds (Windows)
	tablePlan       = "plan"       // what the plan leaves out of all of them (package plan)
)
