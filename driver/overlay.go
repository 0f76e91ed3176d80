package driver

import "net/netip"

// overlay is VXLAN between hosts: the switch does it all.
type overlay struct{}

func (overlay) Name() string                         { return "overlay" }
func (overlay) Scope() Scope                         { return ScopeGlobal }
func (overlay) OptionKeys() []string                 { return nil }
func (overlay) CheckOptions(map[string]string) error { return nil }
func (overlay) Publishes() bool                      { return false }
func (overlay) ContainerRoutes(Network) []netip.Prefix {
	return nil
}
func (overlay) HostGateway() bool { return false }
