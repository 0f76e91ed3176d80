package agent

import (
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/tables"
)

// Handover devices (EndpointCreate.Handover) are made on this host and
// moved into the container by its runtime. followHandover waits for the
// move, then records the device's name there.
func (a *Agent) followHandover(key string, le *localEndpoint, dev tun.Device) {
	a.mu.Lock()
	path, src := netnsPath(le.rec.Netns), le.rec.Ifname
	a.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	var insideSince time.Time
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		inside, name, err := tun.Where(dev, path)
		if err != nil {
			a.log.Warn("following a handed-over device", "endpoint", key, "error", err)
			return
		}
		// Runtimes rename the device once moved (Docker: eth0, eth1...);
		// one that keeps the name is taken at its word after a second.
		if inside && insideSince.IsZero() {
			insideSince = time.Now()
		}
		if inside && (name != src || time.Since(insideSince) > time.Second) {
			a.handedOver(key, le, path, name)
			return
		}
		if time.Now().After(deadline) {
			a.log.Warn("the runtime did not move the device into the container", "endpoint", key, "netns", path)
			return
		}
		select {
		case <-a.runCtx.Done():
			return
		case <-time.After(wait):
		}
		a.mu.Lock()
		gone := a.local[key] != le
		a.mu.Unlock()
		if gone {
			return
		}
	}
}

// handedOver finishes a handed-over endpoint in the container, once: its
// name there in the record, written under own, so that a removal never
// meets a record or row written after it; an endpoint being removed or
// readdressed keeps its name.
func (a *Agent) handedOver(key string, le *localEndpoint, path, name string) {
	le.handOnce.Do(func() {
		if !a.own(key, le) {
			return
		}
		defer a.disown(le)
		a.mu.Lock()
		changed := le.rec.Ifname != name
		le.rec.Ifname = name
		rec := le.rec
		a.mu.Unlock()
		if changed {
			a.saveEndpoint(rec)
			if err := a.put(tables.Endpoints, key, rec.Encode()); err != nil {
				a.log.Warn("writing endpoint row", "endpoint", key, "error", err)
			}
		}
		// No resolver of vxnet's in the container: the runtime's answers
		// there, and what it forwards reaches vxnet at the gateway
		// (hostnet.Gateway's DNSFrom).
		a.log.Info("endpoint's device is in its container", "endpoint", key, "ifname", name)
	})
}

// own lets the caller change local endpoint le's record and row (a
// runtime's change: its name in the container, aliases, ports), if it is
// still key's and no owner (a removal, a readdress) has it: one change at
// a time, and none after an owner took over. disown ends it.
func (a *Agent) own(key string, le *localEndpoint) bool {
	le.writeMu.Lock()
	a.mu.Lock()
	ok := a.local[key] == le && !le.removing
	a.mu.Unlock()
	if !ok {
		le.writeMu.Unlock()
	}
	return ok
}

// ownLocal is own of this host's endpoint name on network: not found,
// or busy while a removal or readdress has it.
func (a *Agent) ownLocal(network, name string) (*localEndpoint, error) {
	key := tables.EndpointKey(network, name)
	a.mu.Lock()
	le := a.local[key]
	a.mu.Unlock()
	if le == nil {
		return nil, apiError(api.CodeNotFound, "name", "no endpoint %q on network %q on this host", name, network)
	}
	if !a.own(key, le) {
		return nil, apiError(api.CodeBusy, "name", "endpoint %q on network %q is being removed or readdressed; try again", name, network)
	}
	return le, nil
}

// disown ends own.
func (a *Agent) disown(le *localEndpoint) { le.writeMu.Unlock() }

// attachHandover attaches a handed-over endpoint: a new device on this
// host for the runtime to move (dev nil), or the one adopted again in the
// container after a restart.
func (a *Agent) attachHandover(ep tables.Endpoint, path string, dev tun.Device) error {
	key := ep.Key()
	adopted := dev != nil
	if !adopted {
		var err error
		if dev, err = tun.CreateHandover(ep.Ifname, a.mtu(ep)); err != nil {
			return err
		}
	}
	port, err := a.sw.AddPort(key, dev)
	if err != nil {
		if !adopted {
			tun.Remove(dev)
		}
		dev.Close()
		return err
	}
	le := &localEndpoint{rec: ep, port: port, dev: dev, ns: path, busy: true}
	a.mu.Lock()
	a.local[key] = le
	a.mu.Unlock()
	if adopted {
		a.handedOver(key, le, path, ep.Ifname)
	} else {
		a.bg.Go(func() { a.followHandover(key, le, dev) })
	}
	a.kickReconcile()
	return nil
}

