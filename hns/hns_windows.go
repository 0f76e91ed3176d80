//go:build windows

package hns

import (
	"encoding/json"
	"fmt"

	"github.com/Microsoft/hcsshim/hcn"
	"golang.org/x/sys/windows"
)

// hcnClient is the Client of this host's HNS, through hcsshim's hcn. It
// converts documents between our model and hcn's types through their JSON,
// which has the same shape, and adds nothing else.
type hcnClient struct {
	// vxlanPort: HNS takes the VxlanPort policy (HNS 10.3 and later).
	// Before, HNS speaks 4789 only and refuses the policy, so a VxlanPort
	// of 4789 is left out.
	vxlanPort bool
}

// NewHCN returns the Client of this host's HNS. It refuses a host whose
// HNS lacks the v2 API or remote subnets (Windows Server 2019 and later
// have both).
func NewHCN() (Client, error) {
	if err := hcn.V2ApiSupported(); err != nil {
		return nil, fmt.Errorf("hns: this host's HNS has no v2 API (Windows Server 2019 or later needed): %w", err)
	}
	if err := hcn.RemoteSubnetSupported(); err != nil {
		return nil, fmt.Errorf("hns: this host's HNS has no remote subnet support, which overlay needs: %w", err)
	}
	f, err := hcn.GetCachedSupportedFeatures()
	if err != nil {
		return nil, fmt.Errorf("hns: HNS features: %w", err)
	}
	return &hcnClient{vxlanPort: f.VxlanPort}, nil
}

// convert copies from into to through JSON.
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// notFoundCodes are the HNS results that mean "no such object".
var notFoundCodes = []hcn.ErrorCode{
	hcn.ERROR_NOT_FOUND,
	hcn.ErrorCode(windows.HCN_E_NETWORK_NOT_FOUND),
	hcn.ErrorCode(windows.HCN_E_ENDPOINT_NOT_FOUND),
}

// isNotFound reports whether err is HNS saying the object does not exist.
func isNotFound(err error) bool {
	if hcn.IsNotFoundError(err) {
		return true
	}
	for _, code := range notFoundCodes {
		if hcn.CheckErrorWithCode(err, code) {
			return true
		}
	}
	return false
}

// hcnError adds context to an error of HNS and maps its "not found" to
// ErrNotFound.
func hcnError(what string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("hns: %s: %w: %w", what, ErrNotFound, err)
	}
	return fmt.Errorf("hns: %s: %w", what, err)
}

// Networks implements Client.
func (c *hcnClient) Networks() ([]Network, error) {
	hs, err := hcn.ListNetworks()
	if err != nil {
		return nil, hcnError("list networks", err)
	}
	out := make([]Network, len(hs))
	for i := range hs {
		if err := convert(&hs[i], &out[i]); err != nil {
			return nil, fmt.Errorf("hns: network %q (%s): %w", hs[i].Name, hs[i].Id, err)
		}
	}
	return out, nil
}

// CreateNetwork implements Client.
func (c *hcnClient) CreateNetwork(n Network) (Network, error) {
	n.ID = ""
	if !c.vxlanPort {
		n.Policies = withoutDefaultVxlanPort(n.Policies)
	}
	var h hcn.HostComputeNetwork
	if err := convert(n, &h); err != nil {
		return Network{}, fmt.Errorf("hns: network %q: %w", n.Name, err)
	}
	created, err := h.Create()
	if err != nil {
		return Network{}, hcnError(fmt.Sprintf("create network %q", n.Name), err)
	}
	var out Network
	if err := convert(created, &out); err != nil {
		return Network{}, fmt.Errorf("hns: network %q (%s): %w", n.Name, created.Id, err)
	}
	return out, nil
}

// DeleteNetwork implements Client.
func (c *hcnClient) DeleteNetwork(id string) error {
	h := hcn.HostComputeNetwork{Id: id}
	if err := h.Delete(); err != nil {
		return hcnError("delete network "+id, err)
	}
	return nil
}

// Endpoints implements Client.
func (c *hcnClient) Endpoints() ([]Endpoint, error) {
	hs, err := hcn.ListEndpoints()
	if err != nil {
		return nil, hcnError("list endpoints", err)
	}
	out := make([]Endpoint, len(hs))
	for i := range hs {
		if err := convert(&hs[i], &out[i]); err != nil {
			return nil, fmt.Errorf("hns: endpoint %q (%s): %w", hs[i].Name, hs[i].Id, err)
		}
	}
	return out, nil
}

// CreateEndpoint implements Client.
func (c *hcnClient) CreateEndpoint(e Endpoint) (Endpoint, error) {
	if e.HostComputeNetwork == "" {
		return Endpoint{}, fmt.Errorf("hns: endpoint %q: HostComputeNetwork (the network ID) is empty", e.Name)
	}
	e.ID, e.HostComputeNamespace = "", "" // the namespace is read-only: attach after creating
	var h hcn.HostComputeEndpoint
	if err := convert(e, &h); err != nil {
		return Endpoint{}, fmt.Errorf("hns: endpoint %q: %w", e.Name, err)
	}
	created, err := h.Create()
	if err != nil {
		return Endpoint{}, hcnError(fmt.Sprintf("create endpoint %q on network %s", e.Name, e.HostComputeNetwork), err)
	}
	var out Endpoint
	if err := convert(created, &out); err != nil {
		return Endpoint{}, fmt.Errorf("hns: endpoint %q (%s): %w", e.Name, created.Id, err)
	}
	return out, nil
}

// AttachNamespace implements Client.
func (c *hcnClient) AttachNamespace(id, namespace string) error {
	if err := hcn.AddNamespaceEndpoint(namespace, id); err != nil {
		return hcnError("attach endpoint "+id+" to namespace "+namespace, err)
	}
	return nil
}

// DeleteEndpoint implements Client.
func (c *hcnClient) DeleteEndpoint(id string) error {
	h := hcn.HostComputeEndpoint{Id: id}
	if err := h.Delete(); err != nil {
		return hcnError("delete endpoint "+id, err)
	}
	return nil
}
