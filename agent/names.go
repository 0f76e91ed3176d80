package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/kvs"
)

// The names the API takes are checked by internal/names, one rule per
// kind, so that a name accepted here is one DNS, the tables and HNS take
// on every host. Names are kept as given but are unique without regard to
// case, as DNS answers them: "Web" and "web" are one name there.

// checkEndpointCreate checks the names and SRV ports of req, and puts its
// SRV ports in canonical form (NAME=PORT/PROTO). Errors name the field.
func checkEndpointCreate(req *api.EndpointCreate) error {
	if field, err := names.CheckEndpoint(req.Name, req.Aliases, req.Service, req.Ifname); err != nil {
		if field == "alias" {
			field = "aliases" // the request's field
		}
		return apiError(api.CodeBadRequest, field, "%v", err)
	}
	// "tasks" heads the names DNS answers with a service's tasks
	// (tasks.SERVICE): an endpoint of that name on a network named as one
	// of its services would add itself to them.
	if names.Key(req.Name) == "tasks" {
		return apiError(api.CodeBadRequest, "name", "endpoint name %q: DNS keeps it for tasks.SERVICE (a service's tasks); pick another name", req.Name)
	}
	for _, al := range req.Aliases {
		if names.Key(al) == "tasks" {
			return apiError(api.CodeBadRequest, "aliases", "alias %q: DNS keeps it for tasks.SERVICE (a service's tasks); pick another name", al)
		}
	}
	if strings.HasPrefix(names.Key(req.Name), meshPrefix) {
		return apiError(api.CodeBadRequest, "name", "endpoint name %q: names starting with %q are the routing mesh's (each host's row on a network whose services publish ports)", req.Name, meshPrefix)
	}
	if err := rowRoom("an endpoint's", field{"labels", req.Labels}, field{"aliases", req.Aliases}, field{"srvPorts", req.SRVPorts}, field{"publish", req.Publish}); err != nil {
		return err
	}
	for k, v := range req.Labels {
		if k == "" || strings.ContainsFunc(k+v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return apiError(api.CodeBadRequest, "labels", "label %q=%q: want a key that is not empty, and no control characters", k, v)
		}
	}
	seen := map[string]string{}
	for i, s := range req.SRVPorts {
		p, err := dns.ParsePort(s)
		if err != nil {
			return apiError(api.CodeBadRequest, "srvPorts", "%v", err)
		}
		k := names.Key(p.Name) + "/" + p.Proto
		if other, dup := seen[k]; dup {
			return apiError(api.CodeBadRequest, "srvPorts", "srv port %q: %s/%s is given twice (also %q)", s, p.Name, p.Proto, other)
		}
		seen[k] = s
		req.SRVPorts[i] = p.String()
	}
	return nil
}

// claimNetworkName holds name for a network being created, until release:
// it fails if a network of that name exists, in any case, or is being
// created on this host.
func (a *Agent) claimNetworkName(name string) (release func(), err error) {
	a.mu.Lock()
	for key := range a.creations {
		if existing := networkName(key); names.Same(existing, name) {
			a.mu.Unlock()
			return nil, nameTaken("network", name, existing, "")
		}
	}
	a.mu.Unlock()
	return a.claimName("network "+names.Key(name), func() error {
		return apiError(api.CodeConflict, "name", "network %q is being created", name)
	})
}

// claimEndpointName holds name on network for an endpoint being created,
// until release: it fails if an endpoint of that name exists on the
// network, in any case, on any host, or is being created on this host.
func (a *Agent) claimEndpointName(network, name string) (release func(), err error) {
	taken := func(key string) bool {
		n, ep, ok := strings.Cut(key, "/")
		return ok && n == network && names.Same(ep, name)
	}
	a.mu.Lock()
	keys := append(sortedMapKeys(a.owners), sortedMapKeys(a.local)...)
	owners := map[string]string{}
	for _, k := range keys {
		if taken(k) {
			owners[k] = a.owners[k]
			if _, local := a.local[k]; local {
				owners[k] = a.cfg.Name
			}
		}
	}
	svc := a.serviceNamedLocked(network, name)
	a.mu.Unlock()
	for _, k := range keys {
		if host, ok := owners[k]; ok {
			err := nameTaken("endpoint", name, strings.TrimPrefix(k, network+"/"), network)
			err.Message += fmt.Sprintf(" (host %s's): give this one another name", host)
			return nil, err
		}
	}
	if svc != "" {
		return nil, sharedNameErr("endpoint", name, network, "service", svc, "")
	}
	// A name another endpoint has as an alias is let through: Docker's
	// containers are named by their runtime, and one named like another's
	// --network-alias answers it with that one, as on Docker's own DNS.
	// One claim for both kinds of name: a service and an endpoint of
	// the same name created at once on this host are not both made.
	return a.claimName(dnsClaim(network, name), func() error {
		return apiError(api.CodeConflict, "name", "endpoint %q exists on network %q", name, network)
	})
}

// claimName takes key in the names being created, or returns busy().
func (a *Agent) claimName(key string, busy func() error) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.creating[key]; ok {
		return nil, busy()
	}
	if a.creating == nil {
		a.creating = map[string]struct{}{}
	}
	a.creating[key] = struct{}{}
	return func() {
		a.mu.Lock()
		delete(a.creating, key)
		a.mu.Unlock()
	}, nil
}