// restoreHandover brings back a handed-over endpoint after a restart: its
// device stayed in the container, configured by the runtime; the endpoint
// goes if the container did.
func (a *Agent) restoreHandover(ep tables.Endpoint) {
	key := ep.Key()
	path := netnsPath(ep.Netns)
	dev, name, err := tun.Adopt(path, ep.Addr(), a.mtu(ep))
	if err != nil {
		a.log.Warn("endpoint's container or device is gone; removing it", "endpoint", key, "netns", ep.Netns, "error", err)
		a.removeGone(ep)
		return
	}
	ep, ok := a.checkLeases(ep)
	if !ok {
		tun.Remove(dev)
		dev.Close()
		return
	}
	ep.Ifname = name
	if err := a.attachHandover(ep, path, dev); err != nil {
		a.log.Error("restoring endpoint", "endpoint", key, "error", err)
		return
	}
	if err := a.put(tables.Endpoints, key, ep.Encode()); err != nil {
		a.log.Error("restoring endpoint row", "endpoint", key, "error", err)
	}
	a.settled(key)
	a.log.Info("endpoint restored", "endpoint", key, "address", fmtPrefixes(ep.Addrs), "ifname", name)
}

// SetAliases replaces the aliases of endpoint name of this host on
// network (a runtime learns a container's aliases after its endpoint is
// made). An endpoint busy being removed or readdressed is a conflict: try
// again.
func (a *Agent) SetAliases(network, name string, aliases []string) error {
	if field, err := names.CheckEndpoint(name, aliases, "", ""); err != nil {
		if field == "alias" {
			field = "aliases"
		}
		return apiError(api.CodeBadRequest, field, "%v", err)
	}
	// Learned, not asked for: an alias create would refuse (another
	// endpoint's or a service's name) is left out, and said; the others
	// are kept.
	var kept, dropped []string
	a.mu.Lock()
	for _, al := range aliases {
		if err := a.aliasErrLocked(network, al); err != nil {
			dropped = append(dropped, err.Message)
		} else {
			kept = append(kept, al)
		}
	}
	a.mu.Unlock()
	if len(dropped) > 0 {
		a.log.Warn("aliases left out", "endpoint", network+"/"+name, "reason", strings.Join(dropped, "; "))
	}
	aliases = kept
	le, err := a.ownLocal(network, name)
	if err != nil {
		return err
	}
	defer a.disown(le)
	a.mu.Lock()
	le.rec.Aliases = append([]string(nil), aliases...)
	rec := le.rec
	a.mu.Unlock()
	return a.rewrite(rec)
}

// rewrite writes a changed record of a local endpoint, its caller owning
// it (own): the state file, the row, and this host's plan.
func (a *Agent) rewrite(rec tables.Endpoint) error {
	a.saveEndpoint(rec)
	if err := a.put(tables.Endpoints, rec.Key(), rec.Encode()); err != nil {
		return err
	}
	a.reconcileNow()
	return nil
}

// mtu is the MTU of ep's device.
func (a *Agent) mtu(ep tables.Endpoint) int {
	if ep.MTU > 0 && ep.MTU < a.cfg.MTU {
		return ep.MTU
	}
	return a.cfg.MTU
}

// Host is this host's name in the cluster.
func (a *Agent) Host() string { return a.cfg.Name }

// SetPublish replaces the ports that endpoint name of this host on
// network publishes (Docker publishes a container's ports once its
// gateway is set up, and withdraws them first when it leaves). Errors
// name the field publish.
func (a *Agent) SetPublish(network, name string, publish []string) error {
	n, d, err := a.endpointNetwork(network)
	if err != nil {
		return err
	}
	ports, canonical, err := parsePublish(n, d, publish)
	if err != nil {
		return err
	}
	key := tables.EndpointKey(network, name)
	le, err := a.ownLocal(network, name)
	if err != nil {
		return err
	}
	defer a.disown(le)
	a.mu.Lock()
	if err := a.portsFreeLocked(ports, key); err != nil {
		a.mu.Unlock()
		return err
	}
	le.rec.Publish = canonical
	rec := le.rec
	a.mu.Unlock()
	return a.rewrite(rec)
}
