package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"text/tabwriter"
)

// HostStatus is one host as Status sees it. Counts are -1 when the agent
// did not answer.
type HostStatus struct {
	Name      string     `json:"name"`
	Netns     string     `json:"netns"`
	Addr      netip.Addr `json:"addr"`
	PID       int        `json:"pid"`
	Socket    string     `json:"socket"` // the agent's API socket: vxnet --socket PATH ... talks to it
	Alive     bool       `json:"alive"`
	Members   int        `json:"members"`   // cluster members the agent lists
	Endpoints int        `json:"endpoints"` // endpoints the agent lists, all hosts
	Local     int        `json:"local"`     // of which on this host
	Error     string     `json:"error,omitempty"`
}

// Status asks every agent, in parallel, for its members and endpoints.
func (l *Lab) Status(ctx context.Context) []HostStatus {
	s := l.State()
	out := make([]HostStatus, len(s.Hosts))
	var wg sync.WaitGroup
	for i, h := range s.Hosts {
		wg.Go(func() { out[i] = l.hostStatus(ctx, h) })
	}
	wg.Wait()
	return out
}

func (l *Lab) hostStatus(ctx context.Context, h HostState) HostStatus {
	st := HostStatus{Name: h.Name, Netns: h.Netns, Addr: h.Addr, PID: h.Agent.PID, Socket: h.Socket,
		Alive: alive(h.Agent), Members: -1, Endpoints: -1, Local: -1}
	if !st.Alive {
		st.Error = "agent not running (log " + h.Log + ")"
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	m, err := l.Members(ctx, h.Name)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Members = len(m)
	eps, err := l.Endpoints(ctx, h.Name)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Endpoints, st.Local = len(eps), 0
	for _, e := range eps {
		if e.Host == h.Name {
			st.Local++
		}
	}
	return st
}

// RenderStatus writes hosts as a table.
func RenderStatus(w io.Writer, hosts []HostStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAMESPACE\tADDRESS\tAGENT\tMEMBERS\tENDPOINTS (LOCAL)\tAPI SOCKET (vxnet --socket)\t")
	for _, h := range hosts {
		agent := "not running"
		if h.Alive {
			agent = "pid " + strconv.Itoa(h.PID)
		}
		eps := "?"
		if h.Endpoints >= 0 {
			eps = fmt.Sprintf("%d (%d)", h.Endpoints, h.Local)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", h.Name, h.Netns, h.Addr, agent, count(h.Members), eps, h.Socket)
	}
	tw.Flush()
	for _, h := range hosts {
		if h.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", h.Name, h.Error)
		}
	}
}

func count(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}
