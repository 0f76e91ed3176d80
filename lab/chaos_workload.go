package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Workload limits.
const (
	workloadWorkers = 4
	// opTimeout bounds one CLI call of the workload: endpoint create may
	// wait up to 30 s for an address block.
	opTimeout = 40 * time.Second
)

// workload hands the planned operations, each at its planned time, to a
// few workers, until the campaign's duration is over (during). Operations
// run on ctx, so none is cut off half-way when the duration ends.
func (c *campaign) workload(during, ctx context.Context) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workloadWorkers {
		wg.Go(func() {
			for i := range jobs {
				c.runOp(ctx, i, c.plan.Ops[i])
			}
		})
	}
	for i, op := range c.plan.Ops {
		pause(during, time.Until(c.start.Add(op.At))) // the schedule, not a synchronisation
		if during.Err() != nil {
			break
		}
		select {
		case jobs <- i:
		case <-during.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// lockNetwork serialises the operations on one network, so that an
// endpoint is not created before its network's creation returned.
func (c *campaign) lockNetwork(name string) func() {
	c.mu.Lock()
	m := c.netLocks[name]
	if m == nil {
		m = &sync.Mutex{}
		c.netLocks[name] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// pickHosts returns the first n hosts of op.Hosts whose agent answers
// (up, or partitioned); with op.Split, a partitioned host first.
func (c *campaign) pickHosts(op OpStep, n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var avail []string
	cut := ""
	for _, h := range op.Hosts {
		switch c.health[h].state {
		case hostUp:
			avail = append(avail, h)
		case hostPartitioned:
			avail = append(avail, h)
			if cut == "" {
				cut = h
			}
		}
	}
	if op.Split && cut != "" {
		avail = append([]string{cut}, slices.DeleteFunc(avail, func(h string) bool { return h == cut })...)
	}
	if len(avail) < n {
		return nil
	}
	return avail[:n]
}

// runOp runs one planned operation and records it.
func (c *campaign) runOp(ctx context.Context, step int, op OpStep) {
	defer c.lockNetwork(op.Network)()
	rec := OpRecord{Step: step, Kind: op.Kind, Network: op.Network, Endpoint: op.Endpoint, Subnet: op.Subnet, Service: op.Service}
	switch op.Kind {
	case OpNetworkRemove:
		c.networkRemove(ctx, rec)
		return
	case OpEndpointRemove:
		c.endpointRemove(ctx, rec)
		return
	}
	n := 1
	if op.Kind.twice() {
		n = 2
	}
	hosts := c.pickHosts(op, n)
	if hosts == nil {
		rec.Start, rec.End, rec.Outcome, rec.Error = c.now(), c.now(), OutcomeSkipped, fmt.Sprintf("fewer than %d hosts up", n)
		c.record(rec)
		return
	}
	var wg sync.WaitGroup
	for _, h := range hosts {
		r := rec
		r.Host = h
		if op.Kind == OpNetworkCreate || op.Kind == OpNetworkCreateTwice {
			wg.Go(func() { c.networkCreate(ctx, r) })
		} else {
			wg.Go(func() { c.endpointCreate(ctx, r) })
		}
	}
	wg.Wait()
}

// call runs one CLI call of the workload on rec.Host and fills rec's
// times, outcome and error.
func (c *campaign) call(ctx context.Context, rec *OpRecord, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	rec.Start = c.now()
	out, err := c.l.CLI(ctx, rec.Host, args...)
	rec.End = c.now()
	rec.Outcome = classify(out, err)
	if err != nil {
		rec.Error = oneLine(out)
		if rec.Error == "" {
			rec.Error = err.Error()
		}
	}
	return out
}

// record adds rec to the history and prints it.
func (c *campaign) record(rec OpRecord) {
	c.hist.addOp(rec)
	what := rec.Kind.String()
	if rec.Endpoint != "" {
		what += " " + rec.Endpoint + " on " + rec.Network
	} else {
		what += " " + rec.Network
	}
	if rec.Subnet != "" {
		what += " --subnet " + rec.Subnet
	}
	if rec.Service != "" {
		what += " --service " + rec.Service
	}
	res := string(rec.Outcome)
	if rec.Result != "" {
		res += " " + rec.Result
	}
	if rec.Error != "" {
		res += ": " + rec.Error
	}
	host := rec.Host
	if host == "" {
		host = "-"
	}
	c.say("op", "#%-3d %-3s %s: %s", rec.Step, host, what, res)
}

func (c *campaign) networkCreate(ctx context.Context, rec OpRecord) {
	args := []string{"network", "create", "-d", "overlay"}
	if rec.Subnet != "" {
		args = append(args, "--subnet", rec.Subnet)
	}
	out := c.call(ctx, &rec, append(args, rec.Network)...)
	if rec.Outcome == OutcomeOK {
		if f := strings.Fields(out); len(f) > 1 {
			rec.Result = f[1] // NAME SUBNET vni VNI
		}
	}
	c.record(rec)
}

var createdBy = regexp.MustCompile(`created by host (\S+):`)

// networkRemove removes a network on the host that created it: the one
// the history says, or the one the agent names when it refuses.
func (c *campaign) networkRemove(ctx context.Context, rec OpRecord) {
	ops, _, _ := c.hist.snapshot()
	rec.Host = ""
	for _, r := range ops {
		if (r.Kind == OpNetworkCreate || r.Kind == OpNetworkCreateTwice) && r.Network == rec.Network && r.Outcome != OutcomeFail {
			rec.Host = r.Host
			break
		}
	}
	for try := 0; try < 2; try++ {
		if rec.Host == "" || !c.answers(rec.Host) {
			rec.Start, rec.End, rec.Outcome = c.now(), c.now(), OutcomeSkipped
			rec.Error = "no creator up to remove it"
			break
		}
		out := c.call(ctx, &rec, "network", "rm", rec.Network)
		m := createdBy.FindStringSubmatch(out)
		if rec.Outcome != OutcomeFail || m == nil || m[1] == rec.Host {
			break
		}
		rec.Host = m[1]
	}
	c.record(rec)
}

// answers reports whether host's agent is up (or only partitioned).
func (c *campaign) answers(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.health[host].state
	return s == hostUp || s == hostPartitioned
}

// endpointCreate makes a container on rec.Host and its endpoint. A
// container whose endpoint surely was not made goes at once; one whose
// outcome is unknown stays, for the checks to see.
func (c *campaign) endpointCreate(ctx context.Context, rec OpRecord) {
	cont := c.newContainer(rec.Host, rec.Network, rec.Endpoint)
	rec.Netns = cont.Netns
	err := c.l.addNetns(ctx, cont.Netns)
	if err != nil {
		rec.Start, rec.End, rec.Outcome, rec.Error = c.now(), c.now(), OutcomeFail, oneLine(err.Error())
	} else {
		args := []string{"endpoint", "create", "--network", rec.Network, "--name", rec.Endpoint, "--netns", cont.Netns}
		if rec.Service != "" {
			args = append(args, "--service", rec.Service)
		}
		out := c.call(ctx, &rec, args...)
		if f := strings.Fields(out); rec.Outcome == OutcomeOK && len(f) > 2 {
			rec.Result = f[2] // NAME NETWORK ADDRESSES MAC
		}
	}
	if rec.Outcome == OutcomeFail {
		c.dropContainer(ctx, cont, !errors.Is(err, errNetnsNotMade))
	}
	c.record(rec)
}

// endpointRemove removes the endpoint from every container made for it
// (a ×2 creation makes two), each on its host, and deletes the container
// once the agent removed its endpoint or said it has none.
func (c *campaign) endpointRemove(ctx context.Context, rec OpRecord) {
	conts := c.containersOf(rec.Network, rec.Endpoint)
	if len(conts) == 0 {
		rec.Start, rec.End, rec.Outcome, rec.Error = c.now(), c.now(), OutcomeSkipped, "no container holds it"
		c.record(rec)
		return
	}
	for _, cont := range conts {
		r := rec
		r.Host, r.Netns = cont.Host, cont.Netns
		if !c.answers(cont.Host) {
			r.Start, r.End, r.Outcome, r.Error = c.now(), c.now(), OutcomeSkipped, cont.Host+" is down"
			c.record(r)
			continue
		}
		c.call(ctx, &r, "endpoint", "rm", "--network", rec.Network, rec.Endpoint)
		if r.Outcome == OutcomeOK || (r.Outcome == OutcomeFail && strings.Contains(r.Error, "no endpoint")) {
			c.dropContainer(ctx, cont, true)
		}
		c.record(r)
	}
}

// newContainer names a container on host and adds it to the campaign and
// to the lab's state (so that Down removes it), before its namespace
// exists.
func (c *campaign) newContainer(host, network, name string) *chaosContainer {
	x := &chaosContainer{Host: host, Network: network, Name: name}
	c.l.update(func(s *State) {
		// nContainer is only ever changed here, under the lab's lock.
		x.Netns, c.nContainer = s.containerNetns(host, c.nContainer+1)
		s.Containers = append(s.Containers, ContainerState{Name: name, Host: host, Netns: x.Netns, Network: network})
	})
	c.mu.Lock()
	c.containers = append(c.containers, x)
	c.mu.Unlock()
	return x
}

// containersOf lists the live containers made for an endpoint.
func (c *campaign) containersOf(network, name string) []*chaosContainer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*chaosContainer
	for _, x := range c.containers {
		if !x.gone && x.Network == network && x.Name == name {
			out = append(out, x)
		}
	}
	return out
}

// dropContainer deletes a container's namespace (when del is set: not a
// namespace that was there before the lab's) and forgets it.
func (c *campaign) dropContainer(ctx context.Context, x *chaosContainer, del bool) {
	var err error
	if del {
		err = c.l.delNetns(ctx, x.Netns)
	}
	c.mu.Lock()
	x.gone = true
	c.mu.Unlock()
	if err != nil {
		return // still in the state: Down deletes it
	}
	c.l.update(func(s *State) {
		s.Containers = slices.DeleteFunc(s.Containers, func(cs ContainerState) bool { return cs.Netns == x.Netns })
	})
}

// errNetnsNotMade: `ip netns add` failed, so the namespace asked for is
// not the lab's (ip removes what it made when it fails): the lab must
// neither keep it in its state nor delete it. errNetnsExists, a namespace
// of that name there already, is one such failure.
var (
	errNetnsNotMade = errors.New("namespace not made")
	errNetnsExists  = errors.New("namespace exists already")
)

// addNetns creates namespace ns with loopback up. When it could not create
// the namespace the error matches errNetnsNotMade (and errNetnsExists when
// one of that name exists); a failure after that is the namespace's own,
// and the namespace is the lab's to delete.
func (l *Lab) addNetns(ctx context.Context, ns string) error {
	if _, err := l.run.run(ctx, "ip", "netns", "add", ns); err != nil {
		var ce *CmdError
		if errors.As(err, &ce) && strings.Contains(ce.Output, "File exists") {
			return fmt.Errorf("%w: %w: %s", errNetnsNotMade, errNetnsExists, ns)
		}
		return fmt.Errorf("%w: %w", errNetnsNotMade, err)
	}
	_, err := l.run.run(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
	return err
}

// delNetns deletes namespace ns and its /etc/netns directory (the
// resolv.conf an agent wrote).
func (l *Lab) delNetns(ctx context.Context, ns string) error {
	_, err := l.run.run(ctx, "ip", "netns", "del", ns)
	os.RemoveAll(filepath.Join("/etc/netns", ns))
	return err
}