// nameTaken is the conflict of a name with one that exists: the same, or
// the same but for case.
func nameTaken(kind, name, existing, network string) *api.Error {
	where := ""
	if network != "" {
		where = fmt.Sprintf(" on network %q", network)
	}
	if existing == name {
		return apiError(api.CodeConflict, "name", "%s %q exists%s", kind, name, where)
	}
	return apiError(api.CodeConflict, "name", "%s %q: %s %q exists%s, and names that differ only in case are one name in DNS", kind, name, kind, existing, where)
}

// dnsClaim is the key under which a name of a network's DNS (an
// endpoint's or a service's) is held while being created.
func dnsClaim(network, name string) string { return "dns " + network + "/" + names.Key(name) }

// serviceNamedLocked names the service of network whose name is name in
// any case, made or only joined (endpoints with --service and no service
// create), or "". a.mu is held.
func (a *Agent) serviceNamedLocked(network, name string) string {
	for _, s := range a.services {
		if s.Network == network && names.Same(s.Name, name) {
			return s.Name
		}
	}
	for _, e := range a.rows {
		if e.Network == network && e.Service != "" && names.Same(e.Service, name) {
			return e.Service
		}
	}
	return ""
}

// endpointNameErrLocked refuses name, of kind, on network when an
// endpoint of the network has it as its name or an alias, in any case;
// nil otherwise. a.mu is held.
func (a *Agent) endpointNameErrLocked(kind, name, network string) *api.Error {
	for _, e := range a.rows {
		if e.Network != network {
			continue
		}
		detail := " (host " + e.Host + ")"
		if i := slices.IndexFunc(e.Aliases, func(al string) bool { return names.Same(al, name) }); i >= 0 {
			detail += " with the alias " + e.Aliases[i]
		} else if !names.Same(e.Name, name) {
			continue
		}
		return sharedNameErr(kind, name, network, "endpoint", e.Name, detail)
	}
	return nil
}

// serviceFree checks that the service an endpoint joins (service, on
// network) is no endpoint's name or alias: they share DNS names. Errors
// name the field service.
func (a *Agent) serviceFree(network, service string) error {
	if service == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.endpointNameErrLocked("service", service, network); err != nil {
		err.Field = "service"
		return err
	}
	// One service, whatever the case it is given in: DNS answers it alike.
	if have := a.serviceNamedLocked(network, service); have != "" && have != service {
		return apiError(api.CodeConflict, "service", "service %q: network %q has the service %q, and names that differ only in case are one name in DNS: join it as %q", service, network, have, have)
	}
	return nil
}

// aliasesFree checks that no alias of an endpoint of network is the name
// of one of the network's services (they share DNS names). Errors name
// the field aliases.
func (a *Agent) aliasesFree(network string, aliases []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range aliases {
		if err := a.aliasErrLocked(network, al); err != nil {
			return err
		}
	}
	return nil
}

// aliasErrLocked refuses alias al on network when a service or another
// endpoint has it as its name (field aliases); nil otherwise. a.mu is held.
func (a *Agent) aliasErrLocked(network, al string) *api.Error {
	if svc := a.serviceNamedLocked(network, al); svc != "" {
		err := sharedNameErr("alias", al, network, "service", svc, "")
		err.Field = "aliases"
		return err
	}
	// Another endpoint's name: a name answers for its container alone
	// (endpoints may share an alias, which answers for them all).
	if holder := a.endpointNamedLocked(network, al); holder != "" {
		return apiError(api.CodeConflict, "aliases", "alias %q: network %q has an endpoint %s, whose name answers for it alone in DNS: pick another alias", al, network, holder)
	}
	return nil
}

// endpointNamedLocked names the endpoint of network (and its host) whose
// name is name in any case, or "". a.mu is held.
func (a *Agent) endpointNamedLocked(network, name string) string {
	for _, e := range a.rows {
		if e.Network == network && names.Same(e.Name, name) {
			return fmt.Sprintf("%q (host %s)", e.Name, e.Host)
		}
	}
	return ""
}

// sharedNameErr refuses name, of kind, on network: other, of kind
// otherKind (detail says more of it), has it, and a network's services
// and endpoints share DNS names.
func sharedNameErr(kind, name, network, otherKind, other, detail string) *api.Error {
	return apiError(api.CodeConflict, "name", "%s %q: network %q has a%s %s %q%s, and a network's services and endpoints share DNS names: pick another name",
		kind, name, network, map[bool]string{true: "n"}[otherKind == "endpoint"], otherKind, other, detail)
}

// maxRowExtras is the most the free-form fields of a row (an endpoint's
// labels, aliases, SRV ports and published ports; a network's options and
// aux addresses) may take together, JSON-encoded: the row travels in the
// cluster's tables, whose values hold at most kvs.MaxValueLen bytes, and
// its other fields (names, addresses, a reason) need room too.
const maxRowExtras = kvs.MaxValueLen - 8<<10

// field is one free-form field of a request, by its name in the API.
type field struct {
	name  string
	value any
}

// rowRoom refuses fields that would not fit their row, naming the
// largest, before anything is made.
func rowRoom(whose string, fields ...field) error {
	total, largest, most := 0, "", -1
	for _, f := range fields {
		b, _ := json.Marshal(f.value) // strings, lists and maps of them
		if total += len(b); len(b) > most {
			largest, most = f.name, len(b)
		}
	}
	if total <= maxRowExtras {
		return nil
	}
	list := make([]string, len(fields))
	for i, f := range fields {
		list[i] = f.name
	}
	return apiError(api.CodeBadRequest, largest, "%s %s take %d bytes (%s %d of them): at most %d together, as the row they travel in across the cluster holds %d", whose, strings.Join(list, ", "), total, largest, most, maxRowExtras, kvs.MaxValueLen)
}
