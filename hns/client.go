package hns

// Client is the part of HNS that Programmer drives. NewHCN returns the real
// one on Windows; package hnstest has an in-memory fake. Implementations
// must be safe for concurrent use.
type Client interface {
	// Networks lists every HNS network, vxnet's and others'.
	Networks() ([]Network, error)
	// CreateNetwork creates n (n.ID is ignored) and returns it as HNS has
	// it, with its ID.
	CreateNetwork(n Network) (Network, error)
	// DeleteNetwork deletes the network with ID id, which should have no
	// endpoints left. A missing network is an error wrapping ErrNotFound.
	DeleteNetwork(id string) error
	// Endpoints lists every HNS endpoint, of every network.
	Endpoints() ([]Endpoint, error)
	// CreateEndpoint creates e on the network whose ID is
	// e.HostComputeNetwork (e.ID is ignored) and returns it with its ID.
	CreateEndpoint(e Endpoint) (Endpoint, error)
	// DeleteEndpoint deletes the endpoint with ID id. A missing endpoint is
	// an error wrapping ErrNotFound.
	DeleteEndpoint(id string) error
	// AttachNamespace attaches the endpoint with ID id to the HNS
	// namespace (a container's) with ID namespace.
	AttachNamespace(id, namespace string) error
}
